//! Registry support end to end: Debian's `docker-registry` (distribution
//! 2.8) on 127.0.0.1 random ports — anonymous, htpasswd, and token auth with
//! a token issuer run by the test (JWTs signed with a test-made certificate
//! that the registry verifies) — driven through the berth CLI, the raw API
//! and the real docker CLI.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{fixture, sha256_hex, stderr, stdout, which, Daemon};
use serde_json::{json, Value};

fn ready() -> bool {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if !Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("skipped: docker-registry not installed");
        return false;
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

enum Auth {
    Anonymous,
    Htpasswd(&'static str, &'static str),
    Token(Arc<TokenIssuer>),
}

/// A `docker-registry serve` process, killed on drop.
struct Reg {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Reg {
    fn start(auth: Auth) -> Reg {
        let dir = tempfile::Builder::new().prefix("berth-reg-").tempdir_in("/tmp").expect("tempdir");
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("storage");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n",
            storage.display()
        );
        match auth {
            Auth::Anonymous => {}
            Auth::Htpasswd(user, pass) => {
                let out = Command::new("htpasswd").args(["-Bbn", user, pass]).output().expect("htpasswd");
                assert!(out.status.success());
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).expect("write htpasswd");
                cfg.push_str(&format!("auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n", file.display()));
            }
            Auth::Token(t) => {
                cfg.push_str(&format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: berth-test-registry\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
                    t.port,
                    t.cert.display()
                ));
            }
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn registry");
        let r = Reg { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join("storage/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Reg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:port; returns (status, headers, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("response head");
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, resp[split + 4..].to_vec())
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(b))
}

/// Uploads a blob monolithically (anonymous registry).
fn upload_blob(port: u16, repo: &str, data: &[u8]) -> String {
    let digest = sha(data);
    let (st, head, _) = http(port, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(st, 202, "{head}");
    let loc = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .expect("Location")
        .trim()
        .to_string();
    let path = loc.strip_prefix(&format!("http://127.0.0.1:{port}")).unwrap_or(&loc).to_string();
    let sep = if path.contains('?') { '&' } else { '?' };
    let (st, head, _) = http(
        port,
        "PUT",
        &format!("{path}{sep}digest={}", digest.replace(':', "%3A")),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(st, 201, "{head}");
    digest
}

fn put_manifest(port: u16, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
    let (st, head, body) =
        http(port, "PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("Content-Type", media_type)], bytes);
    assert_eq!(st, 201, "{head}{}", String::from_utf8_lossy(&body));
    sha(bytes)
}

fn get_manifest(port: u16, repo: &str, reference: &str) -> (String, Vec<u8>) {
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
    let (st, head, body) = http(port, "GET", &format!("/v2/{repo}/manifests/{reference}"), &[("Accept", accept)], b"");
    assert_eq!(st, 200, "{head}");
    let ct = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: ").or_else(|| l.strip_prefix("content-type: ")))
        .unwrap_or("")
        .trim()
        .to_string();
    (ct, body)
}

/// Loads busybox, tags it `<host>/<repo>:<tag>` and pushes it with berth.
fn push_busybox(d: &Daemon, target: &str) -> String {
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    d.ok(&["tag", "busybox:latest", target]);
    let out = d.ok(&["push", target]);
    let line = out.lines().find(|l| l.contains(": digest: sha256:")).unwrap_or_else(|| panic!("{out}"));
    line.split_whitespace().nth(2).expect("digest").to_string()
}

fn image_ids(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = d.ok(&["images", "-q", "--no-trunc"]).lines().map(str::to_string).collect();
    v.sort();
    v.dedup();
    v
}

fn content_blobs(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.root.join("content/blobs/sha256"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn events(d: &Daemon, action: &str) -> Vec<Value> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let (_, _, body) = d.http("GET", &format!("/events?since=0&until={now}"), None);
    String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["Type"] == "image" && e["Action"] == action)
        .collect()
}

#[test]
fn push_then_pull_with_the_berth_cli() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let a = Daemon::start();
    let target = format!("{}/test/busybox:v1", reg.host());
    let o = a.berth(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    assert!(o.status.success());
    a.ok(&["tag", "busybox:latest", &target]);
    let out = a.ok(&["push", &target]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("The push refers to repository [{}/test/busybox]", reg.host()), "{out}");
    assert!(lines.iter().any(|l| l.ends_with(": Pushed")), "{out}");
    let digest = lines.last().unwrap().split_whitespace().nth(2).unwrap().to_string();
    assert!(lines.last().unwrap().starts_with("v1: digest: sha256:"), "{out}");
    // Pushing again finds every layer there.
    let again = a.ok(&["push", "-q", &target]);
    assert_eq!(again.trim(), target);
    let again = a.ok(&["push", &target]);
    assert!(again.contains(": Layer already exists"), "{again}");
    let rd = a.ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &target]);
    assert!(rd.contains(&format!("{}/test/busybox@{digest}", reg.host())), "{rd}");
    let pushes = events(&a, "push");
    assert!(pushes.iter().any(|e| e["id"] == target.as_str()), "{pushes:?}");

    // A fresh daemon pulls it: every layer downloaded, same image ID, digest recorded.
    let b = Daemon::start();
    let o = b.berth(&["pull", &target]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "v1: Pulling from test/busybox", "{out}");
    for want in ["Pulling fs layer", "Verifying Checksum", "Download complete", "Pull complete"] {
        assert!(lines.iter().any(|l| l.ends_with(want)), "{want} missing: {out}");
    }
    assert!(lines.contains(&format!("Digest: {digest}").as_str()), "{out}");
    assert!(lines.contains(&format!("Status: Downloaded newer image for {target}").as_str()), "{out}");
    assert_eq!(*lines.last().unwrap(), target);
    let id_a = a.ok(&["image", "inspect", "-f", "{{.Id}}", &target]);
    let id_b = b.ok(&["image", "inspect", "-f", "{{.Id}}", &target]);
    assert_eq!(id_a, id_b);
    let rd = b.ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &target]);
    assert!(rd.contains(&digest), "{rd}");
    // Up to date the second time, nothing downloaded; -q prints the name only.
    let out = b.ok(&["pull", &target]);
    assert!(out.contains(&format!("Status: Image is up to date for {target}")), "{out}");
    assert!(!out.contains("Pull complete"), "{out}");
    assert_eq!(b.ok(&["pull", "-q", &target]).trim(), target);
    // By digest.
    let by_digest = format!("{}/test/busybox@{digest}", reg.host());
    let out = b.ok(&["pull", &by_digest]);
    assert!(out.contains(&format!("Status: Image is up to date for {by_digest}")), "{out}");
    let pulls = events(&b, "pull");
    assert!(pulls.iter().any(|e| e["id"] == target.as_str()), "{pulls:?}");

    // The raw API stream: Docker's JSON messages, the last one the status.
    let (st, _, body) =
        b.http("POST", &format!("/images/create?fromImage={}/test/busybox&tag=v1", reg.host()), Some(b""));
    assert_eq!(st, 200);
    let msgs: Vec<Value> =
        String::from_utf8_lossy(&body).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(msgs[0], json!({"status": "Pulling from test/busybox", "id": "v1"}));
    assert_eq!(msgs.last().unwrap()["status"], format!("Status: Image is up to date for {target}"));

    // /distribution reports the manifest without pulling.
    let (st, v) = b.http_json("GET", &format!("/distribution/{target}/json"), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["Descriptor"]["digest"], digest.as_str());
    assert_eq!(v["Platforms"][0]["os"], "linux");

    // Removing the repository's last tag drops its digest reference too (moby),
    // and with it the image.
    let out = b.ok(&["rmi", &target]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("Untagged: {target}"), "{out}");
    assert_eq!(lines[1], format!("Untagged: {by_digest}"), "{out}");
    assert!(lines[2].starts_with("Deleted: sha256:"), "{out}");
    assert!(image_ids(&b).is_empty());
}

