//! The embedded DNS server of user-defined networks (Docker's 127.0.0.11,
//! served here on each network's gateway address as aardvark-dns does):
//! container names, network aliases and short IDs on the asking container's
//! network resolve to their addresses there (an alias several containers
//! share gives several answers); anything else is forwarded to the host's
//! resolvers. The default bridge has none, as in Docker.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_meta::Db;

use crate::store::{Endpoint, Network};

/// Answers from the endpoint records.
#[derive(Clone)]
pub struct Lookup {
    db: Arc<Db>,
}

impl Lookup {
    pub fn new(db: Arc<Db>) -> Lookup {
        Lookup { db }
    }

    fn endpoints(&self) -> Vec<Endpoint> {
        self.db
            .read(|c| {
                let mut st = c.prepare("SELECT data FROM endpoints")?;
                let rows = st
                    .query_map([], |r| r.get::<_, String>(0))?
                    .filter_map(|r| r.ok())
                    .filter_map(|s| serde_json::from_str::<Endpoint>(&s).ok())
                    .collect::<Vec<_>>();
                Ok::<_, crate::Error>(rows)
            })
            .unwrap_or_default()
    }

    /// Addresses of `name` (or `name.<network>`) for the container at `from`
    /// on `network`: Docker resolves names on every network the asking
    /// container is connected to, each to its address on that network.
    pub fn resolve(&self, network: &Network, from: Ipv4Addr, name: &str) -> Vec<Ipv4Addr> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let suffix = format!(".{}", network.name.to_ascii_lowercase());
        let name = name.strip_suffix(&suffix).unwrap_or(&name).to_string();
        let all = self.endpoints();
        let from = from.to_string();
        let asker = all.iter().find(|e| e.network_id == network.id && e.ip == from).map(|e| e.container_id.clone());
        let nets: Vec<&str> = match &asker {
            Some(cid) => all.iter().filter(|e| e.container_id == *cid).map(|e| e.network_id.as_str()).collect(),
            None => vec![network.id.as_str()],
        };
        let mut out = Vec::new();
        for ep in all.iter().filter(|e| nets.contains(&e.network_id.as_str())) {
            let hit = ep.container_name.eq_ignore_ascii_case(&name)
                || ep.dns_names.iter().any(|d| d.eq_ignore_ascii_case(&name))
                || ep.aliases.iter().any(|d| d.eq_ignore_ascii_case(&name));
            if hit {
                if let Ok(ip) = ep.ip.parse() {
                    out.push(ip);
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Where to forward what the asking container's network does not know:
    /// its `--dns` servers, else the host's.
    pub fn upstreams_for(&self, network: &Network, from: Ipv4Addr) -> Vec<SocketAddrV4> {
        let from = from.to_string();
        let own: Vec<SocketAddrV4> = self
            .endpoints()
            .into_iter()
            .find(|e| e.network_id == network.id && e.ip == from)
            .map(|e| {
                e.dns_servers
                    .iter()
                    .filter_map(|s| s.parse::<Ipv4Addr>().ok())
                    .map(|ip| SocketAddrV4::new(ip, 53))
                    .collect()
            })
            .unwrap_or_default();
        if own.is_empty() {
            host_upstreams()
        } else {
            own
        }
    }
}

/// The host's resolvers (the daemon runs in the host's namespace, so
/// loopback resolvers such as systemd-resolved's work here, as Docker's
/// resolver reaches host-loopback servers from the host's namespace).
fn host_upstreams() -> Vec<SocketAddrV4> {
    let s = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let v: Vec<SocketAddrV4> = s
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<Ipv4Addr>().ok())
        .map(|ip| SocketAddrV4::new(ip, 53))
        .collect();
    if v.is_empty() {
        vec![SocketAddrV4::new(Ipv4Addr::new(8, 8, 8, 8), 53)]
    } else {
        v
    }
}

/// The first question of a query: (name, qtype, end offset of the question).
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    if q.len() < 12 || u16::from_be_bytes([q[4], q[5]]) == 0 {
        return None;
    }
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let l = *q.get(i)? as usize;
        if l == 0 {
            i += 1;
            break;
        }
        if l & 0xC0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + l)?).into_owned());
        i += 1 + l;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

