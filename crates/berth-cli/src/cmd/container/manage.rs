//! The smaller container commands: `stop`, `restart`, `kill`, `rm`, `wait`,
//! `rename`, `pause`, `unpause`, `top`, `port`, `update`, `prune`, `diff`,
//! `export`, `commit`, `logs` and `inspect`, each following its docker-cli
//! counterpart for requests, output and errors.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use berth_client::hyper::Method;
use berth_client::stdcopy::{Demuxer, Stream};
use berth_client::Client;
use clap::Args;
use serde_json::{json, Map, Value};

use super::opts::go_bool;
use super::values::{parse_cpus, parse_restart, ram_in_bytes};
use super::{call, client_error_text, finish, for_each, is_not_found, seg, status};
use crate::cmd::{confirm, filters_json, query, Ctx};

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "timeout", allow_negative_numbers = true)]
    pub timeout: Option<i64>,
    /// Seconds to wait before killing the container (deprecated: use --timeout)
    #[arg(long = "time", hide = true, allow_negative_numbers = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `stop` and `restart`: `POST /containers/{id}/stop|restart?signal=&t=`.
pub async fn stop(ctx: &Ctx, a: StopArgs, restart: bool) -> Result<i32> {
    finish(
        async {
            if a.time.is_some() && a.timeout.is_some() {
                return Err(status("conflicting options: cannot specify both --timeout and --time", 1));
            }
            let c = ctx.client().await?;
            let t = a.timeout.or(a.time);
            let api = c.api_version().await;
            let q = query(&[
                // The signal parameter exists from API 1.42, as docker's client knows.
                (
                    "signal",
                    if super::api_below(&api, "1.42") { String::new() } else { a.signal.clone().unwrap_or_default() },
                ),
                ("t", t.map(|t| t.to_string()).unwrap_or_default()),
            ]);
            let verb = if restart { "restart" } else { "stop" };
            if restart {
                // docker restarts one container after the other.
                let mut errs = Vec::new();
                for n in &a.containers {
                    match call(&c, Method::POST, &format!("/containers/{}/{verb}{q}", seg(n))).await {
                        Ok(()) => println!("{n}"),
                        Err(e) => errs.push(client_error_text(&e)),
                    }
                }
                return if errs.is_empty() { Ok(0) } else { Err(status(errs.join("\n"), 1)) };
            }
            for_each(&a.containers, |n| {
                let c = c.clone();
                let path = format!("/containers/{}/{verb}{q}", seg(&n));
                async move { call(&c, Method::POST, &path).await.map_err(anyhow::Error::from) }
            })
            .await
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal")]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn kill(ctx: &Ctx, a: KillArgs) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let q = query(&[("signal", a.signal.clone().unwrap_or_default())]);
            for_each(&a.containers, |n| {
                let c = c.clone();
                let path = format!("/containers/{}/kill{q}", seg(&n));
                async move { call(&c, Method::POST, &path).await.map_err(anyhow::Error::from) }
            })
            .await
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long = "link")]
    pub link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long = "volumes")]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let q = query(&[
                ("force", if a.force { "1".into() } else { String::new() }),
                ("link", if a.link { "1".into() } else { String::new() }),
                ("v", if a.volumes { "1".into() } else { String::new() }),
            ]);
            let results = futures_util::future::join_all(a.containers.iter().map(|n| {
                let c = c.clone();
                let id = n.trim_matches('/').to_string();
                let q = q.clone();
                async move {
                    if id.is_empty() {
                        return Err("container name cannot be empty".to_string());
                    }
                    match call(&c, Method::DELETE, &format!("/containers/{}{q}", seg(&id))).await {
                        Ok(()) => Ok(()),
                        // With -f a missing container is reported but not a failure.
                        Err(e) if a.force && is_not_found(&e) => {
                            eprintln!("{}", client_error_text(&e));
                            Err(String::new())
                        }
                        Err(e) => Err(client_error_text(&e)),
                    }
                }
            }))
            .await;
            let mut errs = Vec::new();
            for (n, r) in a.containers.iter().zip(results) {
                match r {
                    Ok(()) => println!("{n}"),
                    Err(e) if e.is_empty() => {}
                    Err(e) => errs.push(e),
                }
            }
            if errs.is_empty() {
                Ok(0)
            } else {
                Err(status(errs.join("\n"), 1))
            }
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn wait(ctx: &Ctx, a: WaitArgs) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let mut errs = Vec::new();
            for n in &a.containers {
                let r = match super::stream::Waiter::new(&c, n, "").await {
                    Ok(w) => w.result().await,
                    Err(e) => Err(client_error_text(&e)),
                };
                match r {
                    Ok(code) => println!("{code}"),
                    Err(e) => errs.push(e),
                }
            }
            if errs.is_empty() {
                Ok(0)
            } else {
                Err(status(errs.join("\n"), 1))
            }
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub async fn rename(ctx: &Ctx, a: RenameArgs) -> Result<i32> {
    finish(
        async {
            let (old, new) = (a.container.trim(), a.new_name.trim());
            if old.is_empty() || new.is_empty() {
                return Err(status("Error: Neither old nor new names may be empty", 1));
            }
            let c = ctx.client().await?;
            let q = query(&[("name", new.to_string())]);
            if let Err(e) = call(&c, Method::POST, &format!("/containers/{}/rename{q}", seg(old))).await {
                eprintln!("{}", client_error_text(&e));
                return Err(status(format!("Error: failed to rename container named {old}"), 1));
            }
            Ok(0)
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn pause(ctx: &Ctx, a: NamesArgs, pause: bool) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let verb = if pause { "pause" } else { "unpause" };
            for_each(&a.containers, |n| {
                let c = c.clone();
                let path = format!("/containers/{}/{verb}", seg(&n));
                async move { call(&c, Method::POST, &path).await.map_err(anyhow::Error::from) }
            })
            .await
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct TopArgs {
    pub container: String,
    /// ps OPTIONS
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub async fn top(ctx: &Ctx, a: TopArgs) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let q = query(&[("ps_args", a.ps_args.join(" "))]);
            let v: Value = c.get_json(&format!("/containers/{}/top{q}", seg(&a.container))).await?;
            print!("{}", render_top(&v));
            Ok(0)
        }
        .await,
    )
}

/// `docker top`'s table: Go's tabwriter with minwidth 20, padding 3.
fn render_top(v: &Value) -> String {
    let strings = |x: &Value| -> Vec<String> {
        x.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap_or("").to_string()).collect()).unwrap_or_default()
    };
    let mut tw = berth_format::TabWriter::new(20, 1, 3, ' ');
    tw.write(&format!("{}\n", strings(v.get("Titles").unwrap_or(&Value::Null)).join("\t")));
    for p in v.get("Processes").and_then(Value::as_array).into_iter().flatten() {
        tw.write(&format!("{}\n", strings(p).join("\t")));
    }
    tw.flush()
}

