//! `cargo xtask bench --only net`: networking figures — `run --rm` on the
//! default bridge, embedded DNS lookup latency, and TCP throughput into a
//! container through a published port, to its address, and with host
//! networking (the baseline).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A DNS A query for `name` with id `id`.
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Median time of `n` lookups of `name` at `server`:53, checking each answer.
pub fn dns_latency(server: Ipv4Addr, name: &str, n: usize) -> Result<Duration> {
    let s = UdpSocket::bind("0.0.0.0:0")?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut times = Vec::with_capacity(n);
    let mut buf = [0u8; 512];
    for i in 0..n {
        let q = query(name, i as u16);
        let t = Instant::now();
        s.send_to(&q, (server, 53))?;
        let (len, _) = s.recv_from(&mut buf).context("no DNS answer")?;
        times.push(t.elapsed());
        if len < 12 || buf[0..2] != q[0..2] || u16::from_be_bytes([buf[6], buf[7]]) == 0 {
            bail!("bad DNS answer for {name}");
        }
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Sends `bytes` to a sink that closes at EOF; returns MB/s.
pub fn tcp_throughput(addr: SocketAddr, bytes: usize) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => return Err(e).context(format!("connecting to {addr}")),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let chunk = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&chunk)?;
        sent += chunk.len();
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    Ok(sent as f64 / 1e6 / t.elapsed().as_secs_f64())
}

/// Runs `cli args`, returning stdout.
pub fn out(c: &mut Command) -> Result<String> {
    let o = c.output()?;
    if !o.status.success() {
        bail!("{:?} failed: {}", c, String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}
