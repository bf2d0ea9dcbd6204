//! Root integration tests of the engine core: daemon lifecycle, system
//! endpoints, and every image command through the berth CLI, the API and the
//! real docker CLI.

mod common;

use common::{archive_image_id, fixture, stderr, stdout, Daemon};
use serde_json::Value;

#[test]
fn daemon_lifecycle_ping_version_info() {
    require_root!();
    let mut d = Daemon::start();
    // Socket mode 0660, as Docker's.
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&d.socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o660);

    let (st, head, body) = d.http("GET", "/_ping", None);
    assert_eq!(st, 200);
    assert_eq!(body, b"OK");
    for h in ["api-version: 1.47", "ostype: linux", "swarm: inactive", "builder-version: 1"] {
        assert!(head.to_ascii_lowercase().contains(h), "missing {h} in {head}");
    }
    let (st, head, body) = d.http("HEAD", "/_ping", None);
    assert_eq!(st, 200);
    assert!(body.is_empty());
    assert!(head.to_ascii_lowercase().contains("api-version: 1.47"));

    // Versioned and unversioned paths; too-old versions refused as Docker does.
    let (st, v) = d.http_json("GET", "/v1.24/version", None);
    assert_eq!(st, 200);
    assert_eq!(v["ApiVersion"], "1.47");
    assert_eq!(v["MinAPIVersion"], "1.24");
    let (st, _) = d.http_json("GET", "/v1.99/version", None);
    assert_eq!(st, 200, "newer versions are served as 1.47");
    let (st, head, body) = d.http("GET", "/v1.12/version", None);
    assert_eq!(st, 400);
    assert!(
        head.contains("Content-Type: application/json") || head.contains("content-type: application/json"),
        "{head}"
    );
    let msg: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        msg["message"],
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );

    let (st, info) = d.http_json("GET", "/info", None);
    assert_eq!(st, 200);
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["DockerRootDir"], d.root.display().to_string());
    assert!(info["CgroupVersion"] == "1" || info["CgroupVersion"] == "2");
    assert_eq!(info["Images"], 0);

    let out = d.ok(&["version"]);
    assert!(out.contains("Server: berth"), "{out}");
    assert!(out.contains("API version:      1.47 (minimum version 1.24)"), "{out}");
    let out = d.ok(&["info"]);
    assert!(out.contains(" Storage Driver: overlay2"), "{out}");
    assert_eq!(d.ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).trim(), "inactive");
    assert_eq!(d.ok(&["version", "--format", "{{.Server.ApiVersion}}"]).trim(), "1.47");

    // One daemon per data root.
    let second = std::process::Command::new(common::berth_bin())
        .args(["daemon", "--data-root"])
        .arg(&d.root)
        .arg("-H")
        .arg(format!("unix://{}/other.sock", d.dir.path().display()))
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(stderr(&second).contains("another berth daemon is already running"), "{}", stderr(&second));

    // SIGTERM shuts down cleanly and removes the socket.
    let st = d.stop_with(libc::SIGTERM).unwrap();
    assert!(st.success(), "{st}");
    assert!(!d.socket.exists());
    d.spawn();
    assert_eq!(d.http("GET", "/_ping", None).0, 200);

    // Unknown endpoints: 404 with a JSON message.
    let (st, v) = d.http_json("GET", "/nope", None);
    assert_eq!(st, 404);
    assert!(v["message"].as_str().unwrap().contains("page not found"));
}

