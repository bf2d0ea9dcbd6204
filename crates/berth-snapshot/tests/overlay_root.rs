//! Root-only tests that really mount what the snapshotter returns. They skip
//! (with a note) when not run as root, and unmount in `Drop` so a failing
//! assertion never leaves a mount behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_snapshot::{mount_all, unmount, Snapshotter};
use sha2::{Digest as _, Sha256};

fn skip_unless_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    println!("skipping {test}: needs root to mount overlayfs");
    true
}

/// Unmounts its target when dropped.
struct MountGuard(PathBuf);

impl MountGuard {
    fn mount(mounts: &[berth_snapshot::Mount], target: &Path) -> MountGuard {
        fs::create_dir_all(target).expect("mkdir target");
        mount_all(mounts, target).expect("mount_all");
        MountGuard(target.to_path_buf())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.0) {
            eprintln!("unmount {}: {e}", self.0.display());
        }
    }
}

enum Item<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Whiteout(&'a str),
}

fn layer(items: &[Item<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_600_000_000);
        let (name, data): (String, &[u8]) = match item {
            Item::Dir(n) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                (n.to_string(), b"")
            }
            Item::File(n, d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                (n.to_string(), d)
            }
            Item::Whiteout(n) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                let p = Path::new(n);
                let name = match p.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(dir) => format!("{}/.wh.{}", dir.display(), p.file_name().expect("name").to_string_lossy()),
                    None => format!(".wh.{n}"),
                };
                (name, b"")
            }
        };
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).expect("append");
    }
    b.into_inner().expect("finish")
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Names in a tar with a short description of each entry.
fn tar_entries(data: &[u8]) -> BTreeMap<String, String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let mut content = String::new();
            e.read_to_string(&mut content).expect("read");
            let desc = format!("{:?}:{content}", e.header().entry_type());
            (name, desc)
        })
        .collect()
}

