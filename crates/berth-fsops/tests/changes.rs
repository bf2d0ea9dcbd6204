mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use berth_fsops::{changes, ChangeKind};
use common::is_root;

const T: u64 = 1_600_000_000;

fn set_mtime(p: &Path) {
    fs::File::open(p).unwrap().set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(T)).unwrap();
}

fn render(v: &[berth_fsops::Change]) -> Vec<String> {
    v.iter().map(|c| format!("{} {}", c.kind.letter(), c.path)).collect()
}

/// Lower: etc/{passwd,hosts}, usr/bin/ls, var/lib/x/{a,b}. The upper copies
/// directories up with the lower's metadata (as overlayfs does), so only
/// real changes show.
fn layers(whiteouts: bool) -> (tempfile::TempDir, tempfile::TempDir) {
    let lower = tempfile::tempdir().unwrap();
    let l = lower.path();
    for d in ["etc", "usr/bin", "var/lib/x"] {
        fs::create_dir_all(l.join(d)).unwrap();
    }
    for f in ["etc/passwd", "etc/hosts", "usr/bin/ls", "var/lib/x/a", "var/lib/x/b"] {
        fs::write(l.join(f), "lower").unwrap();
    }
    let upper = tempfile::tempdir().unwrap();
    let u = upper.path();
    fs::create_dir_all(u.join("etc")).unwrap();
    fs::write(u.join("etc/passwd"), "changed").unwrap();
    fs::write(u.join("etc/new"), "new").unwrap();
    fs::create_dir_all(u.join("newdir")).unwrap();
    fs::write(u.join("newdir/f"), "f").unwrap();
    if whiteouts {
        fs::create_dir_all(u.join("usr/bin")).unwrap();
        nix::sys::stat::mknod(
            &u.join("usr/bin/ls"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0),
            0,
        )
        .unwrap();
        fs::create_dir_all(u.join("var/lib/x")).unwrap();
        fs::write(u.join("var/lib/x/c"), "c").unwrap();
        fs::write(u.join("var/lib/x/a"), "a").unwrap();
        xattr_set(&u.join("var/lib/x"), "trusted.overlay.opaque", b"y");
    }
    // Directory metadata equal on both sides where overlay copied it up.
    for d in ["etc", "usr", "usr/bin", "var", "var/lib", "var/lib/x"] {
        for base in [l, u] {
            if base.join(d).exists() {
                set_mtime(&base.join(d));
            }
        }
    }
    (lower, upper)
}

fn xattr_set(p: &Path, name: &str, v: &[u8]) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid pointers for the given lengths.
    let r = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

#[test]
fn added_and_modified_with_parents() {
    let (lower, upper) = layers(false);
    let c = changes(upper.path(), &[lower.path()]).unwrap();
    assert_eq!(render(&c), ["C /etc", "A /etc/new", "C /etc/passwd", "A /newdir", "A /newdir/f"]);
    assert_eq!(c[1].kind, ChangeKind::Added);
    assert_eq!(serde_json::to_string(&c[0]).unwrap(), r#"{"Path":"/etc","Kind":0}"#);
    // Against no lower at all, everything is new.
    let all = changes(upper.path(), &[]).unwrap();
    assert!(all.iter().all(|c| c.kind == ChangeKind::Added));
}

#[test]
fn whiteouts_and_opaque_directories() {
    if !is_root() {
        eprintln!("skipping: whiteouts and trusted.* xattrs need root");
        return;
    }
    let (lower, upper) = layers(true);
    let empty = tempfile::tempdir().unwrap();
    let c = changes(upper.path(), &[empty.path(), lower.path()]).unwrap();
    assert_eq!(
        render(&c),
        [
            "C /etc",
            "A /etc/new",
            "C /etc/passwd",
            "A /newdir",
            "A /newdir/f",
            "C /usr/bin",
            "D /usr/bin/ls",
            "C /var/lib/x",
            "C /var/lib/x/a",
            "D /var/lib/x/b",
            "A /var/lib/x/c",
        ]
    );
}
