//! Root integration tests of networking: the default bridge (addresses,
//! outbound NAT to the host), published TCP/UDP ports (loopback, the host's
//! address, hairpin), user-defined networks (names, aliases, isolation,
//! --internal, embedded DNS and its forwarding, live connect/disconnect),
//! Docker's errors, and cleanup after `rm -f` and after a daemon kill -9.
//!
//! Every test daemon has its own bridge (see `common`), every test its own
//! subnets under 10.231.0.0/16, and traffic goes only to loopback and to
//! addresses on the bridges the test made.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn daemon() -> Option<Daemon> {
    if !common::is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    Some(d)
}

fn links() -> String {
    stdout(&std::process::Command::new("ip").args(["-o", "link"]).output().unwrap())
}

fn nft_table(d: &Daemon) -> String {
    let o = std::process::Command::new("nft")
        .args(["list", "table", "ip", &format!("berth_{}", d.bridge)])
        .output()
        .unwrap();
    stdout(&o)
}

/// The gateway of the daemon's default bridge (a host address).
fn bridge_gateway(d: &Daemon) -> Ipv4Addr {
    let (_, v) = d.http_json("GET", "/networks/bridge", None);
    v["IPAM"]["Config"][0]["Gateway"].as_str().unwrap().parse().unwrap()
}

/// A host address that is not on a berth bridge (the uplink's), else the gateway.
fn host_address(d: &Daemon) -> Ipv4Addr {
    let out = stdout(
        &std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().unwrap(),
    );
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 3 && !f[1].starts_with("bt") && !f[1].starts_with("br-") && !f[1].starts_with("docker") {
            if let Some(ip) = f[3].split('/').next().and_then(|s| s.parse().ok()) {
                return ip;
            }
        }
    }
    bridge_gateway(d)
}

/// Host interfaces enslaved to this daemon's bridges (container veths).
fn our_veths(d: &Daemon) -> usize {
    let (_, nets) = d.http_json("GET", "/networks", None);
    let bridges: Vec<String> = nets
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["Driver"] == "bridge")
        .map(|n| match n["Options"]["com.docker.network.bridge.name"].as_str() {
            Some(b) => b.to_string(),
            None => format!("br-{}", &n["Id"].as_str().unwrap()[..12]),
        })
        .collect();
    links().lines().filter(|l| bridges.iter().any(|b| l.contains(&format!("master {b} ")))).count()
}

/// Asserts nothing of the containers' networking is left on the host.
fn assert_net_clean(d: &Daemon) {
    wait_until("veths to go", || our_veths(d) == 0);
    let ns_dir = d.root.join("exec/netns");
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let pinned = mounted.lines().filter(|l| l.contains(ns_dir.to_str().unwrap())).count();
    // Only the pool of ready namespaces stays (no more than 3).
    assert!(pinned <= 3, "{pinned} namespaces pinned under {}", ns_dir.display());
    assert!(!nft_table(d).contains("dnat to"), "DNAT rules left: {}", nft_table(d));
}

