//! The benchmark figures.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

#[path = "bench_volumes.rs"]
mod volumes;

const REF_SOCK: &str = "/run/berth-ref/docker.sock";

struct Opts {
    only: Vec<String>,
    images: usize,
    runs: usize,
    fixtures: PathBuf,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o =
        Opts { only: Vec::new(), images: 500, runs: 20, fixtures: PathBuf::from("/var/cache/berth-fixtures/images") };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().context(format!("{a} needs a value"));
        match a.as_str() {
            "--only" => o.only = val()?.split(',').map(String::from).collect(),
            "--images" => o.images = val()?.parse()?,
            "--runs" => o.runs = val()?.parse()?,
            "--fixtures" => o.fixtures = PathBuf::from(val()?),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(o)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

pub(crate) fn timed(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    run_quiet(cmd)?;
    Ok(t.elapsed())
}

pub(crate) fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

pub(crate) fn pid_of(name: &str, needle: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.split_whitespace().next().is_some_and(|c| c.ends_with(name)) && cmdline.contains(needle) {
            return Some(pid);
        }
    }
    None
}

/// A berth daemon on a scratch data root, for the duration of the bench.
pub(crate) struct BerthDaemon {
    bin: PathBuf,
    pub(crate) dir: PathBuf,
    pub(crate) child: Child,
}

impl BerthDaemon {
    fn start(bin: &Path) -> Result<Self> {
        Self::start_with(bin, "main", &[])
    }

