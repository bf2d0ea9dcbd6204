//! The image store: which images exist, their tags and digests, and the layer
//! stack of each, in SQLite; config bytes and layer blobs in the content store;
//! unpacked layers in the snapshotter (keyed by chain ID, shared between images).

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::Arc;

use berth_content::ContentStore;
use berth_meta::rusqlite::{params, OptionalExtension, Transaction};
use berth_meta::Db;
use berth_snapshot::Snapshotter;

use crate::config::{chain_ids, ImageConfig};
use crate::reference::Reference;
use crate::{Error, Result};

const MIGRATIONS: &[&str] = &["
CREATE TABLE images (
    id TEXT PRIMARY KEY,          -- sha256:<hex> of the config bytes
    added_at INTEGER NOT NULL,    -- unix nanos when it entered the store
    parent TEXT NOT NULL DEFAULT '',
    last_tag_time TEXT NOT NULL DEFAULT ''
);
CREATE TABLE layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT,                  -- chain id of the layer below
    size INTEGER NOT NULL,        -- bytes unpacked
    blob TEXT NOT NULL,           -- digest of the blob as stored (tar, or compressed)
    media_type TEXT NOT NULL,
    blob_size INTEGER NOT NULL
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, idx)
);
CREATE TABLE tags (
    name TEXT PRIMARY KEY,        -- normalised reference with tag
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE digests (
    name TEXT PRIMARY KEY,        -- normalised repo@digest
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
"];

pub const MEDIA_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// One layer of an image.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub chain_id: String,
    pub diff_id: String,
    pub size: u64,
    pub blob: String,
    pub media_type: String,
    pub blob_size: u64,
}

/// An image with its metadata.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub config_bytes: Arc<Vec<u8>>,
    pub config: Arc<ImageConfig>,
    /// Normalised references (`docker.io/library/busybox:latest`).
    pub tags: Vec<Reference>,
    pub digests: Vec<Reference>,
    pub layers: Vec<LayerInfo>,
    pub added_at: i64,
    pub parent: String,
    pub last_tag_time: String,
}

impl Image {
    /// Total unpacked size of the layer stack (Docker's `Size`).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
    pub fn repo_tags(&self) -> Vec<String> {
        self.tags.iter().map(Reference::familiar).collect()
    }
    pub fn repo_digests(&self) -> Vec<String> {
        self.digests.iter().map(Reference::familiar).collect()
    }
    pub fn top_chain_id(&self) -> Option<&str> {
        self.layers.last().map(|l| l.chain_id.as_str())
    }
}

/// An entry of a delete/prune result, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(String),
}

/// A layer to register together with an image: it must already be unpacked
/// in the snapshotter and its blob stored in the content store.
#[derive(Debug, Clone)]
pub struct NewLayer {
    pub info: LayerInfo,
    pub parent: Option<String>,
}

/// Tells the store which images containers use; the container layer provides it.
pub trait ImageUsage: Send + Sync {
    /// IDs of containers using `image_id` (short IDs are fine); empty if none.
    fn containers_using(&self, image_id: &str) -> Vec<String>;
    /// Whether any container using it is running.
    fn running_container_using(&self, image_id: &str) -> Option<String> {
        let _ = image_id;
        None
    }
}