#[test]
fn docker_cli_pulls_and_pushes_through_berth() {
    if !ready() || which("docker").is_none() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    let target = format!("{}/dock/bb:2", reg.host());
    let o = d.docker(&["tag", "busybox", &target]).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&["push", &target]).unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains(&format!("The push refers to repository [{}/dock/bb]", reg.host())), "{out}");
    assert!(out.contains("2: digest: sha256:"), "{out}");
    let o = d.docker(&["rmi", &target]).unwrap();
    assert!(o.status.success());
    let o = d.docker(&["pull", &target]).unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.starts_with("2: Pulling from dock/bb\n"), "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {target}")), "{out}");
    assert_eq!(out.lines().last().unwrap(), target);
    // Unknown tag: the daemon's error, as docker prints it.
    let o = d.docker(&["pull", &format!("{}/dock/bb:nope", reg.host())]).unwrap();
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "Error response from daemon: manifest for {}/dock/bb:nope not found: manifest unknown: manifest unknown",
            reg.host()
        )
    );
    // docker push of a tag that does not exist.
    let o = d.docker(&["push", &format!("{}/dock/none:1", reg.host())]).unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&format!("An image does not exist locally with the tag: {}/dock/none", reg.host())));
}

#[test]
fn run_pulls_a_missing_image_on_demand() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    let target = format!("{}/run/bb:1", reg.host());
    push_busybox(&src, &target);

    let d = Daemon::start();
    let o = d.berth(&["run", "--rm", "--pull", "never", &target, "true"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(&format!("No such image: {target}")), "{}", stderr(&o));
    let o = d.berth(&["run", "--rm", &target, "echo", "pulled"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "pulled\n");
    let err = stderr(&o);
    assert!(err.starts_with(&format!("Unable to find image '{target}' locally\n1: Pulling from run/bb\n")), "{err}");
    assert!(err.contains(&format!("Status: Downloaded newer image for {target}")), "{err}");
    // --pull always asks the registry even though the image is here.
    let o = d.berth(&["run", "--rm", "--pull", "always", &target, "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("Status: Image is up to date for {target}")), "{}", stderr(&o));

    if which("docker").is_some() {
        let e = Daemon::start();
        let o = e.docker(&["run", "--rm", &target, "echo", "via-docker"]).unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "via-docker\n");
        assert!(stderr(&o).contains(&format!("Unable to find image '{target}' locally")), "{}", stderr(&o));
        let o = e.docker(&["create", "--pull", "always", &target]).unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

#[test]
fn build_pulls_a_missing_base_image() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    let base = format!("{}/base/bb:1", reg.host());
    push_busybox(&src, &base);

    // FROM an image the store lacks: pulled from its registry, as Docker's builder does.
    let d = Daemon::start();
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {base}\nRUN echo built > /b\n")).unwrap();
    let o = d.berth(&["build", "--progress", "plain", "-t", "frompull:1", ctx.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(format!("{}{}", stdout(&o), stderr(&o)).contains(&format!("Status: Downloaded newer image for {base}")));
    assert_eq!(d.ok(&["run", "--rm", "frompull:1", "cat", "/b"]), "built\n");
    assert!(d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains(&base));
    // --pull asks the registry again even though the image is here.
    let o = d.berth(&["build", "--progress", "plain", "--pull", "-t", "frompull:2", ctx.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(format!("{}{}", stdout(&o), stderr(&o)).contains(&format!("Status: Image is up to date for {base}")));
    // A base the registry does not have: the build fails with the pull's text.
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {}/nope/none:1\n", reg.host())).unwrap();
    let o = d.berth(&["build", "-t", "frompull:3", ctx.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope/none"), "{}", stderr(&o));
}

#[test]
fn unknown_images_fail_with_docker_texts_and_store_nothing() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let d = Daemon::start();
    let o = d.berth(&["pull", &format!("{}/nothing/here:1", reg.host())]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "Error response from daemon: manifest for {}/nothing/here:1 not found: manifest unknown: manifest unknown",
            reg.host()
        )
    );
    let o = d.berth(&["pull", "-a", &format!("{}/nothing/here:1", reg.host())]);
    assert_eq!(stderr(&o).trim(), "tag can't be used with --all-tags/-a");
    assert!(image_ids(&d).is_empty());
    assert!(content_blobs(&d).is_empty());
    // A bad platform is a 400 before anything happens.
    let (st, v) =
        d.http_json("POST", &format!("/images/create?fromImage={}/x&tag=1&platform=linux", reg.host()), Some(b""));
    assert_eq!(st, 400, "{v}");
    // Nothing listens here: a connection error, not a hang.
    let port = free_port();
    let o = d.berth(&["pull", &format!("127.0.0.1:{port}/x:1")]);
    assert!(!o.status.success());
    assert!(stderr(&o).starts_with("Error response from daemon:"), "{}", stderr(&o));
    // Search on a registry without the v1 search API: moby's text.
    let o = d.berth(&["search", &format!("{}/busybox", reg.host())]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim(), "Error response from daemon: Unexpected status code 404");
}

#[test]
fn pull_all_tags() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    let repo = format!("{}/multi/bb", reg.host());
    push_busybox(&src, &format!("{repo}:a"));
    src.ok(&["tag", "busybox", &format!("{repo}:b")]);
    src.ok(&["push", &format!("{repo}:b")]);
    let d = Daemon::start();
    let out = d.ok(&["pull", "--all-tags", &repo]);
    assert!(out.contains("a: Pulling from multi/bb"), "{out}");
    assert!(out.contains("b: Pulling from multi/bb"), "{out}");
    assert_eq!(out.lines().last().unwrap(), repo);
    // One status for the repository, as moby writes it.
    assert_eq!(out.matches("Status: ").count(), 1, "{out}");
    assert!(out.contains(&format!("Status: Downloaded newer image for {repo}\n")), "{out}");
    let tags = d.ok(&["images", "--format", "{{.Tag}}", &repo]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["a", "b"]);
    // push -a pushes every local tag of the repository.
    let other = format!("{}/multi/copy", reg.host());
    d.ok(&["tag", &format!("{repo}:a"), &format!("{other}:x")]);
    d.ok(&["tag", &format!("{repo}:a"), &format!("{other}:y")]);
    let out = d.ok(&["push", "-a", &other]);
    assert!(out.contains("x: digest:") && out.contains("y: digest:"), "{out}");
    // The layer came from multi/bb on this registry: mounted, not uploaded.
    assert!(out.contains(": Mounted from multi/bb"), "{out}");
}

#[test]
fn basic_auth_login_pull_push_and_logout() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Htpasswd("alice", "s3cret-pw"));
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    let target = format!("{}/priv/bb:1", reg.host());
    d.ok(&["tag", "busybox", &target]);

    // Without credentials.
    let o = d.berth(&["pull", &target]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).starts_with(&format!(
            "Error response from daemon: pull access denied for {}/priv/bb, repository does not exist or may require 'docker login'",
            reg.host()
        )),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["push", &target]);
    assert!(!o.status.success());

    // Wrong password: moby's login text, nothing stored.
    let o = d.berth(&["login", "-u", "alice", "-p", "wrong", &reg.host()]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).lines().last().unwrap(),
        format!(
            "Error response from daemon: login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.host()
        )
    );
    let cfg = d.dir.path().join("docker-config/config.json");
    assert!(!cfg.exists() || !std::fs::read_to_string(&cfg).unwrap().contains(&reg.host()));

    // --password-stdin.
    let pw = d.dir.path().join("pw");
    std::fs::write(&pw, "s3cret-pw\n").unwrap();
    let o = d.berth_stdin(&["login", "-u", "alice", "--password-stdin", &reg.host()], Some(&pw));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Login Succeeded\n");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    let auth = v["auths"][reg.host()]["auth"].as_str().expect("auth stored");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(auth).unwrap(), b"alice:s3cret-pw");

    // Stored credentials are used for push and pull.
    let out = d.ok(&["push", &target]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    d.ok(&["rmi", &target]);
    let out = d.ok(&["pull", &target]);
    assert!(out.contains(&format!("Status: Downloaded newer image for {target}")), "{out}");

    // The docker CLI logs in through berth too (its own DOCKER_CONFIG).
    if which("docker").is_some() {
        let o = d.docker(&["login", "-u", "alice", "-p", "nope", &reg.host()]).unwrap();
        assert!(!o.status.success());
        assert!(stderr(&o).contains("401 Unauthorized"), "{}", stderr(&o));
        let o = d.docker(&["login", "-u", "alice", "-p", "s3cret-pw", &reg.host()]).unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
        let o = d.docker(&["pull", &target]).unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }

    // Logout removes the entry; pulls are refused again.
    let out = d.ok(&["logout", &reg.host()]);
    assert_eq!(out, format!("Removing login credentials for {}\n", reg.host()));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert!(v["auths"].get(reg.host()).is_none(), "{v}");
    d.ok(&["rmi", &target]);
    assert!(!d.berth(&["pull", &target]).status.success());

    // Credentials never reach the daemon's log.
    assert!(!d.log().contains("s3cret-pw"), "password in the daemon log");
}

/// A token issuer as distribution's `auth: token:` expects: JWTs signed
/// (RS256, via openssl) with a certificate made here and trusted by the
/// registry (`rootcertbundle`), granting what bob's basic credentials ask.
struct TokenIssuer {
    port: u16,
    cert: PathBuf,
    key: PathBuf,
    x5c: String,
    requests: std::sync::Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl TokenIssuer {
    fn start() -> Arc<TokenIssuer> {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let st = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=berth-test-issuer"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        let der = Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert).output().unwrap();
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = Arc::new(TokenIssuer { port, cert, key, x5c, requests: Default::default(), _dir: dir });
        let t2 = t.clone();
        std::thread::spawn(move || {
            for c in listener.incoming() {
                let Ok(c) = c else { break };
                let t = t2.clone();
                std::thread::spawn(move || t.serve(c));
            }
        });
        t
    }

    fn sign(&self, account: &str, scope: &str) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut access = Vec::new();
        if !account.is_empty() {
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                let parts: Vec<&str> = s.split(':').collect();
                if parts.len() == 3 {
                    let actions: Vec<&str> = parts[2].split(',').collect();
                    access.push(json!({"type": parts[0], "name": parts[1], "actions": actions}));
                }
            }
        }
        let claims = json!({
            "iss": "berth-test-issuer", "sub": account, "aud": "berth-test-registry",
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_u64()),
            "access": access,
        });
        let signing_input =
            format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
        let sig = child.wait_with_output().unwrap().stdout;
        format!("{signing_input}.{}", b64url(&sig))
    }

    fn serve(&self, mut c: TcpStream) {
        let mut reader = std::io::BufReader::new(c.try_clone().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            lines.push(line.trim_end().to_string());
        }
        let target = lines.first().and_then(|l| l.split(' ').nth(1)).unwrap_or("").to_string();
        self.requests.lock().unwrap().push(target.clone());
        let auth = lines.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("authorization").then(|| v.trim().to_string())
        });
        let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        let scope = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("scope="))
            .map(|v| v.replace("%3A", ":").replace("%2F", "/").replace("%2C", ",").replace('+', " "))
            .collect::<Vec<_>>()
            .join(" ");
        let good = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bob:t0ken-pw"));
        let (status, body) = match auth {
            Some(a) if a == good => ("200 OK", json!({"token": self.sign("bob", &scope), "expires_in": 300})),
            // Docker Hub's answer to wrong credentials.
            Some(_) => ("401 Unauthorized", json!({"details": "incorrect username or password"})),
            // Anonymous: a token without access.
            None => ("200 OK", json!({"token": self.sign("", &scope), "expires_in": 300})),
        };
        let body = body.to_string();
        let _ = write!(
            c,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    u64::from_le_bytes(b)
}