#[test]
fn load_list_inspect_tag_rmi_prune() {
    require_root!();
    let d = Daemon::start();
    let bb = fixture("busybox.tar");
    let want_id = archive_image_id(&bb);
    let out = d.ok(&["load", "-i", bb.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: busybox:latest\n");
    // Same ID as the archive's config digest (the ID Docker computes).
    let id = d.ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]).trim().to_string();
    assert_eq!(id, want_id);

    let out = d.ok(&["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"), "{out}");
    assert!(lines[1].starts_with("busybox      latest    "), "{out}");
    assert!(lines[1].contains(&id[7..19]));

    // Several tags on one ID; one row each.
    d.ok(&["tag", "busybox", "busybox:1"]);
    d.ok(&["tag", "busybox:latest", "localhost:5000/tools/bb:v2"]);
    let out = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let mut rows: Vec<&str> = out.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            format!("busybox:1 {}", &id[7..19]).as_str(),
            format!("busybox:latest {}", &id[7..19]).as_str(),
            format!("localhost:5000/tools/bb:v2 {}", &id[7..19]).as_str(),
        ]
    );
    assert_eq!(d.ok(&["images", "-q"]).trim(), &id[7..19]);
    assert_eq!(d.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    let out = d.ok(&["images", "--filter", "reference=busybox:1", "--format", "{{.Tag}}"]);
    assert_eq!(out.trim(), "1");
    let out = d.ok(&["images", "localhost:5000/tools/*", "--format", "{{.Repository}}"]);
    assert_eq!(out.trim(), "localhost:5000/tools/bb");
    assert_eq!(d.ok(&["images", "--filter", "dangling=true", "-q"]), "");
    let json_line = d.ok(&["images", "--format", "json", "--filter", "reference=busybox:latest"]);
    let v: Value = serde_json::from_str(json_line.trim()).unwrap();
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["Containers"], "N/A");

    // Inspect shape and the real docker CLI over the same socket.
    let (st, v) = d.http_json("GET", "/images/busybox/json", None);
    assert_eq!(st, 200);
    for k in [
        "Id",
        "RepoTags",
        "RepoDigests",
        "Created",
        "Config",
        "RootFS",
        "Size",
        "GraphDriver",
        "Os",
        "Architecture",
        "Metadata",
    ] {
        assert!(v.get(k).is_some(), "inspect lacks {k}");
    }
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    let (st, v) = d.http_json("GET", "/images/localhost:5000/tools/bb:v2/json", None);
    assert_eq!(st, 200, "names with slashes and ports: {v}");

    let hist = d.ok(&["history", "busybox"]);
    assert!(hist.starts_with("IMAGE          CREATED"), "{hist}");
    assert!(hist.lines().nth(1).unwrap().starts_with(&id[7..19]), "{hist}");

    // rmi: a tag among several is untagged; the ID with several refs needs -f.
    assert_eq!(d.ok(&["rmi", "busybox:1"]), "Untagged: busybox:1\n");
    let err = d.fails(&["rmi", &id[7..19]]);
    assert!(err.contains("(must be forced) - image is referenced in multiple repositories"), "{err}");
    let err = d.fails(&["rmi", "nosuch:tag"]);
    assert_eq!(err.trim(), "Error response from daemon: No such image: nosuch:tag");
    let err = d.fails(&["tag", "busybox", "Foo:Bar"]);
    assert!(err.contains("invalid reference format: repository name (library/Foo) must be lowercase"), "{err}");
    let err = d.fails(&["tag", "busybox", "a::b"]);
    assert!(err.contains("invalid reference format"), "{err}");
    let (st, v) = d.http_json("POST", "/images/nosuch/tag?repo=x", None);
    assert_eq!((st, v["message"].as_str().unwrap()), (404, "No such image: nosuch:latest"));
    // Nothing changed by the failures.
    assert_eq!(d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).lines().count(), 2);

    // Untagging everything leaves nothing; prune of dangling removes a <none> image.
    let out = d.ok(&["rmi", "-f", &id[7..19]]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    // The layer and its blob are gone too.
    let snaps = std::fs::read_dir(d.root.join("snapshots/snapshots")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(snaps, 0, "layers left after rmi");
    let blobs = std::fs::read_dir(d.root.join("content/blobs/sha256")).unwrap().count();
    assert_eq!(blobs, 0, "blobs left after rmi");

    d.ok(&["load", "-i", bb.to_str().unwrap()]);
    d.ok(&["tag", "busybox", "keep:me"]);
    d.ok(&["rmi", "busybox"]);
    let out = d.ok(&["image", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B\n", "tagged images are not dangling");
    let out = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted Images:\nuntagged: keep:me\ndeleted: sha256:"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert_eq!(d.ok(&["images", "-q"]), "");
}

#[test]
fn save_and_load_both_layouts_roundtrip() {
    require_root!();
    let d = Daemon::start();
    let bb = fixture("busybox.tar");
    let hello = fixture("hello-world.tar");
    d.ok(&["load", "-i", bb.to_str().unwrap()]);
    d.ok(&["load", "-i", hello.to_str().unwrap()]);
    let id_bb = archive_image_id(&bb);
    let id_hello = archive_image_id(&hello);
    let out = d.dir.path().join("both.tar");
    d.ok(&["save", "-o", out.to_str().unwrap(), "busybox", "hello-world:latest"]);

    let d2 = Daemon::start();
    let o = d2.berth_stdin(&["load"], Some(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let mut lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, vec!["Loaded image: busybox:latest", "Loaded image: hello-world:latest"]);
    assert_eq!(d2.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]).trim(), id_bb);
    assert_eq!(d2.ok(&["image", "inspect", "-f", "{{.Id}}", "hello-world"]).trim(), id_hello);

    // The OCI layout alone (what OCI tools write) loads too.
    let oci = d.dir.path().join("oci-only.tar");
    strip_entries(&out, &oci, &["manifest.json"]);
    let d3 = Daemon::start();
    let out3 = d3.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert!(out3.contains("Loaded image: busybox:latest"), "{out3}");
    assert_eq!(d3.ok(&["image", "inspect", "-f", "{{.Id}}", "busybox"]).trim(), id_bb);

    // Saving by ID keeps the image untagged, as Docker does.
    let by_id = d.dir.path().join("byid.tar");
    d.ok(&["save", "-o", by_id.to_str().unwrap(), &id_bb[7..19]]);
    let d4 = Daemon::start();
    assert_eq!(d4.ok(&["load", "-i", by_id.to_str().unwrap()]).trim(), format!("Loaded image ID: {id_bb}"));
    assert_eq!(d4.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).trim(), "<none>:<none>");
    assert_eq!(d4.ok(&["images", "-f", "dangling=true", "-q"]).trim(), &id_bb[7..19]);

    // A missing image fails before anything is written.
    let bad = d.dir.path().join("bad.tar");
    let err = d.fails(&["save", "-o", bad.to_str().unwrap(), "busybox", "nosuch"]);
    assert!(err.contains("No such image: nosuch"), "{err}");
    assert!(!bad.exists());
}

/// Copies a tar, leaving out the named entries.
fn strip_entries(src: &std::path::Path, dst: &std::path::Path, drop: &[&str]) {
    let mut ar = tar::Archive::new(std::fs::File::open(src).unwrap());
    let mut b = tar::Builder::new(std::fs::File::create(dst).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if drop.contains(&p.as_str()) {
            continue;
        }
        let mut h = e.header().clone();
        b.append_data(&mut h, &p, &mut e).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn import_with_changes_and_message() {
    require_root!();
    let d = Daemon::start();
    // A rootfs tar made here: one file and a directory.
    let rootfs = d.dir.path().join("rootfs.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&rootfs).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "app/", std::io::empty()).unwrap();
        let data = b"hello\n";
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, "app/greeting", &data[..]).unwrap();
        b.finish().unwrap();
    }
    let out = d.ok(&[
        "import",
        "-c",
        "CMD [\"/app/run\"]",
        "-c",
        "ENV A=1",
        "-c",
        "WORKDIR /app",
        "-c",
        "EXPOSE 8080",
        "-c",
        "LABEL team=core",
        "-m",
        "first import",
        rootfs.to_str().unwrap(),
        "imported:v1",
    ]);
    assert!(out.trim().starts_with("sha256:"), "{out}");
    let cfg = d.ok(&["image", "inspect", "--format", "{{json .Config}}", "imported:v1"]);
    let cfg: Value = serde_json::from_str(cfg.trim()).unwrap();
    assert_eq!(cfg["Cmd"], serde_json::json!(["/app/run"]));
    assert_eq!(cfg["Env"], serde_json::json!(["A=1"]));
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(cfg["Labels"]["team"], "core");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Comment}}", "imported:v1"]).trim(), "first import");
    let hist = d.ok(&["history", "--format", "{{.Comment}}", "imported:v1"]);
    assert_eq!(hist.trim(), "first import");
    // From stdin, gzip-compressed, untagged.
    let gz = d.dir.path().join("rootfs.tar.gz");
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", rootfs.display(), gz.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let o = d.berth_stdin(&["import", "-"], Some(&gz));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.ok(&["images", "-f", "dangling=true", "-q"]).lines().count(), 1);
    // A bad change is refused and nothing is created.
    let err = d.fails(&["import", "-c", "FROM x", rootfs.to_str().unwrap(), "bad:one"]);
    assert!(err.contains("FROM is not a valid change command"), "{err}");
    assert_eq!(d.ok(&["images", "-q"]).lines().count(), 2);
}

