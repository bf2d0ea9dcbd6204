//! `docker pull`: manifest → platform → config → layers (downloaded in
//! parallel, unpacked in order as soon as their turn comes) → register.
//!
//! Like Docker, a failed pull leaves nothing registered: snapshots it
//! unpacked and blobs it downloaded are removed again unless another image
//! uses them.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use berth_image::config::{chain_ids, ImageConfig};
use berth_image::{ImageStore, LayerInfo, Reference};
use sha2::{Digest, Sha256};

use crate::client::{header, read_error, Credentials, Registry, RegistryError, Session};
use crate::manifest::{self, Manifest, Platform, ACCEPT};
use crate::progress::{LayerStatus, ProgressEvent};
use crate::{Error, Result};

/// Options of one pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Which image of a manifest list to pull; the host's by default.
    pub platform: Platform,
    /// Credentials for this pull (the API's `X-Registry-Auth`); when None the
    /// registry's credential lookup is asked.
    pub credentials: Option<Credentials>,
    /// Set when the client went away: downloads stop and what the pull
    /// added is removed, as moby cancels a pull with its request context.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions { platform: Platform::host(), credentials: None, cancel: None }
    }
}

/// The outcome of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// Image ID (`sha256:` of the config).
    pub id: String,
    /// Digest of the manifest (or manifest list) the reference resolved to:
    /// what `RepoDigests` records.
    pub digest: String,
    /// Tags now pointing at the image.
    pub tags: Vec<Reference>,
    /// False when the tag already pointed at this image ("Image is up to date").
    pub updated: bool,
}

/// Manifests and configs are small; refuse absurd ones rather than buffer them.
const MAX_MANIFEST: u64 = 8 << 20;
const MAX_CONFIG: u64 = 64 << 20;
/// Emit a `Downloading` event at most every this many bytes.
const PROGRESS_STEP: u64 = 512 * 1024;

pub(crate) fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

enum Msg {
    Event(ProgressEvent),
    Done(String, Result<()>),
}

/// What the pull has added so far, to undo on failure.
#[derive(Default)]
struct Added {
    blobs: Vec<String>,
    snapshots: Vec<String>,
}

