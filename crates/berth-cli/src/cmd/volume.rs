//! `volume create|ls|inspect|rm|prune`, with docker-cli's output.

use anyhow::Result;
use berth_client::hyper::Method;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::container::{finish, for_each, seg, status};
use super::{confirm, filters_json, query, Ctx};
use crate::output;
use crate::units::human_size;

#[derive(Debug, Subcommand)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
}

pub async fn volume(ctx: &Ctx, c: VolumeCmd) -> Result<i32> {
    match c {
        VolumeCmd::Create(a) => finish(create(ctx, a).await),
        VolumeCmd::Ls(a) => finish(ls(ctx, a).await),
        VolumeCmd::Inspect(a) => finish(inspect(ctx, a).await),
        VolumeCmd::Rm(a) => finish(rm(ctx, a).await),
        VolumeCmd::Prune(a) => finish(prune(ctx, a).await),
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long = "driver", default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", hide = true)]
    pub name_flag: Option<String>,
    pub name: Option<String>,
}

/// `k=v` list to a map; a bare `k` is `k=""` (docker's `opts.ConvertKVStringsToMap`).
fn kv_map(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), json!(v)),
            None => (i.to_string(), json!("")),
        })
        .collect()
}

async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let name = match (&a.name_flag, &a.name) {
        (Some(f), Some(p)) if f != p => {
            return Err(status("Conflicting options: either specify --name or provide positional arg, not both", 1))
        }
        (Some(f), _) => f.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => String::new(),
    };
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": kv_map(&a.opt),
        "Labels": kv_map(&a.label),
    });
    let c = ctx.client().await?;
    let v: Value = c.post_json("/volumes/create", Some(&body)).await?;
    println!("{}", v.get("Name").and_then(Value::as_str).unwrap_or(""));
    Ok(0)
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Display only cluster volumes, and use cluster volume list formatting
    #[arg(long = "cluster", hide = true)]
    pub cluster: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

fn labels_text(v: &Value) -> String {
    let mut l: Vec<String> = v
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    l.sort();
    l.join(",")
}

/// The fields of docker-cli's `volumeContext`.
fn row(v: &Value) -> Value {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let usage = v.get("UsageData");
    let links = usage.and_then(|u| u.get("RefCount")).and_then(Value::as_i64).filter(|n| *n >= 0);
    let size = usage.and_then(|u| u.get("Size")).and_then(Value::as_f64).filter(|n| *n >= 0.0);
    json!({
        "Name": s("Name"),
        "Driver": s("Driver"),
        "Scope": s("Scope"),
        "Mountpoint": s("Mountpoint"),
        "Labels": labels_text(v),
        "Links": links.map(|n| n.to_string()).unwrap_or_else(|| "N/A".into()),
        "Size": size.map(human_size).unwrap_or_else(|| "N/A".into()),
        "CreatedAt": s("CreatedAt"),
        "Label": v.get("Labels").cloned().unwrap_or(Value::Null),
    })
}

async fn ls(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let q = query(&[("filters", filters_json(&a.filter)?)]);
    let v: Value = c.get_json(&format!("/volumes{q}")).await?;
    let mut vols: Vec<Value> = v.get("Volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    // docker-cli sorts by name.
    vols.sort_by(|a, b| {
        let n = |v: &Value| v.get("Name").and_then(Value::as_str).unwrap_or("").to_string();
        n(a).cmp(&n(b))
    });
    let rows: Vec<Value> = vols.iter().map(row).collect();
    let format = if a.quiet { Some("{{.Name}}") } else { a.format.as_deref() };
    output::print_list(
        format,
        "table {{.Driver}}\t{{.Name}}",
        &[
            ("Driver", "DRIVER"),
            ("Name", "VOLUME NAME"),
            ("Scope", "SCOPE"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Labels", "LABELS"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
            ("CreatedAt", "CREATED AT"),
        ],
        &rows,
    )?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for n in &a.names {
        match c.get_json::<Value>(&format!("/volumes/{}", seg(n))).await {
            Ok(v) => found.push(v),
            Err(e) => errs.push(super::container::client_error_text(&e)),
        }
    }
    let printed = output::print_inspect(a.format.as_deref(), &found);
    if !errs.is_empty() {
        return Err(status(errs.join("\n"), 1));
    }
    printed?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let q = query(&[("force", if a.force { "1".into() } else { String::new() })]);
    for_each(&a.names, |n| {
        let c = c.clone();
        let q = q.clone();
        async move {
            let path = format!("/volumes/{}{q}", seg(&n));
            super::container::call(&c, Method::DELETE, &path).await?;
            Ok(())
        }
    })
    .await
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

/// Runs the volume prune and returns (space reclaimed, docker's output
/// block); shared with `system prune`.
pub async fn run_prune(ctx: &Ctx, all: bool, filter: &[String]) -> Result<(f64, String)> {
    let mut filters = filter.to_vec();
    if all {
        filters.push("all=true".into());
    }
    let c = ctx.client().await?;
    let q = query(&[("filters", filters_json(&filters)?)]);
    let v: Value = c.post_json(&format!("/volumes/prune{q}"), None).await?;
    let deleted: Vec<&str> =
        v.get("VolumesDeleted").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let mut out = String::new();
    let mut reclaimed = 0.0;
    if !deleted.is_empty() {
        out.push_str("Deleted Volumes:\n");
        for d in deleted {
            out.push_str(d);
            out.push('\n');
        }
        reclaimed = v.get("SpaceReclaimed").and_then(Value::as_f64).unwrap_or(0.0);
    }
    Ok((reclaimed, out))
}

async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force {
        println!("{warning}");
        if !confirm("Are you sure you want to continue?") {
            return Err(status("volume prune has been cancelled", 1));
        }
    }
    let (reclaimed, out) = run_prune(ctx, a.all, &a.filter).await?;
    if !out.is_empty() {
        println!("{out}");
    }
    println!("Total reclaimed space: {}", crate::units::human_size_4(reclaimed));
    Ok(0)
}