#[test]
fn bearer_token_flow_with_a_token_issuer() {
    if !ready() || which("openssl").is_none() {
        return;
    }
    let issuer = TokenIssuer::start();
    let reg = Reg::start(Auth::Token(issuer.clone()));
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    let target = format!("{}/bob/bb:1", reg.host());
    d.ok(&["tag", "busybox", &target]);

    let o = d.berth(&["push", &target]);
    assert!(!o.status.success(), "anonymous push must be refused");
    let o = d.berth(&["login", "-u", "bob", "-p", "wrong", &reg.host()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "Error response from daemon: Get \"http://{}/v2/\": unauthorized: incorrect username or password",
            reg.host()
        )),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&["login", "-u", "bob", "-p", "t0ken-pw", &reg.host()]);
    assert!(o.status.success(), "{}{}", stderr(&o), reg.log());
    let out = d.ok(&["push", &target]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    // Cross-repository mount under token auth: the token also covers bob/bb:pull.
    let other = format!("{}/bob/other:1", reg.host());
    d.ok(&["tag", "busybox", &other]);
    let out = d.ok(&["push", &other]);
    assert!(out.contains(": Mounted from bob/bb"), "{out}");
    let reqs = issuer.requests.lock().unwrap().clone();
    assert!(reqs.iter().any(|r| r.contains("scope=repository%3Abob%2Fbb%3Apull&")), "{reqs:?}");
    assert!(reqs.iter().any(|r| r.contains("scope=repository%3Abob%2Fbb%3Apull%2Cpush")), "{reqs:?}");
    assert!(reqs.iter().all(|r| r.contains("service=berth-test-registry")), "{reqs:?}");

    let e = Daemon::start();
    // Anonymous pull: the issuer grants nothing, Docker's access-denied text.
    let o = e.berth(&["pull", &target]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("pull access denied for {}/bob/bb, repository does not exist", reg.host())),
        "{}",
        stderr(&o)
    );
    assert!(image_ids(&e).is_empty());
    if which("docker").is_some() {
        let o = e.docker(&["login", "-u", "bob", "-p", "t0ken-pw", &reg.host()]).unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let o = e.docker(&["pull", &target]).unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(&format!("Status: Downloaded newer image for {target}")));
    }
    assert!(!d.log().contains("t0ken-pw") && !e.log().contains("t0ken-pw"));
}

