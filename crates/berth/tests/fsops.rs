//! Root integration tests of filesystem operations on containers: `cp` both
//! ways (docker CLI, berth CLI, raw archive API) on running and stopped
//! containers and into volumes, hostile archives, read-only targets,
//! `diff`, `export`, `commit`, `system df` and the prunes.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        {
            // Names written raw: hostile ones (`..`, absolute) on purpose.
            let f = &mut h.as_ustar_mut().unwrap().name;
            f[..name.len()].copy_from_slice(name.as_bytes());
        }
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        if *kind == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries().unwrap().map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned()).collect()
}

#[test]
fn cp_both_ways_running_and_stopped() {
    let Some(d) = daemon_with_busybox() else { return };
    let work = d.dir.path().join("work");
    std::fs::create_dir_all(work.join("dir/sub")).unwrap();
    std::fs::write(work.join("file.txt"), "hello\n").unwrap();
    std::fs::write(work.join("dir/sub/a"), "a\n").unwrap();
    let w = |p: &str| work.join(p).display().to_string();

    docker_ok(&d, &["run", "-d", "--name", "run1", "-v", "data:/data", "busybox", "sleep", "1000"]);
    // Into a directory, to a new name, a directory as a new name, into a volume.
    docker_ok(&d, &["cp", &w("file.txt"), "run1:/tmp/"]);
    docker_ok(&d, &["cp", &w("file.txt"), "run1:/renamed"]);
    docker_ok(&d, &["cp", &w("dir"), "run1:/newdir"]);
    d.ok(&["cp", &w("file.txt"), "run1:/data/in-volume"]);
    let out = docker_ok(&d, &["exec", "run1", "cat", "/tmp/file.txt", "/renamed", "/newdir/sub/a", "/data/in-volume"]);
    assert_eq!(out, "hello\nhello\na\nhello\n");
    // The volume holds it on the host.
    assert_eq!(std::fs::read_to_string(d.root.join("volumes/data/_data/in-volume")).unwrap(), "hello\n");
    // Owned by the container's root, as Docker does without -a.
    assert_eq!(docker_ok(&d, &["exec", "run1", "stat", "-c", "%u:%g", "/renamed"]), "0:0\n");

    // Out again: a file, a directory, `dir/.` contents, and a tar on stdout.
    let out = d.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = |p: &str| out.join(p).display().to_string();
    docker_ok(&d, &["cp", "run1:/etc/passwd", &o("pw")]);
    assert!(std::fs::read_to_string(out.join("pw")).unwrap().starts_with("root:"));
    docker_ok(&d, &["cp", "run1:/newdir", &o("")]);
    assert_eq!(std::fs::read_to_string(out.join("newdir/sub/a")).unwrap(), "a\n");
    docker_ok(&d, &["cp", "run1:/newdir/.", &o("contents")]);
    assert_eq!(std::fs::read_to_string(out.join("contents/sub/a")).unwrap(), "a\n");
    d.ok(&["cp", "run1:/data", &o("vol")]);
    assert_eq!(std::fs::read_to_string(out.join("vol/in-volume")).unwrap(), "hello\n");
    let tarball = d.docker(&["cp", "run1:/newdir", "-"]).unwrap();
    assert!(tarball.status.success());
    assert_eq!(tar_names(&tarball.stdout), vec!["newdir/", "newdir/sub/", "newdir/sub/a"]);
    let tarball = d.berth(&["cp", "run1:/newdir/.", "-"]);
    assert_eq!(tar_names(&tarball.stdout), vec!["./", "./sub/", "./sub/a"]);

    // Raw API: HEAD with the stat header (base64 JSON, Go FileMode bits).
    let (st, head, _) = d.http("HEAD", "/containers/run1/archive?path=/newdir", None);
    assert_eq!(st, 200);
    let line = head.lines().find(|l| l.to_ascii_lowercase().starts_with("x-docker-container-path-stat:")).unwrap();
    let b64 = line.split_once(':').unwrap().1.trim();
    let json = String::from_utf8(decode_b64(b64)).unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["name"], "newdir");
    assert_eq!(v["mode"].as_u64().unwrap(), (1u64 << 31) | 0o755);
    let (st, _, _) = d.http("HEAD", "/containers/run1/archive?path=/nope", None);
    assert_eq!(st, 404);

    // A stopped (never started) container: its rootfs and volumes are mounted
    // for the copy and unmounted after.
    docker_ok(&d, &["create", "--name", "cold", "-v", "coldvol:/cv", "busybox", "true"]);
    docker_ok(&d, &["cp", &w("file.txt"), "cold:/etc/x"]);
    docker_ok(&d, &["cp", &w("file.txt"), "cold:/cv/y"]);
    docker_ok(&d, &["cp", "cold:/etc/x", &o("cold-x")]);
    assert_eq!(std::fs::read_to_string(out.join("cold-x")).unwrap(), "hello\n");
    assert_eq!(std::fs::read_to_string(d.root.join("volumes/coldvol/_data/y")).unwrap(), "hello\n");
    let id = docker_ok(&d, &["inspect", "-f", "{{.Id}}", "cold"]).trim().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "cold container's rootfs left mounted");
    assert_eq!(docker_ok(&d, &["start", "-a", "cold"]), "");
    assert_eq!(docker_ok(&d, &["run", "--rm", "--volumes-from", "cold", "busybox", "cat", "/cv/y"]), "hello\n");

    // stdin tar into a directory (berth CLI).
    let t = tar_of(&[("fromstdin", tar::EntryType::Regular, b"piped\n", None)]);
    let tf = d.dir.path().join("in.tar");
    std::fs::write(&tf, &t).unwrap();
    let o = d.berth_stdin(&["cp", "-", "run1:/tmp"], Some(&tf));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(docker_ok(&d, &["exec", "run1", "cat", "/tmp/fromstdin"]), "piped\n");
}

