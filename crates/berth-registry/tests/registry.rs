//! End-to-end tests against Debian's `docker-registry` (distribution 2.8)
//! started on a random loopback port. Unpacking layers needs root (lchown,
//! device nodes): without it the tests return early.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_content::ContentStore;
use berth_error::ErrorKind;
use berth_image::{ImageStore, Reference};
use berth_meta::Db;
use berth_registry::{
    Credentials, ImageIndex, LayerStatus, Platform, ProgressEvent, PullOptions, PushOptions, Registry, RegistryConfig,
    MEDIA_OCI_INDEX,
};
use berth_snapshot::Snapshotter;

const BUSYBOX: &str = "/var/cache/berth-fixtures/images/busybox.tar";
const DEBIAN_PYTHON: &str = "/var/cache/berth-fixtures/images/debian-python.tar";

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn ready() -> bool {
    if !is_root() {
        eprintln!("skipping: unpacking layers needs root");
        return false;
    }
    if !Path::new("/usr/bin/docker-registry").exists() || !Path::new(BUSYBOX).exists() {
        eprintln!("skipping: docker-registry or {BUSYBOX} missing");
        return false;
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap()
}

/// A running registry, killed on drop.
struct RegistryProc {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl RegistryProc {
    fn start(htpasswd: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test\n",
            storage.display()
        );
        if let Some((user, pass)) = htpasswd {
            let out = Command::new("htpasswd").args(["-Bbn", user, pass]).output().unwrap();
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            cfg.push_str(&format!("auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n", file.display()));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = RegistryProc { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        p
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.path().join("storage/docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }
}

impl Drop for RegistryProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Stores {
    _dir: tempfile::TempDir,
    store: ImageStore,
}

fn stores() -> Stores {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let db = Arc::new(Db::open(&root.join("berth.db")).unwrap());
    let content = Arc::new(ContentStore::open(&root.join("content")).unwrap());
    let snapshots = Arc::new(Snapshotter::new(&root.join("snapshots")).unwrap());
    let store = ImageStore::new(db, content, snapshots).unwrap();
    Stores { _dir: dir, store }
}

/// Loads an archive and tags its first image as `target`; returns the ID.
fn load(store: &ImageStore, archive: &str, target: &Reference) -> String {
    let f = std::fs::File::open(archive).unwrap();
    let loaded = berth_image::archive::load(store, f, &mut |_| {}).unwrap();
    let id = loaded[0].id.clone();
    store.tag(&id, target).unwrap();
    id
}

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn amd64() -> PullOptions {
    PullOptions { platform: Platform::new("linux", "amd64", None), ..Default::default() }
}

#[test]
fn push_then_pull_round_trip() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::new(RegistryConfig::default());
    let a = stores();
    let target = r(&format!("{}/test/busybox:v1", reg.host()));
    let id = load(&a.store, BUSYBOX, &target);

    let mut events = Vec::new();
    let digest = client.push(&a.store, &target, &PushOptions::default(), &mut |e| events.push(e)).unwrap();
    assert!(digest.starts_with("sha256:"));
    assert!(events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::Pushed, .. })));
    assert!(matches!(events.last(), Some(ProgressEvent::Pushed { digest: d, .. }) if *d == digest));
    // A push records the repo digest locally, like Docker.
    let img = a.store.get_by_id(&id).unwrap();
    assert!(img.repo_digests().contains(&format!("{}/test/busybox@{digest}", reg.host())));

    // Pushing again finds every layer in place.
    let mut events = Vec::new();
    assert_eq!(client.push(&a.store, &target, &PushOptions::default(), &mut |e| events.push(e)).unwrap(), digest);
    assert!(events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::LayerAlreadyExists, .. })));
    assert!(!events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::Pushed, .. })));

    let b = stores();
    let mut events = Vec::new();
    let pulled = client.pull(&b.store, &target, &amd64(), &mut |e| events.push(e)).unwrap();
    assert_eq!(pulled.id, id);
    assert_eq!(pulled.digest, digest);
    assert!(pulled.updated);
    let img = b.store.get(&target.to_string()).unwrap();
    assert_eq!(img.id, id);
    assert!(img.repo_digests().contains(&format!("{}/test/busybox@{digest}", reg.host())));
    let texts: Vec<String> = events.iter().map(|e| e.to_json()).collect();
    assert_eq!(texts[0], r#"{"status":"Pulling from test/busybox","id":"v1"}"#);
    assert!(texts.iter().any(|t| t.contains("Pull complete")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains(&format!("Digest: {digest}"))));
    assert!(texts.iter().any(|t| t.contains("Status: Downloaded newer image for")));

    // Again: every layer exists, nothing downloaded, image up to date.
    let mut events = Vec::new();
    let again = client.pull(&b.store, &target, &amd64(), &mut |e| events.push(e)).unwrap();
    assert_eq!(again.id, id);
    assert!(!again.updated);
    assert!(events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::AlreadyExists, .. })));
    assert!(!events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::Downloading, .. })));
    assert!(events.iter().any(|e| e.message().starts_with("Status: Image is up to date for")));

    // By digest: no tag, a repo digest.
    let c = stores();
    let by_digest = r(&format!("{}/test/busybox@{digest}", reg.host()));
    let p = client.pull(&c.store, &by_digest, &amd64(), &mut |_| {}).unwrap();
    assert_eq!(p.id, id);
    assert!(p.tags.is_empty());
    assert_eq!(c.store.resolve(&by_digest.to_string()).unwrap(), id);
}