#[test]
fn mirror_serves_docker_hub_pulls() {
    if !ready() {
        return;
    }
    let mirror = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    // What a pull-through cache holds for docker.io/library/busybox.
    push_busybox(&src, &format!("{}/library/busybox:latest", mirror.host()));
    let mirror_url = format!("http://{}", mirror.host());
    let d = Daemon::start_with(&["--registry-mirror", &mirror_url, "--insecure-registry", "10.99.0.0/16"]);
    let (_, info) = d.http_json("GET", "/info", None);
    assert_eq!(info["RegistryConfig"]["Mirrors"], json!([format!("{mirror_url}/")]));
    assert_eq!(info["RegistryConfig"]["IndexConfigs"]["docker.io"]["Mirrors"], json!([format!("{mirror_url}/")]));
    let cidrs = info["RegistryConfig"]["InsecureRegistryCIDRs"].as_array().unwrap();
    assert!(cidrs.contains(&json!("127.0.0.0/8")) && cidrs.contains(&json!("10.99.0.0/16")), "{cidrs:?}");
    let info_text = d.ok(&["info"]);
    assert!(info_text.contains(&format!(" Registry Mirrors:\n  {mirror_url}/\n")), "{info_text}");
    assert!(info_text.contains("  10.99.0.0/16\n"), "{info_text}");
    let out = d.ok(&["pull", "busybox"]);
    assert!(out.contains("latest: Pulling from library/busybox"), "{out}");
    assert!(out.contains("Status: Downloaded newer image for busybox:latest"), "{out}");
    assert_eq!(out.lines().last().unwrap(), "docker.io/library/busybox:latest");
    // A bad mirror is refused at start, as dockerd does, before the daemon
    // touches the host: no data root, bridge or namespace is left.
    let bridge = "btbadmirror";
    let o = Command::new(common::berth_bin())
        .args(["daemon", "--data-root", "/nonexistent-berth-root", "--bridge", bridge, "--registry-mirror", "ftp://x"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid mirror"), "{}", stderr(&o));
    assert!(!Path::new("/nonexistent-berth-root").exists());
    assert!(!Path::new(&format!("/sys/class/net/{bridge}")).exists());
}

/// A multi-platform index over the pushed busybox manifest (the registry does
/// not check that platforms match configs), and one with arm64 only.
#[test]
fn multi_arch_index_picks_the_platform() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    let digest = push_busybox(&src, &format!("{}/idx/bb:single", reg.host()));
    let (ct, manifest) = get_manifest(reg.port, "idx/bb", "single");
    let entry = |arch: &str, variant: Option<&str>| {
        let mut p = json!({"architecture": arch, "os": "linux"});
        if let Some(v) = variant {
            p["variant"] = json!(v);
        }
        json!({"mediaType": ct, "digest": digest, "size": manifest.len(), "platform": p})
    };
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("arm", Some("v7")), entry("amd64", None), entry("arm64", Some("v8"))],
    })
    .to_string();
    let idx_digest =
        put_manifest(reg.port, "idx/bb", "multi", "application/vnd.oci.image.index.v1+json", index.as_bytes());
    let only_arm = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("arm64", Some("v8"))],
    })
    .to_string();
    put_manifest(reg.port, "idx/bb", "armonly", "application/vnd.oci.image.index.v1+json", only_arm.as_bytes());

    let d = Daemon::start();
    let multi = format!("{}/idx/bb:multi", reg.host());
    let out = d.ok(&["pull", "--platform", "linux/arm/v7", &multi]);
    // The repo digest is the index's, as Docker records it.
    assert!(out.contains(&format!("Digest: {idx_digest}")), "{out}");
    let rd = d.ok(&["image", "inspect", "-f", "{{json .RepoDigests}}", &multi]);
    assert!(rd.contains(&idx_digest), "{rd}");
    let o = d.berth(&["pull", "--platform", "linux/s390x", &multi]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim(), "no matching manifest for linux/s390x in the manifest list entries");
    let o = d.berth(&["pull", "--platform", "linux/amd64", &format!("{}/idx/bb:armonly", reg.host())]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim(), "no matching manifest for linux/amd64 in the manifest list entries");
    let (st, v) = d.http_json("GET", &format!("/distribution/{multi}/json"), None);
    assert_eq!(st, 200);
    assert_eq!(v["Descriptor"]["digest"], idx_digest.as_str());
    assert_eq!(v["Platforms"].as_array().unwrap().len(), 3, "{v}");
    if which("docker").is_some() {
        let o = d.docker(&["pull", "--platform", "linux/s390x", &multi]).unwrap();
        assert!(!o.status.success());
        assert!(stderr(&o).contains("no matching manifest for linux/s390x in the manifest list entries"));
    }
}