fn decode_b64(s: &str) -> Vec<u8> {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|x| *x == c).unwrap() as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn cp_errors_read_only_and_hostile_archives() {
    let Some(d) = daemon_with_busybox() else { return };
    let f = d.dir.path().join("f");
    std::fs::write(&f, "x").unwrap();
    let fs = f.display().to_string();
    docker_ok(&d, &["run", "-d", "--name", "cc", "-v", "rov:/ro:ro", "busybox", "sleep", "1000"]);
    docker_ok(&d, &["run", "-d", "--name", "rofs", "--read-only", "-v", "rwv:/rw", "busybox", "sleep", "1000"]);

    let e = docker_fails(&d, &["cp", "cc:/nope", d.dir.path().to_str().unwrap()]);
    assert!(e.contains("Could not find the file /nope in container cc"), "{e}");
    let e = docker_fails(&d, &["cp", &fs, "cc:/missing/parent/f"]);
    assert!(e.contains("Could not find the file /missing/parent in container cc"), "{e}");
    let e = d.fails(&["cp", &fs, "cc:/missing/parent/f"]);
    assert!(e.contains("Could not find the file /missing/parent in container cc"), "{e}");
    let e = docker_fails(&d, &["cp", &fs, "cc:/ro/f"]);
    assert!(e.contains("mounted volume is marked read-only"), "{e}");
    let e = docker_fails(&d, &["cp", &fs, "rofs:/f"]);
    assert!(e.contains("container rootfs is marked read-only"), "{e}");
    docker_ok(&d, &["cp", &fs, "rofs:/rw/f"]);
    let e = docker_fails(&d, &["cp", &fs, "ghost:/f"]);
    assert!(e.contains("No such container: ghost"), "{e}");

    // Hostile archives write nothing outside the target directory.
    let outside = d.dir.path().join("pwned");
    let hostile: Vec<Vec<u8>> = vec![
        tar_of(&[("../../../../../../../../tmp/berth-cp-escape", tar::EntryType::Regular, b"x", None)]),
        tar_of(&[
            ("evil", tar::EntryType::Symlink, b"", Some(outside.to_str().unwrap())),
            ("evil/file", tar::EntryType::Regular, b"x", None),
        ]),
        tar_of(&[("hl", tar::EntryType::Link, b"", Some("/etc/shadow"))]),
    ];
    for t in &hostile {
        let (st, _, body) = d.http("PUT", "/containers/cc/archive?path=/tmp", Some(t));
        assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    }
    assert!(!outside.exists());
    assert!(!Path::new("/tmp/berth-cp-escape").exists());
    assert_eq!(docker_ok(&d, &["exec", "cc", "ls", "-A", "/tmp"]), "", "a refused archive left entries");
    // Absolute names land inside the destination (as Docker and GNU tar do).
    let t = tar_of(&[("/abs-name", tar::EntryType::Regular, b"in", None)]);
    let (st, _, _) = d.http("PUT", "/containers/cc/archive?path=/tmp", Some(&t));
    assert_eq!(st, 200);
    assert_eq!(docker_ok(&d, &["exec", "cc", "cat", "/tmp/abs-name"]), "in");
    // A device node only appears inside the container.
    let t = tar_of(&[("nulldev", tar::EntryType::Char, b"", None)]);
    let (st, _, _) = d.http("PUT", "/containers/cc/archive?path=/tmp", Some(&t));
    assert_eq!(st, 200);
    assert_eq!(docker_ok(&d, &["exec", "cc", "stat", "-c", "%F", "/tmp/nulldev"]), "character special file\n");

    // Symlinks in the container resolve inside it, never to the host.
    let host_dir = d.dir.path().join("hostdir");
    std::fs::create_dir_all(&host_dir).unwrap();
    docker_ok(&d, &["exec", "cc", "ln", "-s", host_dir.to_str().unwrap(), "/link"]);
    docker_ok(&d, &["exec", "cc", "ln", "-s", "/", "/rootlink"]);
    let e = docker_fails(&d, &["cp", &fs, "cc:/link/f"]);
    assert!(e.contains("Could not find the file"), "{e}");
    assert!(std::fs::read_dir(&host_dir).unwrap().next().is_none(), "cp wrote through a symlink to the host");
    let outdir = d.dir.path().join("o");
    std::fs::create_dir_all(&outdir).unwrap();
    docker_ok(&d, &["exec", "cc", "sh", "-c", "echo in-container > /etc/marker"]);
    docker_ok(&d, &["cp", "cc:/rootlink/etc/marker", outdir.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(outdir.join("marker")).unwrap(), "in-container\n");
    // -L copies the target of a link under the link's name.
    docker_ok(&d, &["exec", "cc", "ln", "-s", "/etc/passwd", "/pwlink"]);
    docker_ok(&d, &["cp", "-L", "cc:/pwlink", outdir.to_str().unwrap()]);
    assert!(std::fs::read_to_string(outdir.join("pwlink")).unwrap().starts_with("root:"));
    docker_ok(&d, &["cp", "cc:/pwlink", outdir.join("asl").to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(outdir.join("asl")).unwrap().file_type().is_symlink());
}

#[test]
fn diff_export_commit() {
    let Some(d) = daemon_with_busybox() else { return };
    docker_ok(
        &d,
        &[
            "run",
            "--name",
            "ch",
            "-v",
            "vv:/vol",
            "busybox",
            "sh",
            "-c",
            "mkdir /newdir; echo a > /newdir/a; rm /etc/group; echo v > /vol/inside; echo m >> /etc/passwd",
        ],
    );
    let out = docker_ok(&d, &["diff", "ch"]);
    assert_eq!(out, "C /etc\nD /etc/group\nC /etc/passwd\nA /newdir\nA /newdir/a\n", "{out}");
    assert_eq!(d.ok(&["diff", "ch"]), out);
    let (st, v) = d.http_json("GET", "/containers/ch/changes", None);
    assert_eq!(st, 200);
    let kinds: Vec<(String, i64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["Path"].as_str().unwrap().to_string(), c["Kind"].as_i64().unwrap()))
        .collect();
    assert!(
        kinds.contains(&("/etc/group".into(), 2))
            && kinds.contains(&("/newdir".into(), 1))
            && kinds.contains(&("/etc".into(), 0))
    );
    let e = docker_fails(&d, &["diff", "ghost"]);
    assert!(e.contains("No such container: ghost"), "{e}");

    // export: the container's filesystem, without volume contents.
    let exp = d.dir.path().join("exp.tar");
    docker_ok(&d, &["export", "-o", exp.to_str().unwrap(), "ch"]);
    let names = tar_names(&std::fs::read(&exp).unwrap());
    assert!(names.contains(&"newdir/a".to_string()) && names.contains(&"bin/busybox".to_string()));
    assert!(!names.contains(&"etc/group".to_string()));
    assert!(!names.iter().any(|n| n.contains("inside")), "volume content exported");
    let o = d.berth(&["export", "ch"]);
    assert!(o.status.success());
    assert_eq!(tar_names(&o.stdout).len(), names.len());

    // commit: the writable layer plus --change, message and author; volume
    // contents stay out of the image.
    let id = docker_ok(
        &d,
        &[
            "commit",
            "-m",
            "msg",
            "-a",
            "me <me@x>",
            "-c",
            "ENV A=1",
            "-c",
            "CMD [\"cat\",\"/newdir/a\"]",
            "-c",
            "WORKDIR /newdir",
            "-c",
            "EXPOSE 8080",
            "-c",
            "LABEL l=v",
            "-c",
            "USER 0",
            "ch",
            "committed:v1",
        ],
    );
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(docker_ok(&d, &["run", "--rm", "committed:v1"]), "a\n");
    let cfg: Value = serde_json::from_str(&docker_ok(&d, &["image", "inspect", "committed:v1"])).unwrap();
    let img = &cfg[0];
    assert_eq!(img["Comment"], "msg");
    assert_eq!(img["Author"], "me <me@x>");
    assert_eq!(img["Config"]["WorkingDir"], "/newdir");
    assert_eq!(img["Config"]["Labels"]["l"], "v");
    assert!(img["Config"]["ExposedPorts"].as_object().unwrap().contains_key("8080/tcp"));
    assert!(img["Config"]["Env"].as_array().unwrap().iter().any(|e| e == "A=1"));
    let out = docker_ok(&d, &["run", "--rm", "committed:v1", "sh", "-c", "ls /vol; cat /etc/group 2>&1; true"]);
    assert!(!out.contains("inside"), "{out}");
    assert!(out.contains("No such file"), "{out}");
    let hist = docker_ok(&d, &["history", "--format", "{{.Comment}}", "committed:v1"]);
    assert_eq!(hist.lines().next(), Some("msg"));
    // A running container is paused for the commit by default and resumed.
    docker_ok(&d, &["run", "-d", "--name", "live", "busybox", "sh", "-c", "echo x > /x; sleep 1000"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (st, v) = d.http_json("POST", "/commit?container=live&repo=live&tag=snap", Some(b"{}"));
    assert_eq!(st, 201, "{v}");
    assert_eq!(docker_ok(&d, &["inspect", "-f", "{{.State.Status}}", "live"]), "running\n");
    assert_eq!(docker_ok(&d, &["run", "--rm", "live:snap", "cat", "/x"]), "x\n");
    let e = docker_fails(&d, &["commit", "-c", "BOGUS x", "live"]);
    assert!(e.contains("BOGUS is not a valid change command"), "{e}");
    let (st, v) = d.http_json("POST", "/commit?container=ghost", Some(b"{}"));
    assert_eq!((st, v["message"].as_str()), (404, Some("No such container: ghost")));
}

#[test]
fn system_df_and_prunes() {
    let Some(d) = daemon_with_busybox() else { return };
    docker_ok(
        &d,
        &[
            "run",
            "--name",
            "big",
            "-v",
            "dfvol:/v",
            "busybox",
            "sh",
            "-c",
            "dd if=/dev/zero of=/blob bs=1024 count=1024 2>/dev/null; echo hi > /v/f",
        ],
    );
    docker_ok(&d, &["commit", "big", "bigimg:1"]);
    let (st, du) = d.http_json("GET", "/system/df", None);
    assert_eq!(st, 200);
    let imgs = du["Images"].as_array().unwrap();
    assert_eq!(imgs.len(), 2);
    let busybox = imgs.iter().find(|i| i["RepoTags"][0] == "busybox:latest").unwrap();
    let big = imgs.iter().find(|i| i["RepoTags"][0] == "bigimg:1").unwrap();
    // The busybox layer is shared by both images and counted once.
    assert_eq!(busybox["SharedSize"], busybox["Size"]);
    assert_eq!(big["SharedSize"], busybox["Size"]);
    assert_eq!(du["LayersSize"].as_u64().unwrap(), big["Size"].as_u64().unwrap());
    assert_eq!(busybox["Containers"], 1);
    let c = &du["Containers"][0];
    assert_eq!(c["SizeRw"].as_u64().unwrap(), 1024 * 1024 + c["SizeRw"].as_u64().unwrap() - 1024 * 1024);
    assert!(c["SizeRw"].as_u64().unwrap() >= 1024 * 1024);
    assert!(c["SizeRootFs"].as_u64().unwrap() > c["SizeRw"].as_u64().unwrap());
    let v = &du["Volumes"][0];
    assert_eq!(
        (v["Name"].as_str(), v["UsageData"]["Size"].as_i64(), v["UsageData"]["RefCount"].as_i64()),
        (Some("dfvol"), Some(3), Some(1))
    );
    assert_eq!(du["BuildCache"], serde_json::json!([]));
    let out = docker_ok(&d, &["system", "df"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    assert!(lines[1].starts_with("Images          2         1"), "{out}");
    assert!(lines[2].starts_with("Containers      1         0         1.049MB   1.049MB (100%)"), "{out}");
    assert!(lines[3].starts_with("Local Volumes   1         1         3B        0B (0%)"), "{out}");
    assert!(lines[4].starts_with("Build Cache     0         0         0B        0B"), "{out}");
    assert_eq!(d.ok(&["system", "df"]), out);
    let v = docker_ok(&d, &["system", "df", "-v"]);
    assert!(v.contains("Local Volumes space usage:") && v.contains("dfvol"), "{v}");
    assert!(d.ok(&["ps", "-a", "-s", "--format", "{{.Size}}"]).starts_with("1.05MB (virtual"));

    // container prune frees the writable layer.
    let id = docker_ok(&d, &["inspect", "-f", "{{.Id}}", "big"]).trim().to_string();
    let out = docker_ok(&d, &["container", "prune", "-f"]);
    assert_eq!(out, format!("Deleted Containers:\n{id}\n\nTotal reclaimed space: 1.049MB\n"));
    assert!(!d.root.join("containers").join(&id).exists());
    // image prune -a frees the committed layer.
    let out = docker_ok(&d, &["image", "prune", "-af"]);
    assert!(out.contains("untagged: bigimg:1") && out.contains("Total reclaimed space: 3.032MB"), "{out}");
    assert_eq!(docker_ok(&d, &["images", "-q"]), "");
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);

    // system prune: containers, networks, volumes, images, build cache, in
    // docker-cli's order (each through its own prune endpoint).
    docker_ok(&d, &["network", "create", "unusednet"]);
    docker_ok(&d, &["run", "--name", "gone", "-v", "/anonp", "busybox", "true"]);
    let (code, out, err) = docker(&d, &["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("Deleted Networks:\nunusednet"), "{out}");
    assert!(!docker_ok(&d, &["network", "ls"]).contains("unusednet"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Deleted Containers:") && out.contains("Deleted Volumes:"), "{out}");
    assert!(out.trim_end().ends_with('B'), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(docker_ok(&d, &["ps", "-aq"]), "");
    assert_eq!(docker_ok(&d, &["volume", "ls", "-q"]), "dfvol\n");
}
