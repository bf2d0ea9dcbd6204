//! Published ports: the container's `PortBindings` (and `-P`'s exposed
//! ports) turned into concrete mappings, each reserved on the host by a bound
//! socket held for the container's life, as Docker 28 does: a port a host
//! process already uses is refused ("port is already allocated") instead of
//! being silently shadowed by the DNAT rule, and nothing else can take it
//! while the container publishes it.

use std::net::Ipv4Addr;
use std::os::fd::{FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// A requested binding: container port/proto and the host side (port 0 or a
/// range means "any free one").
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: Option<Ipv4Addr>,
    pub host_ports: (u16, u16),
}

/// A reserved mapping, recorded with the endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortMap {
    pub proto: String,
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: u16,
}

fn split_port(key: &str) -> Result<(u16, String)> {
    let (p, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = if proto.is_empty() { "tcp" } else { proto }.to_ascii_lowercase();
    if proto != "tcp" && proto != "udp" && proto != "sctp" {
        return Err(Error::InvalidArgument(format!("invalid proto: {proto}")));
    }
    let port: u16 = p.parse().map_err(|_| Error::InvalidArgument(format!("invalid port: {p}")))?;
    Ok((port, proto))
}

fn host_range(s: &str) -> Result<(u16, u16)> {
    if s.is_empty() {
        return Ok((0, 0));
    }
    let bad = || Error::InvalidArgument(format!("invalid hostPort: {s}"));
    match s.split_once('-') {
        Some((a, b)) => {
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            if b < a {
                return Err(bad());
            }
            Ok((a, b))
        }
        None => {
            let p: u16 = s.parse().map_err(|_| bad())?;
            Ok((p, p))
        }
    }
}

/// The bindings of a container: `PortBindings`, plus every exposed port with
/// a random host port when `PublishAllPorts` is set (Docker's `-P`).
pub fn bindings(host_config: &Map<String, Value>, config: &Map<String, Value>) -> Result<Vec<Binding>> {
    let mut out = Vec::new();
    let pb = host_config.get("PortBindings").and_then(Value::as_object);
    if let Some(pb) = pb {
        for (key, list) in pb {
            let (port, proto) = split_port(key)?;
            let list = list.as_array().cloned().unwrap_or_default();
            let list = if list.is_empty() { vec![Value::Object(Map::new())] } else { list };
            for b in list {
                let ip = b.get("HostIp").and_then(Value::as_str).unwrap_or("");
                let host_ip = match ip {
                    "" | "0.0.0.0" => None,
                    // IPv6 bindings are not supported; `::` comes with IPv4's `0.0.0.0`.
                    s if s.contains(':') => continue,
                    s => Some(
                        s.parse::<Ipv4Addr>()
                            .map_err(|_| Error::InvalidArgument(format!("invalid IP address: {s}")))?,
                    ),
                };
                let hp = host_range(b.get("HostPort").and_then(Value::as_str).unwrap_or(""))?;
                out.push(Binding { proto: proto.clone(), container_port: port, host_ip, host_ports: hp });
            }
        }
    }
    let publish_all = host_config.get("PublishAllPorts").and_then(Value::as_bool).unwrap_or(false);
    if publish_all {
        if let Some(ex) = config.get("ExposedPorts").and_then(Value::as_object) {
            for key in ex.keys() {
                let (port, proto) = split_port(key)?;
                if !out.iter().any(|b| b.container_port == port && b.proto == proto) {
                    out.push(Binding { proto, container_port: port, host_ip: None, host_ports: (0, 0) });
                }
            }
        }
    }
    Ok(out)
}

/// Binds `ip:port` for `proto`; port 0 lets the kernel choose from the
/// ephemeral range. Returns the socket and the port it got.
fn bind(proto: &str, ip: Ipv4Addr, port: u16) -> std::io::Result<(OwnedFd, u16)> {
    let typ = if proto == "udp" { libc::SOCK_DGRAM } else { libc::SOCK_STREAM };
    // SAFETY: socket/bind/listen/getsockname on an fd owned right away.
    unsafe {
        let fd = libc::socket(libc::AF_INET, typ | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as u16;
        sa.sin_port = port.to_be();
        sa.sin_addr.s_addr = u32::from(ip).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        if libc::bind(raw, &sa as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // A listening TCP socket makes any later bind by a host process fail,
        // even with SO_REUSEADDR; the DNAT rule sees every packet first.
        if typ == libc::SOCK_STREAM && libc::listen(raw, 1) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut glen = len;
        if libc::getsockname(raw, &mut got as *mut _ as *mut libc::sockaddr, &mut glen) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((fd, u16::from_be(got.sin_port)))
    }
}

fn allocated(ip: Option<Ipv4Addr>, port: u16, proto: &str, endpoint: &str) -> Error {
    let ip = ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let _ = proto;
    Error::PortAllocated(format!(
        "driver failed programming external connectivity on endpoint {endpoint}: Bind for {ip}:{port} failed: port is already allocated"
    ))
}

/// Reserves every binding; on any failure nothing stays reserved.
pub fn reserve(bs: &[Binding], endpoint: &str) -> Result<(Vec<PortMap>, Vec<OwnedFd>)> {
    let mut maps = Vec::new();
    let mut fds = Vec::new();
    for b in bs {
        let ip = b.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let (lo, hi) = b.host_ports;
        let got = if lo == 0 {
            bind(&b.proto, ip, 0).map_err(|e| Error::Internal(format!("allocating a host port: {e}")))?
        } else {
            let mut res = None;
            let mut last_err = None;
            for p in lo..=hi {
                match bind(&b.proto, ip, p) {
                    Ok(r) => {
                        res = Some(r);
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            match res {
                Some(r) => r,
                None => {
                    return Err(match last_err {
                        Some(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => allocated(b.host_ip, hi, &b.proto, endpoint),
                        Some(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Error::Internal(format!(
                            "driver failed programming external connectivity on endpoint {endpoint}: Error starting userland proxy: listen {}: bind: cannot assign requested address",
                            format_args!("{}/{ip}:{lo}", b.proto)
                        )),
                        Some(e) => Error::Internal(format!("binding {ip}:{lo}: {e}")),
                        None => allocated(b.host_ip, lo, &b.proto, endpoint),
                    });
                }
            }
        };
        fds.push(got.0);
        maps.push(PortMap {
            proto: b.proto.clone(),
            container_port: b.container_port,
            host_ip: ip.to_string(),
            host_port: got.1,
        });
    }
    Ok((maps, fds))
}

/// Re-reserves recorded mappings (daemon restart); failures are logged, the
/// DNAT rules stay.
pub fn rebind(maps: &[PortMap]) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    for m in maps {
        let ip = m.host_ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        match bind(&m.proto, ip, m.host_port) {
            Ok((fd, _)) => fds.push(fd),
            Err(e) => tracing::warn!("re-reserving {}:{}/{}: {e}", m.host_ip, m.host_port, m.proto),
        }
    }
    fds
}

/// Docker's `NetworkSettings.Ports`: every exposed or published port, with
/// its host bindings (null when not published).
pub fn settings_ports(config: &Map<String, Value>, maps: &[PortMap]) -> Value {
    let mut out = Map::new();
    if let Some(ex) = config.get("ExposedPorts").and_then(Value::as_object) {
        for k in ex.keys() {
            let key = if k.contains('/') { k.clone() } else { format!("{k}/tcp") };
            out.insert(key, Value::Null);
        }
    }
    for m in maps {
        let key = format!("{}/{}", m.container_port, m.proto);
        let entry = out.entry(key).or_insert(Value::Null);
        if !entry.is_array() {
            *entry = Value::Array(Vec::new());
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(serde_json::json!({"HostIp": m.host_ip, "HostPort": m.host_port.to_string()}));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_from_host_config() {
        let hc = json!({"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}, "PublishAllPorts": true});
        let cfg = json!({"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}});
        let b = bindings(hc.as_object().unwrap(), cfg.as_object().unwrap()).unwrap();
        assert!(b.contains(&Binding {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: None,
            host_ports: (8080, 8080)
        }));
        assert!(b.contains(&Binding {
            proto: "udp".into(),
            container_port: 53,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: (0, 0)
        }));
        assert!(b.contains(&Binding { proto: "tcp".into(), container_port: 443, host_ip: None, host_ports: (0, 0) }));
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn reservation_refuses_a_taken_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let b = vec![Binding {
            proto: "tcp".into(),
            container_port: 80,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_ports: (port, port),
        }];
        let e = reserve(&b, "c1").unwrap_err().to_string();
        assert!(e.ends_with(&format!("Bind for 127.0.0.1:{port} failed: port is already allocated")), "{e}");
        drop(l);
        let (maps, fds) = reserve(&b, "c1").unwrap();
        assert_eq!(maps[0].host_port, port);
        // Now held: a second reservation fails.
        assert!(reserve(&b, "c1").is_err());
        drop(fds);
    }

    #[test]
    fn settings_ports_like_docker() {
        let cfg = json!({"ExposedPorts": {"80/tcp": {}, "9000/tcp": {}}});
        let maps =
            vec![PortMap { proto: "tcp".into(), container_port: 80, host_ip: "0.0.0.0".into(), host_port: 8080 }];
        let v = settings_ports(cfg.as_object().unwrap(), &maps);
        assert_eq!(v["80/tcp"], json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}]));
        assert_eq!(v["9000/tcp"], Value::Null);
    }
}
