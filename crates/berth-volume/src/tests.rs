use super::*;

fn store() -> (tempfile::TempDir, VolumeStore) {
    let d = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open_in_memory().unwrap());
    let s = VolumeStore::open(db, &d.path().join("volumes")).unwrap();
    (d, s)
}

fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn none(_: &str) -> Vec<String> {
    Vec::new()
}

#[test]
fn create_named_and_anonymous() {
    let (_d, s) = store();
    let v = s.create(Some("data"), "", &map(&[]), &map(&[("a", "b")])).unwrap();
    assert_eq!(v.driver, "local");
    assert!(v.mountpoint.ends_with("/volumes/data/_data"));
    assert!(Path::new(&v.mountpoint).is_dir());
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.starts_with(r#"{"CreatedAt":""#), "{json}");
    assert!(json.ends_with(&format!(
        r#""Driver":"local","Labels":{{"a":"b"}},"Mountpoint":"{}","Name":"data","Options":{{}},"Scope":"local"}}"#,
        v.mountpoint
    )));
    // Idempotent: same record back, labels not replaced.
    let again = s.create(Some("data"), "local", &map(&[]), &map(&[])).unwrap();
    assert_eq!(again, v);

    let anon = s.create(None, "local", &map(&[]), &map(&[])).unwrap();
    assert_eq!(anon.name.len(), 64);
    assert!(anon.name.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(anon.labels.get(ANONYMOUS_LABEL).map(String::as_str), Some(""));
    assert_eq!(s.get(&anon.name).unwrap(), anon);

    let e = s.get("nope").unwrap_err();
    assert_eq!(e.to_string(), "get nope: no such volume");
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn names_and_options_are_validated_with_docker_texts() {
    let (_d, s) = store();
    let e = s.create(Some("a"), "", &map(&[]), &map(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "create a: volume name is too short, names should be at least two alphanumeric characters"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = s.create(Some("a/b"), "", &map(&[]), &map(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"create a/b: "a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path"#
    );
    assert!(s.create(Some(".hidden"), "", &map(&[]), &map(&[])).is_err());
    assert!(s.create(Some("ok_1.2-3"), "", &map(&[]), &map(&[])).is_ok());
    let e = s.create(Some("x1"), "", &map(&[("bogus", "1")]), &map(&[])).unwrap_err();
    assert_eq!(e.to_string(), r#"create x1: invalid option: "bogus""#);
    let e = s.create(Some("x1"), "nfs-plugin", &map(&[]), &map(&[])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(s.get("x1").is_err());
    let t = s.create(Some("tmp"), "", &map(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]), &map(&[]));
    assert_eq!(t.unwrap().options.get("o").map(String::as_str), Some("size=1m"));
}

#[test]
fn list_filters() {
    let (_d, s) = store();
    s.create(Some("web-data"), "", &map(&[]), &map(&[("env", "prod"), ("tier", "web")])).unwrap();
    s.create(Some("db-data"), "", &map(&[]), &map(&[("env", "dev")])).unwrap();
    let anon = s.create(None, "", &map(&[]), &map(&[])).unwrap();
    let used = |n: &str| if n == "db-data" { vec!["c1".to_string()] } else { Vec::new() };
    let names = |f: Filters| s.list(&f, &used).unwrap().into_iter().map(|v| v.name).collect::<Vec<_>>();
    assert_eq!(names(Filters::default()).len(), 3);
    assert_eq!(names(Filters { names: vec!["data".into()], ..Default::default() }), ["db-data", "web-data"]);
    assert_eq!(names(Filters { labels: vec!["env=prod".into()], ..Default::default() }), ["web-data"]);
    assert_eq!(names(Filters { labels: vec!["env".into(), "tier".into()], ..Default::default() }), ["web-data"]);
    let mut dangling = names(Filters { dangling: Some(true), ..Default::default() });
    dangling.sort();
    let mut expect = vec![anon.name.clone(), "web-data".to_string()];
    expect.sort();
    assert_eq!(dangling, expect);
    assert_eq!(names(Filters { dangling: Some(false), ..Default::default() }), ["db-data"]);
    assert!(names(Filters { drivers: vec!["other".into()], ..Default::default() }).is_empty());

    let fm: BTreeMap<String, Vec<String>> =
        [("dangling".to_string(), vec!["1".to_string()]), ("label".to_string(), vec!["a=b".to_string()])].into();
    let f = Filters::from_map(&fm).unwrap();
    assert_eq!(f.dangling, Some(true));
    assert_eq!(f.labels, ["a=b"]);
    let bad: BTreeMap<String, Vec<String>> = [("color".to_string(), vec!["x".to_string()])].into();
    assert_eq!(Filters::from_map(&bad).unwrap_err().to_string(), "invalid filter 'color'");
    let bad: BTreeMap<String, Vec<String>> = [("dangling".to_string(), vec!["maybe".to_string()])].into();
    assert!(Filters::from_map(&bad).is_err());
}

#[test]
fn remove_in_use_conflicts_even_with_force() {
    let (_d, s) = store();
    let v = s.create(Some("vol"), "", &map(&[]), &map(&[])).unwrap();
    fs::write(Path::new(&v.mountpoint).join("f"), "x").unwrap();
    let used = |_: &str| vec!["abc".to_string(), "def".to_string()];
    let e = s.remove("vol", true, &used).unwrap_err();
    assert_eq!(e.to_string(), "remove vol: volume is in use - [abc def]");
    assert_eq!(e.kind(), ErrorKind::Conflict);
    // A mount by a container counts as a reference too.
    s.mount("vol", "c9").unwrap();
    assert_eq!(s.remove("vol", false, &none).unwrap_err().to_string(), "remove vol: volume is in use - [c9]");
    s.unmount("vol", "c9").unwrap();
    s.remove("vol", false, &none).unwrap();
    assert!(!Path::new(&v.mountpoint).exists());
    assert_eq!(s.remove("vol", false, &none).unwrap_err().kind(), ErrorKind::NotFound);
    s.remove("vol", true, &none).unwrap();
}

#[test]
fn prune_anonymous_only_unless_all() {
    let (_d, s) = store();
    let named = s.create(Some("keep"), "", &map(&[]), &map(&[])).unwrap();
    let a1 = s.create(None, "", &map(&[]), &map(&[])).unwrap();
    let a2 = s.create(None, "", &map(&[]), &map(&[("x", "y")])).unwrap();
    fs::write(Path::new(&a1.mountpoint).join("f"), vec![0u8; 1000]).unwrap();
    fs::write(Path::new(&named.mountpoint).join("f"), vec![0u8; 10]).unwrap();
    assert_eq!(s.usage(&a1.name).unwrap(), 1000);
    let used = |n: &str| if n == a2.name { vec!["c".to_string()] } else { Vec::new() };
    let (gone, bytes) = s.prune(false, &used, &Filters::default()).unwrap();
    assert_eq!(gone, vec![a1.name.clone()]);
    assert_eq!(bytes, 1000);
    let (gone, _) = s.prune(false, &none, &Filters { labels_not: vec!["x".into()], ..Default::default() }).unwrap();
    assert!(gone.is_empty());
    let (mut gone, bytes) = s.prune(true, &none, &Filters::default()).unwrap();
    gone.sort();
    let mut expect = vec![a2.name.clone(), "keep".to_string()];
    expect.sort();
    assert_eq!(gone, expect);
    assert_eq!(bytes, 10);
    assert!(s.list(&Filters::default(), &none).unwrap().is_empty());
}

#[test]
fn usage_data_and_reopen() {
    let d = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&d.path().join("meta.db")).unwrap());
    let root = d.path().join("volumes");
    {
        let s = VolumeStore::open(db.clone(), &root).unwrap();
        let v = s.create(Some("v1"), "", &map(&[]), &map(&[])).unwrap();
        fs::write(Path::new(&v.mountpoint).join("a"), "12345").unwrap();
        fs::hard_link(Path::new(&v.mountpoint).join("a"), Path::new(&v.mountpoint).join("b")).unwrap();
        let u = s.get_with_usage("v1", &|_| vec!["c1".into()]).unwrap();
        assert_eq!(u.usage_data, Some(UsageData { size: 5, ref_count: 1 }));
        assert!(serde_json::to_string(&u).unwrap().ends_with(r#""UsageData":{"Size":5,"RefCount":1}}"#));
    }
    let s = VolumeStore::open(db, &root).unwrap();
    assert_eq!(s.get("v1").unwrap().name, "v1");
}

#[test]
fn copy_up_only_into_empty_volumes() {
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("img");
    let vol = d.path().join("vol");
    fs::create_dir_all(img.join("sub")).unwrap();
    fs::write(img.join("sub/f"), "image").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", img.join("pw")).unwrap();
    fs::set_permissions(&img, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir_all(&vol).unwrap();
    copy_up(&img, &vol).unwrap();
    assert_eq!(fs::read_to_string(vol.join("sub/f")).unwrap(), "image");
    assert_eq!(fs::read_link(vol.join("pw")).unwrap(), Path::new("/etc/passwd"));
    assert_eq!(fs::metadata(&vol).unwrap().mode() & 0o7777, 0o1777);
    // Not empty any more: a second copy-up leaves user data alone.
    fs::write(vol.join("sub/f"), "user").unwrap();
    fs::write(img.join("new"), "n").unwrap();
    copy_up(&img, &vol).unwrap();
    assert_eq!(fs::read_to_string(vol.join("sub/f")).unwrap(), "user");
    assert!(!vol.join("new").exists());
    // A missing or non-directory source is nothing to copy.
    let empty = d.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    copy_up(&d.path().join("missing"), &empty).unwrap();
    copy_up(&img.join("pw"), &empty).unwrap();
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
}