/// No containers: for tools and tests.
pub struct NoUsage;
impl ImageUsage for NoUsage {
    fn containers_using(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
}

/// A config's raw bytes and its parsed form.
type ConfigEntry = (Arc<Vec<u8>>, Arc<ImageConfig>);

pub struct ImageStore {
    db: Arc<Db>,
    content: Arc<ContentStore>,
    snapshots: Arc<Snapshotter>,
    // Configs are immutable: parse each once.
    cache: std::sync::Mutex<HashMap<String, ConfigEntry>>,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

pub(crate) fn rfc3339_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

impl ImageStore {
    pub fn new(db: Arc<Db>, content: Arc<ContentStore>, snapshots: Arc<Snapshotter>) -> Result<Self> {
        db.migrate("images", MIGRATIONS)?;
        Ok(Self { db, content, snapshots, cache: Default::default() })
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }
    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn config(&self, id: &str) -> Result<ConfigEntry> {
        if let Ok(c) = self.cache.lock() {
            if let Some(v) = c.get(id) {
                return Ok(v.clone());
            }
        }
        let bytes = self.content.read(id)?;
        let cfg = Arc::new(ImageConfig::parse(&bytes)?);
        let v = (Arc::new(bytes), cfg);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(id.to_string(), v.clone());
        }
        Ok(v)
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>> {
        // Four queries for the whole list (not four per image): `images` and
        // `ps` stay fast with thousands of entries.
        type Row = (String, i64, String, String);
        let (rows, tags, digests, layers) = self.db.read(|c| {
            let mut st = c.prepare("SELECT id, added_at, parent, last_tag_time FROM images ORDER BY added_at DESC")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<std::result::Result<Vec<Row>, _>>()?;
            let pairs = |sql: &str| -> Result<Vec<(String, String)>> {
                let mut st = c.prepare(sql)?;
                let v = st
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(v)
            };
            let tags = pairs("SELECT image_id, name FROM tags ORDER BY name")?;
            let digests = pairs("SELECT image_id, name FROM digests ORDER BY name")?;
            let mut st = c.prepare(
                "SELECT il.image_id, l.chain_id, l.diff_id, l.size, l.blob, l.media_type, l.blob_size
                 FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id ORDER BY il.image_id, il.idx",
            )?;
            let layers = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        LayerInfo {
                            chain_id: r.get(1)?,
                            diff_id: r.get(2)?,
                            size: r.get::<_, i64>(3)? as u64,
                            blob: r.get(4)?,
                            media_type: r.get(5)?,
                            blob_size: r.get::<_, i64>(6)? as u64,
                        },
                    ))
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok::<_, Error>((rows, tags, digests, layers))
        })?;
        let mut tag_map: HashMap<String, Vec<Reference>> = HashMap::new();
        for (id, name) in tags {
            if let Ok(r) = Reference::parse(&name) {
                tag_map.entry(id).or_default().push(r);
            }
        }
        let mut digest_map: HashMap<String, Vec<Reference>> = HashMap::new();
        for (id, name) in digests {
            if let Ok(r) = Reference::parse(&name) {
                digest_map.entry(id).or_default().push(r);
            }
        }
        let mut layer_map: HashMap<String, Vec<LayerInfo>> = HashMap::new();
        for (id, l) in layers {
            layer_map.entry(id).or_default().push(l);
        }
        let mut out = Vec::with_capacity(rows.len());
        for (id, added_at, parent, last_tag_time) in rows {
            let (config_bytes, config) = match self.config(&id) {
                Ok(c) => c,
                Err(e) if e.kind() == berth_error::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(Image {
                tags: tag_map.remove(&id).unwrap_or_default(),
                digests: digest_map.remove(&id).unwrap_or_default(),
                layers: layer_map.remove(&id).unwrap_or_default(),
                id,
                config_bytes,
                config,
                added_at,
                parent,
                last_tag_time,
            });
        }
        Ok(out)
    }

    /// Number of images.
    pub fn count(&self) -> Result<usize> {
        self.db
            .read(|c| Ok::<_, Error>(c.query_row("SELECT count(*) FROM images", [], |r| r.get::<_, i64>(0))? as usize))
    }