/// The busybox layer and config from the fixture archive.
fn busybox_parts() -> (Vec<u8>, Vec<u8>) {
    let mut files = std::collections::HashMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(fixture("busybox.tar")).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.insert(p, b);
    }
    let m: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let cfg = files[m[0]["Config"].as_str().unwrap()].clone();
    let layer = files[m[0]["Layers"][0].as_str().unwrap()].clone();
    (layer, cfg)
}

#[test]
fn zstd_layers_pull_and_run() {
    if !ready() || which("zstd").is_none() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let (layer, cfg) = busybox_parts();
    let mut z =
        Command::new("zstd").args(["-q", "-c", "-3"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut input = z.stdin.take().unwrap();
    let feed = std::thread::spawn(move || input.write_all(&layer));
    let zl = z.wait_with_output().unwrap().stdout;
    feed.join().unwrap().unwrap();
    let ld = upload_blob(reg.port, "z/bb", &zl);
    let cd = upload_blob(reg.port, "z/bb", &cfg);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": ld, "size": zl.len()}],
    })
    .to_string();
    put_manifest(reg.port, "z/bb", "zstd", "application/vnd.oci.image.manifest.v1+json", manifest.as_bytes());
    let d = Daemon::start();
    let target = format!("{}/z/bb:zstd", reg.host());
    let out = d.ok(&["pull", &target]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", &target]).trim(), sha(&cfg));
    assert_eq!(d.ok(&["run", "--rm", &target, "echo", "zstd-ok"]), "zstd-ok\n");
    // Pushed back as it is stored: zstd, in an OCI manifest.
    d.ok(&["tag", &target, &format!("{}/z/copy:1", reg.host())]);
    d.ok(&["push", &format!("{}/z/copy:1", reg.host())]);
    let (_, m) = get_manifest(reg.port, "z/copy", "1");
    let m: Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(m["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
    assert_eq!(m["layers"][0]["digest"], ld.as_str());
}

#[test]
fn tampered_blob_is_refused_and_nothing_is_stored() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    let target = format!("{}/bad/bb:1", reg.host());
    push_busybox(&src, &target);
    let (_, m) = get_manifest(reg.port, "bad/bb", "1");
    let m: Value = serde_json::from_slice(&m).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let path = reg.blob_path(&layer);
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&path, &data).unwrap();

    let d = Daemon::start();
    let o = d.berth(&["pull", &target]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim(), format!("filesystem layer verification failed for digest {layer}"));
    assert!(image_ids(&d).is_empty());
    assert!(content_blobs(&d).is_empty(), "{:?}", content_blobs(&d));
    let snaps = std::fs::read_dir(d.root.join("snapshots/snapshots")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(snaps, 0);
}

/// Forwards to `upstream`, cutting the first connection whose response
/// passes `cut_after` bytes: the pull must resume with a Range request.
fn cutting_proxy(upstream: u16, cut_after: u64) -> (u16, Arc<AtomicBool>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let ranges = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (flag, seen) = (cut.clone(), ranges.clone());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let (flag, seen) = (flag.clone(), seen.clone());
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let text = String::from_utf8_lossy(&buf[..n]);
                    for l in text.lines() {
                        if l.to_ascii_lowercase().starts_with("range:") {
                            seen.lock().unwrap().push(l.to_string());
                        }
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let total = AtomicU64::new(0);
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let t = total.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
                    if t > cut_after && !flag.swap(true, Ordering::Relaxed) {
                        let keep = n - (t - cut_after) as usize;
                        let _ = c_write.write_all(&buf[..keep]);
                        let _ = c_write.shutdown(std::net::Shutdown::Both);
                        let _ = s_read.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, cut, ranges)
}

#[test]
fn interrupted_download_resumes_with_range() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    push_busybox(&src, &format!("{}/cut/bb:1", reg.host()));
    let (proxy, cut, ranges) = cutting_proxy(reg.port, 400 * 1024);
    let d = Daemon::start();
    let via = format!("127.0.0.1:{proxy}/cut/bb:1");
    let out = d.ok(&["pull", &via]);
    assert!(cut.load(Ordering::Relaxed), "the proxy never cut a connection");
    assert!(out.contains(": Retrying"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    let ranges = ranges.lock().unwrap().clone();
    assert!(ranges.iter().any(|r| r.contains("bytes=") && !r.contains("bytes=0-")), "{ranges:?}");
    assert_eq!(d.ok(&["run", "--rm", &via, "echo", "resumed"]), "resumed\n");
}

/// A registry answering only with a schema 1 manifest (distribution 2.8
/// cannot store one without signing), as old images on Docker Hub do.
#[test]
fn schema1_manifest_is_refused_clearly() {
    if !ready() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let Ok(mut c) = c else { break };
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let body = if req.starts_with("GET /v2/old/app/manifests/") {
                r#"{"schemaVersion":1,"name":"old/app","tag":"1","architecture":"amd64","fsLayers":[],"history":[],"signatures":[]}"#
            } else {
                "{}"
            };
            let ct = if body.len() > 2 {
                "application/vnd.docker.distribution.manifest.v1+prettyjws"
            } else {
                "application/json"
            };
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let d = Daemon::start();
    let o = d.berth(&["pull", &format!("127.0.0.1:{port}/old/app:1")]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim(),
        format!(
            "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. \
             Suggest the author of 127.0.0.1:{port}/old/app:1 to upgrade the image to the OCI Format or Docker \
             Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/"
        )
    );
    // In the stream, after "Pulling from", as moby reports it.
    assert!(stdout(&o).starts_with("1: Pulling from old/app\n"), "{}", stdout(&o));
    assert!(image_ids(&d).is_empty());
}

const REF_SOCK: &str = "/run/berth-ref/docker.sock";

/// Uses the reference dockerd when it runs (scripts/dockerd-ref.sh), starts
/// it otherwise and stops it again only then.
struct RefDockerd {
    started_here: bool,
}

impl RefDockerd {
    fn start() -> Option<RefDockerd> {
        which("dockerd")?;
        if std::os::unix::net::UnixStream::connect(REF_SOCK).is_ok() {
            return Some(RefDockerd { started_here: false });
        }
        let st =
            Command::new("bash").arg(common::repo_root().join("scripts/dockerd-ref.sh")).arg("start").status().ok()?;
        st.success().then_some(RefDockerd { started_here: true })
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").args(args).env("DOCKER_HOST", format!("unix://{REF_SOCK}")).output().expect("docker")
    }
}

impl Drop for RefDockerd {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new("bash").arg(common::repo_root().join("scripts/dockerd-ref.sh")).arg("stop").status();
        }
    }
}

#[test]
fn images_move_between_berth_and_dockerd_through_a_registry() {
    if !ready() {
        return;
    }
    let Some(r) = RefDockerd::start() else {
        eprintln!("skipped: reference dockerd not available");
        return;
    };
    let reg = Reg::start(Auth::Anonymous);
    let d = Daemon::start();
    // berth → registry → dockerd: the same manifest digest and image ID.
    let target = format!("{}/interop/from-berth:1", reg.host());
    let digest = push_busybox(&d, &target);
    let o = r.docker(&["pull", &target]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("Digest: {digest}")), "{}", stdout(&o));
    let o = r.docker(&["image", "inspect", "-f", "{{.Id}}", &target]);
    let berth_id = d.ok(&["image", "inspect", "-f", "{{.Id}}", &target]);
    assert_eq!(stdout(&o).trim(), berth_id.trim());

    // dockerd → registry → berth.
    let back = format!("{}/interop/from-dockerd:1", reg.host());
    let o = r.docker(&["tag", &target, &back]);
    assert!(o.status.success());
    let o = r.docker(&["push", &back]);
    assert!(o.status.success(), "{}", stderr(&o));
    let pushed = stdout(&o);
    let dockerd_digest = pushed
        .lines()
        .find(|l| l.contains("digest: sha256:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_string();
    let e = Daemon::start();
    let out = e.ok(&["pull", &back]);
    assert!(out.contains(&format!("Digest: {dockerd_digest}")), "{out}");
    assert_eq!(e.ok(&["image", "inspect", "-f", "{{.Id}}", &back]).trim(), berth_id.trim());
    assert_eq!(e.ok(&["run", "--rm", &back, "echo", "interop"]), "interop\n");
    let _ = r.docker(&["rmi", &target, &back]);
}

/// Forwards to `upstream`, 32 KiB every 20 ms from the registry: slow enough
/// for a client to go away mid-pull. Setting the returned flag makes the
/// registry "go away": open connections are cut and new ones closed at once.
fn slow_proxy(upstream: u16) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dead = Arc::new(AtomicBool::new(false));
    let gone = dead.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            if gone.load(Ordering::Relaxed) {
                let _ = client.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            let gone = gone.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 32 * 1024];
                loop {
                    if gone.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = c_write.shutdown(std::net::Shutdown::Both);
                let _ = s_read.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (port, dead)
}

#[test]
fn a_client_that_goes_away_cancels_the_pull() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    push_busybox(&src, &format!("{}/slow/bb:1", reg.host()));
    let (proxy, _) = slow_proxy(reg.port);
    let d = Daemon::start();
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    write!(s, "POST /images/create?fromImage=127.0.0.1:{proxy}/slow/bb&tag=1 HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    // Wait until the download is under way, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("Downloading") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let log = d.log();
        if log.contains("pull cancelled") || Instant::now() > deadline {
            break;
        }
    }
    assert!(d.log().contains("pull cancelled: the client went away"), "{}", d.log());
    std::thread::sleep(Duration::from_millis(500));
    assert!(image_ids(&d).is_empty(), "{:?}", image_ids(&d));
    assert!(content_blobs(&d).is_empty(), "{:?}", content_blobs(&d));
    assert!(events(&d, "pull").is_empty());
}

fn berth_env(d: &Daemon, args: &[&str], env: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new(common::berth_bin());
    c.arg("-H").arg(d.host()).args(args);
    c.env_remove("DOCKER_HOST").env_remove("BERTH_HOST");
    c.env("DOCKER_CONFIG", d.dir.path().join("docker-config"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).output().expect("run berth")
}

/// `credsStore` with a `docker-credential-*` helper (a shell script keeping
/// one JSON file per server, speaking the helper protocol).
#[test]
fn credential_helper_stores_and_supplies_logins() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Htpasswd("carol", "helper-pw"));
    let d = Daemon::start();
    let bin = d.dir.path().join("helper-bin");
    let store = d.dir.path().join("helper-store");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let script = format!(
        r#"#!/bin/sh
set -e
dir={store}
case "$1" in
store) input=$(cat); server=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); printf '%s' "$input" > "$dir/$(printf '%s' "$server" | tr '/:' '__')";;
get) server=$(cat); f="$dir/$(printf '%s' "$server" | tr '/:' '__')"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi;;
erase) server=$(cat); rm -f "$dir/$(printf '%s' "$server" | tr '/:' '__')";;
esac
"#,
        store = store.display()
    );
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(&helper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg_dir = d.dir.path().join("docker-config");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    std::fs::write(cfg_dir.join("config.json"), r#"{"credsStore":"berthtest","psFormat":"keep me"}"#).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let env = [("PATH", path)];

    let o = berth_env(&d, &["login", "-u", "carol", "-p", "helper-pw", &reg.host()], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Login Succeeded\n");
    // Kept by the helper, not in the file; the file's other settings survive.
    let cfg = std::fs::read_to_string(cfg_dir.join("config.json")).unwrap();
    assert!(!cfg.contains("helper-pw"), "{cfg}");
    assert!(cfg.contains("keep me"), "{cfg}");
    let kept = std::fs::read_to_string(store.join(reg.host().replace(':', "_"))).unwrap();
    assert!(kept.contains(r#""Username":"carol""#) && kept.contains("helper-pw"), "{kept}");

    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    let target = format!("{}/helper/bb:1", reg.host());
    d.ok(&["tag", "busybox", &target]);
    let o = berth_env(&d, &["push", &target], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = berth_env(&d, &["logout", &reg.host()], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!store.join(reg.host().replace(':', "_")).exists());
    let o = berth_env(&d, &["push", &target], &env);
    assert!(!o.status.success());
}

/// The v1 search API of a registry that offers it (a small server here;
/// distribution 2.8 has none).
#[test]
fn search_uses_the_v1_search_api() {
    if !common::is_root() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let queries = Arc::new(std::sync::Mutex::new(Vec::new()));
    let q2 = queries.clone();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let Ok(mut c) = c else { break };
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let target = req.split(' ').nth(1).unwrap_or("").to_string();
            q2.lock().unwrap().push(target.clone());
            let body = json!({"num_results": 3, "query": "tools", "results": [
                {"name": "team/tools", "description": "Everything a team needs to build, test and ship its services quickly", "star_count": 42, "is_official": false, "is_automated": true},
                {"name": "tools", "description": "Official\ntools", "star_count": 1000, "is_official": true, "is_automated": false},
                {"name": "other/tools", "description": "", "star_count": 3, "is_official": false, "is_automated": false},
            ]})
            .to_string();
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let d = Daemon::start();
    let out = d.ok(&["search", &format!("127.0.0.1:{port}/tools")]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("DESCRIPTION") && lines[0].contains("OFFICIAL"), "{out}");
    assert!(
        lines[1].starts_with("team/tools") && lines[1].contains("Everything a team needs to build, test and s…"),
        "{out}"
    );
    assert!(
        lines[2].contains("Official tools") && lines[2].contains("1000") && lines[2].trim_end().ends_with("[OK]"),
        "{out}"
    );
    assert!(queries.lock().unwrap()[0].starts_with("/v1/search?q=tools&n=25"), "{:?}", queries.lock().unwrap());
    let out = d.ok(&[
        "search",
        "--filter",
        "is-official=true",
        "--format",
        "{{.Name}}:{{.StarCount}}",
        &format!("127.0.0.1:{port}/tools"),
    ]);
    assert_eq!(out, "tools:1000\n");
    let out = d.ok(&[
        "search",
        "--filter",
        "stars=10",
        "--limit",
        "5",
        "--no-trunc",
        "--format",
        "{{.Description}}",
        &format!("127.0.0.1:{port}/tools"),
    ]);
    assert_eq!(out, "Everything a team needs to build, test and ship its services quickly\nOfficial tools\n");
    let o = d.berth(&["search", "--limit", "101", &format!("127.0.0.1:{port}/tools")]);
    assert_eq!(stderr(&o).trim(), "Error response from daemon: limit 101 is outside the range of [1, 100]");
    if which("docker").is_some() {
        let o = d.docker(&["search", "--format", "{{.Name}}", &format!("127.0.0.1:{port}/tools")]).unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "team/tools\ntools\nother/tools\n");
    }
}

#[test]
fn login_reuses_stored_credentials() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Htpasswd("dave", "stored-pw"));
    let d = Daemon::start();
    let o = d.berth(&["login", &reg.host()]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).trim(), "Error: Cannot perform an interactive login from a non TTY device");
    d.ok(&["login", "-u", "dave", "-p", "stored-pw", &reg.host()]);
    let o = d.berth(&["login", &reg.host()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "Authenticating with existing credentials... [Username: dave]\n");
    assert_eq!(stdout(&o), "Login Succeeded\n");
}

#[test]
fn a_registry_that_goes_away_mid_pull_leaves_nothing() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let src = Daemon::start();
    push_busybox(&src, &format!("{}/gone/bb:1", reg.host()));
    let (proxy, dead) = slow_proxy(reg.port);
    let d = Daemon::start();
    let mut child = Command::new(common::berth_bin())
        .args(["-H", &d.host(), "pull", &format!("127.0.0.1:{proxy}/gone/bb:1")])
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the layer download has begun, the registry dies.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "pull ended early: {seen}");
        seen.push_str(&line);
        if line.contains("Pulling fs layer") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    dead.store(true, Ordering::Relaxed);
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "{seen}{rest}");
    // The failing blob is named (`GET …/blobs/sha256:…: io: Peer disconnected`).
    assert!(stderr(&o).contains("sha256:"), "{}", stderr(&o));
    assert!(image_ids(&d).is_empty(), "{:?}", image_ids(&d));
    assert!(content_blobs(&d).is_empty(), "{:?}", content_blobs(&d));
    let ingest = std::fs::read_dir(d.root.join("content/ingest")).map(|r| r.count()).unwrap_or(0);
    assert_eq!(ingest, 0, "partial downloads left in ingest");
}