fn tcp_read(addr: (Ipv4Addr, u16)) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if !out.is_empty() {
                    return out;
                }
            }
            Err(e) if Instant::now() > deadline => panic!("connecting to {addr:?}: {e}"),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "no answer from {addr:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn default_bridge_addresses_outbound_and_cleanup() {
    let Some(d) = daemon() else { return };
    let gw = bridge_gateway(&d);
    assert!(links().contains(&format!(" {}:", d.bridge)), "bridge {} missing", d.bridge);

    // A TCP server on the host's address; the container reaches it through
    // its default route and the outbound masquerade.
    let host = host_address(&d);
    let l = TcpListener::bind((host, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        s.write_all(b"hello from the host\n").unwrap();
        peer
    });
    let out = d.ok(&[
        "run",
        "--name",
        "c1",
        "--add-host",
        "hostgw:host-gateway",
        "busybox",
        "sh",
        "-c",
        &format!("ip -4 -o addr show eth0; ip route; cat /etc/hosts; cat /etc/resolv.conf; nc -w 5 {host} {port}"),
    ]);
    let peer = server.join().unwrap();
    assert!(out.contains("hello from the host"), "{out}");
    assert!(out.contains(&format!("default via {gw} dev eth0")), "{out}");
    let v = inspect(&d, "c1");
    assert_eq!(v["State"]["ExitCode"], 0);
    // Stopped: no address any more, the network is still listed.
    assert_eq!(v["NetworkSettings"]["IPAddress"], "");
    assert!(v["NetworkSettings"]["Networks"]["bridge"]["NetworkID"].as_str().unwrap().len() == 64);
    // The container's address was on the bridge's subnet, and in its /etc/hosts.
    let ip_line = out.lines().find(|l| l.contains("eth0") && l.contains("inet")).unwrap();
    let ip: Ipv4Addr = ip_line.split_whitespace().nth(3).unwrap().split('/').next().unwrap().parse().unwrap();
    assert_eq!(u32::from(ip) >> 8, u32::from(gw) >> 8, "{ip} not next to {gw}");
    let hostname = inspect(&d, "c1")["Config"]["Hostname"].as_str().unwrap().to_string();
    assert!(out.contains(&format!("{ip}\t{hostname}")), "{out}");
    assert!(out.contains(&format!("{gw}\thostgw")), "{out}");
    // resolv.conf: the host's resolvers minus loopback ones (no embedded DNS on the default bridge).
    assert!(!out.contains("nameserver 127."), "{out}");
    assert!(!out.contains(&format!("nameserver {gw}")), "{out}");
    // The host saw the connection from the container's address (the same
    // bridge) or, masqueraded, from the host itself.
    assert!(peer.ip().is_ipv4());

    // Running: inspect is filled as Docker does.
    d.ok(&["run", "-d", "--name", "c2", "--mac-address", "02:42:0a:0b:0c:0d", "busybox", "sleep", "300"]);
    let v = inspect(&d, "c2");
    let ns = &v["NetworkSettings"];
    let ip = ns["IPAddress"].as_str().unwrap();
    assert!(!ip.is_empty() && ns["Gateway"] == gw.to_string() && ns["IPPrefixLen"].as_u64().unwrap() > 0, "{ns}");
    assert_eq!(ns["MacAddress"], "02:42:0a:0b:0c:0d");
    assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ip);
    assert_eq!(ns["Networks"]["bridge"]["EndpointID"], ns["EndpointID"]);
    let key = ns["SandboxKey"].as_str().unwrap();
    assert!(std::path::Path::new(key).exists());
    // docker's view of the network lists the container.
    let (_, net) = d.http_json("GET", "/networks/bridge", None);
    let id = v["Id"].as_str().unwrap();
    assert_eq!(net["Containers"][id]["IPv4Address"], format!("{ip}/{}", ns["IPPrefixLen"]));

    // rm -f releases everything: veth, namespace, address (reused next).
    d.ok(&["rm", "-f", "c1", "c2"]);
    assert!(!std::path::Path::new(key).exists(), "namespace file {key} left");
    assert_net_clean(&d);
    let again = d.ok(&["run", "--rm", "busybox", "sh", "-c", "ip -4 -o addr show eth0"]);
    assert!(again.contains(&format!("inet {ip}/")), "address not reused: {again} vs {ip}");
    assert_net_clean(&d);

    // Bad input, Docker's texts.
    let (st, v) = d.http_json(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"NetworkMode":"nosuchnet"}}"#),
    );
    assert_eq!((st, v["message"].as_str().unwrap()), (404, "network nosuchnet not found"));
    let e = d.fails(&["run", "--rm", "--ip", "10.231.0.9", "busybox", "true"]);
    assert!(e.contains("user specified IP address is supported on user defined networks only"), "{e}");
}