    /// A second daemon (own root and socket) with extra flags.
    pub(crate) fn start_with(bin: &Path, name: &str, flags: &[&str]) -> Result<Self> {
        let dir = PathBuf::from(format!("/tmp/berth-bench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("daemon.log"))?;
        let child = Command::new(bin)
            .args(["daemon", "--data-root"])
            .arg(dir.join("root"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("s.sock").display()))
            .args(flags)
            .args(["--bridge", &format!("bb{}", std::process::id())])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let d = BerthDaemon { bin: bin.to_path_buf(), dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(d.dir.join("s.sock")).is_err() {
            if Instant::now() > deadline {
                bail!("berth daemon did not start");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(d)
    }
    pub(crate) fn cli(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("-H").arg(format!("unix://{}", self.dir.join("s.sock").display()));
        c
    }
}

impl Drop for BerthDaemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn docker() -> Command {
    let mut c = Command::new("docker");
    c.env("DOCKER_HOST", format!("unix://{REF_SOCK}"));
    c
}

impl BerthDaemon {
    /// The real docker CLI pointed at this berth daemon.
    fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.dir.join("s.sock").display()));
        c
    }
}

/// Runs `f(i)` for i in 0..n on `threads` threads; returns the wall time.
fn parallel(n: usize, threads: usize, f: impl Fn(usize) -> Result<()> + Sync) -> Result<Duration> {
    let t = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                if let Err(e) = f(i) {
                    if let Ok(mut v) = errors.lock() {
                        v.push(e.to_string());
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_default();
    if let Some(e) = errors.first() {
        bail!("{} of {n} failed, first: {e}", errors.len());
    }
    Ok(t.elapsed())
}

fn shim_pids(name: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if String::from_utf8_lossy(first).ends_with(name) {
            out.push(pid);
        }
    }
    out
}

fn avg_rss_kb(pids: &[u32]) -> u64 {
    if pids.is_empty() {
        return 0;
    }
    pids.iter().map(|p| rss_kb(*p)).sum::<u64>() / pids.len() as u64
}

pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) berth: String,
    pub(crate) dockerd: String,
    pub(crate) ratio: String,
}

pub(crate) fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1000.0;
    if m < 1.0 {
        return format!("{:.0} µs", m * 1000.0);
    }
    if m >= 1000.0 {
        format!("{:.2} s", m / 1000.0)
    } else {
        format!("{m:.1} ms")
    }
}

pub(crate) fn row_time(name: &str, b: Duration, d: Option<Duration>) -> Row {
    Row {
        name: name.into(),
        berth: ms(b),
        dockerd: d.map(ms).unwrap_or_else(|| "-".into()),
        ratio: d.map(|d| format!("{:.1}x", d.as_secs_f64() / b.as_secs_f64().max(1e-9))).unwrap_or_else(|| "-".into()),
    }
}

pub(crate) fn row_mem(name: &str, b_kb: u64, d_kb: Option<u64>) -> Row {
    let f = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    Row {
        name: name.into(),
        berth: f(b_kb),
        dockerd: d_kb.map(f).unwrap_or_else(|| "-".into()),
        ratio: d_kb.map(|d| format!("{:.1}x", d as f64 / (b_kb.max(1)) as f64)).unwrap_or_else(|| "-".into()),
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let want = |n: &str| o.only.is_empty() || o.only.iter().any(|x| x == n);
    let root = repo_root();
    run_quiet(Command::new("cargo").current_dir(&root).args(["build", "--release", "--locked", "-p", "berth"]))?;
    // The binary is where cargo put it: $CARGO_TARGET_DIR when set.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let bin = target_dir.join("release/berth");
    std::fs::create_dir_all(&o.fixtures)?;
    run_quiet(Command::new("bash").arg(root.join("scripts/fixtures/all.sh")).arg(&o.fixtures))?;
    let dockerd = std::os::unix::net::UnixStream::connect(REF_SOCK).is_ok();
    if !dockerd {
        eprintln!("note: reference dockerd not running (bash scripts/dockerd-ref.sh start); berth figures only");
    }
    let d = BerthDaemon::start(&bin)?;
    let mut rows = Vec::new();
    // Every container figure runs busybox.
    let bb = o.fixtures.join("busybox.tar");
    run_quiet(d.cli().args(["load", "-i"]).arg(&bb))?;
    if dockerd {
        run_quiet(docker().args(["load", "-i"]).arg(&bb))?;
    }

    if want("load") {
        let py = o.fixtures.join("debian-python.tar");
        let size = std::fs::metadata(&py)?.len() as f64 / 1e6;
        let runs = 3;
        let mut bt = Vec::new();
        let mut dt = Vec::new();
        for _ in 0..runs {
            let _ = d.cli().args(["rmi", "-f", "python:3.12-slim", "berth-test/python:3"]).output();
            bt.push(timed(d.cli().args(["load", "-i"]).arg(&py))?);
            if dockerd {
                let _ = docker().args(["rmi", "-f", "python:3.12-slim", "berth-test/python:3"]).output();
                dt.push(timed(docker().args(["load", "-i"]).arg(&py))?);
            }
        }
        rows.push(row_time(
            &format!("load debian/python archive ({size:.0} MB), median of {runs}"),
            median(bt),
            dockerd.then(|| median(dt)),
        ));
    }

    if want("images") {
        let n = o.images;
        let tmp = d.dir.join("tiny.tar");
        for i in 0..n {
            let mut b = tar::Builder::new(std::fs::File::create(&tmp)?);
            let data = format!("{i}\n");
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, "n", data.as_bytes())?;
            b.finish()?;
            drop(b);
            let tag = format!("bench/img{i}:latest");
            run_quiet(d.cli().args(["import"]).arg(&tmp).arg(&tag))?;
            if dockerd {
                run_quiet(docker().args(["import"]).arg(&tmp).arg(&tag))?;
            }
        }
        let bt: Vec<Duration> = (0..o.runs).map(|_| timed(d.cli().arg("images"))).collect::<Result<_>>()?;
        let dt: Option<Vec<Duration>> =
            dockerd.then(|| (0..o.runs).map(|_| timed(docker().arg("images"))).collect::<Result<_>>()).transpose()?;
        rows.push(row_time(
            &format!("`images` with {n} images (CLI, median of {})", o.runs),
            median(bt),
            dt.map(median),
        ));
        if dockerd {
            for i in 0..n {
                let _ = docker().args(["rmi", &format!("bench/img{i}:latest")]).output();
            }
        }
    }

    if want("rss") {
        std::thread::sleep(Duration::from_millis(500));
        let b = rss_kb(d.child.id());
        let dk = dockerd.then(|| {
            pid_of("dockerd", "berth-ref").map(rss_kb).unwrap_or(0)
                + pid_of("containerd", "berth-ref").map(rss_kb).unwrap_or(0)
        });
        rows.push(row_mem("daemon RSS, idle (dockerd: dockerd + containerd)", b, dk));
    }

    if want("cli") {
        let bt: Vec<Duration> = (0..o.runs).map(|_| timed(d.cli().arg("version"))).collect::<Result<_>>()?;
        let dt: Option<Vec<Duration>> =
            dockerd.then(|| (0..o.runs).map(|_| timed(docker().arg("version"))).collect::<Result<_>>()).transpose()?;
        rows.push(row_time(&format!("`version` round trip (median of {})", o.runs), median(bt), dt.map(median)));
        // The embedded default: nothing on the default socket, the CLI starts the daemon.
        if std::os::unix::net::UnixStream::connect("/run/berth/berth.sock").is_err() {
            let mut times = Vec::new();
            for _ in 0..5 {
                times
                    .push(timed(Command::new(&bin).arg("version").env_remove("DOCKER_HOST").env_remove("BERTH_HOST"))?);
                stop_default_daemon()?;
            }
            rows.push(row_time("`version` with daemon auto-start (median of 5)", median(times), None));
        } else {
            eprintln!("note: a daemon already answers on /run/berth/berth.sock; auto-start not measured");
        }
    }

    if want("run") {
        let args = ["run", "--rm", "--network", "none", "busybox", "true"];
        let berth_cli_has_run =
            Command::new(&bin).args(["run", "--help"]).output().map(|o| o.status.success()).unwrap_or(false);
        let _ = timed(d.docker().args(args));
        let dt: Option<Vec<Duration>> =
            dockerd.then(|| (0..o.runs).map(|_| timed(docker().args(args))).collect::<Result<_>>()).transpose()?;
        if berth_cli_has_run {
            let bt: Vec<Duration> = (0..o.runs).map(|_| timed(d.cli().args(args))).collect::<Result<_>>()?;
            rows.push(row_time(
                &format!("`run --rm busybox true` (berth CLI vs docker CLI on dockerd, median of {})", o.runs),
                median(bt),
                dt.clone().map(median),
            ));
        }
        let bt: Vec<Duration> = (0..o.runs).map(|_| timed(d.docker().args(args))).collect::<Result<_>>()?;
        rows.push(row_time(
            &format!("`run --rm busybox true` (docker CLI on each, median of {})", o.runs),
            median(bt),
            dt.map(median),
        ));
    }

    if want("containers") {
        let n = 100;
        let start = |c: &mut Command, i: usize| {
            c.args(["run", "-d", "--network", "none", "--name", &format!("bench{i}"), "busybox", "sleep", "600"]);
        };
        let bt = parallel(n, 8, |i| {
            let mut c = d.docker();
            start(&mut c, i);
            run_quiet(&mut c)
        })?;
        let dt = if dockerd {
            Some(parallel(n, 8, |i| {
                let mut c = docker();
                start(&mut c, i);
                run_quiet(&mut c)
            })?)
        } else {
            None
        };
        rows.push(row_time(&format!("{n} containers started concurrently (8 clients)"), bt, dt));
        std::thread::sleep(Duration::from_millis(500));
        let shim = avg_rss_kb(&shim_pids("berth-shim"));
        let dshim = dockerd.then(|| avg_rss_kb(&shim_pids("containerd-shim-runc-v2")));
        rows.push(row_mem("shim RSS per running container (avg)", shim, dshim));
        let b = rss_kb(d.child.id());
        let dk = dockerd.then(|| {
            pid_of("dockerd", "berth-ref").map(rss_kb).unwrap_or(0)
                + pid_of("containerd", "berth-ref").map(rss_kb).unwrap_or(0)
        });
        rows.push(row_mem(&format!("daemon RSS with {n} running containers"), b, dk));
        let names: Vec<String> = (0..n).map(|i| format!("bench{i}")).collect();
        let mut c = d.docker();
        c.args(["rm", "-f"]).args(&names);
        run_quiet(&mut c)?;
        if dockerd {
            let mut c = docker();
            c.args(["rm", "-f"]).args(&names);
            run_quiet(&mut c)?;
        }
    }

    if want("ps") {
        let n = 1000;
        parallel(n, 8, |i| {
            run_quiet(d.docker().args(["create", "--network", "none", "--name", &format!("ps{i}"), "busybox", "true"]))
        })?;
        if dockerd {
            parallel(n, 8, |i| {
                run_quiet(docker().args([
                    "create",
                    "--network",
                    "none",
                    "--name",
                    &format!("ps{i}"),
                    "busybox",
                    "true",
                ]))
            })?;
        }
        let bt2: Vec<Duration> = (0..10).map(|_| timed(d.docker().args(["ps", "-a"]))).collect::<Result<_>>()?;
        let dt: Option<Vec<Duration>> =
            dockerd.then(|| (0..10).map(|_| timed(docker().args(["ps", "-a"]))).collect::<Result<_>>()).transpose()?;
        let berth_ps_ok =
            Command::new(&bin).args(["ps", "--help"]).output().map(|o| o.status.success()).unwrap_or(false);
        if berth_ps_ok {
            let bt: Vec<Duration> = (0..10).map(|_| timed(d.cli().args(["ps", "-a"]))).collect::<Result<_>>()?;
            rows.push(row_time(
                &format!("`ps -a` with {n} containers (berth CLI, median of 10)"),
                median(bt),
                dt.clone().map(median),
            ));
        }
        rows.push(row_time(
            &format!("`ps -a` with {n} containers (docker CLI on each, median of 10)"),
            median(bt2),
            dt.map(median),
        ));
        if dockerd {
            let _ = docker().args(["container", "prune", "-f"]).output();
        }
    }

    if want("push") || want("pull") || want("pull-layers") {
        crate::bench_registry::run(&bin, &d, &o.fixtures, dockerd, &want, &mut rows)?;
    }

    if want("volumes") {
        volumes::run(&d, dockerd, &o.fixtures, &mut rows)?;
    }

    if want("net") {
        net(&d, dockerd, o.runs, &mut rows)?;
    }

    if want("build") {
        rows.extend(bench_build(&d, &o.fixtures, dockerd)?);
    }

    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(10).max(6);
    println!("{:w$}  {:>12}  {:>12}  {:>16}", "figure", "berth", "dockerd", "dockerd/berth");
    for r in rows {
        println!("{:w$}  {:>12}  {:>12}  {:>16}", r.name, r.berth, r.dockerd, r.ratio);
    }
    Ok(())
}

/// The networking figures (see `bench_net`).
fn net(d: &BerthDaemon, dockerd: bool, runs: usize, rows: &mut Vec<Row>) -> Result<()> {
    use crate::bench_net::{dns_latency, out, tcp_throughput};
    use std::net::{Ipv4Addr, SocketAddr};
    let args = ["run", "--rm", "busybox", "true"];
    let _ = timed(d.cli().args(args));
    let bt: Vec<Duration> = (0..runs).map(|_| timed(d.cli().args(args))).collect::<Result<_>>()?;
    // The reference dockerd has a bridge only when started with --with-network
    // (without one its containers get no network at all: not comparable).
    let ref_bridge =
        dockerd && docker().args(["network", "inspect", "bridge"]).output().is_ok_and(|o| o.status.success());
    let dt: Option<Vec<Duration>> = if ref_bridge && timed(docker().args(args)).is_ok() {
        Some((0..runs).map(|_| timed(docker().args(args))).collect::<Result<_>>()?)
    } else {
        None
    };
    rows.push(row_time(
        &format!("`run --rm busybox true` on the default bridge (CLI, median of {runs})"),
        median(bt),
        dt.map(median),
    ));

    // Embedded DNS: queries to the network's gateway, answered from the records.
    run_quiet(d.cli().args(["network", "create", "--subnet", "10.233.77.0/24", "benchnet"]))?;
    run_quiet(d.cli().args(["run", "-d", "--name", "dnsb", "--network", "benchnet", "busybox", "sleep", "600"]))?;
    let lat = dns_latency(Ipv4Addr::new(10, 233, 77, 1), "dnsb", 500)?;
    rows.push(row_time("embedded DNS lookup of a container name (median of 500)", lat, None));

    // TCP throughput into a container: published port, container address, host networking.
    let bytes = 2usize << 30;
    let sink = ["sh", "-c", "while true; do nc -l -p 5201 > /dev/null; done"];
    run_quiet(d.cli().args(["run", "-d", "--name", "sinkb", "-p", "127.0.0.1:25201:5201", "busybox"]).args(sink))?;
    let ip: Ipv4Addr = out(d.cli().args(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "sinkb"]))?.parse()?;
    let host_sink = ["sh", "-c", "while true; do nc -l -p 25202 > /dev/null; done"];
    run_quiet(d.cli().args(["run", "-d", "--name", "sinkh", "--network", "host", "busybox"]).args(host_sink))?;
    let host = tcp_throughput(SocketAddr::from((Ipv4Addr::LOCALHOST, 25202)), bytes)?;
    let direct = tcp_throughput(SocketAddr::from((ip, 5201)), bytes)?;
    let published = tcp_throughput(SocketAddr::from((Ipv4Addr::LOCALHOST, 25201)), bytes)?;
    let mbs = |name: &str, v: f64| Row {
        name: name.into(),
        berth: format!("{v:.0} MB/s"),
        dockerd: "-".into(),
        ratio: format!("{:.2}x host", v / host),
    };
    rows.push(mbs("TCP into a container, host networking (baseline)", host));
    rows.push(mbs("TCP into a container by its bridge address", direct));
    rows.push(mbs("TCP into a container via a published port (127.0.0.1)", published));
    let _ = d.cli().args(["rm", "-f", "dnsb", "sinkb", "sinkh"]).output();
    let _ = d.cli().args(["network", "rm", "benchnet"]).output();
    Ok(())
}

