//! The image builder: a Dockerfile and a build context become an image.
//!
//! The Dockerfile (parsed by `berth-dockerfile`) is split into stages; the
//! stages the target needs form a DAG (`FROM <stage>`, `COPY --from`,
//! `RUN --mount=from=`) and independent stages run in parallel. Every
//! instruction becomes an image through `berth_image::commit`: `RUN` runs as
//! a one-shot task in a writable snapshot (`berth_container::Manager::
//! run_task`: the container spec, shim and runtime of containers, without a
//! container record, so steps never show in `ps`), and its diff is the layer;
//! `COPY`/`ADD`/`WORKDIR` write into a mounted snapshot directly; the other
//! instructions change the config only (an `empty_layer` history entry).
//! Each step has a cache key (parent image, expanded instruction, build
//! arguments in scope, and a digest of the files `COPY`/`ADD` read) recorded
//! in SQLite ([`cache`]). Progress is reported in the legacy builder's
//! stream format (`Step 1/5 : FROM …`, ` ---> <id>`, ` ---> Using cache`).

mod build;
pub mod cache;
pub mod context;
pub mod ignore;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;

use berth_error::ErrorKind;
use berth_image::store::ImageUsage;
use berth_image::ImageStore;
use serde_json::{json, Value};

pub use build::{BuildOptions, Event};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// A `RUN` step exited non-zero (the legacy builder's wording, which
    /// docker-py and the docker CLI show as is).
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    Internal(String),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Dockerfile(#[from] berth_dockerfile::Error),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Snapshot(#[from] berth_snapshot::Error),
    #[error(transparent)]
    Container(#[from] berth_container::Error),
    #[error(transparent)]
    Meta(#[from] berth_meta::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) | Error::RunFailed { .. } => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Cancelled(_) | Error::Internal(_) | Error::Io { .. } => ErrorKind::Internal,
            Error::Dockerfile(e) => e.kind(),
            Error::Image(e) => e.kind(),
            Error::Snapshot(e) => e.kind(),
            Error::Container(e) => e.kind(),
            Error::Meta(e) => e.kind(),
        }
    }

    /// The exit code of a failed `RUN` (the stream's `errorDetail.code`).
    pub fn code(&self) -> Option<i32> {
        match self {
            Error::RunFailed { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

impl From<berth_meta::rusqlite::Error> for Error {
    fn from(e: berth_meta::rusqlite::Error) -> Self {
        Error::Meta(berth_meta::Error::Sqlite(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    let mut s = hex::encode(buf);
    s.truncate(n);
    s
}

pub(crate) fn short_id(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

/// The builder of one daemon.
pub struct Builder {
    pub(crate) images: Arc<ImageStore>,
    pub(crate) containers: Arc<berth_container::Manager>,
    /// `<data-root>/builder`: scratch space, cache mounts.
    pub(crate) root: PathBuf,
    /// Fetches base images the store lacks (or all of them with `--pull`).
    puller: std::sync::OnceLock<Arc<Puller>>,
}

/// Pulls an image reference from its registry, reporting status lines
/// (`Digest: …`, `Status: …`); returns the image ID or the pull's error text.
pub type Puller = dyn Fn(&str, &mut dyn FnMut(String)) -> std::result::Result<String, String> + Send + Sync;

/// What `/build/prune` reports.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub deleted: Vec<String>,
    pub space_reclaimed: u64,
}

/// How `/build/prune` chooses records.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Every record, not only those no tagged image is built on.
    pub all: bool,
    /// Keep this many bytes of cache (the most recently used).
    pub keep_storage: u64,
    /// Only records last used before this unix time (`until` filter).
    pub until: Option<i64>,
}

impl Builder {
    /// Lets `FROM` pull what the store lacks, as Docker's builder does.
    pub fn set_puller(&self, p: Arc<Puller>) {
        let _ = self.puller.set(p);
    }

    /// Pulls `name`, when a puller is set.
    pub(crate) fn pull(&self, name: &str, say: &mut dyn FnMut(String)) -> Option<std::result::Result<String, String>> {
        self.puller.get().map(|p| p(name, say))
    }

    /// Creates the builder; its cache index is migrated and its scratch
    /// space (left over by a crash) emptied.
    pub fn new(images: Arc<ImageStore>, containers: Arc<berth_container::Manager>) -> Result<Arc<Builder>> {
        cache::migrate(images.db())?;
        let root = containers.data_root().join("builder");
        let tmp = root.join("tmp");
        if tmp.exists() {
            // Scratch directories of builds a crash interrupted (their
            // mounts went with the daemon's mount namespace or were unmounted
            // by the task cleanup).
            if let Ok(rd) = std::fs::read_dir(&tmp) {
                for e in rd.flatten() {
                    let _ = berth_snapshot::unmount(&e.path().join("mnt"));
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(&tmp).map_err(Error::io("creating the builder directory"))?;
        std::fs::create_dir_all(root.join("cache-mounts")).map_err(Error::io("creating the builder directory"))?;
        // Writable snapshots of interrupted steps.
        for s in images.snapshots().list() {
            if s.key.starts_with("build-") {
                let _ = images.snapshots().remove(&s.key);
            }
        }
        Ok(Arc::new(Builder { images, containers, root, puller: std::sync::OnceLock::new() }))
    }

    /// The build cache records, for `system df` (the `BuildCache` list of
    /// `GET /system/df`, in the Engine API's `BuildCache` shape) and
    /// `builder du`.
    pub fn disk_usage(&self) -> Result<Vec<Value>> {
        let recs = cache::list(self.images.db())?;
        let tagged = self.in_use_images()?;
        let mut out = Vec::new();
        for r in recs {
            out.push(json!({
                // BuildKit's record IDs are 25 characters.
                "ID": r.key.trim_start_matches("sha256:").chars().take(25).collect::<String>(),
                "Parent": "",
                "Parents": [],
                "Type": "regular",
                "Description": r.description,
                "InUse": false,
                "Shared": tagged.contains(&r.image_id),
                "Size": r.size,
                "CreatedAt": rfc3339(r.created_at),
                "LastUsedAt": rfc3339(r.last_used),
                "UsageCount": r.usage_count,
            }));
        }
        for (id, size, mtime) in self.cache_mounts()? {
            out.push(json!({
                "ID": id,
                "Parent": "",
                "Parents": [],
                "Type": "exec.cachemount",
                "Description": "cached mount",
                "InUse": false,
                "Shared": false,
                "Size": size,
                "CreatedAt": rfc3339(mtime),
                "LastUsedAt": rfc3339(mtime),
                "UsageCount": 1,
            }));
        }
        Ok(out)
    }

    /// The images the build cache holds as step results (not a build's
    /// result). Untagged ones are build cache, not images a user made:
    /// `docker images` hides them and `image prune` leaves them to
    /// `builder prune`.
    pub fn cache_images(&self) -> std::collections::HashSet<String> {
        cache::step_images(self.images.db()).map(|l| l.into_iter().collect()).unwrap_or_default()
    }

    /// Total bytes of build cache.
    pub fn disk_usage_total(&self) -> Result<u64> {
        Ok(self.disk_usage()?.iter().filter_map(|v| v["Size"].as_u64()).sum())
    }

    fn cache_mounts(&self) -> Result<Vec<(String, u64, i64)>> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.root.join("cache-mounts")) {
            for e in rd.flatten() {
                use std::os::unix::fs::MetadataExt;
                let mtime = e.metadata().map(|m| m.mtime()).unwrap_or(0);
                out.push((e.file_name().to_string_lossy().into_owned(), dir_size(&e.path()), mtime));
            }
        }
        Ok(out)
    }

    /// Images that tagged images are built on (their ancestry through
    /// `parent`), and the tagged images themselves.
    fn in_use_images(&self) -> Result<std::collections::BTreeSet<String>> {
        let list = self.images.list()?;
        let parents: std::collections::HashMap<String, String> =
            list.iter().map(|i| (i.id.clone(), i.parent.clone())).collect();
        let mut out = std::collections::BTreeSet::new();
        for img in list.iter().filter(|i| !i.tags.is_empty() || !i.digests.is_empty()) {
            let mut cur = img.id.clone();
            while !cur.is_empty() && out.insert(cur.clone()) {
                cur = parents.get(&cur).cloned().unwrap_or_default();
            }
        }
        Ok(out)
    }

    /// `docker builder prune` / `POST /build/prune`: removes cache records
    /// and the untagged intermediate images they hold (an image still tagged
    /// or used by a container stays; only the record goes), and cache
    /// mounts.
    pub fn prune(&self, opts: &PruneOptions, usage: &dyn ImageUsage) -> Result<PruneReport> {
        let db = self.images.db();
        let recs = cache::list(db)?;
        let in_use = self.in_use_images()?;
        let total: u64 = recs.iter().map(|r| r.size).sum();
        let mut remaining = total;
        let mut report = PruneReport::default();
        // Least recently used first.
        for r in recs {
            if opts.keep_storage > 0 && remaining <= opts.keep_storage {
                break;
            }
            if !opts.all && in_use.contains(&r.image_id) {
                continue;
            }
            if opts.until.is_some_and(|u| r.last_used >= u) {
                continue;
            }
            cache::remove(db, &r.key)?;
            remaining = remaining.saturating_sub(r.size);
            report.deleted.push(r.key.clone());
            if let Ok(img) = self.images.get_by_id(&r.image_id) {
                if img.tags.is_empty() && img.digests.is_empty() && usage.containers_using(&img.id).is_empty() {
                    let size = self.images.unique_size(&img).unwrap_or(0);
                    if self.images.delete(&img.id, false, usage).is_ok() {
                        report.space_reclaimed += size;
                    }
                }
            }
        }
        let cutoff_ok = |mtime: i64| opts.until.is_none_or(|u| mtime < u);
        if opts.keep_storage == 0 {
            for (id, size, mtime) in self.cache_mounts()? {
                if cutoff_ok(mtime) {
                    let p = self.root.join("cache-mounts").join(&id);
                    if std::fs::remove_dir_all(&p).is_ok() {
                        report.deleted.push(id);
                        report.space_reclaimed += size;
                    }
                }
            }
        }
        Ok(report)
    }
}

fn rfc3339(secs: i64) -> String {
    chrono_like(secs)
}

/// RFC 3339 in UTC from unix seconds (civil-from-days, no time zone data).
fn chrono_like(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

pub(crate) fn dir_size(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if let Ok(m) = e.path().symlink_metadata() {
                    if m.is_dir() {
                        stack.push(e.path());
                    } else {
                        total += m.blocks() * 512;
                    }
                }
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_from_unix() {
        assert_eq!(super::chrono_like(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::chrono_like(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