#[test]
fn unknown_tag_and_repository_use_docker_texts() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default();
    let a = stores();
    let target = r(&format!("{}/test/busybox:v1", reg.host()));
    load(&a.store, BUSYBOX, &target);
    client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();

    let b = stores();
    let missing_tag = r(&format!("{}/test/busybox:nope", reg.host()));
    let e = client.pull(&b.store, &missing_tag, &amd64(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!("manifest for {}/test/busybox:nope not found: manifest unknown: manifest unknown", reg.host())
    );

    let missing_repo = r(&format!("{}/test/nothing-here:latest", reg.host()));
    let e = client.pull(&b.store, &missing_repo, &amd64(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // distribution 2.8 answers MANIFEST_UNKNOWN for an unknown repository,
    // so Docker prints the manifest text there too.
    assert_eq!(
        e.to_string(),
        format!("manifest for {}/test/nothing-here:latest not found: manifest unknown: manifest unknown", reg.host())
    );
    assert!(b.store.list().unwrap().is_empty());
}

#[test]
fn basic_auth_and_wrong_credentials() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(Some(("alice", "s3cret")));
    let good = Credentials::basic("alice", "s3cret");
    let bad = Credentials::basic("alice", "wrong");
    let host = reg.host();
    let client = Registry::new(RegistryConfig::default())
        .with_credentials(move |domain| (domain == host).then(|| Credentials::basic("alice", "s3cret")));
    let a = stores();
    let target = r(&format!("{}/test/busybox:v1", reg.host()));
    let id = load(&a.store, BUSYBOX, &target);
    // Stored credentials (the lookup) are used when none are given.
    client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();
    client.login(&reg.host(), &good).unwrap();
    assert_eq!(client.login(&reg.host(), &bad).unwrap_err().kind(), ErrorKind::Unauthorized);

    let b = stores();
    let opts = PullOptions { credentials: Some(bad.clone()), ..amd64() };
    let e = client.pull(&b.store, &target, &opts, &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(!e.to_string().contains("wrong"));
    let e = client.push(&a.store, &target, &PushOptions { credentials: Some(bad) }, &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    let anonymous = Registry::default();
    let e = anonymous.pull(&b.store, &target, &amd64(), &mut |_| {}).unwrap_err();
    assert!(e.to_string().starts_with("pull access denied for"), "{e}");

    let opts = PullOptions { credentials: Some(good), ..amd64() };
    assert_eq!(anonymous.pull(&b.store, &target, &opts, &mut |_| {}).unwrap().id, id);
}

#[test]
fn tampered_blob_is_refused_and_nothing_is_left() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default();
    let a = stores();
    let target = r(&format!("{}/test/busybox:v1", reg.host()));
    let id = load(&a.store, BUSYBOX, &target);
    client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();
    let img = a.store.get_by_id(&id).unwrap();
    let blob = &img.layers[0].blob;
    let path = reg.blob_path(blob);
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&path, &data).unwrap();

    let b = stores();
    let e = client.pull(&b.store, &target, &amd64(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataLoss, "{e}");
    assert_eq!(e.to_string(), format!("filesystem layer verification failed for digest {blob}"));
    assert!(b.store.list().unwrap().is_empty());
    assert!(b.store.content().list().unwrap().is_empty());
    assert!(b.store.snapshots().list().is_empty());
}

#[test]
fn multi_arch_index_picks_the_platform() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default();
    let a = stores();
    let amd = r(&format!("{}/test/multi:amd64", reg.host()));
    let id = load(&a.store, BUSYBOX, &amd);
    let amd_digest = client.push(&a.store, &amd, &PushOptions::default(), &mut |_| {}).unwrap();

    // An "arm64" image: the same layers under a config that says arm64.
    let img = a.store.get_by_id(&id).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_slice(&img.config_bytes).unwrap();
    cfg["architecture"] = "arm64".into();
    cfg["variant"] = "v8".into();
    let arm_cfg = serde_json::to_vec(&cfg).unwrap();
    let arm_ref = r(&format!("{}/test/multi:arm64", reg.host()));
    let arm_id = {
        let layers = img.layers.clone();
        let arm_id = a.store.register(&arm_cfg, &layers, std::slice::from_ref(&arm_ref), "").unwrap();
        client.push(&a.store, &arm_ref, &PushOptions::default(), &mut |_| {}).unwrap();
        arm_id
    };
    let arm_digest = a.store.get_by_id(&arm_id).unwrap().digests.iter().find_map(|d| d.digest.clone()).unwrap();
    let size_of = |tag: &str| -> u64 {
        let out = Command::new("curl")
            .args(["-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json"])
            .arg(format!("http://{}/v2/test/multi/manifests/{tag}", reg.host()))
            .output()
            .unwrap();
        out.stdout.len() as u64
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_digest, "size": size_of("arm64"),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd_digest, "size": size_of("amd64"),
             "platform": {"architecture": "amd64", "os": "linux"}},
        ]
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let _: ImageIndex = serde_json::from_slice(&bytes).unwrap();
    let multi = r(&format!("{}/test/multi:latest", reg.host()));
    let index_digest = client.put_manifest_bytes(&multi, "latest", MEDIA_OCI_INDEX, &bytes, None).unwrap();

    let b = stores();
    let p = client.pull(&b.store, &multi, &amd64(), &mut |_| {}).unwrap();
    assert_eq!(p.id, id);
    // The repo digest is the index's, as Docker records it.
    assert_eq!(p.digest, index_digest);
    let arm = PullOptions { platform: Platform::parse("linux/arm64").unwrap(), ..Default::default() };
    let p = client.pull(&b.store, &multi, &arm, &mut |_| {}).unwrap();
    assert_eq!(p.id, arm_id);
    let none = PullOptions { platform: Platform::parse("linux/s390x").unwrap(), ..Default::default() };
    let e = client.pull(&b.store, &multi, &none, &mut |_| {}).unwrap_err();
    assert_eq!(e.to_string(), "no matching manifest for linux/s390x in the manifest list entries");
}