#[test]
fn published_ports_tcp_udp_hairpin_and_conflicts() {
    let Some(d) = daemon() else { return };
    d.ok(&["load", "-i", fixture("debian-python.tar").to_str().unwrap()]);
    let py = d
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .lines()
        .find(|l| !l.starts_with("busybox"))
        .unwrap()
        .to_string();
    let host = host_address(&d);
    // A free pair of host ports.
    let (tp, up) = {
        let t = TcpListener::bind("0.0.0.0:0").unwrap();
        let u = UdpSocket::bind("0.0.0.0:0").unwrap();
        (t.local_addr().unwrap().port(), u.local_addr().unwrap().port())
    };
    let tspec = format!("{tp}:8080");
    let uspec = format!("127.0.0.1:{up}:9090/udp");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &tspec,
        "-p",
        "7070",
        "busybox",
        "sh",
        "-c",
        "while true; do echo pong-tcp | nc -l -p 8080; done",
    ]);
    let udp_server = "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('',9090))\nwhile True:\n d,a=s.recvfrom(100)\n s.sendto(b'pong-udp',a)\n";
    d.ok(&["run", "-d", "--name", "udp", "-p", &uspec, &py, "python3", "-c", udp_server]);
    // TCP from loopback and from the host's address.
    assert_eq!(tcp_read((Ipv4Addr::LOCALHOST, tp)).trim(), "pong-tcp");
    assert_eq!(tcp_read((host, tp)).trim(), "pong-tcp");
    // UDP on 127.0.0.1 only.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut got = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.is_empty() && Instant::now() < deadline {
        u.send_to(b"ping\n", ("127.0.0.1", up)).unwrap();
        let mut b = [0u8; 64];
        if let Ok((n, _)) = u.recv_from(&mut b) {
            got = String::from_utf8_lossy(&b[..n]).into_owned();
        }
    }
    assert_eq!(got.trim(), "pong-udp");
    // Hairpin: another container reaches it through the host's address.
    let out = d.ok(&["run", "--rm", "busybox", "sh", "-c", &format!("nc -w 3 {host} {tp}")]);
    assert_eq!(out.trim(), "pong-tcp");

    // `port`, ps and inspect.
    let port = d.ok(&["port", "web"]);
    assert!(port.contains(&format!("8080/tcp -> 0.0.0.0:{tp}")), "{port}");
    let uport = d.ok(&["port", "udp"]);
    assert!(uport.contains(&format!("9090/udp -> 127.0.0.1:{up}")), "{uport}");
    assert!(port.contains("7070/tcp -> 0.0.0.0:"), "{port}");
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(
        ps.contains(&format!("0.0.0.0:{tp}->8080/tcp")) && ps.contains(&format!("127.0.0.1:{up}->9090/udp")),
        "{ps}"
    );
    let v = inspect(&d, "web");
    assert_eq!(v["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"], tp.to_string());
    let f = d.ok(&["ps", "--filter", &format!("publish={tp}"), "--format", "{{.Names}}"]);
    assert_eq!(f.trim(), "web");
    let f = d.ok(&["ps", "--filter", "expose=9090/udp", "--format", "{{.Names}}"]);
    assert_eq!(f.trim(), "udp");
    let f = d.ok(&["ps", "--filter", "network=bridge", "--format", "{{.Names}}"]);
    assert_eq!(f.lines().count(), 2, "{f}");
    if common::which("docker").is_some() {
        let o = d.docker(&["port", "web", "8080"]).unwrap();
        assert!(stdout(&o).contains(&format!("0.0.0.0:{tp}")), "{}{}", stdout(&o), stderr(&o));
    }

    // Taken by this container, then by a host process: Docker's error, and
    // the failed container holds nothing.
    let e = d.fails(&["run", "-d", "--name", "clash", "-p", &tspec, "busybox", "sleep", "5"]);
    assert!(e.contains(&format!("Bind for 0.0.0.0:{tp} failed: port is already allocated")), "{e}");
    let hl = TcpListener::bind("0.0.0.0:0").unwrap();
    let hp = hl.local_addr().unwrap().port();
    let e = d.fails(&["run", "-d", "--name", "clash2", "-p", &format!("{hp}:80"), "busybox", "sleep", "5"]);
    assert!(e.contains(&format!("Bind for 0.0.0.0:{hp} failed: port is already allocated")), "{e}");
    drop(hl);
    // The published port cannot be taken by a host process meanwhile.
    assert!(TcpListener::bind(("0.0.0.0", tp)).is_err());

    // Rules and reservations go with the container.
    d.ok(&["rm", "-f", "web", "udp", "clash", "clash2"]);
    assert_net_clean(&d);
    assert!(TcpListener::bind(("0.0.0.0", tp)).is_ok());
}

/// A tiny DNS responder on a loopback address: every A query gets `ip`.
fn fake_upstream(addr: &str, ip: Ipv4Addr) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let s = UdpSocket::bind(addr).expect("binding the test DNS responder");
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 512];
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((n, from)) = s.recv_from(&mut b) else { continue };
            let q = &b[..n];
            let mut i = 12;
            while i < n && q[i] != 0 {
                i += q[i] as usize + 1;
            }
            let qend = i + 5;
            let mut r = q[..2].to_vec();
            r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
            r.extend_from_slice(&q[12..qend]);
            r.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            r.extend_from_slice(&ip.octets());
            let _ = s.send_to(&r, from);
        }
    });
    stop
}