#[derive(Debug, Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub async fn port(ctx: &Ctx, a: PortArgs) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let v: Value = c.get_json(&format!("/containers/{}/json", seg(&a.container))).await?;
            let ports = v.pointer("/NetworkSettings/Ports").and_then(Value::as_object).cloned().unwrap_or_default();
            match super::ports::port_lines(&ports, a.port.as_deref()) {
                Ok(lines) => {
                    if !lines.is_empty() {
                        println!("{}", lines.join("\n"));
                    }
                    Ok(0)
                }
                Err(e) if e.is_empty() => Err(status(
                    format!(
                        "Error: No public port '{}' published for {}",
                        a.port.as_deref().unwrap_or(""),
                        a.container
                    ),
                    1,
                )),
                Err(e) => Err(status(e, 1)),
            }
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// Limit the CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<i64>,
    /// Limit the CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (deprecated)
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart")]
    pub restart: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// The `POST /containers/{id}/update` body (docker's `UpdateConfig`).
fn update_body(a: &UpdateArgs) -> std::result::Result<Value, String> {
    let flag_err = |flag: &str, v: &str, e: String| format!("invalid argument \"{v}\" for \"{flag}\" flag: {e}");
    let bytes = |flag: &str, v: &Option<String>| -> std::result::Result<i64, String> {
        match v {
            None => Ok(0),
            Some(s) => ram_in_bytes(s).map_err(|e| flag_err(flag, s, e)),
        }
    };
    let memory = bytes("-m, --memory", &a.memory)?;
    let reservation = bytes("--memory-reservation", &a.memory_reservation)?;
    let swap = match a.memory_swap.as_deref() {
        Some("-1") => -1,
        _ => bytes("--memory-swap", &a.memory_swap)?,
    };
    let kernel = bytes("--kernel-memory", &a.kernel_memory)?;
    let cpus = match &a.cpus {
        None => 0,
        Some(s) => parse_cpus(s).map_err(|e| flag_err("--cpus", s, e))?,
    };
    let mut body = Map::new();
    body.insert("CpuShares".into(), json!(a.cpu_shares.unwrap_or(0)));
    body.insert("Memory".into(), json!(memory));
    body.insert("NanoCpus".into(), json!(cpus));
    body.insert("CgroupParent".into(), json!(""));
    body.insert("BlkioWeight".into(), json!(a.blkio_weight.unwrap_or(0)));
    for k in [
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
    ] {
        body.insert(k.into(), Value::Null);
    }
    body.insert("CpuPeriod".into(), json!(a.cpu_period.unwrap_or(0)));
    body.insert("CpuQuota".into(), json!(a.cpu_quota.unwrap_or(0)));
    body.insert("CpuRealtimePeriod".into(), json!(a.cpu_rt_period.unwrap_or(0)));
    body.insert("CpuRealtimeRuntime".into(), json!(a.cpu_rt_runtime.unwrap_or(0)));
    body.insert("CpusetCpus".into(), json!(a.cpuset_cpus.clone().unwrap_or_default()));
    body.insert("CpusetMems".into(), json!(a.cpuset_mems.clone().unwrap_or_default()));
    body.insert("Devices".into(), Value::Null);
    body.insert("DeviceCgroupRules".into(), Value::Null);
    body.insert("DeviceRequests".into(), Value::Null);
    if kernel != 0 {
        body.insert("KernelMemory".into(), json!(kernel));
    }
    body.insert("MemoryReservation".into(), json!(reservation));
    body.insert("MemorySwap".into(), json!(swap));
    body.insert("MemorySwappiness".into(), Value::Null);
    body.insert("OomKillDisable".into(), Value::Null);
    body.insert("PidsLimit".into(), a.pids_limit.filter(|p| *p != 0).map_or(Value::Null, |p| json!(p)));
    body.insert("Ulimits".into(), Value::Null);
    body.insert("CpuCount".into(), json!(0));
    body.insert("CpuPercent".into(), json!(0));
    body.insert("IOMaximumIOps".into(), json!(0));
    body.insert("IOMaximumBandwidth".into(), json!(0));
    let (name, count) = match a.restart.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => parse_restart(r)?,
        None => (String::new(), 0),
    };
    body.insert("RestartPolicy".into(), json!({"Name": name, "MaximumRetryCount": count}));
    Ok(Value::Object(body))
}

