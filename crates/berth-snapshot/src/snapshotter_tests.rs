//! Snapshot lifecycle tests; none of them mounts anything.

use super::*;
use crate::extract::tests::{sha256, TarBuf};
use berth_error::ErrorKind;
use std::sync::Arc;

fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut t = TarBuf::new();
    for (name, data) in files {
        t.file(name, data, 0o644);
    }
    t.bytes()
}

fn setup() -> (tempfile::TempDir, Snapshotter) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Snapshotter::new(&tmp.path().join("snap")).expect("new");
    (tmp, s)
}

fn count(dir: &Path) -> usize {
    fs::read_dir(dir).expect("read_dir").count()
}

/// A reader that records how much was read from it.
struct Counting<'a> {
    data: &'a [u8],
    read: Arc<AtomicU64>,
}

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn apply_layer_creates_a_committed_snapshot() {
    let (_tmp, s) = setup();
    let bytes = layer(&[("etc/os-release", b"ID=test\n")]);
    let r = s.apply_layer("sha256:l1", None, &bytes[..], Some(&sha256(&bytes))).expect("apply");
    assert_eq!(r.diff_id, sha256(&bytes));
    assert_eq!(r.size, 8);
    assert!(s.exists("sha256:l1"));
    assert!(!s.exists("sha256:other"));
    assert_eq!(s.parent("sha256:l1").expect("parent"), None);
    let dir = s.snap_dir("sha256:l1");
    assert_eq!(fs::read(dir.join("fs/etc/os-release")).expect("read"), b"ID=test\n");
    let meta = fs::read_to_string(dir.join("meta")).expect("meta");
    assert!(meta.contains("key sha256:l1\n"), "{meta}");
    let link = s.link_path("sha256:l1");
    assert_eq!(fs::canonicalize(&link).expect("link resolves"), dir.join("fs"));
    assert_eq!(count(&s.tmp), 0, "temp dir cleaned up");
    assert_eq!(s.usage("sha256:l1").expect("usage"), 8);
}

#[test]
fn failed_apply_leaves_nothing() {
    let (_tmp, s) = setup();
    let bytes = layer(&[("a", b"a")]);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = s.apply_layer("k", None, &bytes[..], Some(&wrong)).expect_err("mismatch");
    assert_eq!(err.kind(), ErrorKind::DataLoss);
    assert!(!s.exists("k"));

    let mut t = TarBuf::new();
    t.file("ok", b"1", 0o644).file("../escape", b"2", 0o644);
    let err = s.apply_layer("k", None, &t.bytes()[..], None).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("../escape"));

    let err = s.apply_layer("k", None, &bytes[..700], None).expect_err("truncated");
    assert_eq!(err.kind(), ErrorKind::DataLoss);

    let err = s.apply_layer("k", None, &bytes[..], Some("sha256:nothex")).expect_err("bad digest argument");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    assert!(!s.exists("k"));
    assert_eq!(count(&s.snapshots), 0);
    assert_eq!(count(&s.links), 0);
    assert_eq!(count(&s.tmp), 0);
}

#[test]
fn apply_layer_is_idempotent_and_drains_the_stream() {
    let (_tmp, s) = setup();
    let bytes = layer(&[("a", b"abc")]);
    let first = s.apply_layer("k", None, &bytes[..], None).expect("apply");
    let read = Arc::new(AtomicU64::new(0));
    let again =
        s.apply_layer("k", None, Counting { data: &bytes, read: read.clone() }, Some(&first.diff_id)).expect("again");
    assert_eq!(again, first);
    assert_eq!(read.load(Ordering::Relaxed), bytes.len() as u64);
    // Another stream for an existing key is a mismatch with what it holds.
    let other = layer(&[("a", b"xyz")]);
    let err = s.apply_layer("k", None, &other[..], None).expect_err("different content");
    assert_eq!(err.kind(), ErrorKind::DataLoss);
    assert_eq!(count(&s.snapshots), 1);
}

#[test]
fn concurrent_applies_of_one_key() {
    let (_tmp, s) = setup();
    let s = Arc::new(s);
    let files: Vec<(String, Vec<u8>)> = (0..200).map(|i| (format!("d{}/f{i}", i % 7), vec![b'x'; i * 10])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let bytes = Arc::new(layer(&refs));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            let bytes = bytes.clone();
            std::thread::spawn(move || s.apply_layer("sha256:same", None, &bytes[..], None))
        })
        .collect();
    for h in handles {
        let r = h.join().expect("thread").expect("apply");
        assert_eq!(r.diff_id, sha256(&bytes));
    }
    assert!(s.exists("sha256:same"));
    assert_eq!(count(&s.snapshots), 1);
    assert_eq!(count(&s.links), 1);
    assert_eq!(count(&s.tmp), 0);
}

#[test]
fn parents_must_be_committed() {
    let (_tmp, s) = setup();
    let bytes = layer(&[("a", b"a")]);
    let err = s.apply_layer("child", Some("missing"), &bytes[..], None).expect_err("no parent");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    s.prepare("active", None).expect("prepare");
    let err = s.apply_layer("child", Some("active"), &bytes[..], None).expect_err("active parent");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = s.prepare("c2", Some("active")).expect_err("active parent");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = s.prepare("active", None).expect_err("exists");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = s.apply_layer("active", None, &bytes[..], None).expect_err("key taken by an active snapshot");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(s.prepare("", None).expect_err("empty key").kind(), ErrorKind::InvalidArgument);
}

