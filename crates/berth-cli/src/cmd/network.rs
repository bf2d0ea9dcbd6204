//! `network create/ls/inspect/rm/prune/connect/disconnect` (docker-cli's
//! `network` group: same flags, tables and messages).

use anyhow::{bail, Result};
use berth_client::hyper::{Method, StatusCode};
use berth_client::{empty, enc};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::{confirm, filters_json, query, short_id, Ctx};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long = "driver", default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet")]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway")]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long = "internal")]
    pub internal: bool,
    /// Enable manual container attachment
    #[arg(long = "attachable")]
    pub attachable: bool,
    /// Enable or disable IPv6 networking
    #[arg(long = "ipv6")]
    pub ipv6: bool,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt")]
    pub ipam_opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
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

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    pub alias: Vec<String>,
    /// Driver options for the network
    #[arg(long = "driver-opt")]
    pub driver_opt: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long = "ip")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long = "ip6")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long = "link")]
    pub link: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    pub network: String,
    pub container: String,
}

pub async fn network(ctx: &Ctx, c: NetworkCmd) -> Result<i32> {
    match c {
        NetworkCmd::Create(a) => create(ctx, a).await,
        NetworkCmd::Ls(a) => ls(ctx, a).await,
        NetworkCmd::Inspect(a) => inspect(ctx, a).await,
        NetworkCmd::Rm(a) => rm(ctx, a).await,
        NetworkCmd::Prune(a) => prune(ctx, a).await,
        NetworkCmd::Connect(a) => connect(ctx, a).await,
        NetworkCmd::Disconnect(a) => disconnect(ctx, a).await,
    }
}

/// `key=value` options into a JSON map (docker-cli's `opts.ParseMapOpts`).
fn kv_map(items: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    for i in items {
        let (k, v) = i.split_once('=').unwrap_or((i.as_str(), ""));
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    m
}

/// docker-cli's `consolidateIpam`: one config per subnet, with the
/// gateway and range that fall into it.
fn ipam_configs(a: &CreateArgs) -> Result<Vec<Value>> {
    if a.subnet.len() < a.ip_range.len() || a.subnet.len() < a.gateway.len() {
        bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let contains = |subnet: &str, ip: &str| -> bool {
        let parse = |s: &str| s.split('/').next().and_then(|x| x.parse::<std::net::Ipv4Addr>().ok());
        let prefix: u32 = subnet.split('/').nth(1).and_then(|p| p.parse().ok()).unwrap_or(32);
        match (parse(subnet), parse(ip)) {
            (Some(n), Some(i)) => {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
                u32::from(n) & mask == u32::from(i) & mask
            }
            _ => false,
        }
    };
    let mut out = Vec::new();
    for s in &a.subnet {
        let mut c = json!({"Subnet": s});
        for r in &a.ip_range {
            if contains(s, r) {
                c["IPRange"] = json!(r);
            }
        }
        for g in &a.gateway {
            if contains(s, g) {
                c["Gateway"] = json!(g);
            }
        }
        out.push(c);
    }
    for g in &a.gateway {
        if !a.subnet.iter().any(|s| contains(s, g)) {
            bail!("no matching subnet for gateway {g}");
        }
    }
    for r in &a.ip_range {
        if !a.subnet.iter().any(|s| contains(s, r)) {
            bail!("no matching subnet for range {r}");
        }
    }
    Ok(out)
}

async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let configs = ipam_configs(&a)?;
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": a.ipam_driver, "Config": configs, "Options": kv_map(&a.ipam_opt)},
        "Options": kv_map(&a.opt),
        "Labels": kv_map(&a.label),
    });
    let c = ctx.client().await?;
    let v: Value = c.post_json("/networks/create", Some(&body)).await?;
    println!("{}", v.get("Id").and_then(Value::as_str).unwrap_or(""));
    Ok(0)
}