#[test]
fn user_networks_dns_isolation_internal() {
    let Some(d) = daemon() else { return };
    d.ok(&["network", "create", "--subnet", "10.231.1.0/24", "--gateway", "10.231.1.254", "neta"]);
    d.ok(&["network", "create", "--subnet", "10.231.2.0/24", "netb"]);
    d.ok(&["network", "create", "--subnet", "10.231.3.0/24", "--internal", "inner"]);
    d.ok(&["run", "-d", "--name", "a1", "--network", "neta", "--network-alias", "svc", "busybox", "sleep", "300"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "a2",
        "--network",
        "neta",
        "--network-alias",
        "svc",
        "--ip",
        "10.231.1.77",
        "busybox",
        "sleep",
        "300",
    ]);
    d.ok(&["run", "-d", "--name", "b1", "--network", "netb", "busybox", "sleep", "300"]);
    let a1 = inspect(&d, "a1")["NetworkSettings"]["Networks"]["neta"]["IPAddress"].as_str().unwrap().to_string();
    assert_eq!(a1, "10.231.1.1", "lowest free address, gateway .254 skipped");
    assert_eq!(inspect(&d, "a2")["NetworkSettings"]["Networks"]["neta"]["IPAddress"], "10.231.1.77");
    // User-defined networks leave the top-level (default bridge) fields empty.
    assert_eq!(inspect(&d, "a1")["NetworkSettings"]["IPAddress"], "");

    // Names and aliases through the embedded DNS server.
    let t = Instant::now();
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "neta",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup a1; nslookup svc; ping -c1 -W2 a2",
    ]);
    assert!(out.contains("nameserver 10.231.1.254"), "{out}");
    assert!(out.contains(&format!("Address: {a1}")), "{out}");
    let svc = out.split("Name:\tsvc").count() - 1;
    assert_eq!(svc, 2, "two answers for the shared alias: {out}");
    assert!(out.contains("1 packets received"), "{out}");
    eprintln!("dns round took {:?}", t.elapsed());
    // Isolation: neta cannot reach netb.
    let b1 = inspect(&d, "b1")["NetworkSettings"]["Networks"]["netb"]["IPAddress"].as_str().unwrap().to_string();
    let o = d.berth(&["exec", "a1", "ping", "-c1", "-W1", &b1]);
    assert!(!o.status.success(), "neta reached netb: {}", stdout(&o));
    // Names of other networks do not resolve.
    let o = d.berth(&["exec", "a1", "nslookup", "b1"]);
    assert!(!stdout(&o).contains(&b1), "{}", stdout(&o));
    // --internal: no way out, not even to the host.
    let gw = bridge_gateway(&d);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "busybox",
        "sh",
        "-c",
        &format!("ping -c1 -W1 {gw} >/dev/null 2>&1 && echo reached || echo cut-off"),
    ]);
    assert_eq!(out.trim(), "cut-off");

    // Forwarding: names the network does not know go to the container's
    // --dns server (here a responder on a loopback address of the host).
    let stop = fake_upstream("127.0.0.77:53", Ipv4Addr::new(10, 231, 99, 99));
    let out =
        d.ok(&["run", "--rm", "--network", "neta", "--dns", "127.0.0.77", "busybox", "nslookup", "outside.example"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(out.contains("10.231.99.99"), "{out}");

    // Live connect and disconnect.
    d.ok(&["network", "connect", "--alias", "bee", "netb", "a1"]);
    let out = d.ok(&["exec", "a1", "sh", "-c", "ip -4 -o addr show eth1; ping -c1 -W2 b1"]);
    assert!(out.contains("10.231.2.") && out.contains("1 packets received"), "{out}");
    let out = d.ok(&["exec", "b1", "nslookup", "bee"]);
    assert!(out.contains("10.231.2."), "{out}");
    d.ok(&["network", "disconnect", "netb", "a1"]);
    let o = d.berth(&["exec", "a1", "ip", "link", "show", "eth1"]);
    assert!(!o.status.success(), "eth1 still there");
    let nets = inspect(&d, "a1")["NetworkSettings"]["Networks"].clone();
    assert!(nets.get("netb").is_none() && nets.get("neta").is_some(), "{nets}");

    // Docker's errors.
    let e = d.fails(&["network", "connect", "neta", "a1"]);
    assert!(e.contains("endpoint with name a1 already exists in network neta"), "{e}");
    let e = d.fails(&["network", "rm", "neta"]);
    assert!(e.contains("error while removing network: network neta has active endpoints (name:\"a1\""), "{e}");
    let e = d.fails(&["network", "create", "--subnet", "10.231.1.128/25", "overlap"]);
    assert!(e.contains("Pool overlaps with other one on this address space"), "{e}");
    let e = d.fails(&[
        "network",
        "create",
        "--subnet",
        "10.231.4.0/24",
        "--gateway",
        "10.231.4.1",
        "--ip-range",
        "10.231.5.0/25",
        "r",
    ]);
    assert!(e.contains("no matching subnet for range 10.231.5.0/25"), "{e}");
    let (st, v) = d.http_json(
        "POST",
        "/networks/create",
        Some(br#"{"Name":"gw","IPAM":{"Config":[{"Subnet":"10.231.6.0/24","Gateway":"10.231.7.1"}]}}"#),
    );
    assert_eq!(st, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("invalid gateway 10.231.7.1: parent subnet 10.231.6.0/24 doesn't contain this address"),
        "{v}"
    );
    let e = d.fails(&["network", "create", "neta"]);
    assert!(e.contains("network with name neta already exists"), "{e}");
    let e = d.fails(&["network", "rm", "bridge"]);
    assert!(e.contains("bridge is a pre-defined network and cannot be removed"), "{e}");

    d.ok(&["rm", "-f", "a1", "a2", "b1"]);
    for n in ["neta", "netb", "inner"] {
        assert_eq!(d.ok(&["network", "rm", n]).trim(), n);
    }
    assert_net_clean(&d);
}

#[test]
fn docker_cli_network_commands() {
    let Some(d) = daemon() else { return };
    if common::which("docker").is_none() {
        return;
    }
    let dk = |args: &[&str]| -> String {
        let o = d.docker(args).unwrap();
        assert!(o.status.success(), "docker {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let ls = dk(&["network", "ls"]);
    for n in ["bridge", "host", "none"] {
        assert!(ls.lines().any(|l| l.split_whitespace().nth(1) == Some(n)), "{ls}");
    }
    assert!(ls.starts_with("NETWORK ID     NAME      DRIVER    SCOPE"), "{ls}");
    let id = dk(&["network", "create", "--subnet", "10.231.10.0/24", "--label", "team=x", "dnet"]);
    assert_eq!(id.trim().len(), 64);
    let v: Value = serde_json::from_str(&dk(&["network", "inspect", "dnet"])).unwrap();
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.231.10.0/24");
    assert_eq!(v[0]["Labels"]["team"], "x");
    assert_eq!(dk(&["network", "ls", "--filter", "label=team=x", "--format", "{{.Name}}"]).trim(), "dnet");
    dk(&["run", "-d", "--name", "ww", "--network", "dnet", "-p", "127.0.0.1::80", "busybox", "sleep", "300"]);
    let port = dk(&["port", "ww", "80"]);
    assert!(port.starts_with("127.0.0.1:"), "{port}");
    dk(&["network", "connect", "bridge", "ww"]);
    let v: Value = serde_json::from_str(&dk(&["inspect", "ww"])).unwrap();
    let nets = v[0]["NetworkSettings"]["Networks"].as_object().unwrap();
    assert!(nets.contains_key("dnet") && nets.contains_key("bridge"), "{nets:?}");
    assert!(!v[0]["NetworkSettings"]["IPAddress"].as_str().unwrap().is_empty());
    let o = d.docker(&["network", "rm", "dnet"]).unwrap();
    assert!(!o.status.success() && stderr(&o).contains("has active endpoints"), "{}", stderr(&o));
    dk(&["rm", "-f", "ww"]);
    assert_eq!(dk(&["network", "rm", "dnet"]).trim(), "dnet");
    // --ip-range: addresses come from the range.
    dk(&["network", "create", "--subnet", "10.231.11.0/24", "--ip-range", "10.231.11.128/25", "rnet"]);
    dk(&["run", "-d", "--name", "rr", "--network", "rnet", "busybox", "sleep", "300"]);
    let ip = dk(&["inspect", "-f", "{{.NetworkSettings.Networks.rnet.IPAddress}}", "rr"]);
    assert_eq!(ip.trim(), "10.231.11.128");
    dk(&["rm", "-f", "rr"]);
    dk(&["network", "rm", "rnet"]);
    let o = d.docker(&["network", "inspect", "dnet"]).unwrap();
    assert!(stderr(&o).contains("network dnet not found"), "{}", stderr(&o));
}

#[test]
fn networking_survives_kill9_and_nothing_leaks() {
    let Some(mut d) = daemon() else { return };
    let p = {
        let t = TcpListener::bind("0.0.0.0:0").unwrap();
        t.local_addr().unwrap().port()
    };
    d.ok(&["network", "create", "--subnet", "10.231.20.0/24", "kn"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "--network",
        "kn",
        "-p",
        &format!("{p}:8080"),
        "busybox",
        "sh",
        "-c",
        "while true; do echo alive | nc -l -p 8080; done",
    ]);
    d.ok(&["run", "-d", "--name", "gone", "busybox", "sleep", "300"]);
    let gone_pid = inspect(&d, "gone")["State"]["Pid"].as_i64().unwrap();
    assert_eq!(tcp_read((Ipv4Addr::LOCALHOST, p)).trim(), "alive");

    d.stop_with(libc::SIGKILL);
    // While the daemon is away one container dies.
    unsafe { libc::kill(gone_pid as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tcp_read((Ipv4Addr::LOCALHOST, p)).trim(), "alive", "port broken with the daemon down");
    d.spawn();
    // The running one keeps its networking, the dead one is cleaned.
    wait_until("gone to be recorded as exited", || inspect(&d, "gone")["State"]["Running"] == false);
    assert_eq!(tcp_read((Ipv4Addr::LOCALHOST, p)).trim(), "alive");
    assert!(nft_table(&d).contains(&format!("dport {p} dnat to")), "{}", nft_table(&d));
    let out = d.ok(&["run", "--rm", "--network", "kn", "busybox", "nc", "-w", "3", "keep", "8080"]);
    assert_eq!(out.trim(), "alive");
    assert_eq!(our_veths(&d), 1, "only keep's veth: {}", links());
    // A port held before the restart is still refused to others.
    let e = d.fails(&["run", "-d", "--name", "dup", "-p", &format!("{p}:80"), "busybox", "sleep", "5"]);
    assert!(e.contains("port is already allocated"), "{e}");

    d.ok(&["rm", "-f", "keep", "gone", "dup"]);
    d.ok(&["network", "rm", "kn"]);
    assert_net_clean(&d);
    // A clean stop leaves neither the bridge nor the table.
    let bridge = d.bridge.clone();
    d.stop_with(libc::SIGTERM);
    assert!(!links().contains(&format!(" {bridge}:")), "bridge {bridge} left");
    assert!(nft_table(&d).is_empty(), "table left");
    d.spawn();
}

#[test]
fn shared_namespaces_compose_names_prune_and_events() {
    let Some(d) = daemon() else { return };
    d.ok(&["network", "create", "--subnet", "10.231.30.0/24", "--label", "keep=no", "pn"]);
    d.ok(&["network", "create", "--subnet", "10.231.31.0/24", "unused"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "s1",
        "--network",
        "pn",
        "-l",
        "com.docker.compose.service=websvc",
        "busybox",
        "sh",
        "-c",
        "while true; do echo from-s1 | nc -l -p 80; done",
    ]);
    // --network container:<name> shares s1's namespace (its loopback and address).
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:s1",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; nc -w 3 127.0.0.1 80",
    ]);
    assert!(out.contains("10.231.30.") && out.contains("from-s1"), "{out}");
    let (st, v) = d.http_json(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"NetworkMode":"container:nosuch"}}"#),
    );
    assert_eq!((st, v["message"].as_str().unwrap()), (404, "No such container: nosuch"));
    // The Compose service label is a DNS name on the network.
    let out = d.ok(&["run", "--rm", "--network", "pn", "busybox", "nslookup", "websvc"]);
    assert!(out.contains("Address: 10.231.30."), "{out}");
    // none: loopback only; host: the host's interfaces.
    let out = d.ok(&["run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let out = d.ok(&["run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"]);
    assert!(out.contains(&d.bridge), "{out}");
    // Events: create, connect, disconnect.
    let ev = d.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        "0s",
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for want in ["create pn", "connect pn", "disconnect pn"] {
        assert!(ev.contains(want), "{want} missing in {ev}");
    }
    // Prune removes what no container uses; pn is used by s1.
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(out.contains("unused") && !out.contains("pn"), "{out}");
    d.ok(&["rm", "-f", "s1"]);
    let out = d.ok(&["network", "prune", "-f", "--filter", "label=keep=no"]);
    assert!(out.contains("pn"), "{out}");
    assert_net_clean(&d);
}