#[test]
fn layers_already_present_are_skipped() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default();
    let a = stores();
    let target = r(&format!("{}/test/busybox:v1", reg.host()));
    let id = load(&a.store, BUSYBOX, &target);
    client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();
    // The same store already has every layer (loaded from the archive).
    let other = r(&format!("{}/test/busybox:v1", reg.host()));
    let mut events = Vec::new();
    let p = client.pull(&a.store, &other, &amd64(), &mut |e| events.push(e)).unwrap();
    assert_eq!(p.id, id);
    let n_layers = a.store.get_by_id(&id).unwrap().layers.len();
    let exists =
        events.iter().filter(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::AlreadyExists, .. })).count();
    assert_eq!(exists, n_layers);
    assert!(!events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::Downloading, .. })));
}

/// A TCP proxy that cuts the first connection carrying more than `cut_after`
/// response bytes: the client must resume the blob with a Range request.
fn cutting_proxy(upstream: u16, cut_after: u64) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut_done = Arc::new(AtomicBool::new(false));
    let flag = cut_done.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let flag = flag.clone();
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
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
    (port, cut_done)
}

#[test]
fn dropped_connection_is_resumed_with_range() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default().with_parallel_downloads(1);
    let a = stores();
    let target = r(&format!("{}/test/busybox:v1", reg.host()));
    let id = load(&a.store, BUSYBOX, &target);
    client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();

    let (proxy, cut) = cutting_proxy(reg.port, 300 * 1024);
    let via_proxy = r(&format!("127.0.0.1:{proxy}/test/busybox:v1"));
    let b = stores();
    let mut events = Vec::new();
    let p = client.pull(&b.store, &via_proxy, &amd64(), &mut |e| events.push(e)).unwrap();
    assert!(cut.load(Ordering::Relaxed), "the proxy never cut a connection");
    assert_eq!(p.id, id);
    assert!(events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::Retrying, .. })));
}

