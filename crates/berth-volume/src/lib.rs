//! Docker volumes with the `local` driver.
//!
//! A volume is a directory `<data-root>/volumes/<name>/_data` (Docker's
//! layout, so tooling that looks there keeps working), optionally with a
//! filesystem mounted on it from the driver options (`type=tmpfs,
//! device=tmpfs,o=size=100m`, `type=none,o=bind,device=/srv/data`, nfs, …).
//! Records live in the metadata database (`volumes` table); who has a volume
//! mounted lives in memory, keyed by container id.

mod filters;
mod mount;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_error::ErrorKind;
use berth_meta::rusqlite::{params, OptionalExtension};
use berth_meta::Db;
use serde::{Deserialize, Serialize};

pub use filters::Filters;

/// Docker 23+ marks volumes created without a name with this label; `volume
/// prune` without `--all` removes only those.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The only driver built in.
pub const LOCAL_DRIVER: &str = "local";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Meta(#[from] berth_meta::Error),
    #[error(transparent)]
    Fs(#[from] berth_fsops::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Internal(_) | Error::Io { .. } => ErrorKind::Internal,
            Error::Meta(e) => e.kind(),
            Error::Fs(e) => e.kind(),
        }
    }
}

impl From<berth_meta::rusqlite::Error> for Error {
    fn from(e: berth_meta::rusqlite::Error) -> Self {
        Error::Meta(e.into())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn io_ctx<C: std::fmt::Display>(context: C) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { context: context.to_string(), source }
}

/// A volume in the Engine API's shape (`GET /volumes/{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "Mountpoint")]
    pub mountpoint: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "Scope")]
    pub scope: String,
    /// Only in `system df` and `volume ls` answers that ask for it.
    #[serde(rename = "UsageData", default, skip_serializing_if = "Option::is_none")]
    pub usage_data: Option<UsageData>,
}

/// Docker's `VolumeUsageData`: -1 means "not computed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageData {
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "RefCount")]
    pub ref_count: i64,
}

impl Volume {
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// Who references a volume: the caller (the container manager) answers with
/// the ids of the containers whose config mounts it, running or not.
pub type InUse<'a> = &'a dyn Fn(&str) -> Vec<String>;

const MIGRATIONS: &[&str] = &["
CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
"];

pub struct VolumeStore {
    db: Arc<Db>,
    root: PathBuf,
    /// Container ids that currently have each volume mounted.
    users: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl VolumeStore {
    /// Opens the store with volumes under `root` (`<data-root>/volumes`).
    pub fn open(db: Arc<Db>, root: &Path) -> Result<Self> {
        db.migrate("volumes", MIGRATIONS)?;
        // 0701 like Docker: others may traverse to a volume's data (a
        // container user reaching its mount) but not list the volumes.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o701)
            .create(root)
            .map_err(io_ctx(format!("create {}", root.display())))?;
        Ok(Self { db, root: root.to_path_buf(), users: Mutex::new(HashMap::new()) })
    }

    fn users(&self) -> Result<MutexGuard<'_, HashMap<String, BTreeSet<String>>>> {
        self.users.lock().map_err(|_| Error::Internal("volume users lock poisoned".into()))
    }

    /// `<root>/<name>/_data`.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Creates a volume, or returns the existing one of that name (Docker's
    /// create is idempotent). `None` or an empty name generates a 64-hex
    /// name and marks the volume anonymous.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        opts: &BTreeMap<String, String>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Volume> {
        let driver = if driver.is_empty() { LOCAL_DRIVER } else { driver };
        if driver != LOCAL_DRIVER {
            return Err(Error::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let mut labels = labels.clone();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => {
                labels.insert(ANONYMOUS_LABEL.into(), String::new());
                random_id()?
            }
        };
        validate_name(&name).map_err(|e| Error::InvalidArgument(format!("create {name}: {e}")))?;
        if let Some(v) = self.find(&name)? {
            return Ok(v);
        }
        mount::validate_opts(opts).map_err(|e| Error::InvalidArgument(format!("create {name}: {e}")))?;

        let dir = self.root.join(&name);
        let data = dir.join("_data");
        let existed = dir.exists();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&data)
            .map_err(io_ctx(format!("create {name}: mkdir {}", data.display())))?;
        let v = Volume {
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            driver: driver.into(),
            labels,
            mountpoint: data.to_string_lossy().into_owned(),
            name: name.clone(),
            options: opts.clone(),
            scope: "local".into(),
            usage_data: None,
        };
        let json = serde_json::to_string(&v).map_err(|e| Error::Internal(e.to_string()))?;
        let res: Result<Option<String>> = self.db.tx(|tx| {
            let prev: Option<String> =
                tx.query_row("SELECT data FROM volumes WHERE name = ?1", [&name], |r| r.get(0)).optional()?;
            if prev.is_none() {
                tx.execute("INSERT INTO volumes(name, data) VALUES (?1, ?2)", params![name, json])?;
            }
            Ok(prev)
        });
        match res {
            // Lost a race with a concurrent create of the same name: theirs wins.
            Ok(Some(prev)) => parse(&prev),
            Ok(None) => Ok(v),
            Err(e) => {
                if !existed {
                    let _ = fs::remove_dir_all(&dir);
                }
                Err(e)
            }
        }
    }

    fn find(&self, name: &str) -> Result<Option<Volume>> {
        let row: Option<String> = self.db.read(|c| {
            c.query_row("SELECT data FROM volumes WHERE name = ?1", [name], |r| r.get(0))
                .optional()
                .map_err(Error::from)
        })?;
        row.map(|r| parse(&r)).transpose()
    }

    /// `GET /volumes/{name}`; Docker's `get <name>: no such volume`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.find(name)?.ok_or_else(|| Error::NotFound(format!("get {name}: no such volume")))
    }