fn chain(s: &Snapshotter, n: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..n {
        let key = format!("sha256:layer{i}");
        let data = format!("{i}");
        let bytes = layer(&[(&format!("f{i}"), data.as_bytes())]);
        s.apply_layer(&key, keys.last().map(String::as_str), &bytes[..], None).expect("apply");
        keys.push(key);
    }
    keys
}

fn option<'a>(m: &'a Mount, name: &str) -> Option<&'a str> {
    m.options.iter().find_map(|o| o.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

#[test]
fn mounts_have_the_documented_shapes() {
    let (_tmp, s) = setup();
    let keys = chain(&s, 3);

    let m = s.prepare("rw-root", None).expect("prepare");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].kind, "bind");
    assert_eq!(m[0].options, vec!["rbind", "rw"]);
    assert_eq!(m[0].source, s.fs_dir("rw-root").to_string_lossy());

    let m = s.prepare("ctr", Some(&keys[2])).expect("prepare");
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].kind.as_str(), m[0].source.as_str()), ("overlay", "overlay"));
    let lower: Vec<&str> = option(&m[0], "lowerdir").expect("lowerdir").split(':').collect();
    let expected: Vec<String> = keys.iter().rev().map(|k| s.link_path(k).to_string_lossy().into_owned()).collect();
    assert_eq!(lower, expected, "topmost parent first");
    for (l, k) in lower.iter().zip(keys.iter().rev()) {
        assert_eq!(fs::canonicalize(l).expect("link"), s.fs_dir(k), "short link resolves to the layer");
        assert_eq!(Path::new(l).file_name().map(|n| n.len()), Some(26));
    }
    assert_eq!(option(&m[0], "upperdir"), Some(s.fs_dir("ctr").to_string_lossy().as_ref()));
    let work = option(&m[0], "workdir").expect("workdir");
    assert!(Path::new(work).is_dir());
    assert_eq!(s.mounts("ctr").expect("mounts"), m);
    assert_eq!(s.parent("ctr").expect("parent").as_deref(), Some(keys[2].as_str()));

    let v = s.view("v1", Some(&keys[0])).expect("view");
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].kind, "bind");
    assert_eq!(v[0].options, vec!["rbind", "ro"]);
    assert_eq!(v[0].source, s.fs_dir(&keys[0]).to_string_lossy());

    let v = s.view("v3", Some(&keys[2])).expect("view");
    assert_eq!(v[0].kind, "overlay");
    assert!(option(&v[0], "upperdir").is_none());
    assert!(option(&v[0], "workdir").is_none());
    assert_eq!(option(&v[0], "lowerdir").map(|l| l.split(':').count()), Some(3));

    let c = s.mounts(&keys[1]).expect("committed mounts");
    assert_eq!(option(&c[0], "lowerdir").map(|l| l.split(':').count()), Some(2));
    assert_eq!(s.mounts("nope").expect_err("missing").kind(), ErrorKind::NotFound);
}

#[test]
fn deep_chains_keep_overlay_options_short() {
    let (_tmp, s) = setup();
    let keys = chain(&s, 100);
    let m = s.prepare("top", Some(&keys[99])).expect("prepare");
    let data = m[0].options.join(",");
    let per_layer = s.links.to_string_lossy().len() + 1 + 26 + 1;
    assert!(data.len() <= 100 * per_layer + 400, "{} bytes of options", data.len());
}

#[test]
fn commit_turns_an_active_snapshot_into_a_parent() {
    let (_tmp, s) = setup();
    let keys = chain(&s, 1);
    s.prepare("build", Some(&keys[0])).expect("prepare");
    fs::write(s.fs_dir("build").join("new"), b"n").expect("write");
    assert_eq!(s.commit("sha256:built", &keys[0]).expect_err("not active").kind(), ErrorKind::InvalidArgument);
    assert_eq!(s.commit(&keys[0], "build").expect_err("name taken").kind(), ErrorKind::Conflict);
    s.commit("sha256:built", "build").expect("commit");
    assert!(s.exists("sha256:built"));
    assert!(s.mounts("build").is_err());
    assert!(!s.snap_dir("sha256:built").join("work").exists());
    assert_eq!(fs::read(s.fs_dir("sha256:built").join("new")).expect("read"), b"n");
    assert_eq!(s.parent("sha256:built").expect("parent").as_deref(), Some(keys[0].as_str()));
    let m = s.prepare("next", Some("sha256:built")).expect("prepare on commit");
    assert_eq!(option(&m[0], "lowerdir").map(|l| l.split(':').count()), Some(2));

    // Reopening sees the same state.
    let root = s.root().to_path_buf();
    drop(s);
    let s = Snapshotter::new(&root).expect("reopen");
    assert!(s.exists("sha256:built"));
    assert_eq!(s.mounts("next").expect("mounts"), m);
}