#[test]
fn overlay_over_two_layers_diff_and_reapply() {
    if skip_unless_root("overlay_over_two_layers_diff_and_reapply") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::new(&tmp.path().join("snap")).expect("new");

    let l1 = layer(&[
        Item::File("a.txt", b"one"),
        Item::File("del.txt", b"bye"),
        Item::Dir("keep"),
        Item::File("keep/k", b"k"),
        Item::Dir("dir"),
        Item::File("dir/old1", b"1"),
        Item::File("dir/old2", b"2"),
    ]);
    let l2 = layer(&[Item::File("b.txt", b"two"), Item::Whiteout("del.txt")]);
    s.apply_layer("sha256:c1", None, &l1[..], Some(&digest(&l1))).expect("apply l1");
    s.apply_layer("sha256:c2", Some("sha256:c1"), &l2[..], Some(&digest(&l2))).expect("apply l2");

    let mounts = s.prepare("ctr", Some("sha256:c2")).expect("prepare");
    let target = tmp.path().join("rootfs");
    {
        let _guard = MountGuard::mount(&mounts, &target);
        // What the layers say.
        assert_eq!(fs::read(target.join("a.txt")).expect("a"), b"one");
        assert_eq!(fs::read(target.join("b.txt")).expect("b"), b"two");
        assert!(!target.join("del.txt").exists(), "whiteout hides lower file");
        // Changes a container makes.
        fs::write(target.join("new.txt"), b"new").expect("write");
        fs::write(target.join("a.txt"), b"changed").expect("modify");
        fs::remove_file(target.join("keep/k")).expect("delete");
        fs::remove_dir_all(target.join("dir")).expect("rm dir");
        fs::create_dir(target.join("dir")).expect("mkdir");
        fs::write(target.join("dir/fresh"), b"f").expect("write");
        fs::remove_file(target.join("b.txt")).expect("delete upper-layer file");
    }
    assert!(!target.join("a.txt").exists(), "guard unmounted the overlay");

    let mut diff = Vec::new();
    s.diff("ctr", &mut diff).expect("diff");
    let entries = tar_entries(&diff);
    let expect = [
        ("a.txt", "Regular:changed"),
        ("new.txt", "Regular:new"),
        ("keep/", "Directory:"),
        ("keep/.wh.k", "Regular:"),
        ("dir/", "Directory:"),
        ("dir/.wh..wh..opq", "Regular:"),
        ("dir/fresh", "Regular:f"),
        (".wh.b.txt", "Regular:"),
    ];
    for (name, desc) in expect {
        assert_eq!(entries.get(name).map(String::as_str), Some(desc), "{name} in {entries:?}");
    }
    assert_eq!(entries.len(), expect.len(), "{entries:?}");

    // The diff is a valid layer: apply it on top and view the result.
    s.apply_layer("sha256:c3", Some("sha256:c2"), &diff[..], Some(&digest(&diff))).expect("apply diff");
    let view = s.view("view", Some("sha256:c3")).expect("view");
    let vt = tmp.path().join("view");
    {
        let _guard = MountGuard::mount(&view, &vt);
        let mut names: Vec<String> = Vec::new();
        for e in walk(&vt) {
            names.push(e);
        }
        names.sort();
        assert_eq!(
            names,
            vec!["a.txt", "dir", "dir/fresh", "keep", "new.txt"],
            "merged view after re-applying the diff"
        );
        assert_eq!(fs::read(vt.join("a.txt")).expect("a"), b"changed");
        let err = fs::write(vt.join("x"), b"x").expect_err("view is read-only");
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    }

    // A single-layer view is a read-only bind.
    let v1 = s.view("v1", Some("sha256:c1")).expect("view");
    let v1t = tmp.path().join("v1");
    {
        let _guard = MountGuard::mount(&v1, &v1t);
        assert_eq!(fs::read(v1t.join("dir/old1")).expect("read"), b"1");
        let err = fs::write(v1t.join("x"), b"x").expect_err("read-only bind");
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    }

    // A writable snapshot without parent is a rw bind.
    let rw = s.prepare("scratch", None).expect("prepare");
    let rwt = tmp.path().join("scratch");
    {
        let _guard = MountGuard::mount(&rw, &rwt);
        fs::write(rwt.join("hello"), b"x").expect("write");
    }
    let mut d = Vec::new();
    s.diff("scratch", &mut d).expect("diff");
    assert!(tar_entries(&d).contains_key("hello"));

    for key in ["scratch", "v1", "view", "sha256:c3", "ctr", "sha256:c2", "sha256:c1"] {
        s.remove(key).expect("remove");
    }
    assert!(s.list().is_empty());
    assert_eq!(fs::read_dir(s.root().join("snapshots")).expect("ls").count(), 0);
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let p = e.path();
            out.push(p.strip_prefix(root).expect("prefix").to_string_lossy().into_owned());
            if e.file_type().expect("type").is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn deep_chain_mounts_beyond_the_page_limit() {
    if skip_unless_root("deep_chain_mounts_beyond_the_page_limit") {
        return;
    }
    // A long root makes the lowerdir string of 130 layers exceed 4096 bytes,
    // which mount_all must still handle.
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("a-rather-long-data-root-directory-name-for-testing");
    let s = Snapshotter::new(&root).expect("new");
    let mut parent: Option<String> = None;
    for i in 0..130 {
        let key = format!("sha256:deep{i}");
        let content = format!("{i}");
        let data = layer(&[Item::File(&format!("f{i}"), content.as_bytes())]);
        s.apply_layer(&key, parent.as_deref(), &data[..], None).expect("apply");
        parent = Some(key);
    }
    let mounts = s.prepare("top", parent.as_deref()).expect("prepare");
    let len = mounts[0].options.join(",").len();
    assert!(len > 4096, "test needs options over one page, got {len}");
    let target = tmp.path().join("rootfs");
    {
        let _guard = MountGuard::mount(&mounts, &target);
        for i in [0, 64, 129] {
            assert_eq!(fs::read_to_string(target.join(format!("f{i}"))).expect("read"), i.to_string());
        }
    }
    s.remove("top").expect("remove");
    let mut key = parent;
    while let Some(k) = key {
        let p = s.parent(&k).expect("parent");
        s.remove(&k).expect("remove");
        key = p;
    }
}

#[test]
fn root_extraction_keeps_owners_devices_and_opaque_xattr() {
    if skip_unless_root("root_extraction_keeps_owners_devices_and_opaque_xattr") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::new(&tmp.path().join("snap")).expect("new");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Char);
    h.set_mode(0o666);
    h.set_device_major(1).expect("major");
    h.set_device_minor(3).expect("minor");
    h.set_size(0);
    b.append_data(&mut h, "dev/null", &b""[..]).expect("append");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_size(0);
    b.append_data(&mut h, "home/u/", &b""[..]).expect("append");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    b.append_data(&mut h, "home/u/.wh..wh..opq", &b""[..]).expect("append");
    let data = b.into_inner().expect("finish");
    s.apply_layer("k", None, &data[..], None).expect("apply");
    let fs_dir = s.root().join("snapshots");
    let snap = fs::read_dir(&fs_dir).expect("ls").next().expect("one snapshot").expect("entry").path().join("fs");
    let null = fs::symlink_metadata(snap.join("dev/null")).expect("dev/null");
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    let home = fs::metadata(snap.join("home/u")).expect("home");
    assert_eq!((home.uid(), home.gid(), home.mode() & 0o7777), (1000, 1001, 0o750));
    assert_eq!(xattr::get(snap.join("home/u"), "trusted.overlay.opaque").expect("xattr").as_deref(), Some(&b"y"[..]));
    s.remove("k").expect("remove");
}
