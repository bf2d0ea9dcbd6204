//! The network side of container lists and inspect: `NetworkSettings`,
//! the `Ports` column and the `network`/`publish`/`expose` filters of `ps`.

use berth_container::Container;
use serde_json::{json, Value};

pub(crate) fn networks_json(c: &Container) -> Value {
    if let Some(n) = c.network_settings.get("Networks").filter(|n| n.is_object()) {
        return n.clone();
    }
    let nm = c.network_mode();
    if nm.starts_with("container:") {
        return json!({});
    }
    json!({ nm: {
        "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "", "DriverOpts": null,
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null
    }})
}

/// `Ports` of a container list entry: published ports with their host side,
/// exposed ones without (Docker's `container.Port` list).
pub(crate) fn list_ports(c: &Container) -> Value {
    let mut out = Vec::new();
    let running = c.state.is_running();
    let ports = c.network_settings.get("Ports").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut keys: Vec<String> = ports.keys().cloned().collect();
    if !running || ports.is_empty() {
        if let Some(ex) = c.config.get("ExposedPorts").and_then(Value::as_object) {
            keys.extend(ex.keys().cloned());
        }
    }
    keys.sort();
    keys.dedup();
    for k in keys {
        let (p, proto) = k.split_once('/').unwrap_or((&k, "tcp"));
        let Ok(private) = p.parse::<u16>() else { continue };
        match ports.get(&k).and_then(Value::as_array).filter(|_| running) {
            Some(binds) if !binds.is_empty() => {
                for b in binds {
                    let public =
                        b.get("HostPort").and_then(Value::as_str).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
                    out.push(json!({"IP": b.get("HostIp").cloned().unwrap_or(json!("")), "PrivatePort": private, "PublicPort": public, "Type": proto}));
                }
            }
            _ => out.push(json!({"PrivatePort": private, "Type": proto})),
        }
    }
    Value::Array(out)
}

/// `ps --filter network=`: a network name or ID (prefix) the container is on.
pub(crate) fn on_network(c: &Container, n: &str) -> bool {
    if c.network_mode() == n {
        return true;
    }
    let nets = c.network_settings.get("Networks").and_then(Value::as_object);
    nets.is_some_and(|m| {
        m.iter().any(|(name, v)| {
            name == n
                || v.get("NetworkID").and_then(Value::as_str).is_some_and(|id| !id.is_empty() && id.starts_with(n))
        })
    })
}

/// `ps --filter publish=`/`expose=`: `port[/proto]` or `start-end[/proto]`
/// against the published host ports or the container's ports.
pub(crate) fn port_filter(c: &Container, spec: &str, published: bool) -> bool {
    let (range, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (a.parse::<u16>().unwrap_or(1), b.parse::<u16>().unwrap_or(0)),
        None => match range.parse::<u16>() {
            Ok(p) => (p, p),
            Err(_) => return false,
        },
    };
    let ports = c.network_settings.get("Ports").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut keys: Vec<String> = ports.keys().cloned().collect();
    if let Some(ex) = c.config.get("ExposedPorts").and_then(Value::as_object) {
        keys.extend(ex.keys().cloned());
    }
    keys.iter().any(|k| {
        let (p, pr) = k.split_once('/').unwrap_or((k, "tcp"));
        if pr != proto {
            return false;
        }
        if published {
            ports.get(k).and_then(Value::as_array).is_some_and(|b| {
                b.iter().any(|b| {
                    b.get("HostPort")
                        .and_then(Value::as_str)
                        .and_then(|h| h.parse::<u16>().ok())
                        .is_some_and(|h| h >= lo && h <= hi)
                })
            })
        } else {
            p.parse::<u16>().is_ok_and(|p| p >= lo && p <= hi)
        }
    })
}

/// Docker's `NetworkSettings` for inspect.
pub(crate) fn network_settings(c: &Container) -> Value {
    let mut base = json!({
        "Bridge": "", "SandboxID": "", "SandboxKey": if c.state.pid > 0 { format!("/proc/{}/ns/net", c.state.pid) } else { String::new() },
        "Ports": {}, "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null, "EndpointID": "", "Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
        "MacAddress": "",
    });
    if let (Some(b), Some(s)) = (base.as_object_mut(), c.network_settings.as_object()) {
        for (k, v) in s {
            b.insert(k.clone(), v.clone());
        }
    }
    base["Networks"] = networks_json(c);
    base
}