#[test]
fn remove_refuses_parents_and_cleans_up() {
    let (_tmp, s) = setup();
    let keys = chain(&s, 2);
    s.view("v", Some(&keys[1])).expect("view");
    let err = s.remove(&keys[0]).expect_err("has children");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(s.remove(&keys[1]).expect_err("has view").kind(), ErrorKind::Conflict);
    s.remove("v").expect("remove view");
    s.remove(&keys[1]).expect("remove");
    s.remove(&keys[0]).expect("remove");
    assert_eq!(s.remove(&keys[0]).expect_err("gone").kind(), ErrorKind::NotFound);
    assert_eq!(count(&s.snapshots), 0);
    assert_eq!(count(&s.links), 0);
    assert_eq!(count(&s.tmp), 0);
    assert!(s.list().is_empty());
    assert_eq!(s.parent("v").expect_err("gone").kind(), ErrorKind::NotFound);
}

#[test]
fn usage_counts_own_files_once() {
    let (_tmp, s) = setup();
    let keys = chain(&s, 1);
    s.prepare("c", Some(&keys[0])).expect("prepare");
    let fs_dir = s.fs_dir("c");
    fs::create_dir(fs_dir.join("d")).expect("mkdir");
    fs::write(fs_dir.join("d/a"), vec![0u8; 1000]).expect("write");
    fs::hard_link(fs_dir.join("d/a"), fs_dir.join("b")).expect("link");
    std::os::unix::fs::symlink("d/a", fs_dir.join("s")).expect("symlink");
    assert_eq!(s.usage("c").expect("usage"), 1000 + 3);
}

#[test]
fn new_recovers_from_a_crash() {
    let (_tmp, s) = setup();
    let keys = chain(&s, 1);
    s.prepare("act", Some(&keys[0])).expect("prepare");
    s.prepare("act2", None).expect("prepare");
    let root = s.root().to_path_buf();
    // A half-unpacked layer, a dangling link and a damaged link.
    fs::create_dir_all(s.tmp.join("apply-1-1/fs/usr")).expect("mkdir");
    std::os::unix::fs::symlink("../snapshots/nothing/fs", s.links.join("DANGLING")).expect("symlink");
    fs::remove_file(s.link_path(&keys[0])).expect("rm link");
    // A commit interrupted after the rename ...
    let done = Meta {
        kind: SnapshotKind::Committed,
        key: "committed-name".into(),
        parent: Some(keys[0].clone()),
        diff_id: None,
        size: None,
    };
    fs::write(s.snap_dir("act").join("meta.commit"), done.encode()).expect("write");
    fs::rename(s.snap_dir("act"), s.snap_dir("committed-name")).expect("rename");
    // ... and one interrupted before it.
    let not_done = Meta { key: "other-name".into(), parent: None, ..done.clone() };
    fs::write(s.snap_dir("act2").join("meta.commit"), not_done.encode()).expect("write");
    drop(s);

    let s = Snapshotter::new(&root).expect("reopen");
    assert_eq!(count(&s.tmp), 0);
    assert!(!s.links.join("DANGLING").exists());
    assert!(s.link_path(&keys[0]).exists(), "missing link recreated");
    assert!(s.exists("committed-name"));
    assert!(s.link_path("committed-name").exists());
    assert!(!s.snap_dir("committed-name").join("work").exists());
    assert!(!s.exists("other-name"));
    assert!(s.mounts("act2").is_ok(), "uncommitted snapshot still active");
    assert!(!s.snap_dir("act2").join("meta.commit").exists());
}

#[test]
fn root_with_overlay_separators_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = Snapshotter::new(&tmp.path().join("a:b")).expect_err("colon");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn diff_of_a_writable_snapshot_without_mounting() {
    let (_tmp, s) = setup();
    let m = s.prepare("rw", None).expect("prepare");
    let fs_dir = PathBuf::from(&m[0].source);
    fs::create_dir(fs_dir.join("etc")).expect("mkdir");
    fs::write(fs_dir.join("etc/motd"), b"hi").expect("write");
    nix::sys::stat::mknod(
        &fs_dir.join("etc/removed"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .expect("whiteout");
    let mut out = Vec::new();
    s.diff("rw", &mut out).expect("diff");
    let mut a = tar::Archive::new(&out[..]);
    let names: Vec<String> = a
        .entries()
        .expect("entries")
        .map(|e| String::from_utf8_lossy(&e.expect("entry").path_bytes()).into_owned())
        .collect();
    assert_eq!(names, vec!["etc/", "etc/motd", "etc/.wh.removed"]);

    // The diff applies as a layer again, whiteout included.
    s.apply_layer("from-diff", None, &out[..], Some(&sha256(&out))).expect("apply diff");
    let wh = fs::symlink_metadata(s.fs_dir("from-diff").join("etc/removed")).expect("stat");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()));
    assert_eq!(s.diff("nope", io::sink()).expect_err("missing").kind(), ErrorKind::NotFound);
}

#[test]
fn snapshotter_is_send_and_sync() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Snapshotter>();
    shareable::<Arc<Snapshotter>>();
}
