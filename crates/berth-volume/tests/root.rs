//! Mount tests: need root (mount(2), chown); skipped otherwise.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_volume::{copy_up, VolumeStore};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Unmounts whatever is still mounted at its path when a test ends, passing
/// or not, so a failure never leaks a mount.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        while is_mounted(&self.0) {
            if nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

fn is_mounted(p: &Path) -> bool {
    let Ok(c) = fs::canonicalize(p) else { return false };
    let c = c.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| l.split(' ').nth(4) == Some(c.as_str()))
}

fn is_tmpfs(p: &Path) -> bool {
    nix::sys::statfs::statfs(p).unwrap().filesystem_type() == nix::sys::statfs::TMPFS_MAGIC
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn store(d: &Path) -> VolumeStore {
    let db = Arc::new(berth_meta::Db::open_in_memory().unwrap());
    VolumeStore::open(db, &d.join("volumes")).unwrap()
}

#[test]
fn tmpfs_volume_is_refcounted() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let s = store(d.path());
    let v = s
        .create(
            Some("scratch"),
            "local",
            &map(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=4m,mode=0750")]),
            &map(&[]),
        )
        .unwrap();
    let data = PathBuf::from(&v.mountpoint);
    let _guard = MountGuard(data.clone());
    assert_eq!(s.mount("scratch", "c1").unwrap(), data);
    assert!(is_mounted(&data));
    assert!(is_tmpfs(&data));
    assert_eq!(fs::metadata(&data).unwrap().mode() & 0o7777, 0o750);
    fs::write(data.join("f"), "x").unwrap();
    s.mount("scratch", "c2").unwrap();
    s.mount("scratch", "c2").unwrap();
    s.unmount("scratch", "c1").unwrap();
    assert!(is_mounted(&data), "c2 still uses it");
    assert_eq!(fs::read_to_string(data.join("f")).unwrap(), "x");
    s.unmount("scratch", "c2").unwrap();
    assert!(!is_mounted(&data));
    assert!(!data.join("f").exists(), "tmpfs content goes with the mount");
    s.unmount("scratch", "c2").unwrap();
    s.remove("scratch", false, &|_| Vec::new()).unwrap();
}

#[test]
fn bind_volume_and_safe_remove() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let host = d.path().join("host");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("keep"), "precious").unwrap();
    let s = store(d.path());
    let opts = map(&[("type", "none"), ("o", "bind"), ("device", host.to_str().unwrap())]);
    let v = s.create(Some("bound"), "", &opts, &map(&[])).unwrap();
    let data = PathBuf::from(&v.mountpoint);
    let _guard = MountGuard(data.clone());
    s.mount("bound", "c1").unwrap();
    assert_eq!(fs::read_to_string(data.join("keep")).unwrap(), "precious");
    fs::write(data.join("new"), "n").unwrap();
    assert!(host.join("new").exists());
    s.unmount("bound", "c1").unwrap();
    assert!(!is_mounted(&data));

    // A leftover mount (daemon crash) is unmounted before removal, never
    // deleted through.
    s.mount("bound", "c1").unwrap();
    let s2 = store(d.path());
    drop(s);
    let v2 = s2.create(Some("bound"), "", &opts, &map(&[])).unwrap();
    assert_eq!(v2.name, "bound");
    s2.remove("bound", false, &|_| Vec::new()).unwrap();
    assert_eq!(fs::read_to_string(host.join("keep")).unwrap(), "precious");

    // Read-only bind: remounted with the flag.
    let ro = map(&[("type", "none"), ("o", "bind,ro"), ("device", host.to_str().unwrap())]);
    let v = s2.create(Some("robound"), "", &ro, &map(&[])).unwrap();
    let _g2 = MountGuard(PathBuf::from(&v.mountpoint));
    s2.mount("robound", "c").unwrap();
    assert!(fs::write(Path::new(&v.mountpoint).join("x"), "x").is_err());
    s2.unmount("robound", "c").unwrap();

    // A missing bind source fails with Docker's wording, and no user is kept.
    let bad = map(&[("type", "none"), ("o", "bind"), ("device", "/nonexistent-berth-src")]);
    s2.create(Some("broken"), "", &bad, &map(&[])).unwrap();
    let e = s2.mount("broken", "c").unwrap_err().to_string();
    assert!(e.starts_with("error while mounting volume '"), "{e}");
    assert!(s2.mount_users("broken").unwrap().is_empty());
}

#[test]
fn copy_up_preserves_ownership() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("img/var/lib/db");
    fs::create_dir_all(img.join("conf")).unwrap();
    fs::write(img.join("conf/db.conf"), "x").unwrap();
    std::os::unix::fs::lchown(&img, Some(999), Some(999)).unwrap();
    std::os::unix::fs::lchown(img.join("conf"), Some(70), Some(71)).unwrap();
    std::os::unix::fs::lchown(img.join("conf/db.conf"), Some(72), Some(73)).unwrap();
    let s = store(d.path());
    let v = s.create(Some("db"), "", &map(&[]), &map(&[])).unwrap();
    let data = PathBuf::from(&v.mountpoint);
    copy_up(&img, &data).unwrap();
    let o = |p: &Path| {
        let m = fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(o(&data), (999, 999));
    assert_eq!(o(&data.join("conf")), (70, 71));
    assert_eq!(o(&data.join("conf/db.conf")), (72, 73));
}
