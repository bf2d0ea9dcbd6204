mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

use berth_error::ErrorKind;
use berth_fsops::{archive_path, extract_to, extract_to_with, ExtractOptions};
use common::{is_root, listing, raw_entry};
use tar::EntryType;

fn source_tree(r: &std::path::Path) {
    fs::create_dir_all(r.join("src/sub")).unwrap();
    fs::write(r.join("src/file"), "hello").unwrap();
    fs::set_permissions(r.join("src/file"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::hard_link(r.join("src/file"), r.join("src/sub/hard")).unwrap();
    symlink("../file", r.join("src/sub/rel")).unwrap();
    symlink("/etc/passwd", r.join("src/abs")).unwrap();
    nix::unistd::mkfifo(&r.join("src/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).unwrap();
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    fs::File::open(r.join("src/file")).unwrap().set_modified(t).unwrap();
}

fn check_copy(dst: &std::path::Path) {
    let f = fs::symlink_metadata(dst.join("file")).unwrap();
    assert_eq!(fs::read_to_string(dst.join("file")).unwrap(), "hello");
    assert_eq!(f.mode() & 0o7777, 0o751);
    assert_eq!(f.mtime(), 1_500_000_000);
    assert_eq!(fs::symlink_metadata(dst.join("sub/hard")).unwrap().ino(), f.ino());
    assert_eq!(fs::read_link(dst.join("sub/rel")).unwrap().to_str(), Some("../file"));
    assert_eq!(fs::read_link(dst.join("abs")).unwrap().to_str(), Some("/etc/passwd"));
    assert!(fs::symlink_metadata(dst.join("fifo")).unwrap().file_type().is_fifo_like());
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_fifo(self)
    }
}

#[test]
fn archive_extract_round_trip_plain_and_gzip() {
    let a = tempfile::tempdir().unwrap();
    source_tree(a.path());
    let mut tar_bytes = Vec::new();
    archive_path(a.path(), "/src", false, &mut tar_bytes).unwrap();

    let b = tempfile::tempdir().unwrap();
    fs::create_dir_all(b.path().join("dst")).unwrap();
    extract_to(b.path(), "/dst", tar_bytes.as_slice(), false, true).unwrap();
    check_copy(&b.path().join("dst/src"));
    // No staging directory left behind.
    assert_eq!(fs::read_dir(b.path().join("dst")).unwrap().count(), 1);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).unwrap();
    let gz = gz.finish().unwrap();
    let c = tempfile::tempdir().unwrap();
    fs::create_dir_all(c.path().join("d")).unwrap();
    extract_to(c.path(), "d", gz.as_slice(), false, true).unwrap();
    check_copy(&c.path().join("d/src"));

    // Extracting again over the existing tree merges and replaces.
    extract_to(c.path(), "d", tar_bytes.as_slice(), false, true).unwrap();
    check_copy(&c.path().join("d/src"));
}

#[test]
fn dotdot_entries_are_refused_and_leave_nothing() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("a/b")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "ok", EntryType::Regular, None, b"fine");
    raw_entry(&mut b, "../../etc/passwd", EntryType::Regular, None, b"root::0:0::/:/bin/sh\n");
    let t = b.into_inner().unwrap();
    let e = extract_to(r.path(), "/a/b", t.as_slice(), false, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.to_string(), r#""../../etc/passwd" is outside of "/a/b""#);
    assert_eq!(listing(r.path()), ["a", "a/b"]);
}

#[test]
fn absolute_names_stay_in_the_destination() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("d")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "/x/../../y", EntryType::Regular, None, b"y");
    let t = b.into_inner().unwrap();
    extract_to(r.path(), "/d", t.as_slice(), false, false).unwrap();
    assert_eq!(listing(r.path()), ["d", "d/y"]);
}

#[test]
fn entries_under_an_archive_symlink_are_refused() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("d")).unwrap();
    fs::create_dir_all(r.path().join("etc")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "evil", EntryType::Symlink, Some("/"), b"");
    raw_entry(&mut b, "evil/etc/x", EntryType::Regular, None, b"pwned");
    let t = b.into_inner().unwrap();
    let e = extract_to(r.path(), "/d", t.as_slice(), false, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(!r.path().join("etc/x").exists());
    assert!(!std::path::Path::new("/etc/x").exists());
    assert_eq!(listing(r.path()), ["d", "etc"]);
}

