//! Persistence of container records: one row per container in SQLite (the
//! record as JSON, the name unique), with an in-memory copy for fast lists.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use berth_meta::rusqlite::{params, OptionalExtension};
use berth_meta::Db;

use crate::model::Container;
use crate::{Error, Result};

const MIGRATIONS: &[&str] = &["
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
"];

pub struct ContainerStore {
    db: Arc<Db>,
    cache: RwLock<HashMap<String, Container>>,
}

impl ContainerStore {
    pub fn open(db: Arc<Db>) -> Result<Self> {
        db.migrate("containers", MIGRATIONS)?;
        let rows: Vec<String> = db.read(|c| {
            let mut st = c.prepare("SELECT data FROM containers")?;
            let v = st.query_map([], |r| r.get::<_, String>(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
            Ok::<_, Error>(v)
        })?;
        let mut cache = HashMap::new();
        for r in rows {
            match serde_json::from_str::<Container>(&r) {
                Ok(c) => {
                    cache.insert(c.id.clone(), c);
                }
                Err(e) => tracing::warn!("skipping unreadable container record: {e}"),
            }
        }
        Ok(Self { db, cache: RwLock::new(cache) })
    }

    /// Inserts a new container; a taken name is a Conflict with Docker's text.
    pub fn insert(&self, c: &Container) -> Result<()> {
        let data = serde_json::to_string(c).map_err(|e| Error::Internal(e.to_string()))?;
        let res = self.db.tx(|tx| {
            let owner: Option<String> =
                tx.query_row("SELECT id FROM containers WHERE name = ?1", [&c.name], |r| r.get(0)).optional()?;
            if let Some(owner) = owner {
                return Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    c.name, owner
                )));
            }
            tx.execute("INSERT INTO containers(id, name, data) VALUES (?1, ?2, ?3)", params![c.id, c.name, data])?;
            Ok(())
        });
        res?;
        self.cache.write().map_err(|_| Error::Internal("lock poisoned".into()))?.insert(c.id.clone(), c.clone());
        Ok(())
    }

    /// Writes the record (state changes, renames).
    pub fn save(&self, c: &Container) -> Result<()> {
        let data = serde_json::to_string(c).map_err(|e| Error::Internal(e.to_string()))?;
        self.db.tx(|tx| {
            let owner: Option<String> =
                tx.query_row("SELECT id FROM containers WHERE name = ?1", [&c.name], |r| r.get(0)).optional()?;
            if let Some(owner) = owner.filter(|o| *o != c.id) {
                return Err(Error::Conflict(format!(
                    "Error when allocating new name: Conflict. The container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    c.name, owner
                )));
            }
            tx.execute(
                "INSERT INTO containers(id, name, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data",
                params![c.id, c.name, data],
            )?;
            Ok(())
        })?;
        self.cache.write().map_err(|_| Error::Internal("lock poisoned".into()))?.insert(c.id.clone(), c.clone());
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        self.db.tx(|tx| {
            tx.execute("DELETE FROM containers WHERE id = ?1", [id])?;
            Ok::<_, Error>(())
        })?;
        self.cache.write().map_err(|_| Error::Internal("lock poisoned".into()))?.remove(id);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<Container> {
        self.cache.read().ok()?.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Container> {
        self.cache.read().map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    /// Docker's lookup: full ID, then exact name (with or without `/`), then a
    /// unique ID prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<Container> {
        let not_found = || Error::NotFound(format!("No such container: {name_or_id}"));
        if name_or_id.is_empty() {
            return Err(not_found());
        }
        let cache = self.cache.read().map_err(|_| Error::Internal("lock poisoned".into()))?;
        if let Some(c) = cache.get(name_or_id) {
            return Ok(c.clone());
        }
        let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Some(c) = cache.values().find(|c| c.name == name) {
            return Ok(c.clone());
        }
        let matches: Vec<&Container> = cache.values().filter(|c| c.id.starts_with(name_or_id)).collect();
        match matches.len() {
            0 => Err(not_found()),
            1 => Ok(matches[0].clone()),
            _ => Err(Error::InvalidArgument(format!("multiple IDs found with provided prefix: {name_or_id}"))),
        }
    }

    pub fn count(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or(0)
    }
}