/// `cargo test -p berth-registry --release -- --ignored --nocapture timing`
#[test]
#[ignore]
fn timing_debian_python() {
    if !ready() || !Path::new(DEBIAN_PYTHON).exists() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default();
    let a = stores();
    let target = r(&format!("{}/test/debian-python:latest", reg.host()));
    let t = Instant::now();
    let id = load(&a.store, DEBIAN_PYTHON, &target);
    eprintln!("load: {:?}", t.elapsed());
    let t = Instant::now();
    client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();
    eprintln!("push: {:?}", t.elapsed());
    let b = stores();
    let t = Instant::now();
    let p = client.pull(&b.store, &target, &amd64(), &mut |_| {}).unwrap();
    eprintln!("pull: {:?}", t.elapsed());
    assert_eq!(p.id, id);
}

/// A tiny token-auth front for the registry, as Docker Hub works: requests
/// without `Bearer tok-123` get a Bearer challenge; `/token` hands the token
/// out for bob's basic credentials. One request per connection.
struct TokenFront {
    port: u16,
    token_requests: Arc<std::sync::Mutex<Vec<String>>>,
}

fn token_front(upstream: u16) -> TokenFront {
    use base64::Engine;
    use std::io::BufRead;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let token_requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = token_requests.clone();
    let good_basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bob:pw"));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { break };
            let log = log.clone();
            let good_basic = good_basic.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(client.try_clone().unwrap());
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
                let path = lines[0].split(' ').nth(1).unwrap_or("").to_string();
                let auth = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("Authorization: ").or_else(|| l.strip_prefix("authorization: ")))
                    .unwrap_or("")
                    .to_string();
                let reply = |client: &mut TcpStream, status: &str, extra: &str, body: &str| {
                    let _ = write!(
                        client,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
                        body.len()
                    );
                };
                if path.starts_with("/token") {
                    log.lock().unwrap().push(path.clone());
                    if auth == good_basic {
                        reply(&mut client, "200 OK", "", r#"{"token":"tok-123","expires_in":300}"#);
                    } else {
                        reply(&mut client, "401 Unauthorized", "", r#"{"details":"incorrect username or password"}"#);
                    }
                    return;
                }
                if auth != "Bearer tok-123" {
                    let challenge = format!(
                        "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\"\r\n"
                    );
                    reply(
                        &mut client,
                        "401 Unauthorized",
                        &challenge,
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                    );
                    return;
                }
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
                let mut head = String::new();
                for l in &lines {
                    if !l.to_ascii_lowercase().starts_with("connection:") {
                        head.push_str(l);
                        head.push_str("\r\n");
                    }
                }
                head.push_str("Connection: close\r\n\r\n");
                if server.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let _ = std::io::copy(&mut server, &mut client);
            });
        }
    });
    TokenFront { port, token_requests }
}