#[test]
fn hardlinks_outside_the_archive_are_refused() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("d")).unwrap();
    fs::create_dir_all(r.path().join("etc")).unwrap();
    fs::write(r.path().join("etc/shadow"), "secret").unwrap();
    for target in ["/etc/shadow", "../etc/shadow", "../../../../etc/shadow"] {
        let mut b = tar::Builder::new(Vec::new());
        raw_entry(&mut b, "shadow", EntryType::Link, Some(target), b"");
        let t = b.into_inner().unwrap();
        let e = extract_to(r.path(), "/d", t.as_slice(), false, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{target}");
        assert_eq!(listing(&r.path().join("d")), Vec::<String>::new());
        assert_eq!(fs::symlink_metadata(r.path().join("etc/shadow")).unwrap().nlink(), 1);
    }
    // A link through an archive symlink to a file outside is refused too.
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "up", EntryType::Symlink, Some("/etc"), b"");
    raw_entry(&mut b, "shadow", EntryType::Link, Some("up/shadow"), b"");
    let t = b.into_inner().unwrap();
    assert!(extract_to(r.path(), "/d", t.as_slice(), false, false).is_err());
    assert_eq!(fs::symlink_metadata(r.path().join("etc/shadow")).unwrap().nlink(), 1);
}

#[test]
fn no_overwrite_dir_non_dir_is_all_or_nothing() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("d/x")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "a", EntryType::Regular, None, b"a");
    raw_entry(&mut b, "x", EntryType::Regular, None, b"x");
    let t = b.into_inner().unwrap();
    let e = extract_to(r.path(), "/d", t.as_slice(), true, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(e.to_string(), r#"cannot overwrite directory "/d/x" with non-directory "/d""#);
    assert_eq!(listing(r.path()), ["d", "d/x"]);
    // Without the flag the directory is replaced, as Docker does.
    extract_to(r.path(), "/d", t.as_slice(), false, false).unwrap();
    assert_eq!(fs::read_to_string(r.path().join("d/x")).unwrap(), "x");
    assert_eq!(fs::read_to_string(r.path().join("d/a")).unwrap(), "a");
}

#[test]
fn existing_container_symlinks_are_followed_inside_the_root() {
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("usr/lib")).unwrap();
    symlink("/usr/lib", r.path().join("lib")).unwrap();
    symlink("/", r.path().join("dest")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    raw_entry(&mut b, "lib/", EntryType::Directory, None, b"");
    raw_entry(&mut b, "lib/libc.so", EntryType::Regular, None, b"elf");
    let t = b.into_inner().unwrap();
    // The destination itself is a symlink to the container's `/`.
    extract_to(r.path(), "/dest", t.as_slice(), false, false).unwrap();
    assert_eq!(fs::read_to_string(r.path().join("usr/lib/libc.so")).unwrap(), "elf");
    assert!(fs::symlink_metadata(r.path().join("lib")).unwrap().file_type().is_symlink());
}

#[test]
fn bad_destinations() {
    let r = tempfile::tempdir().unwrap();
    fs::write(r.path().join("f"), "").unwrap();
    let e = extract_to(r.path(), "/f", &[][..], false, false).unwrap_err();
    assert_eq!(e.to_string(), "extraction point is not a directory");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = extract_to(r.path(), "/missing", &[][..], false, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn ownership_and_devices_as_root() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let r = tempfile::tempdir().unwrap();
    fs::create_dir_all(r.path().join("d")).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_size(1);
    h.set_mode(0o4755);
    h.set_uid(1234);
    h.set_gid(5678);
    b.append_data(&mut h, "owned", &b"x"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Char);
    h.set_size(0);
    h.set_mode(0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "null", &[][..]).unwrap();
    let t = b.into_inner().unwrap();

    extract_to(r.path(), "/d", t.as_slice(), false, true).unwrap();
    let m = fs::metadata(r.path().join("d/owned")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1234, 5678, 0o4755));
    let n = fs::symlink_metadata(r.path().join("d/null")).unwrap();
    assert_eq!(n.rdev(), libc::makedev(1, 3));

    extract_to(r.path(), "/d", t.as_slice(), false, false).unwrap();
    let m = fs::metadata(r.path().join("d/owned")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o4755));

    extract_to_with(r.path(), "/d", t.as_slice(), &ExtractOptions { chown: Some((7, 8)), ..Default::default() })
        .unwrap();
    let m = fs::metadata(r.path().join("d/owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (7, 8));
}