pub async fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    finish(
        async {
            let any_flag = a.blkio_weight.is_some()
                || a.cpu_period.is_some()
                || a.cpu_quota.is_some()
                || a.cpu_rt_period.is_some()
                || a.cpu_rt_runtime.is_some()
                || a.cpuset_cpus.is_some()
                || a.cpuset_mems.is_some()
                || a.cpu_shares.is_some()
                || a.memory.is_some()
                || a.memory_reservation.is_some()
                || a.memory_swap.is_some()
                || a.kernel_memory.is_some()
                || a.restart.is_some()
                || a.pids_limit.is_some()
                || a.cpus.is_some();
            if !any_flag {
                return Err(status("you must provide one or more flags when using this command", 1));
            }
            let body = update_body(&a).map_err(|e| status(e, 1))?;
            let c = ctx.client().await?;
            let (mut warns, mut errs) = (Vec::new(), Vec::new());
            for n in &a.containers {
                match c.post_json::<Value>(&format!("/containers/{}/update", seg(n)), Some(&body)).await {
                    Ok(r) => {
                        println!("{n}");
                        for w in r.get("Warnings").and_then(Value::as_array).into_iter().flatten() {
                            warns.push(w.as_str().unwrap_or("").to_string());
                        }
                    }
                    Err(e) => errs.push(client_error_text(&e)),
                }
            }
            if !warns.is_empty() {
                println!("{}", warns.join("\n"));
            }
            if errs.is_empty() {
                Ok(0)
            } else {
                Err(status(errs.join("\n"), 1))
            }
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    finish(
        async {
            if !a.force {
                println!("WARNING! This will remove all stopped containers.");
                if !confirm("Are you sure you want to continue?") {
                    return Err(status("container prune has been cancelled", 1));
                }
            }
            let c = ctx.client().await?;
            let filters = filters_json(&a.filter).map_err(|e| status(e.to_string(), 1))?;
            let v: Value = c.post_json(&format!("/containers/prune{}", query(&[("filters", filters)])), None).await?;
            let deleted: Vec<&str> = v
                .get("ContainersDeleted")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut reclaimed = 0.0;
            if !deleted.is_empty() {
                println!("Deleted Containers:");
                for id in &deleted {
                    println!("{id}");
                }
                println!();
                reclaimed = v.get("SpaceReclaimed").and_then(Value::as_f64).unwrap_or(0.0);
            }
            println!("Total reclaimed space: {}", crate::units::human_size_4(reclaimed));
            Ok(0)
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub container: String,
}

pub async fn diff(ctx: &Ctx, a: DiffArgs) -> Result<i32> {
    finish(
        async {
            if a.container.is_empty() {
                return Err(status("Container name cannot be empty", 1));
            }
            let c = ctx.client().await?;
            let changes: Value = c.get_json(&format!("/containers/{}/changes", seg(&a.container))).await?;
            let mut out = std::io::stdout().lock();
            for ch in changes.as_array().into_iter().flatten() {
                let kind = match ch.get("Kind").and_then(Value::as_i64) {
                    Some(0) => "C",
                    Some(1) => "A",
                    Some(2) => "D",
                    _ => "?",
                };
                writeln!(out, "{kind} {}", ch.get("Path").and_then(Value::as_str).unwrap_or(""))?;
            }
            Ok(0)
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    pub container: String,
}

pub async fn export(ctx: &Ctx, a: ExportArgs) -> Result<i32> {
    finish(
        async {
            if a.output.is_none() && std::io::stdout().is_terminal() {
                return Err(status("cowardly refusing to save to a terminal. Use the -o flag or redirect", 1));
            }
            let c = ctx.client().await?;
            let r = c
                .request(Method::GET, &format!("/containers/{}/export", seg(&a.container)), berth_client::empty(), &[])
                .await?;
            copy_body(r, a.output.as_deref()).await?;
            Ok(0)
        }
        .await,
    )
}

/// Streams a response body to a file (written beside it and renamed, as
/// docker's atomic writer does) or to stdout.
async fn copy_body(
    r: berth_client::hyper::Response<berth_client::hyper::body::Incoming>,
    path: Option<&str>,
) -> Result<()> {
    use http_body_util::BodyExt;
    let mut body = r.into_body();
    let (mut out, tmp): (Box<dyn Write>, Option<(std::path::PathBuf, String)>) = match path {
        Some(p) => {
            let dest = std::path::Path::new(p);
            let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.tmp{}",
                dest.file_name().and_then(|s| s.to_str()).unwrap_or("export"),
                std::process::id()
            ));
            let f = std::fs::File::create(&tmp).map_err(|e| status(format!("failed to export container: {e}"), 1))?;
            (Box::new(std::io::BufWriter::new(f)), Some((tmp, p.to_string())))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let res: Result<()> = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| anyhow::anyhow!("error reading from daemon: {e}"))?;
            if let Some(d) = frame.data_ref() {
                out.write_all(d)?;
            }
        }
        out.flush()?;
        Ok(())
    }
    .await;
    drop(out);
    match (res, tmp) {
        (Ok(()), Some((tmp, dest))) => {
            std::fs::rename(&tmp, &dest).map_err(|e| status(format!("failed to export container: {e}"), 1))?;
            Ok(())
        }
        (Err(e), Some((tmp, _))) => {
            let _ = std::fs::remove_file(tmp);
            Err(e)
        }
        (r, None) => r,
    }
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long = "author")]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long = "pause", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = go_bool)]
    pub pause: bool,
    pub container: String,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

