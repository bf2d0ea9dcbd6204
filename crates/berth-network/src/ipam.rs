//! IPv4 address management: subnets, gateways, ranges and the choice of the
//! next free address (the allocations themselves are rows in SQLite, see
//! `store`). Docker's default IPAM hands out the lowest free address of the
//! pool (or of `--ip-range`), skipping the network address, the gateway and
//! the broadcast address, so a removed container's address is reused first.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use crate::{Error, Result};

/// An IPv4 prefix, always in canonical form (host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        }
    }
    pub fn first(&self) -> u32 {
        u32::from(self.addr)
    }
    pub fn last(&self) -> u32 {
        self.first() | !self.mask()
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.first()
    }
    pub fn overlaps(&self, o: &Subnet) -> bool {
        self.first() <= o.last() && o.first() <= self.last()
    }
    /// Parses `a.b.c.d/n`, refusing host bits as Docker 28 does.
    pub fn parse(s: &str) -> Result<Subnet> {
        let (ip, prefix) = parse_cidr(s)?;
        let sn = Subnet { addr: Ipv4Addr::from(u32::from(ip) & mask_of(prefix)), prefix };
        if sn.addr != ip {
            return Err(Error::InvalidArgument(format!(
                "invalid network config:\ninvalid subnet {s}: it should be {sn}"
            )));
        }
        Ok(sn)
    }
    /// The subnet of an interface address like `172.17.0.1/16` (`--bip`).
    pub fn of_address(s: &str) -> Result<(Subnet, Ipv4Addr)> {
        let (ip, prefix) = parse_cidr(s)?;
        Ok((Subnet { addr: Ipv4Addr::from(u32::from(ip) & mask_of(prefix)), prefix }, ip))
    }
    /// The first host address, Docker's default gateway.
    pub fn default_gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + if self.prefix >= 31 { 0 } else { 1 })
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask_of(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::InvalidArgument(format!("invalid CIDR address: {s}"));
    let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    Ok((ip, prefix))
}

/// The lowest free address of `range` (or of the subnet) not in `used`,
/// never the network or broadcast address nor the gateway.
pub fn next_free(subnet: &Subnet, range: Option<&Subnet>, gateway: Ipv4Addr, used: &BTreeSet<u32>) -> Option<Ipv4Addr> {
    let r = range.unwrap_or(subnet);
    let (lo, hi) = if subnet.prefix >= 31 {
        (r.first(), r.last())
    } else {
        (r.first().max(subnet.first() + 1), r.last().min(subnet.last() - 1))
    };
    let gw = u32::from(gateway);
    (lo..=hi).find(|ip| *ip != gw && !used.contains(ip)).map(Ipv4Addr::from)
}

/// Docker's MAC for an address (libnetwork `genMAC`: 02:42 then the IPv4
/// bytes), stable for a given address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || Error::InvalidArgument(format!("invalid MAC address: {s}"));
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad());
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("172.18.0.0/16").unwrap();
        assert_eq!(s.default_gateway(), Ipv4Addr::new(172, 18, 0, 1));
        assert!(s.contains(Ipv4Addr::new(172, 18, 255, 3)));
        assert!(!s.contains(Ipv4Addr::new(172, 19, 0, 1)));
        assert!(s.overlaps(&Subnet::parse("172.18.5.0/24").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("172.19.0.0/24").unwrap()));
        let e = Subnet::parse("10.1.1.5/24").unwrap_err().to_string();
        assert!(e.contains("invalid subnet 10.1.1.5/24: it should be 10.1.1.0/24"), "{e}");
        assert!(Subnet::parse("10.1.1.0").is_err());
        assert_eq!(Subnet::of_address("172.17.0.1/16").unwrap().0.to_string(), "172.17.0.0/16");
    }

    #[test]
    fn lowest_free_address() {
        let s = Subnet::parse("10.9.0.0/29").unwrap();
        let gw = s.default_gateway();
        let mut used = BTreeSet::new();
        assert_eq!(next_free(&s, None, gw, &used), Some(Ipv4Addr::new(10, 9, 0, 2)));
        used.insert(u32::from(Ipv4Addr::new(10, 9, 0, 2)));
        assert_eq!(next_free(&s, None, gw, &used), Some(Ipv4Addr::new(10, 9, 0, 3)));
        for i in 3..=6 {
            used.insert(u32::from(Ipv4Addr::new(10, 9, 0, i)));
        }
        // .7 is the broadcast address: the pool is exhausted.
        assert_eq!(next_free(&s, None, gw, &used), None);
        let r = Subnet::parse("10.9.0.4/30").unwrap();
        assert_eq!(next_free(&s, Some(&r), gw, &BTreeSet::new()), Some(Ipv4Addr::new(10, 9, 0, 4)));
    }

    #[test]
    fn macs() {
        assert_eq!(mac_string(&mac_for(Ipv4Addr::new(172, 17, 0, 2))), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02").unwrap(), mac_for(Ipv4Addr::new(172, 17, 0, 2)));
        assert!(parse_mac("zz:42:ac:11:00:02").is_err());
    }
}