fn file_layer(name: &str, data: &[u8]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    t.append_data(&mut h, name, data).unwrap();
    t.into_inner().unwrap()
}

/// busybox plus three file layers, as a docker-archive.
fn layered_busybox(path: &Path) {
    let (bb_layer, bb_cfg) = busybox_parts();
    let mut layers = vec![bb_layer];
    for i in 1..=3 {
        layers.push(file_layer(&format!("f{i}"), format!("layer {i}\n").repeat(20_000).as_bytes()));
    }
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let mut cfg: Value = serde_json::from_slice(&bb_cfg).unwrap();
    cfg["rootfs"]["diff_ids"] = json!(diff_ids);
    cfg["history"] = json!([]);
    let cfg = cfg.to_string();
    let cfg_name = format!("{}.json", sha256_hex(cfg.as_bytes()));
    let names: Vec<String> = diff_ids.iter().map(|d| format!("{}/layer.tar", &d[7..])).collect();
    let manifest = json!([{"Config": cfg_name, "RepoTags": ["layered/bb:4"], "Layers": names}]).to_string();
    let mut ar = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        ar.append_data(&mut h, name, data).unwrap();
    };
    add(&cfg_name, cfg.as_bytes());
    for (n, l) in names.iter().zip(&layers) {
        add(n, l);
    }
    add("manifest.json", manifest.as_bytes());
    ar.finish().unwrap();
}