#[test]
fn bad_archives_are_refused_and_change_nothing() {
    require_root!();
    let d = Daemon::start();
    let bb = fixture("busybox.tar");
    d.ok(&["load", "-i", bb.to_str().unwrap()]);
    let before_blobs = std::fs::read_dir(d.root.join("content/blobs/sha256")).unwrap().count();
    let before_imgs = d.ok(&["images", "-q"]);
    let tmp = d.dir.path();

    // Not a tar at all.
    let junk = tmp.join("junk.tar");
    std::fs::write(&junk, b"this is not an archive").unwrap();
    let err = d.fails(&["load", "-i", junk.to_str().unwrap()]);
    assert!(err.contains("invalid archive") || err.contains("invalid tar"), "{err}");

    // Truncated in the middle of a layer.
    let data = std::fs::read(&bb).unwrap();
    let trunc = tmp.join("trunc.tar");
    std::fs::write(&trunc, &data[..data.len() / 2]).unwrap();
    let err = d.fails(&["load", "-i", trunc.to_str().unwrap()]);
    assert!(err.contains("invalid archive") || err.contains("truncated") || err.contains("unexpected"), "{err}");

    // A layer whose content does not match the config's diff ID.
    let mismatch = tmp.join("mismatch.tar");
    make_archive(
        &mismatch,
        &[("evil", b"x".as_slice())],
        Some("sha256:0000000000000000000000000000000000000000000000000000000000000000"),
    );
    let err = d.fails(&["load", "-i", mismatch.to_str().unwrap()]);
    assert!(err.to_lowercase().contains("mismatch") || err.contains("digest"), "{err}");

    // Layers that try to escape the layer root.
    for (name, entry_path) in [("dotdot", "../../escaped"), ("abs-link", "link/passwd")] {
        let p = tmp.join(format!("{name}.tar"));
        make_escape_archive(&p, entry_path);
        let err = d.fails(&["load", "-i", p.to_str().unwrap()]);
        assert!(err.contains("refusing layer entry"), "{name}: {err}");
    }
    assert!(!std::path::Path::new("/escaped").exists());

    // Invalid references in RepoTags.
    let badref = tmp.join("badref.tar");
    make_archive_with_tag(&badref, "Foo:Bar");
    let err = d.fails(&["load", "-i", badref.to_str().unwrap()]);
    assert!(err.contains("must be lowercase"), "{err}");

    assert_eq!(d.ok(&["images", "-q"]), before_imgs);
    let after_blobs = std::fs::read_dir(d.root.join("content/blobs/sha256")).unwrap().count();
    assert_eq!(after_blobs, before_blobs, "a failed load left blobs behind");
    let ingest = std::fs::read_dir(d.root.join("content/ingest")).unwrap().count();
    assert_eq!(ingest, 0);
}