pub async fn commit(ctx: &Ctx, a: CommitArgs) -> Result<i32> {
    finish(
        async {
            let (repo, tag) = match a.reference.as_deref() {
                None | Some("") => (String::new(), String::new()),
                Some(r) => {
                    let slash = r.rfind('/').map_or(0, |i| i + 1);
                    match r[slash..].rfind(':') {
                        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
                        None => (r.to_string(), String::new()),
                    }
                }
            };
            let mut pairs = vec![
                ("container", a.container.clone()),
                ("repo", repo),
                ("tag", tag),
                ("comment", a.message.clone().unwrap_or_default()),
                ("author", a.author.clone().unwrap_or_default()),
            ];
            if !a.pause {
                pairs.push(("pause", "0".into()));
            }
            for ch in &a.change {
                pairs.push(("changes", ch.clone()));
            }
            let c = ctx.client().await?;
            let v: Value = c.post_json(&format!("/commit{}", query(&pairs)), Some(&json!({}))).await?;
            println!("{}", v.get("Id").and_then(Value::as_str).unwrap_or(""));
            Ok(0)
        }
        .await,
    )
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long = "details")]
    pub details: bool,
    /// Follow log output
    #[arg(short = 'f', long = "follow")]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long = "since")]
    pub since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long = "tail", default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long = "until")]
    pub until: Option<String>,
    pub container: String,
}

