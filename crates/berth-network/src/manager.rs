//! `Networks`: the networks of one daemon and the attachment of containers
//! to them. Records live in SQLite (`store`); host state (bridges, veths,
//! namespaces, firewall) is derived from them and re-derived after a restart.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_events::EventBus;
use berth_meta::Db;
use serde_json::{json, Map, Value};

use crate::firewall::{FirewallDriver, FirewallState, NetRule, Nftables, PortRule};
use crate::ipam::{self, Subnet};
use crate::netlink::Netlink;
use crate::store::{Endpoint, Network, Store};
use crate::{netns, ports, Error, Result};

/// Daemon options for networking (dockerd's names).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    pub exec_root: PathBuf,
    /// `--bridge`: the default bridge's host interface.
    pub bridge: String,
    /// `--bip`: the default bridge's address and prefix.
    pub bip: Option<String>,
    /// `--default-address-pool base=…,size=…`: where subnets of networks
    /// created without one come from.
    pub pools: Vec<(Subnet, u8)>,
}

/// What the container manager passes about a container being started.
pub struct ContainerNet<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    /// `HostConfig.NetworkMode`.
    pub mode: &'a str,
    /// `NetworkSettings.Networks` recorded at create (name → EndpointSettings).
    pub networks: &'a Map<String, Value>,
    pub config: &'a Map<String, Value>,
    pub host_config: &'a Map<String, Value>,
}

/// A started container's networking.
#[derive(Debug, Clone)]
pub struct Attached {
    /// The namespace file for the OCI spec.
    pub netns: PathBuf,
    /// Docker's `NetworkSettings`.
    pub settings: Value,
    /// The container's addresses (for its /etc/hosts).
    pub addresses: Vec<Ipv4Addr>,
    /// The resolver for its resolv.conf (the embedded DNS server of its
    /// first user-defined network), if any.
    pub dns: Option<Ipv4Addr>,
}

const PREDEFINED: &[&str] = &["bridge", "host", "none"];

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    let s: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    s[..n].to_string()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn sysctl(path: &str, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        tracing::warn!("setting {path}: {e}");
    }
}

/// IPv4 routes of the host (interface, prefix) from /proc/net/route.
fn host_routes() -> Vec<(String, Subnet)> {
    let Ok(s) = std::fs::read_to_string("/proc/net/route") else { return Vec::new() };
    let mut out = Vec::new();
    for l in s.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16)) else { continue };
        let (dst, mask) = (u32::from_be(dst.to_be()).swap_bytes(), mask.swap_bytes());
        if mask == 0 {
            continue; // the default route overlaps everything
        }
        out.push((f[0].to_string(), Subnet { addr: Ipv4Addr::from(dst), prefix: mask.count_ones() as u8 }));
    }
    out
}

/// Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
fn default_pools() -> Vec<(Subnet, u8)> {
    let mut v: Vec<(Subnet, u8)> =
        (17..=31).map(|b| (Subnet { addr: Ipv4Addr::new(172, b, 0, 0), prefix: 16 }, 16)).collect();
    v.push((Subnet { addr: Ipv4Addr::new(192, 168, 0, 0), prefix: 16 }, 20));
    v
}

/// A host-wide lock held while a subnet is chosen and its bridge addressed,
/// so daemons starting side by side never elect the same free subnet.
struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    fn take() -> Option<HostLock> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/berth-network.lock")
            .ok()?;
        // SAFETY: flock on an fd we own; released when the file closes.
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        Some(HostLock { _file: f })
    }
}

pub struct Networks {
    store: Store,
    cfg: NetworkConfig,
    fw: Box<dyn FirewallDriver>,
    pool: Arc<netns::Pool>,
    events: Arc<EventBus>,
    /// Sockets reserving published host ports, per container.
    held: Mutex<HashMap<String, Vec<OwnedFd>>>,
    /// Serialises changes of host state (bridges, firewall).
    lock: Mutex<()>,
    dns: Mutex<Option<Arc<crate::dns::Server>>>,
}

impl Networks {
    /// Opens the records, creates the predefined networks and every bridge,
    /// and clears namespaces no container uses. The firewall is programmed
    /// by [`Networks::reconcile`] once the containers are recovered.
    pub fn new(db: Arc<Db>, events: Arc<EventBus>, cfg: NetworkConfig) -> Result<Arc<Networks>> {
        let table = if cfg.bridge == "berth0" { "berth".to_string() } else { format!("berth_{}", cfg.bridge) };
        Self::with_firewall(db, events, cfg, Box::new(Nftables::new(table)))
    }

