//! `system df [-v]` and `system prune`, with docker-cli's tables and texts.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use super::container::{finish, status};
use super::{confirm, filters_json, query, short_id, Ctx};
use crate::output;
use crate::units::{ellipsis, human_size, human_size_4, since};

#[derive(Debug, Args)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
}

fn f64_of(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn arr(v: &Value, k: &str) -> Vec<Value> {
    v.get(k).and_then(Value::as_array).cloned().unwrap_or_default()
}

/// docker-cli's reclaimable column: `size (pct%)` when the total is not zero.
fn reclaimable(r: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{} ({}%)", human_size_4(r), ((r * 100.0) / total) as i64)
    } else {
        human_size_4(r)
    }
}

fn container_active(c: &Value) -> bool {
    let s = c.get("State").and_then(Value::as_str).unwrap_or("");
    s.contains("running") || s.contains("paused") || s.contains("restarting")
}

/// The summary rows of `system df` (docker-cli's `diskUsage*Context`).
fn summary_rows(du: &Value) -> Vec<Value> {
    let images = arr(du, "Images");
    let layers = f64_of(du, "LayersSize");
    let used: f64 = images
        .iter()
        .filter(|i| i.get("Containers").and_then(Value::as_i64).unwrap_or(0) != 0)
        .filter(|i| f64_of(i, "Size") >= 0.0 && f64_of(i, "SharedSize") >= 0.0)
        .map(|i| f64_of(i, "Size") - f64_of(i, "SharedSize"))
        .sum();
    let img_active = images.iter().filter(|i| i.get("Containers").and_then(Value::as_i64).unwrap_or(0) > 0).count();

    let cs = arr(du, "Containers");
    let c_size: f64 = cs.iter().map(|c| f64_of(c, "SizeRw")).sum();
    let c_reclaim: f64 = cs.iter().filter(|c| !container_active(c)).map(|c| f64_of(c, "SizeRw")).sum();

    let vs = arr(du, "Volumes");
    let usage = |v: &Value, k: &str| v.pointer(&format!("/UsageData/{k}")).and_then(Value::as_f64).unwrap_or(-1.0);
    let v_size: f64 = vs.iter().map(|v| usage(v, "Size")).filter(|s| *s > 0.0).sum();
    let v_active = vs.iter().filter(|v| usage(v, "RefCount") > 0.0).count();
    let v_reclaim: f64 = vs.iter().filter(|v| usage(v, "RefCount") == 0.0).map(|v| usage(v, "Size").max(0.0)).sum();

    let bc = arr(du, "BuildCache");
    let in_use = |b: &Value| b.get("InUse").and_then(Value::as_bool).unwrap_or(false);
    let shared = |b: &Value| b.get("Shared").and_then(Value::as_bool).unwrap_or(false);
    let b_size: f64 = bc.iter().filter(|b| !shared(b)).map(|b| f64_of(b, "Size")).sum();
    let b_reclaim: f64 = bc.iter().filter(|b| !in_use(b) && !shared(b)).map(|b| f64_of(b, "Size")).sum();
    let b_active = bc.iter().filter(|b| in_use(b)).count();

    vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(),
               "Size": human_size_4(layers), "Reclaimable": reclaimable(layers - used, layers)}),
        json!({"Type": "Containers", "TotalCount": cs.len().to_string(),
               "Active": cs.iter().filter(|c| container_active(c)).count().to_string(),
               "Size": human_size_4(c_size), "Reclaimable": reclaimable(c_reclaim, c_size)}),
        json!({"Type": "Local Volumes", "TotalCount": vs.len().to_string(), "Active": v_active.to_string(),
               "Size": human_size_4(v_size), "Reclaimable": reclaimable(v_reclaim, v_size)}),
        json!({"Type": "Build Cache", "TotalCount": bc.len().to_string(), "Active": b_active.to_string(),
               "Size": human_size_4(b_size), "Reclaimable": human_size_4(b_reclaim)}),
    ]
}

pub async fn df(ctx: &Ctx, a: DfArgs) -> Result<i32> {
    finish(
        async {
            let c = ctx.client().await?;
            let du: Value = c.get_json("/system/df").await?;
            if a.verbose && a.format.is_none() {
                verbose(&du)?;
                return Ok(0);
            }
            output::print_list(
                a.format.as_deref(),
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                &[
                    ("Type", "TYPE"),
                    ("TotalCount", "TOTAL"),
                    ("Active", "ACTIVE"),
                    ("Size", "SIZE"),
                    ("Reclaimable", "RECLAIMABLE"),
                ],
                &summary_rows(&du),
            )?;
            Ok(0)
        }
        .await,
    )
}

