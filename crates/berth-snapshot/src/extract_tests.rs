//! Extraction tests. They run unprivileged; assertions that need root
//! (ownership, device nodes, `trusted.*` xattrs) adapt to the euid.

use super::*;
use berth_error::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use tar::Header;

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub(crate) fn test_opts() -> ExtractOptions {
    ExtractOptions {
        chown: is_root(),
        opaque_xattr: if is_root() { "trusted.overlay.opaque" } else { "user.overlay.opaque" },
    }
}

/// Builds tars with arbitrary (also hostile) names, which `tar::Builder`'s
/// path setters refuse to write.
pub(crate) struct TarBuf {
    b: tar::Builder<Vec<u8>>,
}

const MTIME: u64 = 1_600_000_000;

fn raw_header(kind: EntryType, name: &[u8], size: u64, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(MTIME);
    h.set_uid(0);
    h.set_gid(0);
    let gnu = h.as_gnu_mut().expect("gnu header");
    gnu.name[..name.len()].copy_from_slice(name);
    h
}

impl TarBuf {
    pub(crate) fn new() -> Self {
        TarBuf { b: tar::Builder::new(Vec::new()) }
    }

    fn push(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).expect("append");
        self
    }

    pub(crate) fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = raw_header(EntryType::Regular, name.as_bytes(), data.len() as u64, mode);
        self.push(h, data)
    }

    pub(crate) fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let h = raw_header(EntryType::Directory, name.as_bytes(), 0, mode);
        self.push(h, b"")
    }

    fn link(&mut self, kind: EntryType, name: &str, target: &str) -> &mut Self {
        let mut h = raw_header(kind, name.as_bytes(), 0, 0o777);
        let gnu = h.as_gnu_mut().expect("gnu header");
        gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, b"")
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Symlink, name, target)
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.link(EntryType::Link, name, target)
    }

    fn device(&mut self, kind: EntryType, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = raw_header(kind, name.as_bytes(), 0, 0o666);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        self.push(h, b"")
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b.append_pax_extensions(records.iter().copied()).expect("pax");
        self
    }

    pub(crate) fn bytes(self) -> Vec<u8> {
        self.b.into_inner().expect("finish")
    }
}

pub(crate) fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Extracts into `<tmp>/dest`, leaving `<tmp>/outside` as a place escapes
/// would reach.
fn run(tar: &[u8]) -> (tempfile::TempDir, PathBuf, Result<Extracted>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).expect("mkdir dest");
    fs::create_dir(tmp.path().join("outside")).expect("mkdir outside");
    let res = extract(&dest, tar, &test_opts());
    (tmp, dest, res)
}

