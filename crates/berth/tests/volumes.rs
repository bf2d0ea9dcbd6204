//! Root integration tests of volumes and mounts: the volume API and CLI
//! (berth and the real docker CLI), `-v`/`--mount`/`--tmpfs`/`--volumes-from`
//! /`--read-only` on run, copy-up, reference counting, `rm -v`, prune with
//! reclaimed space, events, and Docker's errors for bad specs.

mod common;

use common::*;
use serde_json::Value;

fn volume_names(d: &Daemon) -> Vec<String> {
    let (st, v) = d.http_json("GET", "/volumes", None);
    assert_eq!(st, 200);
    let mut n: Vec<String> =
        v["Volumes"].as_array().unwrap().iter().map(|v| v["Name"].as_str().unwrap().to_string()).collect();
    n.sort();
    n
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn du(p: &std::path::Path) -> u64 {
    let out = std::process::Command::new("du").arg("-sb").arg(p).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("0").parse().unwrap_or(0)
}

#[test]
fn volume_api_and_cli_lifecycle() {
    let Some(d) = daemon_with_busybox() else { return };
    assert_eq!(d.ok(&["volume", "create", "v1"]).trim(), "v1");
    assert_eq!(docker_ok(&d, &["volume", "create", "--label", "team=a", "v2"]).trim(), "v2");
    // Creating an existing name is idempotent, as in Docker.
    assert_eq!(docker_ok(&d, &["volume", "create", "v1"]).trim(), "v1");
    let anon = d.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64);

    let ls = docker_ok(&d, &["volume", "ls"]);
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains("local     v1\n") && ls.contains("local     v2\n"), "{ls}");
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q", "--filter", "label=team=a"]), "v2\n");
    assert_eq!(d.ok(&["volume", "ls", "-q", "--filter", "name=v1"]), "v1\n");
    assert_eq!(
        d.ok(&["volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}", "-f", "name=v2"]),
        "v2 local team=a\n"
    );
    let dangling = docker_ok(&d, &["volume", "ls", "-q", "-f", "dangling=true"]);
    assert_eq!(dangling.lines().count(), 3, "{dangling}");

    let v: Value = serde_json::from_str(&docker_ok(&d, &["volume", "inspect", "v2"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "v2");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["team"], "a");
    let mp = v["Mountpoint"].as_str().unwrap();
    assert_eq!(std::path::Path::new(mp), d.root.join("volumes/v2/_data"));
    assert!(std::path::Path::new(mp).is_dir());
    assert_eq!(docker_ok(&d, &["volume", "inspect", "-f", "{{.Name}}", "v1"]), "v1\n");

    // Docker's texts for bad input.
    let e = docker_fails(&d, &["volume", "inspect", "nope"]);
    assert!(e.contains("get nope: no such volume"), "{e}");
    let e = docker_fails(&d, &["volume", "create", "-o", "foo=bar", "vx"]);
    assert!(e.contains(r#"invalid option: "foo""#), "{e}");
    let e = d.fails(&["volume", "create", "a"]);
    assert!(e.contains("volume name is too short"), "{e}");
    let e = docker_fails(&d, &["volume", "create", "-d", "nfsplugin", "vy"]);
    assert!(e.contains("plugin \"nfsplugin\" not found"), "{e}");
    assert!(!volume_names(&d).iter().any(|n| n == "vx" || n == "vy"));

    assert_eq!(docker_ok(&d, &["volume", "rm", "v1", anon.as_str()]), format!("v1\n{anon}\n"));
    let e = docker_fails(&d, &["volume", "rm", "v1"]);
    assert!(e.contains("no such volume"), "{e}");
    docker_ok(&d, &["volume", "rm", "-f", "v1"]);
    assert!(!d.root.join("volumes/v1").exists());
    assert_eq!(volume_names(&d), vec!["v2"]);

    // Raw API shapes.
    let (st, v) = d.http_json("POST", "/volumes/create", Some(br#"{"Name":"raw","Labels":{"x":"1"}}"#));
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["Labels"]["x"], "1");
    let (st, _) = d.http_json("DELETE", "/volumes/raw", None);
    assert_eq!(st, 204);
    let (st, v) = d.http_json("GET", "/volumes/raw", None);
    assert_eq!((st, v["message"].as_str()), (404, Some("get raw: no such volume")));
}

#[test]
fn volume_in_use_refcount_rm_v_and_prune() {
    let Some(d) = daemon_with_busybox() else { return };
    let id = docker_ok(&d, &["create", "--name", "user", "-v", "keep:/data", "-v", "/anon", "busybox", "true"])
        .trim()
        .to_string();
    let anon = docker_ok(
        &d,
        &["inspect", "-f", "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}", "user"],
    )
    .trim()
    .to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    // Referenced by a container that exists (not even running): in use.
    let e = docker_fails(&d, &["volume", "rm", "keep"]);
    assert!(e.contains(&format!("remove keep: volume is in use - [{id}]")), "{e}");
    let e = docker_fails(&d, &["volume", "rm", "-f", "keep"]);
    assert!(e.contains("volume is in use"), "{e}");
    let (st, v) = d.http_json("DELETE", "/volumes/keep", None);
    assert_eq!(st, 409, "{v}");
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q", "-f", "dangling=false"]).lines().count(), 2);
    assert_eq!(docker_ok(&d, &["ps", "-a", "-q", "--no-trunc", "-f", "volume=keep"]).trim(), id);
    assert_eq!(docker_ok(&d, &["ps", "-a", "-q", "--no-trunc", "-f", "volume=/anon"]).trim(), id);
    assert_eq!(docker_ok(&d, &["ps", "-a", "-q", "-f", "volume=other"]).trim(), "");
    // Prune leaves referenced volumes alone.
    let out = docker_ok(&d, &["volume", "prune", "-af"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");

    // `rm -v`: the anonymous volume goes, the named one stays.
    docker_ok(&d, &["rm", "-v", "user"]);
    assert_eq!(volume_names(&d), vec!["keep"]);

    // `--rm` removes anonymous volumes too.
    docker_ok(&d, &["run", "--rm", "-v", "/scratch", "-v", "keep:/k", "busybox", "sh", "-c", "echo x > /k/f"]);
    assert_eq!(volume_names(&d), vec!["keep"]);

    // Prune without -a removes only anonymous volumes (Docker 23+), and
    // really frees the space.
    docker_ok(
        &d,
        &[
            "run",
            "--name",
            "filler",
            "-v",
            "/fill",
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/fill/z",
            "bs=1024",
            "count=512",
        ],
    );
    let anon = docker_ok(&d, &["inspect", "-f", "{{(index .Mounts 0).Name}}", "filler"]).trim().to_string();
    docker_ok(&d, &["rm", "filler"]);
    let dir = d.root.join("volumes").join(&anon);
    assert!(du(&dir) >= 512 * 1024);
    let out = docker_ok(&d, &["volume", "prune", "-f"]);
    assert_eq!(out, format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 524.3kB\n"));
    assert!(!dir.exists());
    assert_eq!(volume_names(&d), vec!["keep"]);
    // Label filters and -a for named ones (berth CLI).
    docker_ok(&d, &["volume", "create", "--label", "tmp=1", "labelled"]);
    let out = d.ok(&["volume", "prune", "-a", "-f", "--filter", "label=tmp"]);
    assert!(out.starts_with("Deleted Volumes:\nlabelled\n"), "{out}");
    let out = d.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(out, "Deleted Volumes:\nkeep\n\nTotal reclaimed space: 2B\n");
    assert!(volume_names(&d).is_empty());
}

#[test]
fn mounts_on_run_copy_up_binds_tmpfs_read_only() {
    let Some(d) = daemon_with_busybox() else { return };
    // Copy-up: an empty named volume gets the image's files at first use.
    let out = docker_ok(&d, &["run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd"]);
    assert!(out.contains("root:x:0:0"), "{out}");
    assert!(d.root.join("volumes/etcvol/_data/passwd").is_file());
    // nocopy: stays empty.
    let out = docker_ok(&d, &["run", "--rm", "-v", "empty:/etc:nocopy", "busybox", "ls", "-A", "/etc"]);
    assert_eq!(out, "");
    let out = docker_ok(
        &d,
        &["run", "--rm", "--mount", "type=volume,src=empty2,dst=/etc,volume-nocopy", "busybox", "ls", "-A", "/etc"],
    );
    assert_eq!(out, "");
    // A volume that has content is not overwritten.
    docker_ok(&d, &["run", "--rm", "-v", "etcvol:/data", "busybox", "sh", "-c", "echo mine > /data/passwd"]);
    assert_eq!(docker_ok(&d, &["run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd"]), "mine\n");

    // Binds: a missing host path is created for -v, it hides the image's
    // content, :ro is enforced.
    let host = d.dir.path().join("host/dir");
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/bin2", host.display()),
            "busybox",
            "sh",
            "-c",
            "ls -A /bin2; echo w > /bin2/f",
        ],
    );
    assert_eq!(out, "");
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "w\n");
    let (code, _, err) = docker(
        &d,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/etc:ro", host.display()),
            "busybox",
            "sh",
            "-c",
            "ls /etc; echo x > /etc/f",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/m,readonly", host.display()),
        "busybox",
        "cat",
        "/m/f",
    ]);
    assert_eq!(out, "w\n");
    // --mount refuses a missing bind source, with Docker's text, and
    // creates nothing.
    let before = docker_ok(&d, &["ps", "-aq"]);
    let e = docker_fails(&d, &["run", "--rm", "--mount", "type=bind,src=/nonexistent/x,dst=/x", "busybox", "true"]);
    assert!(
        e.contains(r#"invalid mount config for type "bind": bind source path does not exist: /nonexistent/x"#),
        "{e}"
    );
    assert_eq!(docker_ok(&d, &["ps", "-aq"]), before);

    // tmpfs: --tmpfs and --mount type=tmpfs with size and mode.
    let out = docker_ok(
        &d,
        &[
            "run",
            "--rm",
            "--tmpfs",
            "/t:size=1m",
            "--mount",
            "type=tmpfs,dst=/u,tmpfs-size=2m,tmpfs-mode=1770",
            "busybox",
            "sh",
            "-c",
            "grep -E ' /(t|u) ' /proc/mounts; stat -c %a /u",
        ],
    );
    assert!(out.contains("tmpfs /t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k"), "{out}");
    assert!(out.contains("/u tmpfs") && out.contains("size=2048k") && out.ends_with("1770\n"), "{out}");

    // --read-only: the root is read-only, volumes and tmpfs stay writable.
    let (code, _, err) = docker(
        &d,
        &[
            "run",
            "--rm",
            "--read-only",
            "-v",
            "rw:/rw",
            "busybox",
            "sh",
            "-c",
            "echo ok > /rw/f && cat /rw/f && touch /x",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");

    // --volumes-from shares the mounts (with :ro).
    docker_ok(&d, &["create", "--name", "src", "-v", "shared:/shared", "-v", "/anon2", "busybox", "true"]);
    docker_ok(&d, &["run", "--rm", "-v", "shared:/s", "busybox", "sh", "-c", "echo from-src > /s/f"]);
    assert_eq!(docker_ok(&d, &["run", "--rm", "--volumes-from", "src", "busybox", "cat", "/shared/f"]), "from-src\n");
    let (code, _, err) = docker(&d, &["run", "--rm", "--volumes-from", "src:ro", "busybox", "touch", "/shared/g"]);
    assert_ne!(code, 0, "{err}");
    let e = docker_fails(&d, &["run", "--rm", "--volumes-from", "ghost", "busybox", "true"]);
    assert!(e.contains("No such container: ghost"), "{e}");

    // Symlinked mount targets stay inside the rootfs (no escape to the host).
    let marker = d.dir.path().join("escape-target");
    std::fs::create_dir_all(&marker).unwrap();
    // An image whose /lnk is a link to a host-looking absolute path.
    docker_ok(&d, &["run", "--name", "mklink", "busybox", "ln", "-s", marker.to_str().unwrap(), "/lnk"]);
    docker_ok(&d, &["commit", "mklink", "withlink:1"]);
    docker_ok(&d, &["run", "--rm", "-v", "lv2:/lnk/sub", "withlink:1", "true"]);
    assert!(std::fs::read_dir(&marker).unwrap().next().is_none(), "a mount point was created on the host");
}

#[test]
fn inspect_mounts_image_volumes_and_bad_specs() {
    let Some(d) = daemon_with_busybox() else { return };
    // An image VOLUME gets an anonymous volume filled from the image.
    docker_ok(&d, &["run", "--name", "base", "busybox", "sh", "-c", "mkdir /vol && echo seed > /vol/s"]);
    docker_ok(&d, &["commit", "-c", "VOLUME /vol", "base", "withvol:1"]);
    let out = docker_ok(&d, &["run", "--name", "uses", "withvol:1", "cat", "/vol/s"]);
    assert_eq!(out, "seed\n");
    let mounts: Value = serde_json::from_str(&docker_ok(&d, &["inspect", "-f", "{{json .Mounts}}", "uses"])).unwrap();
    let m = &mounts[0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Destination"], "/vol");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["RW"], true);
    assert_eq!(m["Name"].as_str().unwrap().len(), 64);
    let vol: Value = serde_json::from_str(&docker_ok(&d, &["volume", "inspect", m["Name"].as_str().unwrap()])).unwrap();
    assert!(vol[0]["Labels"].as_object().unwrap().contains_key("com.docker.volume.anonymous"));

    let host = d.dir.path().join("h");
    std::fs::create_dir_all(&host).unwrap();
    docker_ok(
        &d,
        &[
            "create",
            "--name",
            "shape",
            "-v",
            "nv:/n:ro",
            "-v",
            &format!("{}:/h", host.display()),
            "--mount",
            "type=tmpfs,dst=/tm",
            "--tmpfs",
            "/hidden",
            "busybox",
        ],
    );
    let mounts: Value = serde_json::from_str(&docker_ok(&d, &["inspect", "-f", "{{json .Mounts}}", "shape"])).unwrap();
    let by_dest = |p: &str| mounts.as_array().unwrap().iter().find(|m| m["Destination"] == p).cloned();
    let n = by_dest("/n").expect("/n");
    assert_eq!((n["Mode"].as_str(), n["RW"].as_bool(), n["Name"].as_str()), (Some("ro"), Some(false), Some("nv")));
    let h = by_dest("/h").expect("/h");
    assert_eq!(
        (h["Type"].as_str(), h["Propagation"].as_str(), h["Mode"].as_str()),
        (Some("bind"), Some("rprivate"), Some(""))
    );
    assert_eq!(by_dest("/tm").expect("/tm")["Type"], "tmpfs");
    assert!(by_dest("/hidden").is_none(), "--tmpfs mounts are not listed, as in Docker");
    let (_, ps) = d.http_json("GET", "/containers/json?all=1&filters=%7B%22name%22%3A%5B%22shape%22%5D%7D", None);
    assert_eq!(ps[0]["Mounts"].as_array().unwrap().len(), 3);

    // Bad specs: Docker's texts, and nothing created.
    let vols = volume_names(&d);
    let cs = docker_ok(&d, &["ps", "-aq"]);
    let e = docker_fails(&d, &["create", "-v", "foo:bar", "busybox"]);
    assert!(
        e.contains("invalid volume specification: 'foo:bar': invalid mount config for type \"volume\": invalid mount path: 'bar' mount path must be absolute"),
        "{e}"
    );
    let e = docker_fails(&d, &["create", "-v", "newvol:/x", "-v", "other:/x", "busybox"]);
    assert!(e.contains("Duplicate mount point: /x"), "{e}");
    let raw = br#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"nfs","Target":"/x"}]}}"#;
    let (st, v) = d.http_json("POST", "/containers/create", Some(raw));
    assert_eq!((st, v["message"].as_str()), (400, Some("invalid mount config for type \"nfs\": mount type unknown")));
    let raw = br#"{"Image":"busybox","HostConfig":{"Binds":["ok1:/a","bad:rel"]}}"#;
    let (st, _) = d.http_json("POST", "/containers/create", Some(raw));
    assert_eq!(st, 400);
    let raw = br#"{"Image":"busybox","HostConfig":{"Binds":["a:/b:xyz"]}}"#;
    let (st, v) = d.http_json("POST", "/containers/create", Some(raw));
    assert_eq!((st, v["message"].as_str()), (400, Some("invalid mode: xyz")));
    assert_eq!(volume_names(&d), vols, "a failed create left volumes behind");
    assert_eq!(docker_ok(&d, &["ps", "-aq"]), cs);
}

#[test]
fn volume_events() {
    let Some(d) = daemon_with_busybox() else { return };
    let since = now_unix() - 1;
    docker_ok(&d, &["volume", "create", "ev"]);
    docker_ok(&d, &["run", "--rm", "-v", "ev:/e", "busybox", "true"]);
    docker_ok(&d, &["volume", "rm", "ev"]);
    let until = now_unix() + 1;
    let out = docker_ok(
        &d,
        &[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, vec!["create ev", "mount ev", "unmount ev", "destroy ev"], "{out}");
}