fn stop_default_daemon() -> Result<()> {
    let pid: i32 = std::fs::read_to_string("/var/lib/berth/berth.lock")?.trim().parse()?;
    // SAFETY: plain kill(2).
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().map(|r| r.trim_start().starts_with('Z')) != Some(true))
            .unwrap_or(false)
    };
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Cold (`--no-cache`) and fully cached builds of a small python app on the
/// debian/python fixture: requirements copied first, a local package
/// installed by pip (no network needed), the app copied last. dockerd runs
/// the same context through its legacy builder (the docker CLI without
/// buildx), as berth's `POST /build` serves it.
fn bench_build(d: &BerthDaemon, fixtures: &Path, dockerd: bool) -> Result<Vec<Row>> {
    let py = fixtures.join("debian-python.tar");
    run_quiet(d.cli().args(["load", "-i"]).arg(&py))?;
    run_quiet(d.cli().args(["tag", "python:3.12-slim", "python:3.11-slim"]))?;
    if dockerd {
        run_quiet(docker().args(["load", "-i"]).arg(&py))?;
        run_quiet(docker().args(["tag", "python:3.12-slim", "python:3.11-slim"]))?;
    }
    let ctx = d.dir.join("build-ctx");
    for (p, c) in [
        ("greet/setup.py", "from setuptools import setup\nsetup(name='greet', version='1.0', packages=['greet'])\n"),
        ("greet/greet/__init__.py", "def hello(n):\n    return f'hello {n}'\n"),
        ("requirements.txt", "--no-index\n./greet\n"),
        ("app.py", "import greet\nprint(greet.hello('bench'))\n"),
        (
            "Dockerfile",
            "FROM python:3.11-slim\nENV PYTHONUNBUFFERED=1\nWORKDIR /app\nCOPY requirements.txt .\nCOPY greet/ greet/\nRUN pip install --no-cache-dir --no-build-isolation -r requirements.txt\nCOPY app.py .\nEXPOSE 8000\nCMD [\"python\", \"app.py\"]\n",
        ),
    ] {
        let f = ctx.join(p);
        std::fs::create_dir_all(f.parent().context("path")?)?;
        std::fs::write(f, c)?;
    }
    let runs = 3;
    let berth_build = |extra: &[&str]| -> Result<Duration> {
        timed(d.cli().args(["build", "-q", "-t", "bench-app"]).args(extra).arg(&ctx))
    };
    let docker_build = |extra: &[&str]| -> Result<Duration> {
        timed(docker().env("DOCKER_BUILDKIT", "0").args(["build", "-q", "-t", "bench-app"]).args(extra).arg(&ctx))
    };
    let mut rows = Vec::new();
    let bt: Vec<Duration> = (0..runs).map(|_| berth_build(&["--no-cache"])).collect::<Result<_>>()?;
    let dt: Option<Vec<Duration>> =
        dockerd.then(|| (0..runs).map(|_| docker_build(&["--no-cache"])).collect::<Result<_>>()).transpose()?;
    rows.push(row_time(&format!("build python app, cold (--no-cache), median of {runs}"), median(bt), dt.map(median)));
    let bt: Vec<Duration> = (0..runs * 3).map(|_| berth_build(&[])).collect::<Result<_>>()?;
    let dt: Option<Vec<Duration>> =
        dockerd.then(|| (0..runs * 3).map(|_| docker_build(&[])).collect::<Result<_>>()).transpose()?;
    rows.push(row_time(&format!("rebuild python app, all cached, median of {}", runs * 3), median(bt), dt.map(median)));
    if dockerd {
        // Only what this bench made: the reference daemon may be shared.
        let _ = docker().args(["rmi", "bench-app", "python:3.11-slim"]).output();
    }
    Ok(rows)
}