    /// The volume with `UsageData` filled in (size of `_data`, references).
    pub fn get_with_usage(&self, name: &str, in_use: InUse<'_>) -> Result<Volume> {
        let mut v = self.get(name)?;
        let refs = self.references(name, in_use)?;
        v.usage_data = Some(UsageData { size: self.usage(name)? as i64, ref_count: refs.len() as i64 });
        Ok(v)
    }

    fn all(&self) -> Result<Vec<Volume>> {
        let rows: Vec<String> = self.db.read(|c| {
            let mut st = c.prepare("SELECT data FROM volumes ORDER BY name")?;
            let v = st.query_map([], |r| r.get::<_, String>(0))?.collect::<std::result::Result<Vec<_>, _>>()?;
            Ok::<_, Error>(v)
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            match parse(&r) {
                Ok(v) => out.push(v),
                Err(e) => tracing::warn!("skipping unreadable volume record: {e}"),
            }
        }
        Ok(out)
    }

    /// Container ids referencing `name`: the caller's answer plus whoever has
    /// it mounted right now.
    fn references(&self, name: &str, in_use: InUse<'_>) -> Result<Vec<String>> {
        let mut refs: BTreeSet<String> = in_use(name).into_iter().collect();
        if let Some(u) = self.users()?.get(name) {
            refs.extend(u.iter().cloned());
        }
        Ok(refs.into_iter().collect())
    }

    /// `GET /volumes` with Docker's filters, sorted by name.
    pub fn list(&self, filters: &Filters, in_use: InUse<'_>) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for v in self.all()? {
            let dangling = || self.references(&v.name, in_use).map(|r| r.is_empty());
            if filters.matches(&v, dangling)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// `DELETE /volumes/{name}`. A volume still referenced is a conflict
    /// even with `force` (Docker's force only ignores a missing volume).
    pub fn remove(&self, name: &str, force: bool, in_use: InUse<'_>) -> Result<()> {
        let v = match self.get(name) {
            Ok(v) => v,
            Err(Error::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let refs = self.references(name, in_use)?;
        if !refs.is_empty() {
            // Go's %v of a []string: `[a b]`.
            return Err(Error::Conflict(format!("remove {name}: volume is in use - [{}]", refs.join(" "))));
        }
        let data = self.data_path(&v.name);
        // A mount left over from a crashed daemon: removing through it would
        // delete the bind source's files on the host.
        if mount::is_mountpoint(&data) {
            mount::unmount_volume(&data)?;
            if mount::is_mountpoint(&data) {
                return Err(Error::Conflict(format!("remove {name}: volume is still mounted at {}", data.display())));
            }
        }
        let dir = self.root.join(&v.name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_ctx(format!("remove {name}"))(e)),
        }
        self.db.tx(|tx| {
            tx.execute("DELETE FROM volumes WHERE name = ?1", [name])?;
            Ok::<_, Error>(())
        })?;
        self.users()?.remove(name);
        Ok(())
    }

    /// `POST /volumes/prune`: removes unreferenced volumes matching
    /// `filters` (`label`, `label!`); without `all` (or filter `all=true`)
    /// only anonymous ones, as Docker 23+. Returns the names removed and the
    /// bytes reclaimed.
    pub fn prune(&self, all: bool, in_use: InUse<'_>, filters: &Filters) -> Result<(Vec<String>, u64)> {
        let all = all || filters.all == Some(true);
        let mut removed = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.all()? {
            if !all && !v.is_anonymous() {
                continue;
            }
            if !filters.matches_labels(&v) || !self.references(&v.name, in_use)?.is_empty() {
                continue;
            }
            let size = self.usage(&v.name).unwrap_or(0);
            match self.remove(&v.name, false, in_use) {
                Ok(()) => {
                    reclaimed += size;
                    removed.push(v.name);
                }
                // Docker logs and goes on with the others.
                Err(e) => tracing::warn!("prune volume {}: {e}", v.name),
            }
        }
        Ok((removed, reclaimed))
    }

    /// Bytes used by a volume's data: sizes of its files, each inode once,
    /// symlinks not followed (Docker's `directory.Size`).
    pub fn usage(&self, name: &str) -> Result<u64> {
        let v = self.get(name)?;
        let mut seen = HashSet::new();
        Ok(du(Path::new(&v.mountpoint), &mut seen))
    }

    /// Mounts the volume for container `container_id` and returns its data
    /// path. Volumes with mount options get their filesystem mounted by the
    /// first user; later users share it.
    pub fn mount(&self, name: &str, container_id: &str) -> Result<PathBuf> {
        let v = self.get(name)?;
        let data = self.data_path(&v.name);
        let mut users = self.users()?;
        let set = users.entry(v.name.clone()).or_default();
        if set.is_empty() && mount::needs_mount(&v.options) && !mount::is_mountpoint(&data) {
            if let Err(e) = mount::mount_volume(&v.options, &data) {
                users.remove(&v.name);
                return Err(e);
            }
        }
        set.insert(container_id.to_string());
        Ok(data)
    }

    /// Drops `container_id`'s use of the volume; the last user out unmounts.
    /// Unknown users are ignored so a retried cleanup is harmless.
    pub fn unmount(&self, name: &str, container_id: &str) -> Result<()> {
        let mut users = self.users()?;
        let Some(set) = users.get_mut(name) else { return Ok(()) };
        set.remove(container_id);
        if !set.is_empty() {
            return Ok(());
        }
        users.remove(name);
        drop(users);
        let data = self.data_path(name);
        let needs = self.find(name)?.map(|v| mount::needs_mount(&v.options)).unwrap_or(false);
        if needs && mount::is_mountpoint(&data) {
            mount::unmount_volume(&data)?;
        }
        Ok(())
    }

    /// Containers holding a mount of `name` right now.
    pub fn mount_users(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.users()?.get(name).map(|s| s.iter().cloned().collect()).unwrap_or_default())
    }
}

fn parse(s: &str) -> Result<Volume> {
    serde_json::from_str(s).map_err(|e| Error::Internal(format!("volume record: {e}")))
}

/// Docker's `stringid.GenerateRandomID`: 32 random bytes as hex.
fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).map_err(io_ctx("read /dev/urandom"))?;
    Ok(hex::encode(b))
}