impl Registry {
    /// Pulls `reference` into `store` (Docker's `POST /images/create`).
    pub fn pull(
        &self,
        store: &ImageStore,
        reference: &Reference,
        opts: &PullOptions,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<PulledImage> {
        let pulled = self.pull_tag(store, reference, opts, progress)?;
        let shown = match &reference.digest {
            Some(_) => reference.familiar(),
            None if reference.tag.is_none() => reference.with_tag("latest").familiar(),
            None => reference.familiar(),
        };
        progress(status_line(&shown, pulled.updated));
        Ok(pulled)
    }

    /// One tag or digest, without the final status line.
    fn pull_tag(
        &self,
        store: &ImageStore,
        reference: &Reference,
        opts: &PullOptions,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<PulledImage> {
        let reference = if reference.tag.is_none() && reference.digest.is_none() {
            reference.with_tag("latest")
        } else {
            reference.clone()
        };
        let sessions = self.sessions(&reference, opts.credentials.as_ref(), false);
        let mut last_err = None;
        for s in &sessions {
            match self.pull_from(store, s, &reference, opts, progress) {
                Ok(p) => return Ok(p),
                // Docker falls back from a mirror to the next endpoint on any error.
                Err(e) if s.mirror => {
                    tracing::warn!("pull from mirror {} failed, trying next endpoint: {e}", s.base);
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::NotFound(format!("no endpoint for {}", reference.familiar()))))
    }

    /// `docker pull --all-tags`: every tag of the repository.
    pub fn pull_all_tags(
        &self,
        store: &ImageStore,
        repository: &Reference,
        opts: &PullOptions,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<Vec<PulledImage>> {
        if repository.tag.is_some() || repository.digest.is_some() {
            return Err(Error::InvalidArgument("tag can't be used with --all-tags/-a".into()));
        }
        let tags = self.list_tags(repository, opts.credentials.as_ref())?;
        let mut out = Vec::new();
        for t in tags {
            out.push(self.pull_tag(store, &repository.with_tag(&t), opts, progress)?);
        }
        // moby reports once for the whole repository (pullV2Repository → writeStatus).
        progress(status_line(&repository.familiar_name(), out.iter().any(|p| p.updated)));
        Ok(out)
    }

    /// `GET /v2/<name>/tags/list` (first page is enough for distribution's
    /// default; follows `Link` pagination for bigger repositories).
    pub fn list_tags(&self, repository: &Reference, creds: Option<&Credentials>) -> Result<Vec<String>> {
        let sessions = self.sessions(repository, creds, false);
        let Some(s) = sessions.iter().find(|s| !s.mirror) else {
            return Err(Error::NotFound(format!("no endpoint for {}", repository.familiar_name())));
        };
        let mut url = s.url("tags/list");
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let mut resp = self.send(s, "GET", &url, &[], None)?;
            if resp.status().as_u16() != 200 {
                let e = read_error(&mut resp);
                return Err(pull_error(&e, repository, s));
            }
            let link = header(&resp, "link");
            let body = resp.body_mut().with_config().limit(MAX_MANIFEST).read_to_vec().map_err(Error::http(&url))?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Error::Registry(format!("tags list: {e}")))?;
            if let Some(arr) = v.get("tags").and_then(|t| t.as_array()) {
                tags.extend(arr.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
            // Link: </v2/x/tags/list?last=a&n=100>; rel="next"
            match link.and_then(|l| l.split('<').nth(1).and_then(|r| r.split('>').next()).map(str::to_string)) {
                Some(next) if next.starts_with('/') => url = format!("{}{next}", s.base),
                Some(next) if next.starts_with("http") => url = next,
                _ => break,
            }
        }
        Ok(tags)
    }

    /// Fetches a manifest by tag or digest; returns (bytes, content type, digest).
    fn fetch_manifest(&self, s: &Session, reference: &Reference, what: &str) -> Result<(Vec<u8>, String, String)> {
        let url = s.url(&format!("manifests/{what}"));
        let mut resp = self.send(s, "GET", &url, &[("Accept", ACCEPT.to_string())], None)?;
        if resp.status().as_u16() != 200 {
            let e = read_error(&mut resp);
            return Err(pull_error(&e, reference, s));
        }
        let ct = header(&resp, "content-type").unwrap_or_default();
        let header_digest = header(&resp, "docker-content-digest");
        let body = resp.body_mut().with_config().limit(MAX_MANIFEST).read_to_vec().map_err(Error::http(&url))?;
        let actual = sha256(&body);
        // By digest the bytes must hash to it; by tag, to what the registry
        // says it served (distribution's `Docker-Content-Digest`), when it says so.
        let expected = if what.starts_with("sha256:") { Some(what.to_string()) } else { header_digest };
        if let Some(exp) = expected.filter(|e| e.starts_with("sha256:")) {
            if exp != actual {
                return Err(Error::DataLoss(format!("manifest verification failed for digest {exp}")));
            }
        }
        Ok((body, ct, actual))
    }

    fn pull_from(
        &self,
        store: &ImageStore,
        s: &Session,
        reference: &Reference,
        opts: &PullOptions,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<PulledImage> {
        let what = reference.digest.clone().or_else(|| reference.tag.clone()).unwrap_or_else(|| "latest".into());
        // Docker names the repository by its path on the registry
        // (`Pulling from library/busybox`, `Pulling from team/app`).
        let shown_repo = reference.path.clone();
        let (bytes, ct, top_digest) = self.fetch_manifest(s, reference, &what)?;
        // moby announces the pull once the registry has answered with a
        // manifest: an unknown tag or repository is a plain error response.
        progress(ProgressEvent::Status { id: Some(what.clone()), status: format!("Pulling from {shown_repo}") });
        let parsed = manifest::parse_manifest(&ct, &bytes).map_err(|e| match e {
            Error::InvalidArgument(m) if m == manifest::SCHEMA1_REFUSED => {
                Error::InvalidArgument(manifest::schema1_refused(&reference.to_string()))
            }
            other => other,
        })?;
        let image_manifest = match parsed {
            Manifest::Image(m) => m,
            Manifest::Index(idx) => {
                let d = manifest::select_platform(&idx, &opts.platform)?;
                if !valid_digest(&d.digest) {
                    return Err(Error::InvalidArgument(format!("invalid digest {:?} in manifest list", d.digest)));
                }
                let (b, ct, _) = self.fetch_manifest(s, reference, &d.digest.clone())?;
                match manifest::parse_manifest(&ct, &b)? {
                    Manifest::Image(m) => m,
                    Manifest::Index(_) => {
                        return Err(Error::InvalidArgument("manifest list refers to another manifest list".into()))
                    }
                }
            }
        };

        // The config: small, fetched whole and verified.
        let cfg_digest = image_manifest.config.digest.clone();
        if !valid_digest(&cfg_digest) {
            return Err(Error::InvalidArgument(format!("invalid config digest {cfg_digest:?}")));
        }
        let config_bytes = self.fetch_small_blob(s, reference, &cfg_digest)?;
        let cfg = ImageConfig::parse(&config_bytes)?;
        let diff_ids = cfg.rootfs.diff_ids.clone();
        if diff_ids.len() != image_manifest.layers.len() {
            return Err(Error::InvalidArgument(format!(
                "invalid manifest: {} layers but the config lists {} diff IDs",
                image_manifest.layers.len(),
                diff_ids.len()
            )));
        }
        for l in &image_manifest.layers {
            if !valid_digest(&l.digest) {
                return Err(Error::InvalidArgument(format!("invalid layer digest {:?}", l.digest)));
            }
        }
        let chains = chain_ids(&diff_ids);

        // Which layers exist already (as unpacked layers), which blobs are stored.
        let mut existing: Vec<Option<LayerInfo>> = Vec::with_capacity(chains.len());
        for c in &chains {
            existing.push(store.layer(c)?);
        }
        let mut to_download: Vec<(String, u64)> = Vec::new();
        let mut seen = HashSet::new();
        for (i, l) in image_manifest.layers.iter().enumerate() {
            if existing[i].is_some() {
                progress(ProgressEvent::layer(&l.digest, LayerStatus::AlreadyExists));
            } else if store.content().exists(&l.digest) {
                // Stored but not unpacked (an interrupted pull): only unpack.
                progress(ProgressEvent::layer(&l.digest, LayerStatus::PullingFsLayer));
            } else if seen.insert(l.digest.clone()) {
                progress(ProgressEvent::layer(&l.digest, LayerStatus::PullingFsLayer));
                to_download.push((l.digest.clone(), l.size));
            }
        }
        for (d, _) in to_download.iter().skip(self.parallel_downloads) {
            progress(ProgressEvent::layer(d, LayerStatus::Waiting));
        }

        let added = Mutex::new(Added::default());
        let result = self.download_and_unpack(
            store,
            s,
            &image_manifest.layers,
            &diff_ids,
            &chains,
            &existing,
            &to_download,
            &added,
            opts.cancel.as_deref(),
            progress,
        );
        let layers = match result {
            Ok(l) => l,
            Err(e) => {
                undo(store, &added);
                return Err(e);
            }
        };

        if opts.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            undo(store, &added);
            return Err(Error::Registry("pull cancelled: the client went away".into()));
        }
        let tag_ref = if reference.digest.is_none() { Some(reference.clone()) } else { None };
        // What the name pointed at before: the tag, or for a digest pull the
        // image already recorded under that digest.
        let prior = match &tag_ref {
            Some(t) => store.resolve(&t.to_string()).ok(),
            None => store.resolve(&reference.to_string()).ok(),
        };
        let tags: Vec<Reference> = tag_ref.into_iter().collect();
        let id = match store.register(&config_bytes, &layers, &tags, "") {
            Ok(id) => id,
            Err(e) => {
                undo(store, &added);
                return Err(e.into());
            }
        };
        let digest_ref = Reference {
            domain: reference.domain.clone(),
            path: reference.path.clone(),
            tag: None,
            digest: Some(top_digest.clone()),
        };
        store.add_digest(&id, &digest_ref)?;
        let downloaded = added.lock().map(|a| !a.blobs.is_empty() || !a.snapshots.is_empty()).unwrap_or(true);
        let updated = prior.as_deref() != Some(id.as_str()) || downloaded;
        progress(ProgressEvent::status(format!("Digest: {top_digest}")));
        Ok(PulledImage { id, digest: top_digest, tags, updated })
    }

    fn fetch_small_blob(&self, s: &Session, reference: &Reference, digest: &str) -> Result<Vec<u8>> {
        let url = s.url(&format!("blobs/{digest}"));
        let mut resp = self.send(s, "GET", &url, &[], None)?;
        if resp.status().as_u16() != 200 {
            let e = read_error(&mut resp);
            return Err(pull_error(&e, reference, s));
        }
        let body = resp.body_mut().with_config().limit(MAX_CONFIG).read_to_vec().map_err(Error::http(&url))?;
        if sha256(&body) != digest {
            return Err(Error::DataLoss(format!("image config verification failed for digest {digest}")));
        }
        Ok(body)
    }

    #[allow(clippy::too_many_arguments)]
    fn download_and_unpack(
        &self,
        store: &ImageStore,
        s: &Session,
        descriptors: &[manifest::Descriptor],
        diff_ids: &[String],
        chains: &[String],
        existing: &[Option<LayerInfo>],
        to_download: &[(String, u64)],
        added: &Mutex<Added>,
        cancel: Option<&AtomicBool>,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<Vec<LayerInfo>> {
        let queue = Mutex::new(to_download.iter().cloned().collect::<VecDeque<_>>());
        let abort = AtomicBool::new(false);
        let pending: HashSet<String> = to_download.iter().map(|(d, _)| d.clone()).collect();
        let mut done: HashSet<String> = HashSet::new();
        let mut layers: Vec<LayerInfo> = Vec::with_capacity(chains.len());
        let mut first_err: Option<Error> = None;
        let (tx, rx) = mpsc::channel::<Msg>();
        std::thread::scope(|sc| {
            for _ in 0..self.parallel_downloads.min(to_download.len()) {
                let tx = tx.clone();
                let (queue, abort) = (&queue, &abort);
                sc.spawn(move || loop {
                    if abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some((digest, size)) = next else { break };
                    let mut emit = |e: ProgressEvent| {
                        let _ = tx.send(Msg::Event(e));
                    };
                    let r = self.download_blob(store, s, &digest, size, abort, added, &mut emit);
                    let _ = tx.send(Msg::Done(digest, r));
                });
            }
            drop(tx);
            // Unpack layers in order as their blobs arrive, while later ones download.
            let unpack_ready = |done: &HashSet<String>,
                                layers: &mut Vec<LayerInfo>,
                                progress: &mut dyn FnMut(ProgressEvent)|
             -> Result<()> {
                while layers.len() < chains.len() {
                    let i = layers.len();
                    if let Some(l) = &existing[i] {
                        layers.push(l.clone());
                        continue;
                    }
                    let d = &descriptors[i];
                    if pending.contains(&d.digest) && !done.contains(&d.digest) {
                        break;
                    }
                    let parent = if i == 0 { None } else { Some(chains[i - 1].as_str()) };
                    progress(ProgressEvent::layer_progress(&d.digest, LayerStatus::Extracting, 0, d.size));
                    let fresh = !store.snapshots().exists(&chains[i]);
                    let size = store.unpack_blob(&d.digest, &chains[i], parent, &diff_ids[i])?;
                    if fresh {
                        if let Ok(mut a) = added.lock() {
                            a.snapshots.push(chains[i].clone());
                        }
                    }
                    progress(ProgressEvent::layer(&d.digest, LayerStatus::PullComplete));
                    layers.push(LayerInfo {
                        chain_id: chains[i].clone(),
                        diff_id: diff_ids[i].clone(),
                        size,
                        blob: d.digest.clone(),
                        media_type: manifest::store_media_type(&d.media_type).to_string(),
                        blob_size: store.content().size(&d.digest)?,
                    });
                }
                Ok(())
            };
            if let Err(e) = unpack_ready(&done, &mut layers, progress) {
                abort.store(true, Ordering::Relaxed);
                first_err = Some(e);
            }
            for msg in rx {
                if first_err.is_none() && cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                    abort.store(true, Ordering::Relaxed);
                    first_err = Some(Error::Registry("pull cancelled: the client went away".into()));
                }
                match msg {
                    Msg::Event(e) => progress(e),
                    Msg::Done(d, Ok(())) => {
                        done.insert(d);
                        if first_err.is_none() {
                            if let Err(e) = unpack_ready(&done, &mut layers, progress) {
                                abort.store(true, Ordering::Relaxed);
                                first_err = Some(e);
                            }
                        }
                    }
                    Msg::Done(_, Err(e)) => {
                        abort.store(true, Ordering::Relaxed);
                        if first_err.is_none() {
                            first_err = Some(e);
                        }
                    }
                }
            }
        });
        if let Some(e) = first_err {
            return Err(e);
        }
        if layers.len() != chains.len() {
            return Err(Error::Registry("pull stopped before every layer was unpacked".into()));
        }
        Ok(layers)
    }

    /// Streams one blob into the content store, resuming with `Range` when
    /// the connection drops (Docker retries a layer download 5 times).
    #[allow(clippy::too_many_arguments)]
    fn download_blob(
        &self,
        store: &ImageStore,
        s: &Session,
        digest: &str,
        size: u64,
        abort: &AtomicBool,
        added: &Mutex<Added>,
        emit: &mut dyn FnMut(ProgressEvent),
    ) -> Result<()> {
        let url = s.url(&format!("blobs/{digest}"));
        let mut w = store.content().writer()?;
        let mut failures = 0u32;
        let mut buf = vec![0u8; 256 * 1024];
        emit(ProgressEvent::layer_progress(digest, LayerStatus::Downloading, 0, size));
        'attempt: loop {
            let offset = w.size();
            let headers: Vec<(&str, String)> =
                if offset > 0 { vec![("Range", format!("bytes={offset}-"))] } else { Vec::new() };
            let retry = |failures: &mut u32, err: Error, emit: &mut dyn FnMut(ProgressEvent)| -> Result<()> {
                *failures += 1;
                if *failures > self.retries || abort.load(Ordering::Relaxed) {
                    return Err(err);
                }
                tracing::debug!("download of {digest} interrupted ({err}), retrying");
                emit(ProgressEvent::layer(digest, LayerStatus::Retrying));
                std::thread::sleep(Duration::from_millis(200 * u64::from(*failures)));
                Ok(())
            };
            let mut resp = match self.send(s, "GET", &url, &headers, None) {
                Ok(r) => r,
                Err(e @ Error::Http { .. }) => {
                    retry(&mut failures, e, emit)?;
                    continue 'attempt;
                }
                Err(e) => return Err(e),
            };
            match resp.status().as_u16() {
                200 => {
                    if offset > 0 {
                        // The server ignored the Range: start over.
                        w = store.content().writer()?;
                    }
                }
                206 if offset > 0 => {
                    // Content-Range: bytes <start>-<end>/<total>
                    let start = header(&resp, "content-range")
                        .and_then(|c| c.split_whitespace().nth(1).map(str::to_string))
                        .and_then(|r| r.split('-').next().and_then(|x| x.parse::<u64>().ok()));
                    if start != Some(offset) {
                        w = store.content().writer()?;
                        continue 'attempt;
                    }
                }
                status @ (500..=599 | 408 | 429) => {
                    let e = read_error(&mut resp);
                    retry(
                        &mut failures,
                        Error::Registry(format!("blob {digest}: HTTP {status}: {}", e.docker_text())),
                        emit,
                    )?;
                    continue 'attempt;
                }
                _ => {
                    let e = read_error(&mut resp);
                    return Err(match e.code.as_str() {
                        "BLOB_UNKNOWN" => Error::NotFound(format!("blob {digest}: {}", e.docker_text())),
                        _ if e.status == 401 || e.status == 403 => Error::Unauthorized(e.docker_text()),
                        _ => Error::Registry(format!("blob {digest}: {}", e.docker_text())),
                    });
                }
            }
            let mut reader = resp.into_body().into_reader();
            let mut last_emit = w.size();
            loop {
                if abort.load(Ordering::Relaxed) {
                    return Err(Error::Registry("download cancelled".into()));
                }
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        retry(&mut failures, Error::io(format!("reading blob {digest}"))(e), emit)?;
                        continue 'attempt;
                    }
                };
                w.write_all(&buf[..n]).map_err(Error::io(format!("writing blob {digest}")))?;
                if size > 0 && w.size() > size {
                    return Err(Error::DataLoss(format!(
                        "filesystem layer verification failed for digest {digest}: more data than the manifest's {size} bytes"
                    )));
                }
                if w.size() - last_emit >= PROGRESS_STEP {
                    last_emit = w.size();
                    emit(ProgressEvent::layer_progress(digest, LayerStatus::Downloading, w.size(), size));
                }
            }
            if size > 0 && w.size() < size {
                // A clean EOF before the end: the connection was cut.
                retry(
                    &mut failures,
                    Error::Registry(format!("blob {digest}: connection closed after {} of {size} bytes", w.size())),
                    emit,
                )?;
                continue 'attempt;
            }
            break;
        }
        emit(ProgressEvent::layer(digest, LayerStatus::VerifyingChecksum));
        match w.commit(Some(digest)) {
            Ok(_) => {}
            Err(berth_content::Error::DigestMismatch { .. }) => {
                // Docker's wording (distribution/pull_v2.go).
                return Err(Error::DataLoss(format!("filesystem layer verification failed for digest {digest}")));
            }
            Err(e) => return Err(e.into()),
        }
        if let Ok(mut a) = added.lock() {
            a.blobs.push(digest.to_string());
        }
        emit(ProgressEvent::layer(digest, LayerStatus::DownloadComplete));
        Ok(())
    }
}

/// moby's `writeStatus`: the last line of a pull.
fn status_line(shown: &str, updated: bool) -> ProgressEvent {
    ProgressEvent::status(if updated {
        format!("Status: Downloaded newer image for {shown}")
    } else {
        format!("Status: Image is up to date for {shown}")
    })
}

/// Removes what a failed pull added and no registered image uses.
fn undo(store: &ImageStore, added: &Mutex<Added>) {
    let Ok(added) = added.lock() else { return };
    for s in added.snapshots.iter().rev() {
        if store.layer(s).ok().flatten().is_none() {
            let _ = store.snapshots().remove(s);
        }
    }
    let used: BTreeSet<String> = store
        .list()
        .map(|imgs| imgs.iter().flat_map(|i| i.layers.iter().map(|l| l.blob.clone())).collect())
        .unwrap_or_default();
    for b in &added.blobs {
        if !used.contains(b) {
            let _ = store.content().delete(b);
        }
    }
}

/// Docker's translation of registry errors on pull (`distribution/errors.go`).
pub(crate) fn pull_error(e: &RegistryError, reference: &Reference, s: &Session) -> Error {
    let name = reference.familiar_name();
    match (e.status, e.code.as_str()) {
        (_, "MANIFEST_UNKNOWN") | (404, "") => {
            let cause =
                if e.code.is_empty() { "manifest unknown: manifest unknown".to_string() } else { e.docker_text() };
            Error::ManifestUnknown { reference: reference.familiar(), cause }
        }
        (401, _) if s.credentials_refused() => Error::Unauthorized(e.docker_text()),
        // An unknown repository, or one we may not read: Docker Hub answers
        // 401/denied for both, so Docker cannot (and does not) tell them apart.
        (_, "NAME_UNKNOWN" | "DENIED" | "UNAUTHORIZED") | (401 | 403, _) => {
            let cause = if e.code == "NAME_UNKNOWN" || e.code.is_empty() {
                "denied: requested access to the resource is denied".to_string()
            } else {
                e.docker_text()
            };
            Error::PullAccessDenied { name, cause }
        }
        _ => Error::Registry(format!("{}: {}", reference.familiar(), e.docker_text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegistryConfig;

    fn err(status: u16, code: &str, message: &str) -> RegistryError {
        RegistryError { status, code: code.into(), message: message.into() }
    }

    #[test]
    fn docker_error_texts() {
        let reg = Registry::new(RegistryConfig::default());
        let r = Reference::parse("alpine").unwrap().with_tag("3.19");
        let sessions = reg.sessions(&r, None, false);
        let s = &sessions[0];
        assert_eq!(s.base, "https://registry-1.docker.io");
        assert_eq!(s.repo, "library/alpine");
        let e = pull_error(&err(401, "UNAUTHORIZED", "authentication required"), &r, s);
        assert_eq!(e.kind(), berth_error::ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "pull access denied for alpine, repository does not exist or may require 'docker login': \
             unauthorized: authentication required"
        );
        let e = pull_error(&err(403, "DENIED", "requested access to the resource is denied"), &r, s);
        assert_eq!(
            e.to_string(),
            "pull access denied for alpine, repository does not exist or may require 'docker login': \
             denied: requested access to the resource is denied"
        );
        let e = pull_error(&err(404, "MANIFEST_UNKNOWN", "manifest unknown"), &r, s);
        assert_eq!(e.to_string(), "manifest for alpine:3.19 not found: manifest unknown: manifest unknown");
    }

    #[test]
    fn mirrors_come_first_for_docker_hub_pulls() {
        let reg =
            Registry::new(RegistryConfig { mirrors: vec!["https://mirror.example/".into()], ..Default::default() });
        let r = Reference::parse("busybox").unwrap();
        let bases: Vec<String> = reg.sessions(&r, None, false).into_iter().map(|s| s.base).collect();
        assert_eq!(bases, ["https://mirror.example", "https://registry-1.docker.io"]);
        let bases: Vec<String> = reg.sessions(&r, None, true).into_iter().map(|s| s.base).collect();
        assert_eq!(bases, ["https://registry-1.docker.io"]);
        let local = Reference::parse("localhost:5000/x").unwrap();
        assert_eq!(reg.sessions(&local, None, false)[0].base, "http://localhost:5000");
    }
}
