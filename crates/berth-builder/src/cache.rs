//! The build cache index: which image each step's cache key produced. It
//! lives in SQLite (component `builder`), so it survives daemon restarts and
//! is shared by every build, whatever the tags. A record whose image is gone
//! is a miss and is dropped.

use berth_meta::rusqlite::{params, OptionalExtension};
use berth_meta::Db;

use crate::Result;

const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,         -- sha256 of parent image, instruction, args and sources
    image_id TEXT NOT NULL,       -- the image the step produced
    parent_image TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL,    -- the instruction, as BuildKit's records describe it
    size INTEGER NOT NULL,        -- bytes of the layer the step added (0: none)
    created_at INTEGER NOT NULL,  -- unix seconds
    last_used INTEGER NOT NULL,
    usage_count INTEGER NOT NULL
);
CREATE INDEX build_cache_image ON build_cache(image_id);
",
    "
-- 1 when the image was the result of a build (shown by `images` while
-- untagged, as Docker shows an untagged build result); 0 for step results.
ALTER TABLE build_cache ADD COLUMN final INTEGER NOT NULL DEFAULT 0;
",
];

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub image_id: String,
    pub parent_image: String,
    pub description: String,
    pub size: u64,
    pub created_at: i64,
    pub last_used: i64,
    pub usage_count: i64,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub(crate) fn migrate(db: &Db) -> Result<()> {
    Ok(db.migrate("builder", MIGRATIONS)?)
}

/// The image recorded for `key`, counting the use.
pub(crate) fn lookup(db: &Db, key: &str) -> Result<Option<String>> {
    db.tx(|tx| {
        let id: Option<String> =
            tx.query_row("SELECT image_id FROM build_cache WHERE key = ?1", [key], |r| r.get(0)).optional()?;
        if id.is_some() {
            tx.execute(
                "UPDATE build_cache SET last_used = ?1, usage_count = usage_count + 1 WHERE key = ?2",
                params![now(), key],
            )?;
        }
        Ok::<_, crate::Error>(id)
    })
}

pub(crate) fn insert(db: &Db, r: &Record) -> Result<()> {
    db.tx(|tx| {
        tx.execute(
            "INSERT INTO build_cache(key, image_id, parent_image, description, size, created_at, last_used, usage_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(key) DO UPDATE SET image_id = excluded.image_id, parent_image = excluded.parent_image,
               size = excluded.size, last_used = excluded.last_used",
            params![r.key, r.image_id, r.parent_image, r.description, r.size as i64, r.created_at, r.last_used, r.usage_count],
        )?;
        Ok::<_, crate::Error>(())
    })
}

/// Marks `image_id` as the result of a build.
pub(crate) fn mark_final(db: &Db, image_id: &str) -> Result<()> {
    db.tx(|tx| {
        tx.execute("UPDATE build_cache SET final = 1 WHERE image_id = ?1", [image_id])?;
        Ok::<_, crate::Error>(())
    })
}

/// Images that only ever were step results (never a build's result).
pub(crate) fn step_images(db: &Db) -> Result<Vec<String>> {
    db.read(|c| {
        let mut st = c.prepare("SELECT image_id FROM build_cache GROUP BY image_id HAVING MAX(final) = 0")?;
        let v = st.query_map([], |r| r.get(0))?.collect::<std::result::Result<Vec<String>, _>>()?;
        Ok::<_, crate::Error>(v)
    })
}

pub(crate) fn remove(db: &Db, key: &str) -> Result<()> {
    db.tx(|tx| {
        tx.execute("DELETE FROM build_cache WHERE key = ?1", [key])?;
        Ok::<_, crate::Error>(())
    })
}

pub(crate) fn list(db: &Db) -> Result<Vec<Record>> {
    db.read(|c| {
        let mut st = c.prepare(
            "SELECT key, image_id, parent_image, description, size, created_at, last_used, usage_count
             FROM build_cache ORDER BY last_used, created_at",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok(Record {
                    key: r.get(0)?,
                    image_id: r.get(1)?,
                    parent_image: r.get(2)?,
                    description: r.get(3)?,
                    size: r.get::<_, i64>(4)? as u64,
                    created_at: r.get(5)?,
                    last_used: r.get(6)?,
                    usage_count: r.get(7)?,
                })
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok::<_, crate::Error>(rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_and_count_uses() {
        let db = Db::open_in_memory().unwrap();
        migrate(&db).unwrap();
        migrate(&db).unwrap();
        assert_eq!(lookup(&db, "k").unwrap(), None);
        let r = Record {
            key: "k".into(),
            image_id: "sha256:1".into(),
            parent_image: String::new(),
            description: "RUN x".into(),
            size: 10,
            created_at: 1,
            last_used: 1,
            usage_count: 0,
        };
        insert(&db, &r).unwrap();
        assert_eq!(step_images(&db).unwrap(), ["sha256:1"]);
        mark_final(&db, "sha256:1").unwrap();
        assert!(step_images(&db).unwrap().is_empty());
        assert_eq!(lookup(&db, "k").unwrap().as_deref(), Some("sha256:1"));
        let l = list(&db).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].usage_count, 1);
        remove(&db, "k").unwrap();
        assert!(list(&db).unwrap().is_empty());
    }
}
