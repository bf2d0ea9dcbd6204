//! `version`, `info`, `events` and the `system` group.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{filters_json, query, Ctx};
use crate::output;
use crate::units::bytes_size;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SystemCmd {
    /// Display system-wide information
    Info(InfoArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Show docker disk usage
    Df(super::disk::DfArgs),
    /// Remove unused data
    Prune(super::disk::PruneArgs),
}

pub async fn system(ctx: &Ctx, c: SystemCmd) -> Result<i32> {
    match c {
        SystemCmd::Info(a) => info(ctx, a).await,
        SystemCmd::Events(a) => events(ctx, a).await,
        SystemCmd::Df(a) => super::disk::df(ctx, a).await,
        SystemCmd::Prune(a) => super::disk::prune(ctx, a).await,
    }
}

fn client_block() -> Value {
    json!({
        "Platform": {"Name": "berth"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": "1.47",
        "DefaultAPIVersion": "1.47",
        "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or(""),
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "BuildTime": option_env!("BERTH_BUILD_TIME").unwrap_or(""),
        "Context": "default",
    })
}

pub async fn version(ctx: &Ctx, a: VersionArgs) -> Result<i32> {
    let client = client_block();
    let server: Result<Value> = async {
        let c = ctx.client().await?;
        Ok(c.get_json::<Value>("/version").await?)
    }
    .await;
    if let Some(f) = &a.format {
        let v = json!({"Client": client, "Server": server.as_ref().ok()});
        output::print_one(f, &v)?;
        return server.map(|_| 0);
    }
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    println!("Client:");
    println!(" Version:           {}", s(&client, "Version"));
    println!(" API version:       {}", s(&client, "ApiVersion"));
    println!(" Git commit:        {}", s(&client, "GitCommit"));
    println!(" Built:             {}", s(&client, "BuildTime"));
    println!(" OS/Arch:           {}/{}", s(&client, "Os"), s(&client, "Arch"));
    println!(" Context:           default");
    let server = server?;
    println!();
    println!("Server: {}", server.pointer("/Platform/Name").and_then(Value::as_str).unwrap_or(""));
    for comp in server.get("Components").and_then(Value::as_array).cloned().unwrap_or_default() {
        let d = comp.get("Details").cloned().unwrap_or(Value::Null);
        println!(" {}:", s(&comp, "Name"));
        println!("  Version:          {}", s(&comp, "Version"));
        if comp.get("Name").and_then(Value::as_str) == Some("Engine") {
            println!("  API version:      {} (minimum version {})", s(&d, "ApiVersion"), s(&d, "MinAPIVersion"));
            println!("  Git commit:       {}", s(&d, "GitCommit"));
            println!("  Built:            {}", s(&d, "BuildTime"));
            println!("  OS/Arch:          {}/{}", s(&d, "Os"), s(&d, "Arch"));
            println!("  Experimental:     {}", s(&d, "Experimental"));
        }
    }
    Ok(0)
}

pub async fn info(ctx: &Ctx, a: InfoArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let i: Value = c.get_json("/info").await?;
    if let Some(f) = &a.format {
        output::print_one(f, &i)?;
        return Ok(0);
    }
    let s = |k: &str| match i.get(k) {
        Some(Value::String(v)) => v.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let list = |p: &str| -> String {
        i.pointer(p)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    for pair in i.get("DriverStatus").and_then(Value::as_array).cloned().unwrap_or_default() {
        if let Some([k, v]) = pair.as_array().map(|a| a.as_slice()) {
            println!("  {}: {}", k.as_str().unwrap_or(""), v.as_str().unwrap_or(""));
        }
    }
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    println!(" Plugins:");
    println!("  Volume: {}", list("/Plugins/Volume"));
    println!("  Network: {}", list("/Plugins/Network"));
    println!("  Log: {}", list("/Plugins/Log"));
    println!(" Swarm: {}", i.pointer("/Swarm/LocalNodeState").and_then(Value::as_str).unwrap_or(""));
    let runtimes: Vec<String> =
        i.get("Runtimes").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default();
    println!(" Runtimes: {}", runtimes.join(" "));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Security Options:");
    for o in i.get("SecurityOptions").and_then(Value::as_array).cloned().unwrap_or_default() {
        for part in o.as_str().unwrap_or("").split(',') {
            match part.strip_prefix("name=") {
                Some(n) => println!("  {n}"),
                None => {
                    if let Some((k, v)) = part.split_once('=') {
                        let mut k = k.to_string();
                        if let Some(f) = k.get_mut(0..1) {
                            f.make_ascii_uppercase();
                        }
                        println!("   {k}: {v}");
                    }
                }
            }
        }
    }
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(" Total Memory: {}", bytes_size(i.get("MemTotal").and_then(Value::as_f64).unwrap_or(0.0)));
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", s("Debug"));
    println!(" Experimental: {}", s("ExperimentalBuild"));
    println!(" Insecure Registries:");
    // docker-cli lists insecure registries by name first, then the CIDRs.
    let mut names: Vec<String> = i
        .pointer("/RegistryConfig/IndexConfigs")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter(|c| c.get("Secure").and_then(Value::as_bool) == Some(false))
                .filter_map(|c| c.get("Name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        println!("  {n}");
    }
    for r in i.pointer("/RegistryConfig/InsecureRegistryCIDRs").and_then(Value::as_array).cloned().unwrap_or_default() {
        println!("  {}", r.as_str().unwrap_or(""));
    }
    let mirrors = i.pointer("/RegistryConfig/Mirrors").and_then(Value::as_array).cloned().unwrap_or_default();
    if !mirrors.is_empty() {
        println!(" Registry Mirrors:");
        for m in mirrors {
            println!("  {}", m.as_str().unwrap_or(""));
        }
    }
    println!(" Live Restore Enabled: {}", s("LiveRestoreEnabled"));
    for w in i.get("Warnings").and_then(Value::as_array).cloned().unwrap_or_default() {
        eprintln!("{}", w.as_str().unwrap_or(""));
    }
    Ok(0)
}

/// docker's `events` line: `2024-01-02T15:04:05.000000000Z image tag sha256:… (name=x)`.
fn event_line(e: &Value) -> String {
    use chrono::TimeZone;
    let nanos = e.get("timeNano").and_then(Value::as_i64).unwrap_or(0);
    let t = chrono::Local.timestamp_nanos(nanos);
    let ts = t.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string().replace("+00:00", "Z");
    let g = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let mut line = format!("{} {} {} {}", ts, g("/Type"), g("/Action"), g("/Actor/ID"));
    if let Some(attrs) = e.pointer("/Actor/Attributes").and_then(Value::as_object) {
        if !attrs.is_empty() {
            let mut kv: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
            kv.sort();
            line.push_str(&format!(" ({})", kv.join(", ")));
        }
    }
    line
}

pub async fn events(ctx: &Ctx, a: EventsArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let q = query(&[
        ("since", a.since.clone().unwrap_or_default()),
        ("until", a.until.clone().unwrap_or_default()),
        ("filters", filters_json(&a.filter)?),
    ]);
    let resp = c.request(berth_client::hyper::Method::GET, &format!("/events{q}"), berth_client::empty(), &[]).await?;
    let format = a.format.clone();
    berth_client::for_each_json_line(resp, |e| {
        match &format {
            Some(f) => {
                let f = if f == "json" { "{{json .}}" } else { f.as_str() };
                match berth_format::render_one(f, &e) {
                    Ok(s) => println!("{s}"),
                    Err(err) => return Err(berth_client::Error::Decode(err.to_string())),
                }
            }
            None => println!("{}", event_line(&e)),
        }
        Ok(true)
    })
    .await?;
    Ok(0)
}