/// Docker's local driver name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.chars().count() == 1 {
        return Err("volume name is too short, names should be at least two alphanumeric characters".into());
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

fn du(p: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(rd) = fs::read_dir(p) else { return 0 };
    let mut total = 0;
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += du(&e.path(), seen);
        } else if seen.insert((m.dev(), m.ino())) {
            total += m.size();
        }
    }
    total
}

/// Docker's copy-up: on the first mount of an *empty* named volume, the
/// image's content at the mount point is copied in (modes, owners,
/// symlinks, hardlinks, xattrs), and the volume's root takes the owner and
/// mode of the image directory (`copyOwnership`). `image_dir` must already be
/// resolved inside the image rootfs (`berth_fsops::resolve_in_root`); if it
/// is not a real directory, or the volume has content, nothing happens.
/// Symlinks are copied, never followed, so nothing outside `image_dir` is
/// read.
pub fn copy_up(image_dir: &Path, volume_data: &Path) -> Result<()> {
    let src = match fs::symlink_metadata(image_dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_ctx(format!("lstat {}", image_dir.display()))(e)),
    };
    let mut dst_entries = fs::read_dir(volume_data).map_err(io_ctx(format!("read {}", volume_data.display())))?;
    if dst_entries.next().is_some() {
        return Ok(());
    }
    let mut src_entries = fs::read_dir(image_dir).map_err(io_ctx(format!("read {}", image_dir.display())))?;
    if src_entries.next().is_none() {
        return Ok(());
    }
    berth_fsops::copy_tree(image_dir, volume_data)?;
    std::os::unix::fs::lchown(volume_data, Some(src.uid()), Some(src.gid()))
        .or_else(|e| if e.kind() == io::ErrorKind::PermissionDenied { Ok(()) } else { Err(e) })
        .map_err(io_ctx(format!("chown {}", volume_data.display())))?;
    fs::set_permissions(volume_data, fs::Permissions::from_mode(src.mode() & 0o7777))
        .map_err(io_ctx(format!("chmod {}", volume_data.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests;