/// docker's `timetypes.GetTimestamp`: a Go duration counts back from now;
/// RFC 3339 forms (date, date and time, with or without zone) become
/// `seconds.nanoseconds`; a unix timestamp passes through.
pub fn get_timestamp(value: &str, now: chrono::DateTime<chrono::Local>) -> std::result::Result<String, String> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    if value != "0" {
        if let Ok(d) = super::values::go_duration(value) {
            return Ok((now - chrono::Duration::nanoseconds(d)).timestamp().to_string());
        }
    }
    let fail = || format!("failed to parse value as time or duration: {}", super::values::go_quote(value));
    let with_zone = value.contains(['z', 'Z', '+']) || value.matches('-').count() == 3;
    let fmt = |t: chrono::DateTime<chrono::FixedOffset>| format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    if with_zone {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
            return Ok(fmt(t));
        }
        for f in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H%:z"] {
            let v = value.replace(['Z', 'z'], "+00:00");
            if let Ok(t) = chrono::DateTime::parse_from_str(&v, f) {
                return Ok(fmt(t));
            }
        }
        if let Some((d, z)) = value.split_at_checked(10) {
            let z = if z.eq_ignore_ascii_case("z") { "+00:00" } else { z };
            if let (Ok(d), Ok(t)) = (
                NaiveDate::parse_from_str(d, "%Y-%m-%d"),
                chrono::DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{z}")),
            ) {
                if let Some(dt) = d.and_hms_opt(0, 0, 0).and_then(|n| t.offset().from_local_datetime(&n).single()) {
                    return Ok(fmt(dt));
                }
            }
        }
    } else {
        let local = |n: NaiveDateTime| now.offset().from_local_datetime(&n).single().map(|t| fmt(t.fixed_offset()));
        for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
            if let Some(s) = NaiveDateTime::parse_from_str(value, f).ok().and_then(local) {
                return Ok(s);
            }
        }
        if let Some(s) = NaiveDateTime::parse_from_str(&format!("{value}:00"), "%Y-%m-%dT%H:%M").ok().and_then(local) {
            return Ok(s);
        }
        if let Some(s) =
            NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).and_then(local)
        {
            return Ok(s);
        }
    }
    if value.contains('-') {
        return Err(fail());
    }
    let (secs, nanos) = value.split_once('.').unwrap_or((value, "0"));
    if secs.parse::<i64>().is_ok() && nanos.parse::<i64>().is_ok() {
        return Ok(value.to_string());
    }
    Err(fail())
}

