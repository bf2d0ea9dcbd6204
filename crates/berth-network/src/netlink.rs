//! A minimal rtnetlink client: just the link, address and route requests the
//! bridge driver needs (create bridge/veth, move a veth end into a namespace,
//! set up, add addresses and the default route, delete). It speaks the
//! kernel's wire format directly, as netavark and libnetwork do through their
//! netlink libraries, instead of running `ip` per step: one request is a few
//! microseconds, an `ip` exec a millisecond or more.
//!
//! A netlink socket stays bound to the network namespace it was opened in, so
//! a socket for a container's namespace is opened from a short-lived thread
//! that entered it; every request then runs from any thread.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const NETLINK_ROUTE: i32 = 0;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const NLA_F_NESTED: u16 = 0x8000;

/// An rtnetlink socket in one network namespace.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// A request under construction: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(typ: u16, flags: u16, fixed: &[u8]) -> Msg {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&typ.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(fixed);
        align(&mut buf);
        Msg { buf, nests: Vec::new() }
    }
    fn attr(&mut self, typ: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&typ.to_ne_bytes());
        self.buf.extend_from_slice(data);
        align(&mut self.buf);
        self
    }
    fn str(&mut self, typ: u16, s: &str) -> &mut Self {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(typ, &d)
    }
    fn u32(&mut self, typ: u16, v: u32) -> &mut Self {
        self.attr(typ, &v.to_ne_bytes())
    }
    fn begin(&mut self, typ: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(typ | NLA_F_NESTED).to_ne_bytes());
        self
    }
    /// Raw bytes inside a nest (the peer's ifinfomsg of a veth).
    fn raw(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        align(&mut self.buf);
        self
    }
    fn end(&mut self) -> &mut Self {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }
    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn align(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// `struct ifinfomsg`.
fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket/bind calls; the fd is owned right away.
        unsafe {
            let fd = libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_ROUTE);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            if libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(Netlink { fd, seq: 1 })
        }
    }

    /// A socket in the network namespace behind `ns` (a bind-mounted
    /// namespace file or /proc/<pid>/ns/net), opened from a throwaway thread:
    /// the daemon's own threads never change namespace.
    pub fn open_in(ns: &std::path::Path) -> io::Result<Netlink> {
        let f = std::fs::File::open(ns)?;
        std::thread::Builder::new()
            .name("netns".into())
            .spawn(move || -> io::Result<Netlink> {
                // SAFETY: setns on an fd we own; this thread ends right after.
                if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Netlink::open()
            })?
            .join()
            .map_err(|_| io::Error::other("netns thread panicked"))?
    }

    /// Sends one request and waits for its acknowledgement; returns the
    /// replies that came before it (for GET requests).
    fn request(&mut self, m: Msg) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let buf = m.finish(seq);
        // SAFETY: send of an initialised buffer on our socket.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr() as *const _, buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut replies = Vec::new();
        let mut rbuf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: recv into a buffer we own, bounded by its length.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), rbuf.as_mut_ptr() as *mut _, rbuf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(rbuf[off..off + 4].try_into().unwrap_or_default()) as usize;
                let typ = u16::from_ne_bytes(rbuf[off + 4..off + 6].try_into().unwrap_or_default());
                let rseq = u32::from_ne_bytes(rbuf[off + 8..off + 12].try_into().unwrap_or_default());
                if len < 16 || off + len > n {
                    return Err(io::Error::other("truncated netlink reply"));
                }
                if rseq == seq {
                    if typ == NLMSG_ERROR {
                        let code = i32::from_ne_bytes(rbuf[off + 16..off + 20].try_into().unwrap_or_default());
                        if code == 0 {
                            return Ok(replies);
                        }
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    replies.push(rbuf[off..off + len].to_vec());
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// The index of the interface `name`, if it exists.
    pub fn index(&mut self, name: &str) -> io::Result<Option<i32>> {
        let mut m = Msg::new(RTM_GETLINK, 0, &ifinfomsg(0, 0, 0));
        m.str(IFLA_IFNAME, name);
        match self.request(m) {
            Ok(r) => {
                Ok(r.first().and_then(|b| b.get(20..24)).map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default())))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn need_index(&mut self, name: &str) -> io::Result<i32> {
        self.index(name)?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))
    }

    /// Creates a bridge (fails with EEXIST if one has the name).
    pub fn add_bridge(&mut self, name: &str, mac: Option<[u8; 6]>) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0));
        m.str(IFLA_IFNAME, name);
        if let Some(mac) = mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m.begin(IFLA_LINKINFO).str(IFLA_INFO_KIND, "bridge").end();
        self.request(m).map(|_| ())
    }

    /// Creates a veth pair: `host` in this namespace (enslaved to `master`
    /// when given), `peer` created directly in the namespace of `peer_ns`
    /// with the MAC `peer_mac`.
    pub fn add_veth(
        &mut self,
        host: &str,
        master: Option<i32>,
        peer: &str,
        peer_ns: RawFd,
        peer_mac: Option<[u8; 6]>,
    ) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifinfomsg(0, 0, 0));
        m.str(IFLA_IFNAME, host);
        if let Some(idx) = master {
            m.u32(IFLA_MASTER, idx as u32);
        }
        m.begin(IFLA_LINKINFO).str(IFLA_INFO_KIND, "veth").begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
        m.raw(&ifinfomsg(0, 0, 0));
        m.str(IFLA_IFNAME, peer);
        m.u32(IFLA_NET_NS_FD, peer_ns as u32);
        if let Some(mac) = peer_mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        m.end().end().end();
        self.request(m).map(|_| ())
    }

    /// Sets an interface up (by name).
    pub fn set_up(&mut self, name: &str) -> io::Result<()> {
        let idx = self.need_index(name)?;
        let m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(idx, libc::IFF_UP as u32, libc::IFF_UP as u32));
        self.request(m).map(|_| ())
    }

    /// Adds `addr/prefix` to an interface; an address already there is fine.
    pub fn add_addr(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let idx = self.need_index(name)?;
        let mut fixed = [0u8; 8];
        fixed[0] = libc::AF_INET as u8;
        fixed[1] = prefix;
        fixed[4..8].copy_from_slice(&(idx as u32).to_ne_bytes());
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        m.attr(IFA_LOCAL, &addr.octets()).attr(IFA_ADDRESS, &addr.octets());
        let bits = u32::from(addr);
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) };
        m.attr(IFA_BROADCAST, &Ipv4Addr::from(bits | !mask).octets());
        match self.request(m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Adds the default route via `gw`.
    pub fn add_default_route(&mut self, gw: Ipv4Addr) -> io::Result<()> {
        let mut fixed = [0u8; 12];
        fixed[0] = libc::AF_INET as u8;
        fixed[4] = libc::RT_TABLE_MAIN;
        fixed[5] = libc::RTPROT_BOOT;
        fixed[6] = libc::RT_SCOPE_UNIVERSE;
        fixed[7] = libc::RTN_UNICAST;
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &fixed);
        m.attr(RTA_GATEWAY, &gw.octets());
        self.request(m).map(|_| ())
    }

    /// Deletes an interface by name; a missing one is fine.
    pub fn del_link(&mut self, name: &str) -> io::Result<()> {
        let mut m = Msg::new(RTM_DELLINK, 0, &ifinfomsg(0, 0, 0));
        m.str(IFLA_IFNAME, name);
        match self.request(m) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENOENT)) => Ok(()),
            r => r.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_are_sized() {
        let mut m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(0, 0, 0));
        m.begin(IFLA_LINKINFO).str(IFLA_INFO_KIND, "veth").end();
        let b = m.finish(7);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        // header 16 + ifinfomsg 16, then the nest: 4 + ("veth\0" padded to 8 + 4).
        assert_eq!(u16::from_ne_bytes(b[32..34].try_into().unwrap()), 4 + 12);
        assert_eq!(u16::from_ne_bytes(b[34..36].try_into().unwrap()), IFLA_LINKINFO | NLA_F_NESTED);
        assert_eq!(b.len() % 4, 0);
    }
}
