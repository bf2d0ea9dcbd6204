//! Network records in SQLite: networks, endpoints (one per container and
//! network while the container runs; the address is unique per network, so
//! two allocations can never hand out one address) and sandboxes (the
//! namespace file of each running container).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use berth_meta::rusqlite::{params, OptionalExtension};
use berth_meta::Db;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ports::PortMap;
use crate::{Error, Result};

const MIGRATIONS: &[&str] = &["
CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE endpoints (
    network_id TEXT NOT NULL,
    container_id TEXT NOT NULL,
    ip INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id),
    UNIQUE (network_id, ip)
);
CREATE TABLE sandboxes (
    container_id TEXT PRIMARY KEY,
    netns TEXT NOT NULL
);
"];

/// A network (Docker's `network inspect` fields, plus the host bridge).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// bridge, host or null.
    pub driver: String,
    pub created: String,
    pub subnet: String,
    pub gateway: String,
    #[serde(default)]
    pub ip_range: String,
    pub internal: bool,
    pub attachable: bool,
    pub labels: Map<String, Value>,
    pub options: Map<String, Value>,
    #[serde(default)]
    pub ipam_options: Map<String, Value>,
    /// The host bridge (empty for host/null).
    pub bridge: String,
}

/// A container's attachment to a network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub network_id: String,
    pub container_id: String,
    pub container_name: String,
    pub endpoint_id: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    pub mac: String,
    pub aliases: Vec<String>,
    pub dns_names: Vec<String>,
    pub ipam_config: Value,
    pub driver_opts: Value,
    /// Host end of the veth pair.
    pub veth: String,
    /// Interface name inside the container.
    pub ifname: String,
    pub ports: Vec<PortMap>,
    /// The container's `--dns` servers: the embedded DNS server forwards
    /// its other queries there (the host's resolvers when empty).
    #[serde(default)]
    pub dns_servers: Vec<String>,
}

pub struct Store {
    db: Arc<Db>,
}

fn ip_num(s: &str) -> i64 {
    s.parse::<Ipv4Addr>().map(|ip| u32::from(ip) as i64).unwrap_or(0)
}

impl Store {
    pub fn open(db: Arc<Db>) -> Result<Store> {
        db.migrate("network", MIGRATIONS)?;
        Ok(Store { db })
    }

    pub fn db(&self) -> Arc<Db> {
        self.db.clone()
    }

    pub fn networks(&self) -> Result<Vec<Network>> {
        self.db.read(|c| {
            let mut st = c.prepare("SELECT data FROM networks ORDER BY rowid")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
        })
    }

    pub fn put_network(&self, n: &Network) -> Result<()> {
        let data = serde_json::to_string(n).map_err(|e| Error::Internal(e.to_string()))?;
        self.db.tx(|tx| {
            let owner: Option<String> =
                tx.query_row("SELECT id FROM networks WHERE name = ?1", [&n.name], |r| r.get(0)).optional()?;
            if owner.as_deref().is_some_and(|o| o != n.id) {
                return Err(Error::Conflict(format!("network with name {} already exists", n.name)));
            }
            tx.execute(
                "INSERT INTO networks(id, name, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data",
                params![n.id, n.name, data],
            )?;
            Ok(())
        })
    }