async fn ls(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let q = query(&[("filters", filters_json(&a.filter)?)]);
    let mut nets: Vec<Value> = c.get_json(&format!("/networks{q}")).await?;
    // docker-cli sorts by name.
    nets.sort_by(|x, y| x["Name"].as_str().unwrap_or("").cmp(y["Name"].as_str().unwrap_or("")));
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or("");
            let labels = n["Labels"]
                .as_object()
                .map(|m| {
                    m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",")
                })
                .unwrap_or_default();
            json!({
                "ID": if a.no_trunc { id.to_string() } else { short_id(id) },
                "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                "Labels": labels, "CreatedAt": n["Created"],
            })
        })
        .collect();
    if a.quiet && a.format.is_none() {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    let headers = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED"),
    ];
    output::print_list(a.format.as_deref(), "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", &headers, &rows)?;
    Ok(0)
}

async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let mut found = Vec::new();
    let mut code = 0;
    for n in &a.networks {
        let q = if a.verbose { "?verbose=true" } else { "" };
        match c.get_json::<Value>(&format!("/networks/{}{q}", enc(n))).await {
            Ok(v) => found.push(v),
            Err(e) => {
                crate::report(&e.into());
                code = 1;
            }
        }
    }
    if !found.is_empty() || code == 0 {
        output::print_inspect(a.format.as_deref(), &found)?;
    }
    Ok(code)
}

async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let mut code = 0;
    for n in &a.networks {
        match c.request(Method::DELETE, &format!("/networks/{}", enc(n)), empty(), &[]).await {
            Ok(_) => println!("{n}"),
            Err(berth_client::Error::Api { status, .. }) if a.force && status == StatusCode::NOT_FOUND => {}
            Err(e) => {
                crate::report(&e.into());
                code = 1;
            }
        }
    }
    Ok(code)
}

async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force {
        println!("WARNING! This will remove all custom networks not used by at least one container.");
        if !confirm("Are you sure you want to continue?") {
            return Ok(0);
        }
    }
    let c = ctx.client().await?;
    let q = query(&[("filters", filters_json(&a.filter)?)]);
    let v: Value = c.post_json(&format!("/networks/prune{q}"), None).await?;
    let names = v.get("NetworksDeleted").and_then(Value::as_array).cloned().unwrap_or_default();
    if !names.is_empty() {
        println!("Deleted Networks:");
        for n in names {
            println!("{}", n.as_str().unwrap_or(""));
        }
    }
    Ok(0)
}

async fn connect(ctx: &Ctx, a: ConnectArgs) -> Result<i32> {
    let mut ipam = Map::new();
    if let Some(ip) = &a.ip {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip) = &a.ip6 {
        ipam.insert("IPv6Address".into(), json!(ip));
    }
    let body = json!({
        "Container": a.container,
        "EndpointConfig": {
            "IPAMConfig": if ipam.is_empty() { Value::Null } else { Value::Object(ipam) },
            "Links": if a.link.is_empty() { Value::Null } else { json!(a.link) },
            "Aliases": if a.alias.is_empty() { Value::Null } else { json!(a.alias) },
            "DriverOpts": if a.driver_opt.is_empty() { Value::Null } else { Value::Object(kv_map(&a.driver_opt)) },
        },
    });
    let c = ctx.client().await?;
    let body = berth_client::full(body.to_string());
    c.request(
        Method::POST,
        &format!("/networks/{}/connect", enc(&a.network)),
        body,
        &[("Content-Type", "application/json")],
    )
    .await?;
    Ok(0)
}

async fn disconnect(ctx: &Ctx, a: DisconnectArgs) -> Result<i32> {
    let body = json!({"Container": a.container, "Force": a.force});
    let c = ctx.client().await?;
    let body = berth_client::full(body.to_string());
    c.request(
        Method::POST,
        &format!("/networks/{}/disconnect", enc(&a.network)),
        body,
        &[("Content-Type", "application/json")],
    )
    .await?;
    Ok(0)
}