/// A one-layer docker-archive with the given files. `diff_id` overrides the
/// config's diff ID (to make a mismatch).
fn make_archive(path: &std::path::Path, files: &[(&str, &[u8])], diff_id: Option<&str>) {
    let mut layer = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        layer.append_data(&mut h, name, *data).unwrap();
    }
    let layer = layer.into_inner().unwrap();
    write_image_archive(path, &layer, diff_id, "test/image:latest");
}

fn make_archive_with_tag(path: &std::path::Path, tag: &str) {
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(1);
    layer.append_data(&mut h, "f", &b"x"[..]).unwrap();
    write_image_archive(path, &layer.into_inner().unwrap(), None, tag);
}

fn make_escape_archive(path: &std::path::Path, entry: &str) {
    let mut layer = tar::Builder::new(Vec::new());
    if entry.starts_with("link/") {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        layer.append_link(&mut h, "link", "/etc").unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(4);
    // Write the raw name so `..` survives (the builder refuses it).
    let name = entry.as_bytes();
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    layer.append(&h, &b"evil"[..]).unwrap();
    write_image_archive(path, &layer.into_inner().unwrap(), None, "escape/test:latest");
}

fn write_image_archive(path: &std::path::Path, layer: &[u8], diff_id: Option<&str>, tag: &str) {
    let layer_hex = common::sha256_hex(layer);
    let diff = diff_id.map(String::from).unwrap_or_else(|| format!("sha256:{layer_hex}"));
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
        "created": "2024-01-01T00:00:00Z"
    })
    .to_string();
    let cfg_hex = common::sha256_hex(config.as_bytes());
    let manifest = serde_json::json!([{
        "Config": format!("{cfg_hex}.json"), "RepoTags": [tag], "Layers": [format!("{layer_hex}/layer.tar")]
    }])
    .to_string();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    };
    add(&format!("{layer_hex}/layer.tar"), layer);
    add(&format!("{cfg_hex}.json"), config.as_bytes());
    add("manifest.json", manifest.as_bytes());
    b.finish().unwrap();
}

