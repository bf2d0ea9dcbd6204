//! The firewall: a `FirewallDriver` trait and its nftables implementation,
//! the only place berth programs packet filtering and NAT.
//!
//! berth owns one nftables table per daemon (`ip berth` for the default
//! bridge `berth0`, `ip berth_<bridge>` otherwise, so daemons side by side
//! never touch each other's rules) and never edits anyone else's tables. The
//! whole table is rendered from the recorded state (networks and published
//! ports) and replaced in one atomic `nft -f` transaction, so a restarted
//! daemon re-applies exactly what its records say and a half-applied state
//! cannot exist. As with Docker's `--userland-proxy=false`, published ports
//! are pure DNAT: no proxy process sits on the data path.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::ipam::Subnet;
use crate::{Error, Result};

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetRule {
    pub bridge: String,
    pub subnet: Subnet,
    /// `--internal`: no traffic in or out of the bridge.
    pub internal: bool,
    /// Masquerade outbound traffic (`com.docker.network.bridge.enable_ip_masquerade`).
    pub masquerade: bool,
}

/// One published port: `host_ip:host_port/proto` → `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRule {
    pub proto: String,
    /// None: every host address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FirewallState {
    pub networks: Vec<NetRule>,
    pub ports: Vec<PortRule>,
}

/// Programs the host firewall for a whole state at once.
pub trait FirewallDriver: Send + Sync {
    fn apply(&self, state: &FirewallState) -> Result<()>;
    /// Removes everything this driver installed.
    fn clear(&self) -> Result<()>;
}

/// The nftables driver (runs `nft -f -`).
pub struct Nftables {
    pub table: String,
    /// Bridges whose forwarding is allowed in iptables' FORWARD chain.
    forwarded: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// iptables' FORWARD rules that let a bridge's traffic through.
///
/// A packet must be accepted by every base chain on a hook, so berth's own
/// table cannot override another firewall's drop: a dockerd on the same
/// host sets iptables' FORWARD policy to DROP when it enables ip_forward
/// (since Docker 1.13, so a host does not become an open router) and would
/// cut every berth container off.
/// As netavark's iptables driver does, berth adds its own accept rules
/// (marked with the comment "berth") to FORWARD through the `iptables`
/// binary, so they stay in the format the other firewall manages, and
/// removes exactly those rules again. Isolation stays in berth's table,
/// whose drops win over these accepts.
fn forward_rules(bridge: &str) -> [Vec<String>; 2] {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    [
        v(&["-i", bridge, "-m", "comment", "--comment", "berth", "-j", "ACCEPT"]),
        v(&[
            "-o",
            bridge,
            "-m",
            "conntrack",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
            "-m",
            "comment",
            "--comment",
            "berth",
            "-j",
            "ACCEPT",
        ]),
    ]
}

fn iptables(op: &str, rule: &[String]) -> bool {
    Command::new("iptables")
        .args(["-w", "-t", "filter", op, "FORWARD"])
        .args(rule)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl Nftables {
    pub fn new(table: impl Into<String>) -> Self {
        Nftables { table: table.into(), forwarded: Default::default() }
    }

    /// Adds the FORWARD accept rules of new bridges, removes those of gone ones.
    fn sync_forward(&self, bridges: &[String]) {
        let mut done = self.forwarded.lock().unwrap_or_else(|e| e.into_inner());
        for b in bridges {
            if done.contains(b) {
                continue;
            }
            for r in forward_rules(b) {
                if !iptables("-C", &r) && !iptables("-I", &r) {
                    tracing::debug!("no iptables FORWARD rule for {b} (iptables unavailable?)");
                }
            }
            done.insert(b.clone());
        }
        let gone: Vec<String> = done.iter().filter(|b| !bridges.contains(b)).cloned().collect();
        for b in gone {
            for r in forward_rules(&b) {
                // Remove every copy (bounded).
                for _ in 0..8 {
                    if !iptables("-D", &r) {
                        break;
                    }
                }
            }
            done.remove(&b);
        }
    }

    fn run(&self, script: &str) -> Result<()> {
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Internal(format!("running nft: {e}")))?;
        if let Some(mut si) = child.stdin.take() {
            si.write_all(script.as_bytes()).map_err(|e| Error::Internal(format!("writing to nft: {e}")))?;
        }
        let out = child.wait_with_output().map_err(|e| Error::Internal(format!("running nft: {e}")))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "programming the firewall failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

impl FirewallDriver for Nftables {
    fn apply(&self, state: &FirewallState) -> Result<()> {
        self.run(&render(&self.table, state))?;
        let bridges: Vec<String> = state.networks.iter().map(|n| n.bridge.clone()).collect();
        self.sync_forward(&bridges);
        Ok(())
    }
    fn clear(&self) -> Result<()> {
        self.sync_forward(&[]);
        // Creating the table first makes the delete succeed when it is absent.
        self.run(&format!("table ip {t}\ndelete table ip {t}\n", t = self.table))
    }
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('"', ""))
}

/// The complete table for `state`, replacing any previous version atomically.
pub fn render(table: &str, state: &FirewallState) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "table ip {table}\ndelete table ip {table}\ntable ip {table} {{");
    let bridges: Vec<String> = state.networks.iter().map(|n| q(&n.bridge)).collect();
    s.push_str("  set bridges {\n    type ifname\n");
    if !bridges.is_empty() {
        let _ = writeln!(s, "    elements = {{ {} }}", bridges.join(", "));
    }
    s.push_str("  }\n");

