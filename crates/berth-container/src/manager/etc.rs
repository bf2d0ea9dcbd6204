//! The files Docker bind-mounts into every container: /etc/hostname,
//! /etc/hosts and /etc/resolv.conf.

use std::path::Path;

use serde_json::Value;

use crate::config;
use crate::model::Container;
use crate::{Error, Result};

pub(super) fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf of a container.
pub(super) fn write_etc_files(dir: &Path, c: &Container) -> Result<()> {
    let hostname = c.config.get("Hostname").and_then(Value::as_str).unwrap_or("");
    std::fs::write(dir.join("hostname"), format!("{hostname}\n")).map_err(Error::io("writing hostname"))?;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if c.network_mode() == "host" {
        hosts = std::fs::read_to_string("/etc/hosts").unwrap_or(hosts);
    }
    for h in config::strings(c.host_config.get("ExtraHosts")) {
        if let Some((name, ip)) = h.split_once(':') {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    std::fs::write(dir.join("hosts"), hosts).map_err(Error::io("writing hosts"))?;
    std::fs::write(dir.join("resolv.conf"), resolv_conf(c)).map_err(Error::io("writing resolv.conf"))?;
    Ok(())
}

/// The host's resolv.conf without loopback resolvers (unreachable from a
/// container's namespace); Google's public resolvers when none remain, as
/// Docker does. `--dns`, `--dns-search`, `--dns-option` replace their parts.
fn resolv_conf(c: &Container) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if c.network_mode() == "host" {
        return host;
    }
    let dns = config::strings(c.host_config.get("Dns"));
    let search = config::strings(c.host_config.get("DnsSearch"));
    let options = config::strings(c.host_config.get("DnsOptions"));
    let mut ns: Vec<String> = host
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver").map(|s| s.trim().to_string()))
        .filter(|ip| !ip.starts_with("127.") && ip != "::1")
        .collect();
    if !dns.is_empty() {
        ns = dns;
    }
    if ns.is_empty() {
        ns = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut out = String::new();
    let host_search: Vec<String> =
        host.lines().filter_map(|l| l.trim().strip_prefix("search").map(|s| s.trim().to_string())).collect();
    let s = if search.is_empty() { host_search } else { vec![search.join(" ")] };
    for l in s {
        out.push_str(&format!("search {l}\n"));
    }
    for n in ns {
        out.push_str(&format!("nameserver {n}\n"));
    }
    let host_opts: Vec<String> =
        host.lines().filter_map(|l| l.trim().strip_prefix("options").map(|s| s.trim().to_string())).collect();
    let o = if options.is_empty() { host_opts } else { vec![options.join(" ")] };
    for l in o {
        out.push_str(&format!("options {l}\n"));
    }
    out
}