/// A response with `ips` as A records (TTL 600 as Docker's resolver).
pub fn answer(q: &[u8], qend: usize, qtype: u16, ips: &[Ipv4Addr]) -> Vec<u8> {
    let mut r = Vec::with_capacity(qend + 16 * ips.len());
    r.extend_from_slice(&q[0..2]);
    let rd = q[2] & 0x01;
    r.push(0x80 | (q[2] & 0x78) | 0x04 | rd); // QR, opcode, AA, RD
    r.push(0x80); // RA, rcode 0
    r.extend_from_slice(&[0, 1]);
    let a: &[Ipv4Addr] = if qtype == 1 || qtype == 255 { ips } else { &[] };
    r.extend_from_slice(&(a.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&q[12..qend]);
    for ip in a {
        r.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        r.extend_from_slice(&600u32.to_be_bytes());
        r.extend_from_slice(&[0, 4]);
        r.extend_from_slice(&ip.octets());
    }
    r
}

fn forward(q: &[u8], ups: &[SocketAddrV4]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut buf = vec![0u8; 4096];
    for up in ups.iter().copied() {
        if s.send_to(q, up).is_err() {
            continue;
        }
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if from == std::net::SocketAddr::V4(up) && n >= 2 && buf[0..2] == q[0..2] {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// A SERVFAIL for a query nobody answered.
fn servfail(q: &[u8], qend: usize) -> Vec<u8> {
    let mut r = answer(q, qend, 0, &[]);
    r[3] = 0x82;
    r
}

struct Listener {
    stop: Arc<AtomicBool>,
}

/// One UDP listener per user-defined network, on its gateway.
pub struct Server {
    lookup: Lookup,
    listeners: Mutex<HashMap<String, Listener>>,
}

impl Server {
    pub fn start(lookup: Lookup, nets: &[Network]) -> std::io::Result<Arc<Server>> {
        let s = Arc::new(Server { lookup, listeners: Mutex::new(HashMap::new()) });
        s.set_networks(nets);
        Ok(s)
    }

    /// Starts listeners for new networks and stops those of removed ones.
    pub fn set_networks(&self, nets: &[Network]) {
        let mut l = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        l.retain(|id, lis| {
            let keep = nets.iter().any(|n| n.id == *id);
            if !keep {
                lis.stop.store(true, Ordering::Relaxed);
            }
            keep
        });
        for n in nets {
            if l.contains_key(&n.id) {
                continue;
            }
            match self.listen(n) {
                Ok(lis) => {
                    l.insert(n.id.clone(), lis);
                }
                Err(e) => tracing::warn!("DNS on {} ({}): {e}", n.name, n.gateway),
            }
        }
    }

    fn listen(&self, n: &Network) -> std::io::Result<Listener> {
        let gw: Ipv4Addr = n.gateway.parse().map_err(std::io::Error::other)?;
        let sock = UdpSocket::bind(SocketAddrV4::new(gw, 53))?;
        // A short timeout lets the thread notice a stop.
        sock.set_read_timeout(Some(Duration::from_millis(250)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, net, lookup) = (stop.clone(), n.clone(), self.lookup.clone());
        std::thread::Builder::new().name(format!("dns-{}", &n.id[..8])).spawn(move || {
            let mut buf = vec![0u8; 4096];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((len, from)) = sock.recv_from(&mut buf) else { continue };
                let q = buf[..len].to_vec();
                let Some((name, qtype, qend)) = question(&q) else { continue };
                let ips = if name.contains('.')
                    && !name.to_ascii_lowercase().ends_with(&format!(".{}", net.name.to_ascii_lowercase()))
                {
                    Vec::new()
                } else {
                    match from {
                        std::net::SocketAddr::V4(a) => lookup.resolve(&net, *a.ip(), &name),
                        _ => Vec::new(),
                    }
                };
                if !ips.is_empty() {
                    let _ = sock.send_to(&answer(&q, qend, qtype, &ips), from);
                    continue;
                }
                // Forwarding waits on the network: off this thread.
                let Ok(reply_sock) = sock.try_clone() else { continue };
                let ups = match from {
                    std::net::SocketAddr::V4(a) => lookup.upstreams_for(&net, *a.ip()),
                    _ => host_upstreams(),
                };
                let _ = std::thread::Builder::new().name("dns-fwd".into()).spawn(move || {
                    let reply = forward(&q, &ups).unwrap_or_else(|| servfail(&q, qend));
                    let _ = reply_sock.send_to(&reply, from);
                });
            }
        })?;
        Ok(Listener { stop })
    }

    pub fn stop(&self) {
        let mut l = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for (_, lis) in l.drain() {
            lis.stop.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn parses_and_answers() {
        let q = query("web", 1);
        let (name, qtype, end) = question(&q).unwrap();
        assert_eq!((name.as_str(), qtype, end), ("web", 1, q.len()));
        let r = answer(&q, end, qtype, &[Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 1, 0, 3)]);
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 2);
        assert_eq!(&r[r.len() - 4..], &[10, 1, 0, 3]);
        // AAAA for a known name: no records, no error.
        let q6 = query("web", 28);
        let r6 = answer(&q6, q6.len(), 28, &[Ipv4Addr::new(10, 1, 0, 2)]);
        assert_eq!(u16::from_be_bytes([r6[6], r6[7]]), 0);
        assert_eq!(r6[3] & 0x0f, 0);
    }
}