#[test]
fn bearer_token_flow() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default();
    let a = stores();
    let target = r(&format!("{}/test/busybox:v1", reg.host()));
    let id = load(&a.store, BUSYBOX, &target);
    client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();

    let front = token_front(reg.port);
    let via = r(&format!("127.0.0.1:{}/test/busybox:v1", front.port));
    let b = stores();
    let e = client
        .pull(
            &b.store,
            &via,
            &PullOptions { credentials: Some(Credentials::basic("bob", "nope")), ..amd64() },
            &mut |_| {},
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert_eq!(e.to_string(), "unauthorized: incorrect username or password");

    let opts = PullOptions { credentials: Some(Credentials::basic("bob", "pw")), ..amd64() };
    assert_eq!(client.pull(&b.store, &via, &opts, &mut |_| {}).unwrap().id, id);
    let c = stores();
    assert_eq!(client.pull(&c.store, &via, &opts, &mut |_| {}).unwrap().id, id);
    let reqs = front.token_requests.lock().unwrap().clone();
    // One refused request, then one token reused for the second pull.
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(reqs[1].contains("scope=repository%3Atest%2Fbusybox%3Apull"), "{reqs:?}");
    assert!(reqs[1].contains("service=test-registry"), "{reqs:?}");
}

/// Forwards to `upstream`, cutting the first connection whose request body
/// passes `cut_after` bytes (an upload dropped mid-chunk).
fn upload_cutting_proxy(upstream: u16, cut_after: u64) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut_done = Arc::new(AtomicBool::new(false));
    let flag = cut_done.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let flag = flag.clone();
            let (mut s_read, mut c_write) = (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut c_read, mut s_write) = (client, server);
            std::thread::spawn(move || {
                let mut total = 0u64;
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    total += n as u64;
                    if total > cut_after && !flag.swap(true, Ordering::Relaxed) {
                        let keep = n - (total - cut_after) as usize;
                        let _ = s_write.write_all(&buf[..keep]);
                        let _ = s_write.shutdown(std::net::Shutdown::Both);
                        let _ = c_read.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, cut_done)
}

#[test]
fn chunked_upload_resumes_after_a_dropped_connection() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let (proxy, cut) = upload_cutting_proxy(reg.port, 700 * 1024);
    let client = Registry::default().with_upload_chunk(256 * 1024);
    let a = stores();
    let target = r(&format!("127.0.0.1:{proxy}/test/chunked:v1"));
    let id = load(&a.store, BUSYBOX, &target);
    let digest = client.push(&a.store, &target, &PushOptions::default(), &mut |_| {}).unwrap();
    assert!(cut.load(Ordering::Relaxed), "the proxy never cut an upload");
    // What the registry holds verifies on pull.
    let b = stores();
    let direct = r(&format!("{}/test/chunked@{digest}", reg.host()));
    assert_eq!(client.pull(&b.store, &direct, &amd64(), &mut |_| {}).unwrap().id, id);
}

#[test]
fn blobs_are_mounted_from_another_repository() {
    if !ready() {
        return;
    }
    let reg = RegistryProc::start(None);
    let client = Registry::default();
    let a = stores();
    let first = r(&format!("{}/team/one:v1", reg.host()));
    let id = load(&a.store, BUSYBOX, &first);
    client.push(&a.store, &first, &PushOptions::default(), &mut |_| {}).unwrap();
    let second = r(&format!("{}/team/two:v1", reg.host()));
    a.store.tag(&id, &second).unwrap();
    let mut events = Vec::new();
    client.push(&a.store, &second, &PushOptions::default(), &mut |e| events.push(e)).unwrap();
    assert!(
        events.iter().any(|e| matches!(e, ProgressEvent::Status { status, .. } if status == "Mounted from team/one")),
        "{events:?}"
    );
    assert!(!events.iter().any(|e| matches!(e, ProgressEvent::Layer { status: LayerStatus::Pushed, .. })));
}