    /// Loads one image by full ID.
    pub fn get_by_id(&self, id: &str) -> Result<Image> {
        type Row = (i64, String, String);
        let (row, tags, digests, layers) = self.db.read(|c| {
            let row: Option<Row> = c
                .query_row("SELECT added_at, parent, last_tag_time FROM images WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let mut st = c.prepare("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
            let tags = st.query_map([id], |r| r.get::<_, String>(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
            let mut st = c.prepare("SELECT name FROM digests WHERE image_id = ?1 ORDER BY name")?;
            let digests = st.query_map([id], |r| r.get::<_, String>(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
            let mut st = c.prepare(
                "SELECT l.chain_id, l.diff_id, l.size, l.blob, l.media_type, l.blob_size
                 FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                 WHERE il.image_id = ?1 ORDER BY il.idx",
            )?;
            let layers = st
                .query_map([id], |r| {
                    Ok(LayerInfo {
                        chain_id: r.get(0)?,
                        diff_id: r.get(1)?,
                        size: r.get::<_, i64>(2)? as u64,
                        blob: r.get(3)?,
                        media_type: r.get(4)?,
                        blob_size: r.get::<_, i64>(5)? as u64,
                    })
                })?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Ok::<_, Error>((row, tags, digests, layers))
        })?;
        let (added_at, parent, last_tag_time) = row.ok_or_else(|| Error::NoSuchImage(id.to_string()))?;
        let (config_bytes, config) = self.config(id)?;
        Ok(Image {
            id: id.to_string(),
            config_bytes,
            config,
            tags: tags.iter().filter_map(|t| Reference::parse(t).ok()).collect(),
            digests: digests.iter().filter_map(|t| Reference::parse(t).ok()).collect(),
            layers,
            added_at,
            parent,
            last_tag_time,
        })
    }

    /// Resolves what a user typed — a reference, a full ID or a unique ID
    /// prefix — the way Docker's `GetImage` does (reference first, then ID).
    pub fn resolve(&self, name: &str) -> Result<String> {
        let not_found = || {
            let shown = match Reference::parse_with_default_tag(name) {
                Ok(r) if !is_id_prefix(name) => r.familiar(),
                _ => name.to_string(),
            };
            Error::NoSuchImage(shown)
        };
        if name.is_empty() {
            return Err(Error::NoSuchImage(String::new()));
        }
        if let Some(hex) = name.strip_prefix("sha256:") {
            return self.by_id_prefix(hex)?.ok_or_else(not_found);
        }
        if let Ok(r) = Reference::parse_with_default_tag(name) {
            let key = r.to_string();
            let found: Option<String> = self.db.read(|c| {
                let q = if r.digest.is_some() {
                    "SELECT image_id FROM digests WHERE name = ?1"
                } else {
                    "SELECT image_id FROM tags WHERE name = ?1"
                };
                Ok::<_, Error>(c.query_row(q, [&key], |row| row.get(0)).optional()?)
            })?;
            if let Some(id) = found {
                return Ok(id);
            }
            // `name@digest` also matches an image whose ID is that digest.
            if let Some(d) = &r.digest {
                if let Some(id) = self.by_id_prefix(d.trim_start_matches("sha256:"))? {
                    return Ok(id);
                }
            }
        }
        if is_id_prefix(name) {
            if let Some(id) = self.by_id_prefix(name)? {
                return Ok(id);
            }
        }
        Err(not_found())
    }

    fn by_id_prefix(&self, hex: &str) -> Result<Option<String>> {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let pattern = format!("sha256:{}%", hex.to_ascii_lowercase());
        let ids: Vec<String> = self.db.read(|c| {
            let mut st = c.prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
            let v = st.query_map([pattern], |r| r.get(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
            Ok::<_, Error>(v)
        })?;
        match ids.len() {
            0 => Ok(None),
            1 => Ok(ids.into_iter().next()),
            _ => Err(Error::InvalidArgument(format!("multiple IDs found with provided prefix: {hex}"))),
        }
    }

    /// Resolves and loads.
    pub fn get(&self, name: &str) -> Result<Image> {
        let id = self.resolve(name)?;
        self.get_by_id(&id)
    }

    /// Registers an image whose config is `config_bytes` and whose layers are
    /// already unpacked and stored; tags it with `tags`. Returns the image ID
    /// and, for each tag, the ID of the image it was moved away from (if any).
    pub fn register(
        &self,
        config_bytes: &[u8],
        layers: &[LayerInfo],
        tags: &[Reference],
        parent: &str,
    ) -> Result<String> {
        let cfg = ImageConfig::parse(config_bytes)?;
        if cfg.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::InvalidArchive(format!(
                "invalid manifest, layers length mismatch: expected {}, got {}",
                cfg.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let chains = chain_ids(&cfg.rootfs.diff_ids);
        for (i, l) in layers.iter().enumerate() {
            if l.diff_id != cfg.rootfs.diff_ids[i] || l.chain_id != chains[i] {
                return Err(Error::InvalidArchive(format!(
                    "layer {} has diff ID {} but the config expects {}",
                    i, l.diff_id, cfg.rootfs.diff_ids[i]
                )));
            }
        }
        let id = self.content.put(config_bytes, None)?;
        let now = now_nanos();
        let tag_time = if tags.is_empty() { String::new() } else { rfc3339_now() };
        self.db.tx(|tx| {
            for (i, l) in layers.iter().enumerate() {
                let parent = if i == 0 { None } else { Some(layers[i - 1].chain_id.clone()) };
                tx.execute(
                    "INSERT INTO layers(chain_id, diff_id, parent, size, blob, media_type, blob_size)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(chain_id) DO NOTHING",
                    params![l.chain_id, l.diff_id, parent, l.size as i64, l.blob, l.media_type, l.blob_size as i64],
                )?;
            }
            let inserted = tx.execute(
                "INSERT INTO images(id, added_at, parent, last_tag_time) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO NOTHING",
                params![id, now, parent, tag_time],
            )?;
            if inserted == 1 {
                for (i, l) in layers.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO image_layers(image_id, idx, chain_id) VALUES (?1, ?2, ?3)",
                        params![id, i as i64, l.chain_id],
                    )?;
                }
            }
            for t in tags {
                set_tag(tx, t, &id)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(id)
    }

    /// Points `reference` at image `id` (`docker tag`).
    pub fn tag(&self, id: &str, reference: &Reference) -> Result<()> {
        if reference.digest.is_some() {
            return Err(Error::InvalidArgument("refusing to create a tag with a digest reference".into()));
        }
        let r = if reference.tag.is_none() { reference.with_tag("latest") } else { reference.clone() };
        self.db.tx(|tx| {
            let exists: Option<String> =
                tx.query_row("SELECT id FROM images WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            if exists.is_none() {
                return Err(Error::NoSuchImage(id.to_string()));
            }
            set_tag(tx, &r, id)?;
            tx.execute("UPDATE images SET last_tag_time = ?1 WHERE id = ?2", params![rfc3339_now(), id])?;
            Ok(())
        })
    }

    /// Records a repo digest (after a pull or push).
    pub fn add_digest(&self, id: &str, reference: &Reference) -> Result<()> {
        let key = reference.to_string();
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO digests(name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![key, id],
            )?;
            Ok::<_, Error>(())
        })
    }

    /// `docker rmi` / `DELETE /images/{name}` with Docker's rules:
    /// a reference that is one of several tags is only untagged; an ID (or the
    /// last tag) deletes the image unless a container uses it; an ID with
    /// several tags needs `force`.
    pub fn delete(&self, name: &str, force: bool, usage: &dyn ImageUsage) -> Result<Vec<DeleteItem>> {
        let id = self.resolve(name)?;
        let img = self.get_by_id(&id)?;
        let by_ref = !is_id_prefix(name) && !name.starts_with("sha256:") && Reference::parse(name).is_ok();
        let mut out = Vec::new();
        if by_ref {
            let r = Reference::parse_with_default_tag(name)?;
            let is_digest = r.digest.is_some();
            let refs_total = img.tags.len() + img.digests.len();
            let matched = if is_digest { img.digests.contains(&r) } else { img.tags.contains(&r) };
            // moby: removing the last tag of a repository also removes that
            // repository's digest references (those a pull or push recorded).
            let same_repo = |x: &Reference| x.domain == r.domain && x.path == r.path;
            let repo_digests: Vec<Reference> = if !is_digest && !img.tags.iter().any(|t| *t != r && same_repo(t)) {
                img.digests.iter().filter(|d| same_repo(d)).cloned().collect()
            } else {
                Vec::new()
            };
            if matched && refs_total > 1 + repo_digests.len() {
                self.untag(&r)?;
                out.push(DeleteItem::Untagged(r.familiar()));
                for d in &repo_digests {
                    self.untag(d)?;
                    out.push(DeleteItem::Untagged(d.familiar()));
                }
                return Ok(out);
            }
            if matched {
                // The last reference: untag, then delete the image below (if allowed).
                let users = usage.containers_using(&id);
                if !users.is_empty() && !force {
                    return Err(Error::Conflict(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                        name,
                        short(&users[0]),
                        short(&id)
                    )));
                }
                if !users.is_empty() {
                    // Forced with a user: Docker untags and keeps the image as dangling.
                    self.untag(&r)?;
                    out.push(DeleteItem::Untagged(r.familiar()));
                    return Ok(out);
                }
            }
        } else if img.tags.len() + img.digests.len() > 1 && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                short(&id)
            )));
        }
        if let Some(c) = usage.running_container_using(&id) {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short(&id),
                short(&c)
            )));
        }
        let users = usage.containers_using(&id);
        if !users.is_empty() && !force {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                short(&id),
                short(&users[0])
            )));
        }
        for t in &img.tags {
            out.push(DeleteItem::Untagged(t.familiar()));
        }
        for d in &img.digests {
            out.push(DeleteItem::Untagged(d.familiar()));
        }
        if !users.is_empty() {
            // Forced, but containers still use it: untag everything, keep the image.
            self.db.tx(|tx| {
                tx.execute("DELETE FROM tags WHERE image_id = ?1", [&id])?;
                tx.execute("DELETE FROM digests WHERE image_id = ?1", [&id])?;
                Ok::<_, Error>(())
            })?;
            return Ok(out);
        }
        self.remove_image(&id)?;
        out.push(DeleteItem::Deleted(id));
        Ok(out)
    }

    /// Removes a tag or digest reference.
    pub fn untag(&self, r: &Reference) -> Result<()> {
        let key = r.to_string();
        let n = self.db.tx(|tx| {
            let n = if r.digest.is_some() {
                tx.execute("DELETE FROM digests WHERE name = ?1", [&key])?
            } else {
                tx.execute("DELETE FROM tags WHERE name = ?1", [&key])?
            };
            Ok::<_, Error>(n)
        })?;
        if n == 0 {
            return Err(Error::NoSuchImage(r.familiar()));
        }
        Ok(())
    }

    /// Deletes the image row, then every layer, snapshot and blob no other image uses.
    fn remove_image(&self, id: &str) -> Result<()> {
        let orphans: Vec<(String, String)> = self.db.tx(|tx| {
            tx.execute("DELETE FROM images WHERE id = ?1", [id])?;
            orphan_layers(tx)
        })?;
        if let Ok(mut c) = self.cache.lock() {
            c.remove(id);
        }
        // Children before parents: orphan_layers returns them top-down.
        for (chain, blob) in &orphans {
            self.snapshots.remove(chain)?;
            self.content.delete(blob)?;
        }
        self.db.tx(|tx| {
            for (chain, _) in &orphans {
                tx.execute("DELETE FROM layers WHERE chain_id = ?1", [chain])?;
            }
            Ok::<_, Error>(())
        })?;
        self.content.delete(id)?;
        Ok(())
    }

    /// `image prune`: dangling images (no tags), or with `all` every image no
    /// container uses. `keep` filters candidates (label/until filters).
    pub fn prune(
        &self,
        all: bool,
        usage: &dyn ImageUsage,
        keep: &dyn Fn(&Image) -> bool,
    ) -> Result<(Vec<DeleteItem>, u64)> {
        let mut out = Vec::new();
        let mut reclaimed = 0u64;
        for img in self.list()? {
            let dangling = img.tags.is_empty() && img.digests.is_empty();
            if (!all && !dangling) || !keep(&img) || !usage.containers_using(&img.id).is_empty() {
                continue;
            }
            let before = self.unique_size(&img)?;
            for t in &img.tags {
                out.push(DeleteItem::Untagged(t.familiar()));
            }
            for d in &img.digests {
                out.push(DeleteItem::Untagged(d.familiar()));
            }
            self.remove_image(&img.id)?;
            out.push(DeleteItem::Deleted(img.id.clone()));
            reclaimed += before;
        }
        Ok((out, reclaimed))
    }

    /// Bytes only this image holds (layers no other image shares).
    pub fn unique_size(&self, img: &Image) -> Result<u64> {
        let shared: BTreeSet<String> = self.db.read(|c| {
            let mut st = c.prepare("SELECT DISTINCT chain_id FROM image_layers WHERE image_id != ?1")?;
            let v =
                st.query_map([&img.id], |r| r.get::<_, String>(0))?.collect::<std::result::Result<BTreeSet<_>, _>>()?;
            Ok::<_, Error>(v)
        })?;
        Ok(img.layers.iter().filter(|l| !shared.contains(&l.chain_id)).map(|l| l.size).sum())
    }

    /// Removes snapshots and blobs that no layer row or image refers to:
    /// what a crash between unpacking and registering left behind.
    pub fn gc(&self, keep_blobs: &BTreeSet<String>) -> Result<usize> {
        let (chains, blobs): (BTreeSet<String>, BTreeSet<String>) = self.db.read(|c| {
            let mut st = c.prepare("SELECT chain_id, blob FROM layers")?;
            let mut chains = BTreeSet::new();
            let mut blobs = BTreeSet::new();
            let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (ch, b) = row?;
                chains.insert(ch);
                blobs.insert(b);
            }
            let mut st = c.prepare("SELECT id FROM images")?;
            for id in st.query_map([], |r| r.get::<_, String>(0))? {
                blobs.insert(id?);
            }
            Ok::<_, Error>((chains, blobs))
        })?;
        let mut removed = 0;
        for d in self.content.list()? {
            if !blobs.contains(&d) && !keep_blobs.contains(&d) {
                self.content.delete(&d)?;
                removed += 1;
            }
        }
        // Orphans may stack on each other: remove leaves first, a few passes.
        for _ in 0..8 {
            let orphans: Vec<String> = self
                .snapshots
                .list()
                .into_iter()
                .filter(|s| {
                    s.kind == berth_snapshot::SnapshotKind::Committed
                        && s.key.starts_with("sha256:")
                        && !chains.contains(&s.key)
                })
                .map(|s| s.key)
                .collect();
            if orphans.is_empty() {
                break;
            }
            let mut progress = false;
            for key in orphans {
                // Only unreferenced image layers; other committed snapshots
                // (build cache) belong to their own owners.
                if self.snapshots.remove(&key).is_ok() {
                    removed += 1;
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        Ok(removed)
    }

    /// Reads a layer's blob, decompressed, for export.
    pub fn open_layer_blob(&self, l: &LayerInfo) -> Result<std::fs::File> {
        Ok(self.content.open_blob(&l.blob)?)
    }

    /// Unpacks a layer blob already in the content store (any compression) as
    /// snapshot `chain_id` over `parent`, verifying `diff_id`. Returns its size.
    pub fn unpack_blob(&self, blob: &str, chain_id: &str, parent: Option<&str>, diff_id: &str) -> Result<u64> {
        let f = self.content.open_blob(blob)?;
        let r = decompress(std::io::BufReader::with_capacity(1 << 20, f))?;
        let res = self.snapshots.apply_layer(chain_id, parent, r, Some(diff_id))?;
        Ok(res.size)
    }

    /// Known layer, if registered.
    pub fn layer(&self, chain_id: &str) -> Result<Option<LayerInfo>> {
        self.db.read(|c| {
            Ok::<_, Error>(
                c.query_row(
                    "SELECT chain_id, diff_id, size, blob, media_type, blob_size FROM layers WHERE chain_id = ?1",
                    [chain_id],
                    |r| {
                        Ok(LayerInfo {
                            chain_id: r.get(0)?,
                            diff_id: r.get(1)?,
                            size: r.get::<_, i64>(2)? as u64,
                            blob: r.get(3)?,
                            media_type: r.get(4)?,
                            blob_size: r.get::<_, i64>(5)? as u64,
                        })
                    },
                )
                .optional()?,
            )
        })
    }
}

/// True when `s` could be a (short) hex image ID rather than a name.
fn is_id_prefix(s: &str) -> bool {
    let h = s.strip_prefix("sha256:").unwrap_or(s);
    !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn set_tag(tx: &Transaction<'_>, r: &Reference, id: &str) -> Result<()> {
    let r = if r.tag.is_none() && r.digest.is_none() { r.with_tag("latest") } else { r.clone() };
    tx.execute(
        "INSERT INTO tags(name, image_id) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
        params![r.to_string(), id],
    )?;
    Ok(())
}

/// Layers no image refers to, children first (a child's chain ID depends on its parent).
fn orphan_layers(tx: &Transaction<'_>) -> Result<Vec<(String, String)>> {
    let mut st = tx.prepare(
        "SELECT chain_id, blob, parent FROM layers
         WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)",
    )?;
    let rows: Vec<(String, String, Option<String>)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<std::result::Result<_, _>>()?;
    // Order so that a layer comes before its parent.
    let mut ordered: Vec<(String, String)> = Vec::with_capacity(rows.len());
    let mut remaining = rows;
    while !remaining.is_empty() {
        let still_parent: BTreeSet<String> = remaining.iter().filter_map(|r| r.2.clone()).collect();
        let (leaves, rest): (Vec<_>, Vec<_>) = remaining.into_iter().partition(|r| !still_parent.contains(&r.0));
        if leaves.is_empty() {
            // A cycle cannot happen with chain IDs; bail out rather than loop.
            ordered.extend(rest.into_iter().map(|r| (r.0, r.1)));
            break;
        }
        ordered.extend(leaves.into_iter().map(|r| (r.0, r.1)));
        remaining = rest;
    }
    // A layer still used as the parent of a referenced layer must stay.
    let mut st = tx.prepare(
        "SELECT DISTINCT parent FROM layers WHERE parent IS NOT NULL
         AND chain_id IN (SELECT chain_id FROM image_layers)",
    )?;
    let needed: BTreeSet<String> =
        st.query_map([], |r| r.get::<_, String>(0))?.collect::<std::result::Result<_, _>>()?;
    Ok(ordered.into_iter().filter(|(c, _)| !needed.contains(c)).collect())
}

/// Wraps a layer stream in the right decompressor, detected from its magic
/// bytes (gzip, zstd, or a plain tar), as Docker's `DecompressStream` does.
pub fn decompress<'a, R: std::io::BufRead + Send + 'a>(mut r: R) -> Result<Box<dyn Read + Send + 'a>> {
    let head = r.fill_buf().map_err(Error::io("reading layer"))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let d = zstd::stream::read::Decoder::with_buffer(r).map_err(Error::io("zstd layer"))?;
        Ok(Box::new(d))
    } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err(Error::InvalidArchive("bzip2 and xz compressed layers are not supported".into()))
    } else {
        Ok(Box::new(r))
    }
}

/// The media type of a blob, from its first bytes.
pub fn media_type_of(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        MEDIA_TAR_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        MEDIA_TAR_ZSTD
    } else {
        MEDIA_TAR
    }
}