fn expect_refused(tar: &[u8], entry: &str) -> tempfile::TempDir {
    let (tmp, _dest, res) = run(tar);
    let err = res.expect_err("layer must be refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains(entry), "{err} should name {entry}");
    let outside: Vec<_> = fs::read_dir(tmp.path().join("outside")).expect("read outside").collect();
    assert!(outside.is_empty(), "something was written outside: {outside:?}");
    tmp
}

#[test]
fn regular_entries_metadata_and_digest() {
    let mut t = TarBuf::new();
    t.dir("./", 0o755)
        .dir("etc/", 0o755)
        .file("etc/hosts", b"hello", 0o644)
        .file("bin/tool", b"#!/bin/sh\n", 0o4755)
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .hardlink("etc/hosts.bak", "etc/hosts")
        .device(EntryType::Fifo, "run/fifo", 0, 0)
        .dir("ro/", 0o555)
        .file("ro/f", b"x", 0o400);
    let bytes = t.bytes();
    let (_tmp, dest, res) = run(&bytes);
    let out = res.expect("extract");
    assert_eq!(out.diff_id, sha256(&bytes));
    assert_eq!(out.size, 5 + 10 + 1);

    assert_eq!(fs::read(dest.join("etc/hosts")).expect("read"), b"hello");
    let hosts = fs::metadata(dest.join("etc/hosts")).expect("stat");
    assert_eq!(hosts.mode() & 0o7777, 0o644);
    assert_eq!(hosts.mtime(), MTIME as i64);
    assert_eq!(
        fs::metadata(dest.join("bin/tool")).expect("stat").mode() & 0o7777,
        0o4755,
        "setuid bit kept (chmod after chown)"
    );
    assert_eq!(fs::metadata(dest.join("bin")).expect("stat").mode() & 0o7777, 0o755, "implicit parents are 0755");
    assert_eq!(fs::read_link(dest.join("etc/localtime")).expect("readlink"), Path::new("/usr/share/zoneinfo/UTC"));
    let bak = fs::metadata(dest.join("etc/hosts.bak")).expect("stat");
    assert_eq!(bak.ino(), hosts.ino());
    assert!(fs::symlink_metadata(dest.join("run/fifo")).expect("stat").file_type().is_fifo());
    let ro = fs::metadata(dest.join("ro")).expect("stat");
    assert_eq!(ro.mode() & 0o7777, 0o555, "directory mode applied last");
    assert_eq!(ro.mtime(), MTIME as i64, "directory mtime applied last");
    assert_eq!(fs::read(dest.join("ro/f")).expect("read"), b"x");
    assert_eq!(fs::metadata(&dest).expect("stat").mode() & 0o7777, 0o755);
    crate::store::remove_tree(&dest).expect("remove read-only tree");
}

#[test]
fn trailing_data_after_end_of_archive_is_hashed() {
    let mut t = TarBuf::new();
    t.file("a", b"a", 0o644);
    let mut bytes = t.bytes();
    bytes.extend_from_slice(&[0u8; 8192]);
    let (_tmp, _dest, res) = run(&bytes);
    assert_eq!(res.expect("extract").diff_id, sha256(&bytes));
}

#[test]
fn long_names_gnu_and_pax() {
    let gnu_name = format!("{}/{}", "g".repeat(80), "n".repeat(90));
    let pax_name = format!("{}/{}", "p".repeat(120), "x".repeat(100));
    let long_target = format!("/{}", "t".repeat(300));
    let mut b = tar::Builder::new(Vec::new());
    // tar::Builder writes a GNU long-name entry for this one.
    let mut h = raw_header(EntryType::Regular, b"", 3, 0o644);
    b.append_data(&mut h, &gnu_name, &b"gnu"[..]).expect("append");
    b.append_pax_extensions([("path", pax_name.as_bytes())]).expect("pax");
    let mut h = raw_header(EntryType::Regular, b"truncated", 3, 0o644);
    h.set_cksum();
    b.append(&h, &b"pax"[..]).expect("append");
    b.append_pax_extensions([("linkpath", long_target.as_bytes())]).expect("pax");
    let mut h = raw_header(EntryType::Symlink, b"longlink", 0, 0o777);
    h.set_cksum();
    b.append(&h, &b""[..]).expect("append");
    let bytes = b.into_inner().expect("finish");

    let (_tmp, dest, res) = run(&bytes);
    res.expect("extract");
    assert_eq!(fs::read(dest.join(&gnu_name)).expect("gnu"), b"gnu");
    assert_eq!(fs::read(dest.join(&pax_name)).expect("pax"), b"pax");
    assert!(!dest.join("truncated").exists());
    assert_eq!(fs::read_link(dest.join("longlink")).expect("readlink"), Path::new(&long_target));
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let mut t = TarBuf::new();
    t.dir("a/", 0o755)
        .file("a/keep", b"k", 0o644)
        .file("a/.wh.old", b"", 0o644)
        .file(".wh.gone", b"", 0o644)
        .dir("b/", 0o755)
        .file("b/.wh..wh..opq", b"", 0o644)
        .file("b/new", b"n", 0o644)
        .file(".wh..wh.plnk/123.456", b"aufs", 0o644)
        .file("c/.wh..wh.aufs", b"", 0o644);
    let (_tmp, dest, res) = run(&t.bytes());
    res.expect("extract");
    for wh in ["a/old", "gone"] {
        let m = fs::symlink_metadata(dest.join(wh)).expect(wh);
        assert!(m.file_type().is_char_device(), "{wh} must be a char device");
        assert_eq!(m.rdev(), 0, "{wh} must be 0/0");
    }
    assert!(!dest.join("a/.wh.old").exists());
    assert!(dest.join("a/keep").exists());
    let opaque = xattr::get(dest.join("b"), test_opts().opaque_xattr).expect("getxattr");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert!(!dest.join("b/.wh..wh..opq").exists());
    assert!(dest.join("b/new").exists());
    assert!(!dest.join(".wh..wh.plnk").exists(), "AUFS metadata dirs skipped");
    assert!(!dest.join("c/.wh..wh.aufs").exists());
    let a = xattr::get(dest.join("a"), test_opts().opaque_xattr).expect("getxattr");
    assert!(a.is_none(), "a is not opaque");
}

#[test]
fn whiteout_replaces_an_earlier_entry_of_the_same_layer() {
    let mut t = TarBuf::new();
    t.dir("d/", 0o755).file("d/f", b"1", 0o644).file(".wh.d", b"", 0o644);
    let (_tmp, dest, res) = run(&t.bytes());
    res.expect("extract");
    let m = fs::symlink_metadata(dest.join("d")).expect("stat");
    assert!(m.file_type().is_char_device());
}

#[test]
fn dotdot_components_are_refused() {
    let mut t = TarBuf::new();
    t.file("../evil", b"x", 0o644);
    expect_refused(&t.bytes(), "../evil");
    let mut t = TarBuf::new();
    t.dir("a/", 0o755).file("a/../../outside/evil", b"x", 0o644);
    expect_refused(&t.bytes(), "a/../../outside/evil");
    let mut t = TarBuf::new();
    t.symlink("ok", "x").file("ok/../..", b"x", 0o644);
    expect_refused(&t.bytes(), "ok/../..");
}

#[test]
fn absolute_names_are_made_relative() {
    let mut t = TarBuf::new();
    t.file("/abs/file", b"x", 0o644).file("//etc/y", b"y", 0o644);
    let (tmp, dest, res) = run(&t.bytes());
    res.expect("extract");
    assert_eq!(fs::read(dest.join("abs/file")).expect("read"), b"x");
    assert_eq!(fs::read(dest.join("etc/y")).expect("read"), b"y");
    assert!(tmp.path().join("outside").read_dir().expect("ls").next().is_none());
}

#[test]
fn entries_below_a_symlink_are_refused() {
    // The classic: link -> /etc, then link/passwd. Here the link points at a
    // directory outside the destination that the test owns.
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    let target = outside.to_string_lossy().into_owned();

    let mut t = TarBuf::new();
    t.symlink("link", &target).file("link/passwd", b"root::0:0", 0o644);
    let bytes = t.bytes();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).expect("mkdir");
    let err = extract(&dest, &bytes[..], &test_opts()).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("link/passwd"), "{err}");
    assert!(!outside.join("passwd").exists());

    // Same with /etc itself: nothing may be written there.
    let mut t = TarBuf::new();
    t.symlink("etc", "/etc").file("etc/berth-snapshot-test", b"x", 0o644);
    expect_refused(&t.bytes(), "etc/berth-snapshot-test");
    assert!(!Path::new("/etc/berth-snapshot-test").exists());

    // A symlink pointing inside the layer is not followed either.
    let mut t = TarBuf::new();
    t.dir("sub/", 0o755).symlink("inner", "sub").file("inner/x", b"x", 0o644);
    expect_refused(&t.bytes(), "inner/x");

    // Relative symlink climbing out, and a dir entry below it.
    let mut t = TarBuf::new();
    t.symlink("up", "../outside").dir("up/d/", 0o755);
    expect_refused(&t.bytes(), "up/d/");

    // Whiteouts and opaque markers below a symlink.
    let mut t = TarBuf::new();
    t.symlink("w", "../outside").file("w/.wh.x", b"", 0o644);
    expect_refused(&t.bytes(), "w/.wh.x");
    let mut t = TarBuf::new();
    t.symlink("w", "../outside").file("w/.wh..wh..opq", b"", 0o644);
    expect_refused(&t.bytes(), "w/.wh..wh..opq");

    // A parent that is a regular file.
    let mut t = TarBuf::new();
    t.file("f", b"x", 0o644).file("f/g", b"y", 0o644);
    expect_refused(&t.bytes(), "f/g");
}