    // DNAT for traffic to a local address: from outside and from containers
    // (prerouting), and from the host itself, loopback included (output).
    s.push_str("  chain ports {\n");
    for p in &state.ports {
        let daddr = p.host_ip.map(|ip| format!("ip daddr {ip} ")).unwrap_or_default();
        let _ = writeln!(
            s,
            "    {daddr}{proto} dport {hp} dnat to {cip}:{cp}",
            proto = p.proto,
            hp = p.host_port,
            cip = p.container_ip,
            cp = p.container_port
        );
    }
    s.push_str("  }\n");
    s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
    s.push_str("  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");

    s.push_str("  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
    for n in &state.networks {
        if n.masquerade && !n.internal {
            // Outbound NAT (Docker's `-s <subnet> ! -o <bridge> -j MASQUERADE`).
            let _ = writeln!(s, "    ip saddr {} oifname != {} masquerade", n.subnet, q(&n.bridge));
        }
        // Host loopback → container (route_localnet) and hairpin (a
        // container reaching a port published on the host, even its own):
        // replies must come back through the host to be un-NATed.
        let _ = writeln!(s, "    oifname {} ip saddr 127.0.0.0/8 masquerade", q(&n.bridge));
        let _ = writeln!(s, "    oifname {} ct status dnat ip saddr {} masquerade", q(&n.bridge), n.subnet);
    }
    s.push_str("  }\n");

    // Isolation as Docker's DOCKER-ISOLATION chains: no forwarding between
    // two berth bridges, none in or out of an internal one. Published ports
    // stay reachable (Docker's default userland proxy makes them so).
    s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
    for n in &state.networks {
        if n.internal {
            let _ = writeln!(s, "    iifname {b} oifname != {b} drop", b = q(&n.bridge));
            let _ = writeln!(s, "    oifname {b} iifname != {b} drop", b = q(&n.bridge));
        }
    }
    s.push_str("    ct status dnat accept\n");
    for n in &state.networks {
        let _ = writeln!(s, "    iifname {b} oifname != {b} oifname @bridges drop", b = q(&n.bridge));
    }
    s.push_str("  }\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nat_ports_and_isolation() {
        let st = FirewallState {
            networks: vec![
                NetRule {
                    bridge: "berth0".into(),
                    subnet: Subnet::parse("172.17.0.0/16").unwrap(),
                    internal: false,
                    masquerade: true,
                },
                NetRule {
                    bridge: "br-1".into(),
                    subnet: Subnet::parse("10.5.0.0/24").unwrap(),
                    internal: true,
                    masquerade: true,
                },
            ],
            ports: vec![PortRule {
                proto: "tcp".into(),
                host_ip: None,
                host_port: 8080,
                container_ip: Ipv4Addr::new(172, 17, 0, 2),
                container_port: 80,
            }],
        };
        let r = render("berth", &st);
        assert!(r.starts_with("table ip berth\ndelete table ip berth\n"));
        assert!(r.contains("elements = { \"berth0\", \"br-1\" }"));
        assert!(r.contains("    tcp dport 8080 dnat to 172.17.0.2:80\n"));
        assert!(r.contains("ip saddr 172.17.0.0/16 oifname != \"berth0\" masquerade"));
        // An internal network gets no masquerade and is cut off.
        assert!(!r.contains("ip saddr 10.5.0.0/24 oifname != \"br-1\" masquerade"));
        assert!(r.contains("iifname \"br-1\" oifname != \"br-1\" drop"));
    }
}