    pub fn with_firewall(
        db: Arc<Db>,
        events: Arc<EventBus>,
        cfg: NetworkConfig,
        fw: Box<dyn FirewallDriver>,
    ) -> Result<Arc<Networks>> {
        if cfg.bridge.is_empty() || cfg.bridge.len() > 15 || cfg.bridge.contains(['/', ' ', ':']) {
            return Err(Error::InvalidArgument(format!("invalid bridge name {:?}", cfg.bridge)));
        }
        let store = Store::open(db)?;
        let in_use: Vec<PathBuf> = store.sandboxes()?.into_iter().map(|(_, p)| PathBuf::from(p)).collect();
        let pool = netns::Pool::new(cfg.exec_root.join("netns"), &in_use).map_err(Error::io("netns directory"))?;
        let me = Arc::new(Networks {
            store,
            cfg,
            fw,
            pool,
            events,
            held: Mutex::new(HashMap::new()),
            lock: Mutex::new(()),
            dns: Mutex::new(None),
        });
        me.init_predefined()?;
        for n in me.store.networks()? {
            if n.driver == "bridge" && n.name != "bridge" {
                if let Err(e) = me.ensure_bridge(&n) {
                    tracing::warn!("setting up network {}: {e}", n.name);
                }
            }
        }
        sysctl("/proc/sys/net/ipv4/ip_forward", "1");
        me.pool.refill();
        Ok(me)
    }

    fn default_options(bridge: &str) -> Map<String, Value> {
        let mut o = Map::new();
        for (k, v) in [
            ("com.docker.network.bridge.default_bridge", "true"),
            ("com.docker.network.bridge.enable_icc", "true"),
            ("com.docker.network.bridge.enable_ip_masquerade", "true"),
            ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
            ("com.docker.network.bridge.name", bridge),
            ("com.docker.network.driver.mtu", "1500"),
        ] {
            o.insert(k.into(), Value::String(v.into()));
        }
        o
    }

