//! Finding the daemon: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the
//! default socket. When nothing answers on the default socket and we are
//! root, the CLI starts `berth daemon` in the background itself (the embedded
//! default: one package, no service manager) and waits for `/_ping`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use berth_client::Client;

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";

/// Where to connect, and whether we may start a daemon there ourselves.
#[derive(Debug, Clone)]
pub struct Target {
    pub socket: PathBuf,
    pub auto_start: bool,
}

pub fn parse_host(h: &str) -> Result<PathBuf> {
    if let Some(p) = h.strip_prefix("unix://") {
        if p.is_empty() {
            bail!("invalid host {h:?}: empty socket path");
        }
        return Ok(PathBuf::from(p));
    }
    if h.starts_with('/') {
        return Ok(PathBuf::from(h));
    }
    bail!("unsupported host {h:?}: berth speaks to unix sockets only (unix:///path)")
}

pub fn resolve(flag: Option<&str>) -> Result<Target> {
    if let Some(h) = flag {
        return Ok(Target { socket: parse_host(h)?, auto_start: false });
    }
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        if let Ok(h) = std::env::var(var) {
            if !h.is_empty() {
                return Ok(Target {
                    socket: parse_host(&h).with_context(|| format!("from ${var}"))?,
                    auto_start: false,
                });
            }
        }
    }
    Ok(Target { socket: PathBuf::from(DEFAULT_SOCKET), auto_start: true })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no failure modes.
    unsafe { libc::geteuid() == 0 }
}

/// A client for `target`, starting the embedded daemon first when allowed and needed.
pub async fn connect(target: &Target) -> Result<Client> {
    let client = Client::new(&target.socket);
    if !target.auto_start || !is_root() {
        return Ok(client);
    }
    if std::os::unix::net::UnixStream::connect(&target.socket).is_ok() {
        return Ok(client);
    }
    start_daemon(&target.socket)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if client.ping().await.is_ok() {
            return Ok(client);
        }
        if Instant::now() > deadline {
            bail!(
                "started berth daemon but it did not answer on {} within 15s; see {}/berth-daemon.log",
                target.socket.display(),
                DEFAULT_DATA_ROOT
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn start_daemon(socket: &Path) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("locating the berth binary")?;
    std::fs::create_dir_all(DEFAULT_DATA_ROOT).with_context(|| format!("creating {DEFAULT_DATA_ROOT}"))?;
    let log_path = Path::new(DEFAULT_DATA_ROOT).join("berth-daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let log2 = log.try_clone()?;
    let mut cmd = Command::new(exe);
    cmd.arg("daemon")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    // SAFETY: setsid is async-signal-safe; the daemon gets its own session so
    // it outlives this CLI and its terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| anyhow!("starting berth daemon: {e}"))?;
    // Not waited for: it is a daemon. Its exit is reaped by init once we exit.
    drop(child);
    Ok(())
}