/// `system df -v`: one table per kind, as docker-cli's verbose template.
fn verbose(du: &Value) -> Result<()> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    println!("Images space usage:\n");
    let mut rows = Vec::new();
    for i in arr(du, "Images") {
        let tags: Vec<String> = arr(&i, "RepoTags").iter().filter_map(Value::as_str).map(String::from).collect();
        let tags = if tags.is_empty() { vec!["<none>:<none>".to_string()] } else { tags };
        for t in tags {
            let (repo, tag) = match t.rfind(':') {
                Some(p) if !t[p..].contains('/') => (t[..p].to_string(), t[p + 1..].to_string()),
                _ => (t.clone(), "<none>".into()),
            };
            let size = f64_of(&i, "Size");
            let shared = f64_of(&i, "SharedSize");
            rows.push(json!({
                "Repository": repo, "Tag": tag, "ID": short_id(&s(&i, "Id")),
                "CreatedSince": since(i.get("Created").and_then(Value::as_i64).unwrap_or(0)),
                "Size": human_size(size), "SharedSize": human_size(shared),
                "UniqueSize": human_size(size - shared),
                "Containers": i.get("Containers").and_then(Value::as_i64).unwrap_or(0).to_string(),
            }));
        }
    }
    output::print_list(
        None,
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ],
        &rows,
    )?;
    println!("\nContainers space usage:\n");
    let rows: Vec<Value> = arr(du, "Containers")
        .iter()
        .map(|c| {
            let mut r = super::container::list::row(c, true, false);
            r["Size"] = json!(human_size(f64_of(c, "SizeRw")));
            r
        })
        .collect();
    output::print_list(
        None,
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ],
        &rows,
    )?;
    println!("\nLocal Volumes space usage:\n");
    let rows: Vec<Value> = arr(du, "Volumes")
        .iter()
        .map(|v| {
            let refs = v.pointer("/UsageData/RefCount").and_then(Value::as_i64).unwrap_or(-1);
            let size = v.pointer("/UsageData/Size").and_then(Value::as_f64).unwrap_or(-1.0);
            json!({
                "Name": ellipsis(&s(v, "Name"), 64),
                "Links": if refs < 0 { "N/A".to_string() } else { refs.to_string() },
                "Size": if size < 0.0 { "N/A".to_string() } else { human_size_4(size) },
            })
        })
        .collect();
    output::print_list(
        None,
        "table {{.Name}}\t{{.Links}}\t{{.Size}}",
        &[("Name", "VOLUME NAME"), ("Links", "LINKS"), ("Size", "SIZE")],
        &rows,
    )?;
    let bc = arr(du, "BuildCache");
    let total: f64 = bc.iter().map(|b| f64_of(b, "Size")).sum();
    println!("\nBuild cache usage: {}\n", human_size_4(total));
    let rows: Vec<Value> = bc
        .iter()
        .map(|b| {
            json!({
                "ID": ellipsis(&s(b, "ID"), 12), "CacheType": s(b, "Type"),
                "Size": human_size(f64_of(b, "Size")), "CreatedSince": s(b, "CreatedAt"),
                "LastUsedSince": s(b, "LastUsedAt"),
                "UsageCount": b.get("UsageCount").and_then(Value::as_i64).unwrap_or(0).to_string(),
                "Shared": b.get("Shared").and_then(Value::as_bool).unwrap_or(false).to_string(),
            })
        })
        .collect();
    output::print_list(
        None,
        "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        &[
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ],
        &rows,
    )?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long = "volumes")]
    pub volumes: bool,
}

fn ids(v: &Value, k: &str) -> Vec<String> {
    arr(v, k).iter().filter_map(Value::as_str).map(String::from).collect()
}

/// `system prune`: the same calls, in the same order, as docker-cli
/// (containers, networks, volumes with `--volumes`, images, build cache),
/// each printing its block, then the total reclaimed.
pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    finish(
        async {
            for f in &a.filter {
                if f.starts_with("until=") && a.volumes {
                    // docker-cli: volumes cannot be pruned by age.
                    return Err(status(r#"ERROR: The "until" filter is not supported with "--volumes""#, 1));
                }
            }
            if !a.force {
                let mut w = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
                if a.volumes {
                    w.push_str("  - all anonymous volumes not used by at least one container\n");
                }
                if a.all {
                    w.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
                } else {
                    w.push_str("  - all dangling images\n  - unused build cache\n");
                }
                println!("{w}");
                if !confirm("Are you sure you want to continue?") {
                    return Err(status("system prune has been cancelled", 1));
                }
            }
            let c = ctx.client().await?;
            let fj = filters_json(&a.filter)?;
            let mut total = 0.0;

            let v: Value = c.post_json(&format!("/containers/prune{}", query(&[("filters", fj.clone())])), None).await?;
            let d = ids(&v, "ContainersDeleted");
            if !d.is_empty() {
                println!("Deleted Containers:\n{}\n", d.join("\n"));
                total += f64_of(&v, "SpaceReclaimed");
            }

            let v: Value = c.post_json(&format!("/networks/prune{}", query(&[("filters", fj.clone())])), None).await?;
            let d = ids(&v, "NetworksDeleted");
            if !d.is_empty() {
                println!("Deleted Networks:\n{}\n", d.join("\n"));
            }

            if a.volumes {
                let vf: Vec<String> = a.filter.iter().filter(|f| !f.starts_with("until=")).cloned().collect();
                let (r, out) = super::volume::run_prune(ctx, false, &vf).await?;
                if !out.is_empty() {
                    println!("{out}");
                }
                total += r;
            }

            let mut imf = a.filter.clone();
            imf.push(format!("dangling={}", !a.all));
            let v: Value =
                c.post_json(&format!("/images/prune{}", query(&[("filters", filters_json(&imf)?)])), None).await?;
            let items = arr(&v, "ImagesDeleted");
            if !items.is_empty() {
                println!("Deleted Images:");
                for it in &items {
                    if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
                        println!("untagged: {u}");
                    }
                    if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
                        println!("deleted: {d}");
                    }
                }
                println!();
                total += f64_of(&v, "SpaceReclaimed");
            }

            let bq = query(&[("all", if a.all { "1".into() } else { String::new() }), ("filters", fj)]);
            let v: Value = c.post_json(&format!("/build/prune{bq}"), None).await?;
            let d = ids(&v, "CachesDeleted");
            if !d.is_empty() {
                println!("Deleted build cache objects:\n{}\n", d.join("\n"));
            }
            total += f64_of(&v, "SpaceReclaimed");

            println!("Total reclaimed space: {}", crate::units::human_size_4(total));
            Ok(0)
        }
        .await,
    )
}
