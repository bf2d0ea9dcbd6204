//! The container side of networking: the endpoints asked for at create,
//! attaching a starting container (namespace, veths, ports) and releasing it
//! when it ends, the network files that depend on its addresses, and
//! `network connect`/`disconnect`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use berth_network::{Attached, ContainerNet, Networks};
use serde_json::{Map, Value};

use super::Manager;
use crate::config;
use crate::model::{Container, Status};
use crate::{Error, Result};

/// How a container gets its network namespace.
pub(super) enum NetnsChoice {
    /// The runtime creates a new one (no network manager configured).
    New,
    /// The host's (`--network host`).
    Host,
    /// Join this namespace file.
    Join(String),
}

impl Manager {
    pub fn set_networks(&self, n: Arc<Networks>) {
        let _ = self.networks.set(n);
    }

    pub(super) fn net(&self) -> Option<&Arc<Networks>> {
        self.networks.get()
    }

    /// Validates `--network` and `NetworkingConfig.EndpointsConfig` at create
    /// and returns the requested endpoints by network name.
    pub(super) fn requested_networks(&self, mode: &str, body: &Map<String, Value>) -> Result<Map<String, Value>> {
        if let Some(target) = mode.strip_prefix("container:") {
            self.store.resolve(target)?;
        }
        let Some(net) = self.net() else {
            return match mode {
                "none" | "host" | "bridge" | "default" => Ok(Map::new()),
                m if m.starts_with("container:") => Ok(Map::new()),
                _ => Err(Error::NotFound(format!("network {mode} not found"))),
            };
        };
        let eps = body
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("NetworkingConfig"))
            .and_then(|(_, v)| v.get("EndpointsConfig"))
            .and_then(Value::as_object);
        Ok(net.initial_networks(mode, eps)?)
    }

    /// The namespace for a starting container; attaches it to its networks
    /// when berth manages them.
    pub(super) async fn net_attach(self: &Arc<Self>, c: &Container) -> Result<(NetnsChoice, Option<Attached>)> {
        let mode = c.network_mode();
        if mode == "host" {
            return Ok((NetnsChoice::Host, None));
        }
        if let Some(target) = mode.strip_prefix("container:") {
            let other = self.store.resolve(target)?;
            if other.state.status != Status::Running || other.state.pid <= 0 {
                return Err(Error::Conflict(format!("cannot join network of a non running container: {}", other.id)));
            }
            let key = other.network_settings.get("SandboxKey").and_then(Value::as_str).unwrap_or("").to_string();
            let path = if key.is_empty() { format!("/proc/{}/ns/net", other.state.pid) } else { key };
            return Ok((NetnsChoice::Join(path), None));
        }
        let Some(net) = self.net().cloned() else { return Ok((NetnsChoice::New, None)) };
        let c2 = c.clone();
        let hostname = c.config.get("Hostname").and_then(Value::as_str).unwrap_or("").to_string();
        let a = tokio::task::spawn_blocking(move || {
            net.attach(&ContainerNet {
                id: &c2.id,
                name: &c2.name,
                hostname: &hostname,
                mode: &mode,
                networks: &c2.requested_networks,
                config: &c2.config,
                host_config: &c2.host_config,
            })
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        Ok((NetnsChoice::Join(a.netns.display().to_string()), Some(a)))
    }

    /// Releases a container's networking (idempotent).
    pub(super) async fn net_detach(&self, id: &str) {
        let Some(net) = self.net().cloned() else { return };
        let id = id.to_string();
        let r = tokio::task::spawn_blocking(move || net.detach(&id)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!("releasing the network: {e}");
        }
    }

    /// `NetworkSettings` of a container that is not running.
    pub(super) fn stopped_settings(&self, c: &Container) -> Value {
        Networks::stopped_settings(&c.requested_networks)
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(self: &Arc<Self>, container: &str, network: &str, cfg: &Value) -> Result<()> {
        let net = self.net().cloned().ok_or_else(|| Error::Internal("networking is not enabled".into()))?;
        let c = self.store.resolve(container)?;
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(&c.id)?;
        let n = net.get(network)?;
        let mode = c.network_mode();
        if n.driver != "bridge" || mode == "host" || mode == "none" || mode.starts_with("container:") {
            return Err(Error::Network(berth_network::Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network".into(),
            )));
        }
        if c.requested_networks.contains_key(&n.name) {
            return Err(Error::Network(berth_network::Error::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name, n.name
            ))));
        }
        let mut eps = Map::new();
        eps.insert(n.name.clone(), cfg.clone());
        let mut single = net.initial_networks(&n.name, Some(&eps))?;
        let entry = single.remove(&n.name).unwrap_or(Value::Null);
        if c.state.is_running() && c.state.status != Status::Restarting {
            let hostname = c.config.get("Hostname").and_then(Value::as_str).unwrap_or("").to_string();
            let (net2, c2, name, cfg2) = (net.clone(), c.clone(), n.name.clone(), cfg.clone());
            let (_, ep) = tokio::task::spawn_blocking(move || {
                net2.connect_running(
                    &ContainerNet {
                        id: &c2.id,
                        name: &c2.name,
                        hostname: &hostname,
                        mode: &mode,
                        networks: &c2.requested_networks,
                        config: &c2.config,
                        host_config: &c2.host_config,
                    },
                    &name,
                    &cfg2,
                )
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
            if n.name == "bridge" {
                // The top-level fields describe the default bridge (Docker's legacy view).
                set_top_level(&mut c.network_settings, &ep);
            }
            if let Some(nets) = c.network_settings.get_mut("Networks").and_then(Value::as_object_mut) {
                nets.insert(n.name.clone(), ep);
            }
        } else if let Some(nets) = c.network_settings.get_mut("Networks").and_then(Value::as_object_mut) {
            nets.insert(n.name.clone(), entry.clone());
        }
        c.requested_networks.insert(n.name.clone(), entry);
        self.store.save(&c)?;
        self.bump();
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(self: &Arc<Self>, container: &str, network: &str) -> Result<()> {
        let net = self.net().cloned().ok_or_else(|| Error::Internal("networking is not enabled".into()))?;
        let c = self.store.resolve(container)?;
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(&c.id)?;
        let n = net.get(network)?;
        if n.driver != "bridge" {
            return Err(Error::Network(berth_network::Error::Forbidden(
                "container cannot be disconnected from host network or connected to host network".into(),
            )));
        }
        if !c.requested_networks.contains_key(&n.name) {
            return Err(Error::Network(berth_network::Error::Forbidden(format!(
                "container {} is not connected to network {}",
                c.id, n.name
            ))));
        }
        if c.state.is_running() && c.state.status != Status::Restarting {
            let (net2, id, name) = (net.clone(), c.id.clone(), n.name.clone());
            tokio::task::spawn_blocking(move || net2.disconnect_running(&id, &name))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        }
        if n.name == "bridge" {
            set_top_level(&mut c.network_settings, &Value::Null);
        }
        c.requested_networks.remove(&n.name);
        if let Some(nets) = c.network_settings.get_mut("Networks").and_then(Value::as_object_mut) {
            nets.remove(&n.name);
        }
        self.store.save(&c)?;
        self.bump();
        Ok(())
    }
}

fn set_top_level(settings: &mut Value, ep: &Value) {
    let Some(o) = settings.as_object_mut() else { return };
    for (k, dflt) in [("EndpointID", ""), ("Gateway", ""), ("IPAddress", ""), ("MacAddress", "")] {
        o.insert(k.into(), ep.get(k).cloned().unwrap_or_else(|| Value::String(dflt.into())));
    }
    o.insert("IPPrefixLen".into(), ep.get("IPPrefixLen").cloned().unwrap_or(Value::from(0)));
}

const HOSTS_BASE: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// /etc/hosts and /etc/resolv.conf once the addresses are known: Docker adds
/// `<address>\t<hostname>` for the container itself, resolves `host-gateway`
/// in `--add-host` to the default bridge's gateway, and points resolv.conf of
/// a container on a user-defined network at the embedded DNS server.
pub(super) fn write_net_files(dir: &Path, c: &Container, a: &Attached, host_gw: Option<Ipv4Addr>) -> Result<()> {
    let mut hosts = String::from(HOSTS_BASE);
    for h in config::strings(c.host_config.get("ExtraHosts")) {
        if let Some((name, ip)) = h.split_once(':') {
            let ip =
                if ip == "host-gateway" { host_gw.map(|g| g.to_string()).unwrap_or_default() } else { ip.to_string() };
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    let hostname = c.config.get("Hostname").and_then(Value::as_str).unwrap_or("");
    let domain = c.config.get("Domainname").and_then(Value::as_str).unwrap_or("");
    let names = if domain.is_empty() { hostname.to_string() } else { format!("{hostname}.{domain} {hostname}") };
    for ip in &a.addresses {
        hosts.push_str(&format!("{ip}\t{names}\n"));
    }
    std::fs::write(dir.join("hosts"), hosts).map_err(Error::io("writing hosts"))?;
    // On a user-defined network the embedded server answers (and forwards
    // to `--dns` servers, if any), as Docker's 127.0.0.11 does.
    if let Some(dns) = a.dns {
        let cur = std::fs::read_to_string(dir.join("resolv.conf")).unwrap_or_default();
        let mut out = String::new();
        for l in cur.lines().filter(|l| !l.trim_start().starts_with("nameserver")) {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(&format!("nameserver {dns}\n"));
        std::fs::write(dir.join("resolv.conf"), out).map_err(Error::io("writing resolv.conf"))?;
    }
    Ok(())
}