#[test]
fn hardlinks_must_stay_inside_the_layer() {
    let mut t = TarBuf::new();
    t.hardlink("hl", "../outside/secret");
    expect_refused(&t.bytes(), "hl");

    // An absolute target is taken relative to the layer root, where it does
    // not exist: refused rather than linking the host's /etc/passwd.
    let mut t = TarBuf::new();
    t.hardlink("hl", "/etc/passwd");
    let tmp = expect_refused(&t.bytes(), "hl");
    assert!(!tmp.path().join("dest/hl").exists());

    let mut t = TarBuf::new();
    t.symlink("link", "/etc").hardlink("hl", "link/passwd");
    expect_refused(&t.bytes(), "hl");

    let mut t = TarBuf::new();
    t.dir("d/", 0o755).hardlink("hl", "d");
    expect_refused(&t.bytes(), "hl");

    let mut t = TarBuf::new();
    t.file("same", b"x", 0o644).hardlink("same", "same");
    expect_refused(&t.bytes(), "same");

    // A hardlink to a symlink links the symlink itself.
    let mut t = TarBuf::new();
    t.symlink("s", "/etc/shadow").hardlink("h", "s");
    let (_tmp, dest, res) = run(&t.bytes());
    res.expect("extract");
    let h = fs::symlink_metadata(dest.join("h")).expect("stat");
    assert!(h.file_type().is_symlink());
}