#[test]
fn multi_layer_images_go_up_and_down_in_parallel() {
    if !ready() {
        return;
    }
    let reg = Reg::start(Auth::Anonymous);
    let a = Daemon::start();
    let archive = a.dir.path().join("layered.tar");
    layered_busybox(&archive);
    a.ok(&["load", "-i", archive.to_str().unwrap()]);
    let target = format!("{}/layered/bb:4", reg.host());
    a.ok(&["tag", "layered/bb:4", &target]);
    let out = a.ok(&["push", &target]);
    assert_eq!(out.matches(": Pushed").count(), 4, "{out}");
    let b = Daemon::start();
    let out = b.ok(&["pull", &target]);
    assert_eq!(out.matches(": Pull complete").count(), 4, "{out}");
    assert_eq!(
        a.ok(&["image", "inspect", "-f", "{{.Id}}", &target]),
        b.ok(&["image", "inspect", "-f", "{{.Id}}", &target])
    );
    let run = b.ok(&["run", "--rm", &target, "sh", "-c", "head -n1 /f1 /f2 /f3 | grep layer"]);
    assert_eq!(run, "layer 1\nlayer 2\nlayer 3\n");
    // Pushing it under another name on the same registry mounts every layer.
    let other = format!("{}/layered/copy:4", reg.host());
    b.ok(&["tag", &target, &other]);
    let out = b.ok(&["push", &other]);
    assert_eq!(out.matches(": Mounted from layered/bb").count(), 4, "{out}");
}