    fn init_predefined(&self) -> Result<()> {
        let existing = self.store.networks()?;
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if !existing.iter().any(|n| n.name == name) {
                self.store.put_network(&Network {
                    id: random_hex(64),
                    name: name.into(),
                    driver: driver.into(),
                    created: now(),
                    subnet: String::new(),
                    gateway: String::new(),
                    ip_range: String::new(),
                    internal: false,
                    attachable: false,
                    labels: Map::new(),
                    options: Map::new(),
                    ipam_options: Map::new(),
                    bridge: String::new(),
                })?;
            }
        }
        let _host_lock = HostLock::take();
        let old = existing.iter().find(|n| n.name == "bridge").cloned();
        let (subnet, gw) = self.elect_default(old.as_ref(), &existing)?;
        let mut n = old.unwrap_or_else(|| Network {
            id: random_hex(64),
            name: "bridge".into(),
            driver: "bridge".into(),
            created: now(),
            subnet: String::new(),
            gateway: String::new(),
            ip_range: String::new(),
            internal: false,
            attachable: false,
            labels: Map::new(),
            options: Map::new(),
            ipam_options: Map::new(),
            bridge: String::new(),
        });
        n.subnet = subnet.to_string();
        n.gateway = gw.to_string();
        n.bridge = self.cfg.bridge.clone();
        n.options = Self::default_options(&self.cfg.bridge);
        self.store.put_network(&n)?;
        self.ensure_bridge(&n)
    }

    /// The default bridge's subnet: `--bip`, else the recorded one while no
    /// other interface routes it, else the first default pool no host route
    /// or other network overlaps (how dockerd elects docker0's subnet).
    fn elect_default(&self, old: Option<&Network>, all: &[Network]) -> Result<(Subnet, Ipv4Addr)> {
        if let Some(bip) = &self.cfg.bip {
            let (sn, ip) = Subnet::of_address(bip)?;
            if ip == sn.addr || (sn.prefix < 31 && u32::from(ip) == sn.last()) {
                return Err(Error::InvalidArgument(format!("invalid --bip {bip}: not a host address")));
            }
            return Ok((sn, ip));
        }
        let routes: Vec<Subnet> =
            host_routes().into_iter().filter(|(dev, _)| *dev != self.cfg.bridge).map(|(_, s)| s).collect();
        let others: Vec<Subnet> = all
            .iter()
            .filter(|n| n.name != "bridge" && !n.subnet.is_empty())
            .filter_map(|n| Subnet::parse(&n.subnet).ok())
            .collect();
        let free = |s: &Subnet| !routes.iter().chain(others.iter()).any(|r| r.overlaps(s));
        if let Some(o) = old {
            if let (Ok(sn), Ok(gw)) = (Subnet::parse(&o.subnet), o.gateway.parse::<Ipv4Addr>()) {
                if free(&sn) {
                    return Ok((sn, gw));
                }
            }
        }
        let pools = if self.cfg.pools.is_empty() { default_pools() } else { self.cfg.pools.clone() };
        for (base, size) in pools {
            let step = 1u64 << (32 - size as u32);
            let mut a = base.first() as u64;
            while a + step - 1 <= base.last() as u64 {
                let sn = Subnet { addr: Ipv4Addr::from(a as u32), prefix: size };
                if free(&sn) {
                    return Ok((sn, sn.default_gateway()));
                }
                a += step;
            }
        }
        Err(Error::Internal("could not find a free subnet for the default bridge: all address pools overlap".into()))
    }

    /// Creates (if needed), addresses and brings up a network's bridge.
    fn ensure_bridge(&self, n: &Network) -> Result<()> {
        let sn = Subnet::parse(&n.subnet)?;
        let gw: Ipv4Addr = n.gateway.parse().map_err(|_| Error::Internal(format!("bad gateway {}", n.gateway)))?;
        let mut nl = Netlink::open().map_err(Error::io("netlink"))?;
        if nl.index(&n.bridge).map_err(Error::io("netlink"))?.is_none() {
            match nl.add_bridge(&n.bridge, None) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                r => r.map_err(Error::io(format!("creating bridge {}", n.bridge)))?,
            }
        }
        nl.add_addr(&n.bridge, gw, sn.prefix).map_err(Error::io(format!("addressing bridge {}", n.bridge)))?;
        nl.set_up(&n.bridge).map_err(Error::io(format!("bringing up {}", n.bridge)))?;
        // Published ports answer on 127.0.0.1 by DNAT to the bridge, which
        // the kernel drops as martian unless route_localnet is set (what
        // dockerd sets with --userland-proxy=false).
        sysctl(&format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge), "1");
        Ok(())
    }

    fn remove_bridge(&self, n: &Network) {
        if let Ok(mut nl) = Netlink::open() {
            if let Err(e) = nl.del_link(&n.bridge) {
                tracing::warn!("removing bridge {}: {e}", n.bridge);
            }
        }
    }

    /// After the containers are recovered: releases the networking of
    /// containers that are not running any more, re-reserves the published
    /// ports of the running ones and re-applies the firewall.
    pub fn reconcile(&self, running: &[String]) -> Result<()> {
        for (cid, _) in self.store.sandboxes()? {
            if !running.contains(&cid) {
                if let Err(e) = self.detach(&cid) {
                    tracing::warn!("releasing the network of {}: {e}", &cid[..12.min(cid.len())]);
                }
            }
        }
        for ep in self.store.endpoints()? {
            if !running.contains(&ep.container_id) {
                let _ = self.store.release(&ep.network_id, &ep.container_id);
                continue;
            }
            if !ep.ports.is_empty() {
                let fds = ports::rebind(&ep.ports);
                self.held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(ep.container_id.clone())
                    .or_default()
                    .extend(fds);
            }
        }
        self.apply_firewall()?;
        self.start_dns();
        Ok(())
    }

    /// Daemon shutdown: removes the pre-created namespaces; with no container
    /// left running, also the bridges and the firewall table (recreated at
    /// the next start), so a stopped engine leaves nothing on the host.
    pub fn shutdown(&self) {
        self.pool.drain();
        if let Some(d) = self.dns.lock().unwrap_or_else(|e| e.into_inner()).take() {
            d.stop();
        }
        if self.store.sandboxes().map(|s| s.is_empty()).unwrap_or(false) {
            for n in self.store.networks().unwrap_or_default() {
                if n.driver == "bridge" {
                    self.remove_bridge(&n);
                }
            }
            if let Err(e) = self.fw.clear() {
                tracing::warn!("removing the firewall table: {e}");
            }
        }
    }

    fn firewall_state(&self) -> Result<FirewallState> {
        let nets = self.store.networks()?;
        let mut st = FirewallState::default();
        for n in nets.iter().filter(|n| n.driver == "bridge") {
            let masq = n.options.get("com.docker.network.bridge.enable_ip_masquerade").and_then(Value::as_str)
                != Some("false");
            st.networks.push(NetRule {
                bridge: n.bridge.clone(),
                subnet: Subnet::parse(&n.subnet)?,
                internal: n.internal,
                masquerade: masq,
            });
        }
        for ep in self.store.endpoints()? {
            let Ok(cip) = ep.ip.parse::<Ipv4Addr>() else { continue };
            for p in &ep.ports {
                let hip: Ipv4Addr = p.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
                st.ports.push(PortRule {
                    proto: p.proto.clone(),
                    host_ip: (!hip.is_unspecified()).then_some(hip),
                    host_port: p.host_port,
                    container_ip: cip,
                    container_port: p.container_port,
                });
            }
        }
        Ok(st)
    }

    fn apply_firewall(&self) -> Result<()> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let st = self.firewall_state()?;
        self.fw.apply(&st)
    }

    fn emit(&self, n: &Network, action: &str, container: Option<&str>) {
        let typ = n.driver.clone();
        let mut attrs: Vec<(&str, &str)> = vec![("name", n.name.as_str()), ("type", typ.as_str())];
        if let Some(c) = container {
            attrs.push(("container", c));
        }
        self.events.emit("network", action, &n.id, &attrs);
    }

    // ---- networks -------------------------------------------------------

    pub fn list(&self) -> Result<Vec<Network>> {
        self.store.networks()
    }

    /// A network by exact name, exact ID or unique ID prefix.
    pub fn get(&self, name: &str) -> Result<Network> {
        // "default" is the daemon's default network: the bridge on Linux.
        let name = if name == "default" { "bridge" } else { name };
        let all = self.store.networks()?;
        if let Some(n) = all.iter().find(|n| n.name == name).or_else(|| all.iter().find(|n| n.id == name)) {
            return Ok(n.clone());
        }
        let matches: Vec<&Network> = all.iter().filter(|n| !name.is_empty() && n.id.starts_with(name)).collect();
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(Error::NotFound(format!("network {name} not found"))),
            _ => Err(Error::InvalidArgument(format!(
                "network {name} is ambiguous ({} matches found based on ID prefix)",
                matches.len()
            ))),
        }
    }

    /// The default bridge's gateway (`--add-host name:host-gateway`).
    pub fn host_gateway(&self) -> Option<Ipv4Addr> {
        self.get("bridge").ok().and_then(|n| n.gateway.parse().ok())
    }

    fn overlapping(&self, sn: &Subnet, all: &[Network]) -> bool {
        all.iter()
            .filter(|n| !n.subnet.is_empty())
            .filter_map(|n| Subnet::parse(&n.subnet).ok())
            .any(|s| s.overlaps(sn))
    }

    /// `POST /networks/create`: returns the new network.
    pub fn create(&self, req: &Value) -> Result<Network> {
        let s = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let name = s("Name");
        if name.is_empty() {
            return Err(Error::InvalidArgument("network name must not be empty".into()));
        }
        if PREDEFINED.contains(&name.as_str()) {
            return Err(Error::Forbidden(format!("{name} is a pre-defined network and cannot be created")));
        }
        let driver = match s("Driver").as_str() {
            "" | "bridge" => "bridge".to_string(),
            d => return Err(Error::NotFound(format!("plugin \"{d}\" not found"))),
        };
        if req.get("EnableIPv6").and_then(Value::as_bool).unwrap_or(false) {
            return Err(Error::InvalidArgument("IPv6 networks are not supported".into()));
        }
        let obj = |k: &str| req.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        let options = obj("Options");
        let labels = obj("Labels");
        let ipam = req.get("IPAM").cloned().unwrap_or(Value::Null);
        if let Some(d) = ipam.get("Driver").and_then(Value::as_str) {
            if !d.is_empty() && d != "default" {
                return Err(Error::NotFound(format!("plugin \"{d}\" not found")));
            }
        }
        let id = random_hex(64);
        let bridge = match options.get("com.docker.network.bridge.name").and_then(Value::as_str) {
            Some(b) if !b.is_empty() => {
                if b.len() > 15 || b.contains(['/', ' ', ':']) {
                    return Err(Error::InvalidArgument(format!("invalid bridge name {b:?}")));
                }
                b.to_string()
            }
            _ => format!("br-{}", &id[..12]),
        };
        let configs: Vec<Value> = ipam.get("Config").and_then(Value::as_array).cloned().unwrap_or_default();
        let configs: Vec<&Value> =
            configs.iter().filter(|c| !c.get("Subnet").and_then(Value::as_str).unwrap_or("").contains(':')).collect();
        let _host_lock = HostLock::take();
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let all = self.store.networks()?;
        if all.iter().any(|n| n.name == name) {
            return Err(Error::Conflict(format!("network with name {name} already exists")));
        }
        if all.iter().any(|n| n.bridge == bridge) {
            return Err(Error::Conflict(format!("bridge name {bridge} is already in use by another network")));
        }
        let (subnet, gateway, ip_range) = match configs.first() {
            Some(c) => {
                let cs = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let subnet_s = cs("Subnet");
                if subnet_s.is_empty() {
                    return Err(Error::InvalidArgument("invalid network config:\nsubnet is required".into()));
                }
                let sn = Subnet::parse(&subnet_s)?;
                let mut errs = Vec::new();
                let ip_range = cs("IPRange");
                if !ip_range.is_empty() {
                    match Subnet::of_address(&ip_range) {
                        Ok((r, raw)) => {
                            if r.prefix < sn.prefix {
                                errs.push(format!(
                                    "invalid ip-range {ip_range}: CIDR block is bigger than its parent subnet {sn}"
                                ));
                            }
                            if r.addr != raw {
                                errs.push(format!("invalid ip-range {ip_range}: it should be {r}"));
                            }
                            if !sn.overlaps(&r) {
                                errs.push(format!(
                                    "invalid ip-range {ip_range}: parent subnet {sn} doesn't contain ip-range"
                                ));
                            }
                        }
                        Err(e) => errs.push(e.to_string()),
                    }
                }
                let gw_s = cs("Gateway");
                let gw = if gw_s.is_empty() {
                    sn.default_gateway()
                } else {
                    match gw_s.parse::<Ipv4Addr>() {
                        Ok(g) if sn.contains(g) => g,
                        Ok(_) => {
                            errs.push(format!(
                                "invalid gateway {gw_s}: parent subnet {sn} doesn't contain this address"
                            ));
                            sn.default_gateway()
                        }
                        Err(_) => return Err(Error::InvalidArgument(format!("invalid gateway address: {gw_s}"))),
                    }
                };
                if !errs.is_empty() {
                    return Err(Error::InvalidArgument(format!("invalid network config:\n{}", errs.join("\n"))));
                }
                if self.overlapping(&sn, &all) {
                    return Err(Error::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space".into(),
                    ));
                }
                (sn, gw, if ip_range.is_empty() { String::new() } else { Subnet::of_address(&ip_range)?.0.to_string() })
            }
            None => {
                let routes: Vec<Subnet> = host_routes().into_iter().map(|(_, s)| s).collect();
                let pools = if self.cfg.pools.is_empty() { default_pools() } else { self.cfg.pools.clone() };
                let mut found = None;
                'outer: for (base, size) in pools {
                    let step = 1u64 << (32 - size as u32);
                    let mut a = base.first() as u64;
                    while a + step - 1 <= base.last() as u64 {
                        let sn = Subnet { addr: Ipv4Addr::from(a as u32), prefix: size };
                        if !self.overlapping(&sn, &all) && !routes.iter().any(|r| r.overlaps(&sn)) {
                            found = Some(sn);
                            break 'outer;
                        }
                        a += step;
                    }
                }
                let sn = found
                    .ok_or_else(|| Error::Forbidden("all predefined address pools have been fully subnetted".into()))?;
                (sn, sn.default_gateway(), String::new())
            }
        };
        let mut opts = options.clone();
        opts.retain(|_, v| v.is_string());
        let n = Network {
            id,
            name,
            driver,
            created: now(),
            subnet: subnet.to_string(),
            gateway: gateway.to_string(),
            ip_range,
            internal: req.get("Internal").and_then(Value::as_bool).unwrap_or(false),
            attachable: req.get("Attachable").and_then(Value::as_bool).unwrap_or(false),
            labels,
            options: opts,
            ipam_options: ipam.get("Options").and_then(Value::as_object).cloned().unwrap_or_default(),
            bridge,
        };
        self.store.put_network(&n)?;
        if let Err(e) = self.ensure_bridge(&n) {
            self.remove_bridge(&n);
            let _ = self.store.delete_network(&n);
            return Err(e);
        }
        drop(_g);
        if let Err(e) = self.apply_firewall() {
            self.remove_bridge(&n);
            let _ = self.store.delete_network(&n);
            let _ = self.apply_firewall();
            return Err(e);
        }
        self.start_dns();
        self.emit(&n, "create", None);
        Ok(n)
    }

    /// `DELETE /networks/{id}`.
    pub fn remove(&self, name: &str) -> Result<()> {
        let n = self.get(name)?;
        if PREDEFINED.contains(&n.name.as_str()) {
            return Err(Error::Forbidden(format!("{} is a pre-defined network and cannot be removed", n.name)));
        }
        self.store.delete_network(&n)?;
        self.remove_bridge(&n);
        self.apply_firewall()?;
        self.start_dns();
        self.emit(&n, "destroy", None);
        Ok(())
    }

    /// Endpoints of one network (running containers).
    pub fn endpoints_of(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        Ok(self.store.endpoints()?.into_iter().filter(|e| e.network_id == network_id).collect())
    }

    /// Docker's `network inspect` / list entry.
    pub fn inspect_json(&self, n: &Network, with_containers: bool) -> Value {
        let config = if n.subnet.is_empty() {
            json!([])
        } else {
            let mut c = json!({"Subnet": n.subnet, "Gateway": n.gateway});
            if !n.ip_range.is_empty() {
                c["IPRange"] = json!(n.ip_range);
            }
            json!([c])
        };
        let mut containers = Map::new();
        if with_containers {
            for e in self.endpoints_of(&n.id).unwrap_or_default() {
                containers.insert(
                    e.container_id.clone(),
                    json!({"Name": e.container_name, "EndpointID": e.endpoint_id, "MacAddress": e.mac,
                           "IPv4Address": format!("{}/{}", e.ip, e.prefix), "IPv6Address": ""}),
                );
            }
        }
        json!({
            "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local", "Driver": n.driver,
            "EnableIPv4": true, "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": if n.ipam_options.is_empty() { Value::Null } else { Value::Object(n.ipam_options.clone()) }, "Config": config},
            "Internal": n.internal, "Attachable": n.attachable, "Ingress": false,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
            "Containers": containers, "Options": n.options, "Labels": n.labels,
        })
    }

    // ---- containers -----------------------------------------------------

    /// `NetworkSettings.Networks` of a new container: validates the mode and
    /// the requested endpoints (`NetworkingConfig.EndpointsConfig`, several
    /// since API 1.44) and records them by network name.
    pub fn initial_networks(&self, mode: &str, endpoints: Option<&Map<String, Value>>) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        if mode.starts_with("container:") {
            return Ok(out);
        }
        let primary = self.get(mode)?;
        let mut add = |n: &Network, cfg: &Value| -> Result<()> {
            let ipam_cfg = cfg.get("IPAMConfig").cloned().filter(|v| !v.is_null());
            let aliases = cfg.get("Aliases").cloned().filter(|v| v.as_array().is_some_and(|a| !a.is_empty()));
            if n.name == "bridge" {
                if ipam_cfg
                    .as_ref()
                    .and_then(|c| c.get("IPv4Address"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
                {
                    return Err(Error::InvalidArgument(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                if aliases.is_some() {
                    return Err(Error::InvalidArgument(
                        "network-scoped alias is supported only for containers in user defined networks".into(),
                    ));
                }
            }
            if let Some(ip) =
                ipam_cfg.as_ref().and_then(|c| c.get("IPv4Address")).and_then(Value::as_str).filter(|s| !s.is_empty())
            {
                ip.parse::<Ipv4Addr>().map_err(|_| Error::InvalidArgument(format!("invalid IPv4 address: {ip}")))?;
            }
            let mac = cfg.get("MacAddress").and_then(Value::as_str).unwrap_or("");
            if !mac.is_empty() {
                ipam::parse_mac(mac)?;
            }
            out.insert(n.name.clone(), json!({
                "IPAMConfig": ipam_cfg, "Links": cfg.get("Links").cloned().filter(|v| !v.is_null()), "Aliases": aliases,
                "MacAddress": mac, "DriverOpts": cfg.get("DriverOpts").cloned().filter(|v| !v.is_null()),
                "NetworkID": n.id, "EndpointID": "", "Gateway": "", "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DNSNames": null,
            }));
            Ok(())
        };
        let eps = endpoints.cloned().unwrap_or_default();
        let mut primary_cfg = Value::Object(Map::new());
        let mut others = Vec::new();
        for (k, v) in &eps {
            let n = self.get(k)?;
            if n.id == primary.id {
                primary_cfg = v.clone();
            } else {
                others.push((n, v.clone()));
            }
        }
        add(&primary, &primary_cfg)?;
        if !others.is_empty() && primary.driver != "bridge" {
            return Err(Error::InvalidArgument(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        for (n, v) in others {
            if n.driver != "bridge" {
                return Err(Error::InvalidArgument(
                    "container cannot be disconnected from host network or connected to host network".into(),
                ));
            }
            add(&n, &v)?;
        }
        Ok(out)
    }

    /// Connects a starting container: a namespace (pre-created), a veth into
    /// each of its networks with an address and the default route, its
    /// published ports. On any failure everything made is undone.
    pub fn attach(&self, c: &ContainerNet) -> Result<Attached> {
        let ns = self.pool.take().map_err(Error::io("creating a network namespace"))?;
        if let Err(e) = self.store.put_sandbox(c.id, &ns.display().to_string()) {
            let _ = netns::remove(&ns);
            return Err(e);
        }
        match self.attach_inner(c, &ns) {
            Ok(a) => Ok(a),
            Err(e) => {
                let _ = self.detach(c.id);
                Err(e)
            }
        }
    }

    fn attach_inner(&self, c: &ContainerNet, ns: &Path) -> Result<Attached> {
        let mut eps = Vec::new();
        if c.mode != "none" {
            let mut order: Vec<(String, Value)> = Vec::new();
            let primary = self.get(c.mode)?;
            order.push((primary.name.clone(), c.networks.get(&primary.name).cloned().unwrap_or(Value::Null)));
            for (k, v) in c.networks {
                if *k != primary.name {
                    order.push((k.clone(), v.clone()));
                }
            }
            let mut have_route = false;
            for (i, (name, cfg)) in order.iter().enumerate() {
                let n = self.get(name)?;
                let route = !have_route && !n.internal;
                let ep = self.join(c, &n, ns, cfg, i, route)?;
                have_route |= route;
                eps.push((n, ep));
            }
            // Published ports go to the first network with a way out.
            let bs = ports::bindings(c.host_config, c.config)?;
            if !bs.is_empty() {
                if let Some((_, ep)) = eps.iter_mut().find(|(n, _)| !n.internal) {
                    let (maps, fds) = ports::reserve(&bs, c.name)?;
                    ep.ports = maps;
                    self.store.update_endpoint(ep)?;
                    self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(c.id.to_string(), fds);
                    self.apply_firewall()?;
                }
            }
        }
        for (n, _) in &eps {
            self.emit(n, "connect", Some(c.id));
        }
        let dns = eps.iter().find(|(n, _)| n.name != "bridge").and_then(|(n, _)| n.gateway.parse().ok());
        Ok(Attached {
            netns: ns.to_path_buf(),
            settings: self.settings(c, ns, &eps),
            addresses: eps.iter().filter_map(|(_, e)| e.ip.parse().ok()).collect(),
            dns,
        })
    }

    /// One veth into network `n`, named `eth<index>` in the container.
    fn join(
        &self,
        c: &ContainerNet,
        n: &Network,
        ns: &Path,
        cfg: &Value,
        index: usize,
        route: bool,
    ) -> Result<Endpoint> {
        if n.driver != "bridge" {
            return Err(Error::InvalidArgument(format!("cannot attach to network {} (driver {})", n.name, n.driver)));
        }
        let requested = cfg
            .get("IPAMConfig")
            .and_then(|v| v.get("IPv4Address"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<Ipv4Addr>().map_err(|_| Error::InvalidArgument(format!("invalid IPv4 address: {s}"))))
            .transpose()?;
        let mut aliases: Vec<String> = cfg
            .get("Aliases")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        aliases.dedup();
        let short = &c.id[..12.min(c.id.len())];
        let dns_names = if n.name == "bridge" {
            Vec::new()
        } else {
            let mut d = vec![c.name.to_string()];
            d.extend(aliases.iter().cloned());
            // Compose reaches services by name: its containers carry the
            // service in a label (Compose also sends it as an alias).
            if let Some(svc) = c
                .config
                .get("Labels")
                .and_then(|l| l.get("com.docker.compose.service"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && !d.iter().any(|x| x == s))
            {
                d.push(svc.to_string());
            }
            d.push(short.to_string());
            if !c.hostname.is_empty() && !d.iter().any(|x| x == c.hostname) {
                d.push(c.hostname.to_string());
            }
            d
        };
        let ep = Endpoint {
            network_id: n.id.clone(),
            container_id: c.id.to_string(),
            container_name: c.name.to_string(),
            endpoint_id: random_hex(64),
            ip: String::new(),
            prefix: 0,
            gateway: String::new(),
            mac: String::new(),
            aliases,
            dns_names,
            ipam_config: cfg.get("IPAMConfig").cloned().unwrap_or(Value::Null),
            driver_opts: cfg.get("DriverOpts").cloned().unwrap_or(Value::Null),
            veth: format!("veth{}", random_hex(7)),
            ifname: format!("eth{index}"),
            ports: Vec::new(),
            dns_servers: c
                .host_config
                .get("Dns")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default(),
        };
        let mut ep = self.store.allocate(n, ep, requested)?;
        let ip: Ipv4Addr = ep.ip.parse().map_err(|_| Error::Internal("bad address".into()))?;
        let mac_s = cfg.get("MacAddress").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        let mac = match mac_s.as_deref().or_else(|| {
            // `--mac-address` before API 1.44 sits in the container config.
            if index == 0 {
                c.config.get("MacAddress").and_then(Value::as_str).filter(|s| !s.is_empty())
            } else {
                None
            }
        }) {
            Some(m) => ipam::parse_mac(m)?,
            None => ipam::mac_for(ip),
        };
        ep.mac = ipam::mac_string(&mac);
        if let Err(e) = self.store.update_endpoint(&ep).and_then(|_| self.plumb(n, &ep, ns, ip, mac, route)) {
            if let Ok(mut nl) = Netlink::open() {
                let _ = nl.del_link(&ep.veth);
            }
            let _ = self.store.release(&n.id, c.id);
            return Err(e);
        }
        Ok(ep)
    }

    /// The veth pair and the addressing inside the namespace.
    fn plumb(&self, n: &Network, ep: &Endpoint, ns: &Path, ip: Ipv4Addr, mac: [u8; 6], route: bool) -> Result<()> {
        let io = |what: &str| Error::io(format!("{what} for {}", ep.container_name));
        let mut nl = Netlink::open().map_err(io("netlink"))?;
        let master = nl.index(&n.bridge).map_err(io("netlink"))?;
        if master.is_none() {
            // The bridge vanished (deleted by hand): recreate it.
            self.ensure_bridge(n)?;
        }
        let master = nl.index(&n.bridge).map_err(io("netlink"))?;
        let nsf = netns::open(ns).map_err(io("opening the network namespace"))?;
        nl.add_veth(&ep.veth, master, &ep.ifname, nsf.as_raw_fd(), Some(mac)).map_err(io("creating a veth pair"))?;
        nl.set_up(&ep.veth).map_err(io("bringing up the veth"))?;
        // Hairpin: a container reaching its own published port through the
        // host comes back out of the port it went in (Docker sets it without
        // the userland proxy).
        let _ = std::fs::write(format!("/sys/class/net/{}/brport/hairpin_mode", ep.veth), "1");
        let mut inner = Netlink::open_in(ns).map_err(io("entering the network namespace"))?;
        inner.add_addr(&ep.ifname, ip, ep.prefix).map_err(io("adding the address"))?;
        inner.set_up(&ep.ifname).map_err(io("bringing up the interface"))?;
        if route {
            let gw: Ipv4Addr = n.gateway.parse().map_err(|_| Error::Internal("bad gateway".into()))?;
            inner.add_default_route(gw).map_err(io("adding the default route"))?;
        }
        Ok(())
    }

    fn endpoint_json(n: &Network, ep: &Endpoint, requested: Option<&Value>) -> Value {
        let r = |k: &str| requested.and_then(|v| v.get(k)).cloned().filter(|v| !v.is_null());
        json!({
            "IPAMConfig": r("IPAMConfig"), "Links": r("Links"),
            "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
            "MacAddress": ep.mac, "DriverOpts": r("DriverOpts"),
            "NetworkID": n.id, "EndpointID": ep.endpoint_id, "Gateway": ep.gateway, "IPAddress": ep.ip,
            "IPPrefixLen": ep.prefix, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": if ep.dns_names.is_empty() { Value::Null } else { json!(ep.dns_names) },
        })
    }

    /// Docker's `NetworkSettings` of a running container. The top-level
    /// address fields describe the default bridge only, as in Docker.
    fn settings(&self, c: &ContainerNet, ns: &Path, eps: &[(Network, Endpoint)]) -> Value {
        let mut networks = c.networks.clone();
        for (n, ep) in eps {
            networks.insert(n.name.clone(), Self::endpoint_json(n, ep, c.networks.get(&n.name)));
        }
        let maps: Vec<ports::PortMap> = eps.iter().flat_map(|(_, e)| e.ports.clone()).collect();
        let bridge = eps.iter().find(|(n, _)| n.name == "bridge").map(|(_, e)| e);
        let sandbox_key = ns.display().to_string();
        // Docker's SandboxKey ends in the first 12 characters of the SandboxID.
        let key_name = ns.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let sandbox_id = format!("{key_name}{}", random_hex(64usize.saturating_sub(key_name.len())));
        let f = |get: fn(&Endpoint) -> Value, dflt: Value| bridge.map(get).unwrap_or(dflt);
        json!({
            "Bridge": "", "SandboxID": sandbox_id, "SandboxKey": sandbox_key,
            "Ports": ports::settings_ports(c.config, &maps),
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": f(|e| json!(e.endpoint_id), json!("")),
            "Gateway": f(|e| json!(e.gateway), json!("")),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": f(|e| json!(e.ip), json!("")),
            "IPPrefixLen": f(|e| json!(e.prefix), json!(0)),
            "IPv6Gateway": "",
            "MacAddress": f(|e| json!(e.mac), json!("")),
            "Networks": networks,
        })
    }

    /// Docker's `NetworkSettings` of a container that is not running: the
    /// networks it belongs to, without addresses.
    pub fn stopped_settings(networks: &Map<String, Value>) -> Value {
        let mut nets = Map::new();
        for (k, v) in networks {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                for (f, z) in [
                    ("EndpointID", json!("")),
                    ("Gateway", json!("")),
                    ("IPAddress", json!("")),
                    ("IPPrefixLen", json!(0)),
                    ("DNSNames", Value::Null),
                ] {
                    o.insert(f.into(), z);
                }
            }
            nets.insert(k.clone(), v);
        }
        json!({
            "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": false,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": nets,
        })
    }

    /// Releases a container's networking: veths, addresses, reserved ports,
    /// firewall rules and its namespace file. Idempotent.
    pub fn detach(&self, container_id: &str) -> Result<()> {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(container_id);
        let eps: Vec<Endpoint> =
            self.store.endpoints()?.into_iter().filter(|e| e.container_id == container_id).collect();
        let had_ports = eps.iter().any(|e| !e.ports.is_empty());
        let nets = self.store.networks()?;
        let sandbox = self.store.sandbox(container_id)?;
        if !eps.is_empty() {
            let mut nl = Netlink::open().map_err(Error::io("netlink"))?;
            for ep in &eps {
                // Deleting a veth waits for an RCU grace period (~20 ms);
                // when the namespace goes too, the kernel removes its veths
                // with it in the background, batched. Only a veth whose
                // namespace stays is deleted here.
                if sandbox.is_none() {
                    if let Err(e) = nl.del_link(&ep.veth) {
                        tracing::warn!("removing {}: {e}", ep.veth);
                    }
                }
                self.store.release(&ep.network_id, container_id)?;
                if let Some(n) = nets.iter().find(|n| n.id == ep.network_id) {
                    self.emit(n, "disconnect", Some(container_id));
                }
            }
        }
        if had_ports {
            self.apply_firewall()?;
        }
        if let Some(ns) = sandbox {
            netns::remove(Path::new(&ns)).map_err(Error::io("removing the network namespace"))?;
            self.store.delete_sandbox(container_id)?;
        }
        Ok(())
    }

    /// `network connect` on a running container: a new interface in its
    /// namespace. Returns the endpoint's settings.
    pub fn connect_running(&self, c: &ContainerNet, network: &str, cfg: &Value) -> Result<(Network, Value)> {
        let n = self.get(network)?;
        let ns =
            self.store.sandbox(c.id)?.ok_or_else(|| Error::Conflict(format!("container {} is not running", c.id)))?;
        if c.mode == "none" || c.mode == "host" || c.mode.starts_with("container:") {
            return Err(Error::InvalidArgument(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        let existing: Vec<Endpoint> = self.store.endpoints()?.into_iter().filter(|e| e.container_id == c.id).collect();
        let index = (0..).find(|i| !existing.iter().any(|e| e.ifname == format!("eth{i}"))).unwrap_or(0);
        let route = existing.is_empty() && !n.internal;
        let ep = self.join(c, &n, Path::new(&ns), cfg, index, route)?;
        self.emit(&n, "connect", Some(c.id));
        self.start_dns();
        Ok((n.clone(), Self::endpoint_json(&n, &ep, Some(cfg))))
    }

    /// `network disconnect` of a running container.
    pub fn disconnect_running(&self, container_id: &str, network: &str) -> Result<Network> {
        let n = self.get(network)?;
        let ep = self
            .store
            .endpoints()?
            .into_iter()
            .find(|e| e.container_id == container_id && e.network_id == n.id)
            .ok_or_else(|| {
            Error::Forbidden(format!("container {container_id} is not connected to network {}", n.name))
        })?;
        if let Ok(mut nl) = Netlink::open() {
            let _ = nl.del_link(&ep.veth);
        }
        self.store.release(&n.id, container_id)?;
        if !ep.ports.is_empty() {
            self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(container_id);
            self.apply_firewall()?;
        }
        self.emit(&n, "disconnect", Some(container_id));
        Ok(n)
    }

    /// Every running endpoint (for the embedded DNS server).
    pub fn all_endpoints(&self) -> Vec<Endpoint> {
        self.store.endpoints().unwrap_or_default()
    }

    /// (Re)starts the embedded DNS server on the gateways of the user-defined networks.
    fn start_dns(&self) {
        let nets: Vec<Network> = self
            .store
            .networks()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.driver == "bridge" && n.name != "bridge")
            .collect();
        let mut g = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = g.as_ref() {
            d.set_networks(&nets);
            return;
        }
        if nets.is_empty() {
            return;
        }
        match crate::dns::Server::start(self.store_handle(), &nets) {
            Ok(s) => *g = Some(s),
            Err(e) => tracing::warn!("starting the embedded DNS server: {e}"),
        }
    }

    fn store_handle(&self) -> crate::dns::Lookup {
        crate::dns::Lookup::new(self.store.db())
    }
}
