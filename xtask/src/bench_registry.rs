//! Registry figures: push and pull of the debian/python image through a
//! local `docker-registry` (one fresh registry per engine, so neither finds
//! the other's blobs), the daemon's peak RSS during the pull, and a 10-layer
//! image pulled with 3 parallel downloads vs 1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};

use crate::bench::{docker, median, rss_kb, run_quiet, timed, BerthDaemon, Row};

/// A `docker-registry serve` on a random loopback port, killed on drop.
struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Registry {
    fn start(name: &str) -> Result<Registry> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = PathBuf::from(format!("/tmp/berth-bench-reg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(dir.join("storage"))?;
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        );
        std::fs::write(dir.join("config.yml"), cfg)?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let r = Registry { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("docker-registry did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(r)
    }
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Samples the summed RSS of `pids` every 10 ms until dropped; keeps the peak.
struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    fn watch(pids: Vec<u32>) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let now: u64 = pids.iter().map(|pid| rss_kb(*pid)).sum();
                p.fetch_max(now, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        PeakRss { stop, peak, thread: Some(thread) }
    }
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Times a pull and checks it really downloaded and unpacked (no
/// "Already exists" left over from an earlier run).
fn timed_full_pull(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let out = cmd.output()?;
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("Pull complete") || text.contains("Already exists") {
        bail!("{cmd:?} did not pull everything: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A docker-archive with `n` layers of `per_layer` pseudo-random bytes each.
fn layered_archive(path: &Path, n: usize, per_layer: usize) -> Result<()> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut layers = Vec::new();
    for i in 0..n {
        let mut data = vec![0u8; per_layer];
        for chunk in data.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = seed.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        t.append_data(&mut h, format!("layer{i}.bin"), data.as_slice())?;
        layers.push(t.into_inner()?);
    }
    let diff_ids: Vec<String> = layers.iter().map(|l| format!("sha256:{}", sha256_hex(l))).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string();
    let cfg_name = format!("{}.json", sha256_hex(config.as_bytes()));
    let layer_names: Vec<String> = diff_ids.iter().map(|d| format!("{}/layer.tar", &d[7..])).collect();
    let manifest =
        serde_json::json!([{"Config": cfg_name, "RepoTags": ["bench/layers:10"], "Layers": layer_names}]).to_string();
    let mut ar = tar::Builder::new(std::fs::File::create(path)?);
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        ar.append_data(&mut h, name, data)?;
        Ok(())
    };
    add(&cfg_name, config.as_bytes())?;
    for (name, l) in layer_names.iter().zip(&layers) {
        add(name, l)?;
    }
    add("manifest.json", manifest.as_bytes())?;
    ar.finish()?;
    Ok(())
}

fn dockerd_pids() -> Vec<u32> {
    [crate::bench::pid_of("dockerd", "berth-ref"), crate::bench::pid_of("containerd", "berth-ref")]
        .into_iter()
        .flatten()
        .collect()
}

pub fn run(
    bin: &Path,
    d: &BerthDaemon,
    fixtures: &Path,
    dockerd: bool,
    want: &dyn Fn(&str) -> bool,
    rows: &mut Vec<Row>,
) -> Result<()> {
    if !Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("note: docker-registry not installed; registry figures skipped");
        return Ok(());
    }
    if want("push") || want("pull") {
        let py = fixtures.join("debian-python.tar");
        let runs = 3;
        let (mut bpush, mut dpush, mut bpull, mut dpull) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut bpeak, mut dpeak) = (0u64, 0u64);
        run_quiet(d.cli().args(["load", "-i"]).arg(&py))?;
        if dockerd {
            run_quiet(docker().args(["load", "-i"]).arg(&py))?;
        }
        for _ in 0..runs {
            let reg = Registry::start("berth")?;
            let target = format!("{}/bench/python:3", reg.host());
            run_quiet(d.cli().args(["tag", "python:3.12-slim", &target]))?;
            bpush.push(timed(d.cli().args(["push", &target]))?);
            // Remove every local copy so the pull downloads and unpacks all of it.
            run_quiet(d.cli().args(["rmi", "-f", "python:3.12-slim", &target]))?;
            let _ = d.cli().args(["rmi", "-f", "berth-test/python:3"]).output();
            let peak = PeakRss::watch(vec![d.child.id()]);
            bpull.push(timed_full_pull(d.cli().args(["pull", &target]))?);
            bpeak = bpeak.max(peak.finish());
            // Keep the image under its usual name only, so the next run pulls it all again.
            run_quiet(d.cli().args(["tag", &target, "python:3.12-slim"]))?;
            run_quiet(d.cli().args(["rmi", &target]))?;
            if dockerd {
                let reg = Registry::start("dockerd")?;
                let target = format!("{}/bench/python:3", reg.host());
                run_quiet(docker().args(["tag", "python:3.12-slim", &target]))?;
                dpush.push(timed(docker().args(["push", &target]))?);
                let _ = docker().args(["rmi", "-f", "python:3.12-slim", &target, "berth-test/python:3"]).output();
                let peak = PeakRss::watch(dockerd_pids());
                match timed_full_pull(docker().args(["pull", &target])) {
                    Ok(t) => dpull.push(t),
                    // Another image in the shared reference dockerd holds the layer.
                    Err(e) => eprintln!("note: dockerd pull not counted: {e}"),
                }
                dpeak = dpeak.max(peak.finish());
                run_quiet(docker().args(["tag", &target, "python:3.12-slim"]))?;
                let _ = docker().args(["rmi", &target]).output();
            }
        }
        let size = std::fs::metadata(&py)?.len() as f64 / 1e6;
        if want("push") {
            rows.push(crate::bench::row_time(
                &format!("push debian/python ({size:.0} MB) to a local registry, median of {runs}"),
                median(bpush),
                dockerd.then(|| median(dpush)),
            ));
        }
        if want("pull") {
            rows.push(crate::bench::row_time(
                &format!("pull debian/python from a local registry, median of {runs}"),
                median(bpull),
                (dockerd && !dpull.is_empty()).then(|| median(dpull)),
            ));
            rows.push(crate::bench::row_mem(
                "daemon peak RSS during pull (dockerd: dockerd + containerd)",
                bpeak,
                dockerd.then_some(dpeak),
            ));
        }
    }
    if want("pull-layers") {
        let archive = d.dir.join("layers.tar");
        layered_archive(&archive, 10, 8 << 20)?;
        run_quiet(d.cli().args(["load", "-i"]).arg(&archive))?;
        let reg = Registry::start("layers")?;
        let target = format!("{}/bench/layers:10", reg.host());
        run_quiet(d.cli().args(["tag", "bench/layers:10", &target]))?;
        run_quiet(d.cli().args(["push", &target]))?;
        run_quiet(d.cli().args(["rmi", "-f", "bench/layers:10", &target]))?;
        let serial = BerthDaemon::start_with(bin, "serial", &["--max-concurrent-downloads", "1"])?;
        let mut par = Vec::new();
        let mut ser = Vec::new();
        for _ in 0..3 {
            par.push(timed_full_pull(d.cli().args(["pull", &target]))?);
            run_quiet(d.cli().args(["rmi", "-f", &target]))?;
            ser.push(timed_full_pull(serial.cli().args(["pull", &target]))?);
            run_quiet(serial.cli().args(["rmi", "-f", &target]))?;
        }
        let (p, s) = (median(par), median(ser));
        rows.push(Row {
            name: "pull of a 10-layer image (10 x 8 MB), 3 parallel downloads vs 1 (median of 3)".into(),
            berth: crate::bench::ms(p),
            dockerd: format!("serial {}", crate::bench::ms(s)),
            ratio: format!("{:.1}x", s.as_secs_f64() / p.as_secs_f64().max(1e-9)),
        });
        let _ = std::fs::remove_file(&archive);
    }
    Ok(())
}