#[test]
fn events_stream_image_actions() {
    require_root!();
    let d = Daemon::start();
    let bb = fixture("busybox.tar");
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 1;
    d.ok(&["load", "-i", bb.to_str().unwrap()]);
    d.ok(&["tag", "busybox", "ev:1"]);
    d.ok(&["rmi", "ev:1"]);
    let until = since + 120;
    let out = d.ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1).to_string(),
        "--filter",
        "type=image",
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    let _ = until;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, vec!["image load", "image tag", "image untag"], "{out}");
}

#[test]
fn docker_cli_drives_berth() {
    require_root!();
    let d = Daemon::start();
    let Some(v) = d.docker(&["version", "--format", "{{.Server.APIVersion}}"]) else {
        eprintln!("skipped: docker CLI not installed");
        return;
    };
    assert!(v.status.success(), "{}", stderr(&v));
    assert_eq!(stdout(&v).trim(), "1.47");
    let run = |args: &[&str]| {
        let o = d.docker(args).unwrap();
        assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let info = run(&["info", "--format", "{{.Driver}} {{.Swarm.LocalNodeState}}"]);
    assert_eq!(info.trim(), "overlay2 inactive");
    let bb = fixture("busybox.tar");
    let out = run(&["load", "-i", bb.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    run(&["tag", "busybox", "docker-tagged:1"]);
    let images = run(&["images"]);
    let head = images.lines().next().unwrap();
    assert!(head.starts_with("REPOSITORY") && head.contains("IMAGE ID") && head.contains("SIZE"), "{images}");
    // The docker CLI and berth print the same table for the same images.
    let berth_images = d.ok(&["images"]);
    // docker-cli groups an image's tags in a Go map, so their order varies:
    // compare the rows as sets.
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&images), sorted(&berth_images), "docker:\n{images}\nberth:\n{berth_images}");
    let id = run(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    assert_eq!(id.trim(), archive_image_id(&bb));
    let hist = run(&["history", "busybox"]);
    assert!(hist.starts_with("IMAGE"), "{hist}");
    let saved = d.dir.path().join("docker-saved.tar");
    run(&["save", "-o", saved.to_str().unwrap(), "busybox"]);
    assert_eq!(archive_image_id(&saved), id.trim());
    let out = run(&["rmi", "docker-tagged:1"]);
    assert_eq!(out.trim(), "Untagged: docker-tagged:1");
    let o = d.docker(&["rmi", "nosuch"]).unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("No such image: nosuch:latest"), "{}", stderr(&o));
    run(&["tag", "busybox", "other:1"]);
    run(&["rmi", "busybox"]);
    let out = run(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert_eq!(run(&["images", "-q"]), "");
}