#[test]
fn replaced_directory_does_not_redirect_deferred_chmod() {
    // containerd CVE-2021-32760: a directory's deferred chmod followed a
    // symlink that replaced it later in the same layer.
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).expect("chmod");
    let mut t = TarBuf::new();
    t.dir("d/", 0o777).dir("d/sub/", 0o777).symlink("d", &outside.to_string_lossy());
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).expect("mkdir");
    extract(&dest, &t.bytes()[..], &test_opts()).expect("extract");
    assert!(fs::symlink_metadata(dest.join("d")).expect("stat").file_type().is_symlink());
    assert_eq!(fs::metadata(&outside).expect("stat").mode() & 0o7777, 0o700, "outside directory untouched");
}

#[test]
fn files_are_never_written_through_existing_symlinks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).expect("mkdir");
    let victim = outside.join("victim");
    fs::write(&victim, b"original").expect("write");
    let mut t = TarBuf::new();
    t.symlink("f", &victim.to_string_lossy())
        .file("f", b"evil", 0o777)
        .symlink("d", &outside.to_string_lossy())
        .dir("d/", 0o777);
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).expect("mkdir");
    extract(&dest, &t.bytes()[..], &test_opts()).expect("extract");
    assert_eq!(fs::read(&victim).expect("read"), b"original");
    assert_eq!(fs::read(dest.join("f")).expect("read"), b"evil");
    assert!(fs::symlink_metadata(dest.join("d")).expect("stat").is_dir());
    assert_ne!(fs::metadata(&outside).expect("stat").mode() & 0o777, 0o777);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let mut t = TarBuf::new();
    t.file("x", b"file", 0o644)
        .dir("x/", 0o700)
        .file("x/in", b"1", 0o644)
        .dir("y/", 0o755)
        .file("y/z", b"z", 0o644)
        .file("y", b"now a file", 0o600)
        .dir("keep/", 0o755)
        .file("keep/a", b"a", 0o644)
        .dir("keep/", 0o711);
    let (_tmp, dest, res) = run(&t.bytes());
    res.expect("extract");
    assert_eq!(fs::read(dest.join("x/in")).expect("read"), b"1");
    assert_eq!(fs::read(dest.join("y")).expect("read"), b"now a file");
    assert_eq!(fs::read(dest.join("keep/a")).expect("read"), b"a");
    assert_eq!(fs::metadata(dest.join("keep")).expect("stat").mode() & 0o7777, 0o711);
}