    /// Deletes a network unless it has endpoints (checked in the same
    /// transaction, so a container cannot join it meanwhile).
    pub fn delete_network(&self, n: &Network) -> Result<()> {
        self.db.tx(|tx| {
            let mut st = tx.prepare("SELECT data FROM endpoints WHERE network_id = ?1")?;
            let eps: Vec<Endpoint> = st
                .query_map([&n.id], |r| r.get::<_, String>(0))?
                .filter_map(|r| r.ok().and_then(|s| serde_json::from_str(&s).ok()))
                .collect();
            if !eps.is_empty() {
                let list: Vec<String> = eps
                    .iter()
                    .map(|e| {
                        format!(
                            "name:\"{}\" id:\"{}\"",
                            e.container_name,
                            &e.endpoint_id[..12.min(e.endpoint_id.len())]
                        )
                    })
                    .collect();
                return Err(Error::Forbidden(format!(
                    "error while removing network: network {} has active endpoints ({})",
                    n.name,
                    list.join(", ")
                )));
            }
            tx.execute("DELETE FROM networks WHERE id = ?1", [&n.id])?;
            Ok(())
        })
    }

    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        self.db.read(|c| {
            let mut st = c.prepare("SELECT data FROM endpoints ORDER BY rowid")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
        })
    }

    /// Allocates an address (the requested one, or the lowest free one of
    /// the network) and records the endpoint, in one transaction.
    pub fn allocate(&self, n: &Network, mut ep: Endpoint, requested: Option<Ipv4Addr>) -> Result<Endpoint> {
        let subnet = crate::ipam::Subnet::parse(&n.subnet)?;
        let range = if n.ip_range.is_empty() { None } else { Some(crate::ipam::Subnet::parse(&n.ip_range)?) };
        let gw: Ipv4Addr = n.gateway.parse().map_err(|_| Error::Internal(format!("bad gateway {}", n.gateway)))?;
        self.db.tx(|tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM endpoints WHERE network_id = ?1 AND container_id = ?2",
                    params![n.id, ep.container_id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Err(Error::Forbidden(format!(
                    "endpoint with name {} already exists in network {}",
                    ep.container_name, n.name
                )));
            }
            let mut st = tx.prepare("SELECT ip FROM endpoints WHERE network_id = ?1")?;
            let used: BTreeSet<u32> =
                st.query_map([&n.id], |r| r.get::<_, i64>(0))?.filter_map(|r| r.ok()).map(|v| v as u32).collect();
            let ip = match requested {
                Some(ip) => {
                    if !subnet.contains(ip) {
                        return Err(Error::InvalidArgument(format!(
                            "no configured subnet or ip-range contain the IP address {ip}"
                        )));
                    }
                    if used.contains(&u32::from(ip)) || ip == gw {
                        return Err(Error::Forbidden("Address already in use".to_string()));
                    }
                    ip
                }
                None => crate::ipam::next_free(&subnet, range.as_ref(), gw, &used).ok_or_else(|| {
                    Error::Internal(format!(
                        "no available IPv4 addresses on this network's address pools: {} ({})",
                        n.name, n.id
                    ))
                })?,
            };
            ep.ip = ip.to_string();
            ep.prefix = subnet.prefix;
            ep.gateway = n.gateway.clone();
            let data = serde_json::to_string(&ep).map_err(|e| Error::Internal(e.to_string()))?;
            tx.execute(
                "INSERT INTO endpoints(network_id, container_id, ip, data) VALUES (?1, ?2, ?3, ?4)",
                params![n.id, ep.container_id, ip_num(&ep.ip), data],
            )?;
            Ok(ep)
        })
    }

    pub fn update_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let data = serde_json::to_string(ep).map_err(|e| Error::Internal(e.to_string()))?;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE endpoints SET data = ?3 WHERE network_id = ?1 AND container_id = ?2",
                params![ep.network_id, ep.container_id, data],
            )?;
            Ok(())
        })
    }

    pub fn release(&self, network_id: &str, container_id: &str) -> Result<()> {
        self.db.tx(|tx| {
            tx.execute(
                "DELETE FROM endpoints WHERE network_id = ?1 AND container_id = ?2",
                params![network_id, container_id],
            )?;
            Ok(())
        })
    }

    pub fn sandboxes(&self) -> Result<Vec<(String, String)>> {
        self.db.read(|c| {
            let mut st = c.prepare("SELECT container_id, netns FROM sandboxes")?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    pub fn sandbox(&self, container_id: &str) -> Result<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row("SELECT netns FROM sandboxes WHERE container_id = ?1", [container_id], |r| r.get(0))
                .optional()?)
        })
    }

    pub fn put_sandbox(&self, container_id: &str, netns: &str) -> Result<()> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO sandboxes(container_id, netns) VALUES (?1, ?2)
                 ON CONFLICT(container_id) DO UPDATE SET netns = excluded.netns",
                params![container_id, netns],
            )?;
            Ok(())
        })
    }

    pub fn delete_sandbox(&self, container_id: &str) -> Result<()> {
        self.db.tx(|tx| {
            tx.execute("DELETE FROM sandboxes WHERE container_id = ?1", [container_id])?;
            Ok(())
        })
    }
}
