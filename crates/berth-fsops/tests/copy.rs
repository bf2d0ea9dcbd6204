mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use berth_fsops::copy_tree;
use common::is_root;

#[test]
fn copy_preserves_everything_and_follows_nothing() {
    let s = tempfile::tempdir().unwrap();
    let d = tempfile::tempdir().unwrap();
    let sp = s.path();
    fs::create_dir_all(sp.join("conf/sub")).unwrap();
    fs::write(sp.join("conf/a"), "a").unwrap();
    fs::set_permissions(sp.join("conf/a"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::hard_link(sp.join("conf/a"), sp.join("conf/sub/a2")).unwrap();
    symlink("/etc", sp.join("conf/etc")).unwrap();
    if is_root() {
        std::os::unix::fs::lchown(sp.join("conf/a"), Some(999), Some(998)).unwrap();
        std::os::unix::fs::lchown(sp.join("conf/etc"), Some(5), Some(6)).unwrap();
    }
    copy_tree(sp, d.path()).unwrap();
    let dp = d.path();
    let a = fs::symlink_metadata(dp.join("conf/a")).unwrap();
    assert_eq!(a.mode() & 0o7777, 0o640);
    assert_eq!(fs::symlink_metadata(dp.join("conf/sub/a2")).unwrap().ino(), a.ino());
    assert_eq!(fs::read_link(dp.join("conf/etc")).unwrap().to_str(), Some("/etc"));
    assert_eq!(
        fs::symlink_metadata(dp.join("conf")).unwrap().mtime(),
        fs::symlink_metadata(sp.join("conf")).unwrap().mtime()
    );
    if is_root() {
        assert_eq!((a.uid(), a.gid()), (999, 998));
        let l = fs::symlink_metadata(dp.join("conf/etc")).unwrap();
        assert_eq!((l.uid(), l.gid()), (5, 6));
    }
}