#[test]
fn truncated_or_corrupt_tars_are_data_loss() {
    let mut t = TarBuf::new();
    t.file("big", &vec![7u8; 10_000], 0o644).file("next", b"n", 0o644);
    let bytes = t.bytes();
    // Cut inside the file data.
    let (_tmp, _d, res) = run(&bytes[..512 + 5000]);
    let err = res.expect_err("truncated data");
    assert_eq!(err.kind(), ErrorKind::DataLoss, "{err}");
    // Cut inside the second header.
    let second = 512 + 10_240;
    let (_tmp, _d, res) = run(&bytes[..second + 100]);
    assert_eq!(res.expect_err("truncated header").kind(), ErrorKind::DataLoss);
    // Cut inside the padding after the file data.
    let (_tmp, _d, res) = run(&bytes[..512 + 10_100]);
    assert_eq!(res.expect_err("truncated padding").kind(), ErrorKind::DataLoss);
    // A header with a bad checksum.
    let mut bad = bytes.clone();
    bad[second + 10] ^= 0x55;
    let (_tmp, _d, res) = run(&bad);
    assert_eq!(res.expect_err("checksum").kind(), ErrorKind::DataLoss);
    // Garbage.
    let (_tmp, _d, res) = run(&[0x42u8; 2048]);
    assert_eq!(res.expect_err("garbage").kind(), ErrorKind::DataLoss);
}

#[test]
fn xattrs_from_pax_records() {
    let mut t = TarBuf::new();
    t.pax(&[
        ("SCHILY.xattr.user.note", b"hi"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.user.overlay.redirect", b"/etc"),
        ("mtime", b"1600000000.5"),
    ])
    .dir("d/", 0o755);
    t.pax(&[("SCHILY.xattr.user.f", b"v")]).file("d/f", b"x", 0o644);
    let (_tmp, dest, res) = run(&t.bytes());
    res.expect("extract");
    let d = dest.join("d");
    assert_eq!(xattr::get(&d, "user.note").expect("get").as_deref(), Some(&b"hi"[..]));
    assert!(xattr::get(&d, "trusted.overlay.opaque").unwrap_or(None).is_none());
    assert!(xattr::get(&d, "user.overlay.redirect").expect("get").is_none());
    assert_eq!(xattr::get(d.join("f"), "user.f").expect("get").as_deref(), Some(&b"v"[..]));
    let m = fs::metadata(&d).expect("stat");
    assert_eq!((m.mtime(), m.mtime_nsec()), (MTIME as i64, 500_000_000));
}

#[test]
fn devices_and_ownership() {
    let mut t = TarBuf::new();
    t.device(EntryType::Char, "dev/null", 1, 3).device(EntryType::Block, "dev/loop9", 7, 9);
    let mut h = raw_header(EntryType::Regular, b"owned", 1, 0o640);
    h.set_uid(1234);
    h.set_gid(5678);
    t.push(h, b"o");
    let (_tmp, dest, res) = run(&t.bytes());
    res.expect("extract");
    let null = fs::symlink_metadata(dest.join("dev/null"));
    let owned = fs::metadata(dest.join("owned")).expect("stat");
    if is_root() {
        let null = null.expect("device created as root");
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), makedev(1, 3));
        assert!(fs::symlink_metadata(dest.join("dev/loop9")).expect("stat").file_type().is_block_device());
        assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    } else {
        println!("not root: device nodes skipped, ownership not applied");
        assert!(null.is_err(), "device nodes are skipped unprivileged");
    }
    assert_eq!(owned.mode() & 0o7777, 0o640);
}

#[test]
fn pax_time_parsing() {
    assert_eq!(parse_pax_time(b"12"), Some(TimeSpec::new(12, 0)));
    assert_eq!(parse_pax_time(b"12.000000001"), Some(TimeSpec::new(12, 1)));
    assert_eq!(parse_pax_time(b"-1.5"), Some(TimeSpec::new(-2, 500_000_000)));
    assert_eq!(parse_pax_time(b"x"), None);
}

#[test]
fn empty_numeric_fields_read_as_zero() {
    // Go's archive/tar reads an all-NUL numeric field as 0; so must we.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::Regular);
    h.set_size(2);
    b.append_data(&mut h, "f", &b"ok"[..]).expect("append");
    let bytes = b.into_inner().expect("finish");
    let (_tmp, dest, res) = run(&bytes);
    res.expect("extract");
    let m = fs::metadata(dest.join("f")).expect("stat");
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0, 0));
}