pub async fn logs(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let info: Value = c.get_json(&format!("/containers/{}/json", seg(&a.container))).await?;
            let id = info.get("Id").and_then(Value::as_str).unwrap_or(&a.container).to_string();
            let tty_mode = info.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false);
            let now = chrono::Local::now();
            let since = match a.since.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => get_timestamp(s, now).map_err(|e| status(e, 1))?,
                None => String::new(),
            };
            let until = match a.until.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => get_timestamp(s, now).map_err(|e| status(e, 1))?,
                None => String::new(),
            };
            let on = |b: bool| if b { "1".to_string() } else { String::new() };
            let q = query(&[
                ("details", on(a.details)),
                ("follow", on(a.follow)),
                ("since", since),
                ("stderr", "1".into()),
                ("stdout", "1".into()),
                ("tail", a.tail.clone()),
                ("timestamps", on(a.timestamps)),
                ("until", until),
            ]);
            let r = c
                .request(Method::GET, &format!("/containers/{}/logs{q}", seg(&id)), berth_client::empty(), &[])
                .await?;
            copy_logs(r, tty_mode).await?;
            Ok(0)
        }
        .await,
    )
}

/// Log output: raw with a TTY, else demultiplexed to stdout and stderr.
async fn copy_logs(
    r: berth_client::hyper::Response<berth_client::hyper::body::Incoming>,
    tty_mode: bool,
) -> Result<()> {
    use http_body_util::BodyExt;
    let mut body = r.into_body();
    let mut demux = Demuxer::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| anyhow::anyhow!("error reading from daemon: {e}"))?;
        let Some(d) = frame.data_ref() else { continue };
        if tty_mode {
            super::stream::write_out(Stream::Stdout, d)?;
        } else {
            demux.push(d, &mut super::stream::write_out)?;
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<i32> {
    finish(inspect_objects(ctx, &a.containers, Some("container"), a.size, a.format.as_deref()).await)
}

async fn get_container(c: &Client, name: &str, size: bool) -> std::result::Result<Value, berth_client::Error> {
    let q = if size { "?size=1" } else { "" };
    c.get_json(&format!("/containers/{}/json{q}", seg(name))).await
}

async fn get_image(c: &Client, name: &str) -> std::result::Result<Value, berth_client::Error> {
    let path: Vec<String> = name.split('/').map(berth_client::enc).collect();
    c.get_json(&format!("/images/{}/json", path.join("/"))).await
}

/// docker's `inspect.Inspect`: print what was found (an empty `[]` when
/// nothing was), then the errors, exit 1 if any.
pub async fn inspect_objects(
    ctx: &Ctx,
    names: &[String],
    kind: Option<&str>,
    size: bool,
    format: Option<&str>,
) -> Result<i32> {
    if let Some(k) = kind {
        if !["container", "image"].contains(&k) {
            return Err(status(
                format!(
                    "unknown type: \"{k}\": must be one of \"config\", \"container\", \"image\", \"network\", \"node\", \"plugin\", \"secret\", \"service\", \"task\", \"volume\""
                ),
                1,
            ));
        }
    }
    let c = ctx.client().await?;
    let mut ins = berth_format::Inspector::new(format.unwrap_or("")).map_err(|e| status(e.docker_message(), 64))?;
    let mut errs = Vec::new();
    for n in names {
        let r = match kind {
            Some("container") => get_container(&c, n, size).await.map_err(|e| client_error_text(&e)),
            Some(_) => get_image(&c, n).await.map_err(|e| client_error_text(&e)),
            None => match get_container(&c, n, size).await {
                Ok(v) => Ok(v),
                Err(e) if is_not_found(&e) => match get_image(&c, n).await {
                    Ok(v) => {
                        if size {
                            eprintln!("WARNING: --size ignored for image");
                        }
                        Ok(v)
                    }
                    Err(e) if is_not_found(&e) => Err(format!("Error: No such object: {n}")),
                    Err(e) => Err(client_error_text(&e)),
                },
                Err(e) => Err(client_error_text(&e)),
            },
        };
        match r {
            Ok(v) => {
                if let Err(e) = ins.inspect(&v) {
                    errs.push(e.docker_message());
                }
            }
            Err(e) => errs.push(e),
        }
    }
    let mut out = std::io::stdout().lock();
    ins.flush(&mut out).map_err(|e| status(e.docker_message(), 1))?;
    out.flush()?;
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(errs.join("\n"), 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_table() {
        let v = json!({"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "Processes": [["root", "1234", "1200", "0", "06:24", "?", "00:00:00", "sleep 300"]]});
        assert_eq!(
            render_top(&v),
            "UID                 PID                 PPID                C                   STIME               TTY                 TIME                CMD\n\
             root                1234                1200                0                   06:24               ?                   00:00:00            sleep 300\n"
        );
    }

    #[test]
    fn timestamps_like_docker() {
        use chrono::TimeZone;
        let now = chrono::Local.timestamp_opt(1_700_000_000, 0).single().unwrap();
        assert_eq!(get_timestamp("42m", now).unwrap(), "1699997480");
        assert_eq!(get_timestamp("1700000000", now).unwrap(), "1700000000");
        assert_eq!(get_timestamp("1700000000.5", now).unwrap(), "1700000000.5");
        assert_eq!(get_timestamp("2013-01-02T13:23:37Z", now).unwrap(), "1357133017.000000000");
        assert_eq!(get_timestamp("2013-01-02T13:23:37+01:00", now).unwrap(), "1357129417.000000000");
        assert_eq!(get_timestamp("x", now).unwrap_err(), "failed to parse value as time or duration: \"x\"");
    }

    #[test]
    fn update_bodies() {
        let a = UpdateArgs {
            blkio_weight: None,
            cpu_period: None,
            cpu_quota: None,
            cpu_rt_period: None,
            cpu_rt_runtime: None,
            cpuset_cpus: None,
            cpuset_mems: None,
            cpu_shares: None,
            memory: Some("64m".into()),
            memory_reservation: None,
            memory_swap: Some("-1".into()),
            kernel_memory: None,
            restart: Some("on-failure:2".into()),
            pids_limit: Some(50),
            cpus: Some("0.5".into()),
            containers: vec!["x".into()],
        };
        let b = update_body(&a).unwrap();
        assert_eq!(b["Memory"], 67108864);
        assert_eq!(b["MemorySwap"], -1);
        assert_eq!(b["NanoCpus"], 500000000);
        assert_eq!(b["PidsLimit"], 50);
        assert_eq!(b["RestartPolicy"], json!({"Name": "on-failure", "MaximumRetryCount": 2}));
        let bad = UpdateArgs { memory: Some("x".into()), ..a };
        assert_eq!(
            update_body(&bad).unwrap_err(),
            "invalid argument \"x\" for \"-m, --memory\" flag: invalid size: 'x'"
        );
    }
}
