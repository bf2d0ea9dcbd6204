//! `docker push`: upload each layer blob and the config unless the registry
//! has them (`HEAD`), then put the manifest.
//!
//! Blobs are pushed exactly as the content store holds them, so what a pull
//! verified is what a push sends and no recompression is spent:
//! - when every layer is gzip, the manifest is Docker schema 2 with Docker's
//!   media types (what `docker push` produces);
//! - otherwise (layers from `docker load`/`import` are stored uncompressed,
//!   or zstd) it is an OCI image manifest with the OCI layer media types,
//!   which distribution, containerd and Docker all pull.
//!
//! Uploads use Docker's sequence: `POST …/blobs/uploads/`, one streaming
//! `PATCH` with the content, then `PUT …?digest=` to commit.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

use berth_image::store::{MEDIA_TAR, MEDIA_TAR_GZIP};
use berth_image::{ImageStore, LayerInfo, Reference};

use crate::client::{header, read_error, Credentials, Registry, RegistryError, Session};
use crate::manifest::{
    Descriptor, ImageManifest, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG,
    MEDIA_OCI_MANIFEST,
};
use crate::progress::{LayerStatus, ProgressEvent};
use crate::pull::sha256;
use crate::{Error, Result};

/// Options of one push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Credentials for this push (the API's `X-Registry-Auth`); when None the
    /// registry's credential lookup is asked.
    pub credentials: Option<Credentials>,
}

/// Emit a `Pushing` event at most every this many bytes.
const PROGRESS_STEP: u64 = 512 * 1024;
/// Repositories tried for a cross-repository mount of one blob.
const MAX_MOUNT_CANDIDATES: usize = 3;

/// How a blob got to the registry.
enum Uploaded {
    Pushed,
    Mounted(String),
}

struct Counting<'a, R> {
    inner: R,
    done: u64,
    last: u64,
    total: u64,
    id: &'a str,
    progress: &'a mut dyn FnMut(ProgressEvent),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done.saturating_sub(self.last) >= PROGRESS_STEP {
            self.last = self.done;
            (self.progress)(ProgressEvent::layer_progress(self.id, LayerStatus::Pushing, self.done, self.total));
        }
        Ok(n)
    }
}

impl Registry {
    /// Pushes the image `reference` names (its tag, `latest` by default)
    /// from `store`; returns the manifest digest, also recorded as a repo digest.
    pub fn push(
        &self,
        store: &ImageStore,
        reference: &Reference,
        opts: &PushOptions,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<String> {
        if reference.digest.is_some() {
            return Err(Error::InvalidArgument("cannot push a digest reference".into()));
        }
        let reference = if reference.tag.is_none() { reference.with_tag("latest") } else { reference.clone() };
        let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
        // moby names the repository before it looks the image up, so a
        // missing tag is reported after this line, in the stream.
        progress(ProgressEvent::status(format!("The push refers to repository [{}]", reference.name())));
        let img = store.get(&reference.to_string()).map_err(|e| match e.kind() {
            berth_error::ErrorKind::NotFound => {
                // Docker's text (daemon/images/image_push.go).
                Error::NotFound(format!("An image does not exist locally with the tag: {}", reference.familiar_name()))
            }
            _ => e.into(),
        })?;
        let sessions = self.sessions(&reference, opts.credentials.as_ref(), true);
        let Some(s) = sessions.into_iter().find(|s| !s.mirror) else {
            return Err(Error::InvalidArgument(format!("no endpoint for {}", reference.familiar_name())));
        };

        // Where each blob is known to live on this registry already: the
        // repositories of the repo digests of every local image holding it
        // (moby keeps the same knowledge in its v2 metadata service).
        let mut sources: HashMap<String, Vec<String>> = HashMap::new();
        for other in store.list()? {
            for d in other.digests.iter().filter(|d| d.domain == reference.domain && d.path != reference.path) {
                for l in &other.layers {
                    let v = sources.entry(l.blob.clone()).or_default();
                    if !v.contains(&d.path) {
                        v.push(d.path.clone());
                    }
                }
            }
        }
        let mut extra: Vec<String> = sources.values().flatten().cloned().collect();
        extra.sort();
        extra.dedup();
        // The token must also allow reading the repositories we mount from.
        s.set_extra_scopes(extra.iter().take(MAX_MOUNT_CANDIDATES).map(|r| format!("repository:{r}:pull")).collect());

        // Docker lists layers top-down, keyed by diff ID.
        for l in img.layers.iter().rev() {
            progress(ProgressEvent::layer(&l.diff_id, LayerStatus::Preparing));
        }
        // Layers go up concurrently (Docker's `max-concurrent-uploads`, 5);
        // progress is funnelled back to this thread.
        let mut seen = std::collections::HashSet::new();
        let jobs: Vec<&LayerInfo> = img.layers.iter().rev().filter(|l| seen.insert(l.blob.clone())).collect();
        let queue = Mutex::new(jobs.into_iter().collect::<VecDeque<_>>());
        let abort = AtomicBool::new(false);
        let mut first_err: Option<Error> = None;
        let (tx, rx) = mpsc::channel::<Option<(ProgressEvent, Option<Error>)>>();
        std::thread::scope(|sc| {
            for _ in 0..self.parallel_uploads {
                let tx = tx.clone();
                let (queue, abort, s, reference, sources) = (&queue, &abort, &s, &reference, &sources);
                sc.spawn(move || loop {
                    if abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let Some(l) = queue.lock().ok().and_then(|mut q| q.pop_front()) else { break };
                    let mut emit = |e: ProgressEvent| {
                        let _ = tx.send(Some((e, None)));
                    };
                    let r = self.push_layer(store, s, reference, l, sources, &mut emit);
                    if let Err(e) = r {
                        abort.store(true, Ordering::Relaxed);
                        let _ = tx.send(Some((ProgressEvent::layer(&l.diff_id, LayerStatus::Preparing), Some(e))));
                    }
                });
            }
            drop(tx);
            for (event, err) in rx.into_iter().flatten() {
                match err {
                    Some(e) => {
                        if first_err.is_none() {
                            first_err = Some(e);
                        }
                    }
                    None => progress(event),
                }
            }
        });
        if let Some(e) = first_err {
            return Err(e);
        }
        let config_digest = sha256(&img.config_bytes);
        if !self.blob_exists(&s, &reference, &config_digest)? {
            let mut quiet = |_: ProgressEvent| {};
            let data = std::io::Cursor::new(img.config_bytes.as_slice());
            let len = img.config_bytes.len() as u64;
            self.upload_blob(&s, &reference, &config_digest, data, len, &config_digest, &[], &mut quiet)?;
        }

        let docker = !img.layers.is_empty() && img.layers.iter().all(|l| l.media_type == MEDIA_TAR_GZIP);
        let layer_type = |mt: &str| -> String {
            if docker {
                MEDIA_DOCKER_LAYER_GZIP.to_string()
            } else if mt.is_empty() {
                MEDIA_TAR.to_string()
            } else {
                mt.to_string()
            }
        };
        let mut layers = Vec::with_capacity(img.layers.len());
        for l in &img.layers {
            let size = store.content().size(&l.blob)?;
            layers.push(Descriptor {
                media_type: layer_type(&l.media_type),
                digest: l.blob.clone(),
                size,
                platform: None,
                urls: None,
                annotations: None,
            });
        }
        let manifest_type = if docker { MEDIA_DOCKER_MANIFEST } else { MEDIA_OCI_MANIFEST };
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(manifest_type.to_string()),
            config: Descriptor {
                media_type: if docker { MEDIA_DOCKER_CONFIG } else { MEDIA_OCI_CONFIG }.to_string(),
                digest: config_digest,
                size: img.config_bytes.len() as u64,
                platform: None,
                urls: None,
                annotations: None,
            },
            layers,
            annotations: None,
        };
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::InvalidArgument(format!("encoding manifest: {e}")))?;
        let digest = self.put_manifest(&s, &reference, &tag, manifest_type, &bytes)?;
        let digest_ref = Reference {
            domain: reference.domain.clone(),
            path: reference.path.clone(),
            tag: None,
            digest: Some(digest.clone()),
        };
        store.add_digest(&img.id, &digest_ref)?;
        progress(ProgressEvent::Pushed { tag, digest: digest.clone(), size: bytes.len() as u64 });
        Ok(digest)
    }

    /// One layer: already there, mounted from another repository, or uploaded.
    fn push_layer(
        &self,
        store: &ImageStore,
        s: &Session,
        reference: &Reference,
        l: &LayerInfo,
        sources: &HashMap<String, Vec<String>>,
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<()> {
        if self.blob_exists(s, reference, &l.blob)? {
            progress(ProgressEvent::layer(&l.diff_id, LayerStatus::LayerAlreadyExists));
            return Ok(());
        }
        let f = store.content().open_blob(&l.blob)?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(l.blob_size);
        let from = sources.get(&l.blob).map(Vec::as_slice).unwrap_or(&[]);
        match self.upload_blob(s, reference, &l.blob, f, size, &l.diff_id, from, progress)? {
            Uploaded::Mounted(repo) => progress(ProgressEvent::Status {
                id: Some(crate::progress::short_id(&l.diff_id)),
                status: format!("Mounted from {repo}"),
            }),
            Uploaded::Pushed => progress(ProgressEvent::layer(&l.diff_id, LayerStatus::Pushed)),
        }
        Ok(())
    }

    /// Puts a manifest (or index) under `tag_or_digest`; returns its digest.
    /// Public so that tools can assemble multi-platform indexes.
    pub fn put_manifest_bytes(
        &self,
        reference: &Reference,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
        creds: Option<&Credentials>,
    ) -> Result<String> {
        let sessions = self.sessions(reference, creds, true);
        let Some(s) = sessions.into_iter().find(|s| !s.mirror) else {
            return Err(Error::InvalidArgument(format!("no endpoint for {}", reference.familiar_name())));
        };
        self.put_manifest(&s, reference, tag_or_digest, media_type, bytes)
    }

    fn put_manifest(
        &self,
        s: &Session,
        reference: &Reference,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let url = s.url(&format!("manifests/{tag}"));
        let mut resp = self.send(s, "PUT", &url, &[("Content-Type", media_type.to_string())], Some(bytes))?;
        if !resp.status().is_success() {
            let e = read_error(&mut resp);
            return Err(push_error(&e, reference, s));
        }
        let digest = sha256(bytes);
        if let Some(h) = header(&resp, "docker-content-digest") {
            if h != digest {
                return Err(Error::DataLoss(format!("registry stored manifest as {h}, expected {digest}")));
            }
        }
        Ok(digest)
    }

    fn blob_exists(&self, s: &Session, reference: &Reference, digest: &str) -> Result<bool> {
        let url = s.url(&format!("blobs/{digest}"));
        let mut resp = self.send(s, "HEAD", &url, &[], None)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => {
                let e = read_error(&mut resp);
                Err(push_error(&e, reference, s))
            }
        }
    }

    /// Uploads one blob, or mounts it from another repository of the same
    /// registry when one of `mount_from` holds it (Docker's cross-repository
    /// blob mount: `POST …/uploads/?mount=<digest>&from=<repo>` answered 201).
    /// Otherwise the content goes in `PATCH` chunks with `Content-Range`; a
    /// chunk cut off by the network is resumed from the offset the registry
    /// reports for the upload (`GET <location>` → `Range: 0-<last>`).
    #[allow(clippy::too_many_arguments)]
    fn upload_blob<R: Read + Seek>(
        &self,
        s: &Session,
        reference: &Reference,
        digest: &str,
        mut data: R,
        size: u64,
        id: &str,
        mount_from: &[String],
        progress: &mut dyn FnMut(ProgressEvent),
    ) -> Result<Uploaded> {
        let start = s.url("blobs/uploads/");
        let mut location = None;
        for from in mount_from.iter().take(MAX_MOUNT_CANDIDATES) {
            let url = format!(
                "{start}?mount={}&from={}",
                crate::client::query_escape(digest),
                crate::client::query_escape(from)
            );
            let mut resp = self.send(s, "POST", &url, &[], Some(&[]))?;
            match resp.status().as_u16() {
                201 => return Ok(Uploaded::Mounted(from.clone())),
                // The registry could not mount and started a plain upload instead.
                202 => {
                    location = Some(self.location(s, &resp)?);
                    break;
                }
                _ => {
                    let _ = read_error(&mut resp);
                }
            }
        }
        let mut location = match location {
            Some(l) => l,
            None => {
                let mut resp = self.send(s, "POST", &start, &[], Some(&[]))?;
                if resp.status().as_u16() != 202 {
                    let e = read_error(&mut resp);
                    return Err(push_error(&e, reference, s));
                }
                self.location(s, &resp)?
            }
        };
        progress(ProgressEvent::layer_progress(id, LayerStatus::Pushing, 0, size));
        let mut offset = 0u64;
        let mut failures = 0u32;
        let mut last = 0u64;
        while offset < size {
            let len = (size - offset).min(self.upload_chunk);
            data.seek(SeekFrom::Start(offset)).map_err(Error::io(format!("reading blob {digest}")))?;
            last = last.min(offset);
            let mut body = Counting {
                inner: (&mut data).take(len),
                done: offset,
                last,
                total: size,
                id,
                progress: &mut *progress,
            };
            let headers = [
                ("Content-Type", "application/octet-stream".to_string()),
                ("Content-Length", len.to_string()),
                ("Content-Range", format!("{}-{}", offset, (offset + len).saturating_sub(1))),
            ];
            let sent = self.send_stream(s, "PATCH", &location, &headers, &mut body);
            last = body.last;
            match sent {
                Ok(mut resp) if resp.status().as_u16() == 202 => {
                    location = self.location(s, &resp)?;
                    let _ = resp.body_mut().read_to_vec();
                    offset += len;
                }
                Ok(mut resp) if resp.status().as_u16() == 416 || resp.status().is_server_error() => {
                    let e = read_error(&mut resp);
                    failures += 1;
                    if failures > self.retries {
                        return Err(push_error(&e, reference, s));
                    }
                    (location, offset) = self.resume_upload(s, reference, location)?;
                }
                Ok(mut resp) => {
                    let e = read_error(&mut resp);
                    return Err(push_error(&e, reference, s));
                }
                Err(e @ (Error::Http { .. } | Error::Io { .. })) => {
                    failures += 1;
                    if failures > self.retries {
                        return Err(e);
                    }
                    tracing::debug!("upload of {digest} interrupted ({e}), resuming");
                    std::thread::sleep(std::time::Duration::from_millis(200 * u64::from(failures)));
                    (location, offset) = self.resume_upload(s, reference, location)?;
                }
                Err(e) => return Err(e),
            }
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", crate::client::query_escape(digest));
        let mut resp = self.send(s, "PUT", &url, &[], Some(&[]))?;
        if resp.status().as_u16() != 201 {
            let e = read_error(&mut resp);
            if e.code == "DIGEST_INVALID" {
                return Err(Error::DataLoss(format!("registry refused blob {digest}: {}", e.docker_text())));
            }
            return Err(push_error(&e, reference, s));
        }
        Ok(Uploaded::Pushed)
    }

    /// Where to go on after a failed chunk: the same upload at the offset the
    /// registry reports (`GET <location>` → `Range: 0-<last>`), or, when it
    /// has given the upload up (distribution refuses an upload whose stored
    /// size no longer matches its signed state after a cut-off chunk), a new
    /// upload from the start — what Docker does for every failed layer push.
    fn resume_upload(&self, s: &Session, reference: &Reference, location: String) -> Result<(String, u64)> {
        if let Ok(mut resp) = self.send(s, "GET", &location, &[], None) {
            if resp.status().as_u16() == 204 {
                let offset = header(&resp, "range")
                    .and_then(|r| r.rsplit('-').next().and_then(|n| n.trim().parse::<u64>().ok()))
                    .map(|last| last + 1)
                    .unwrap_or(0);
                let next = header(&resp, "location").map(|_| self.location(s, &resp)).transpose()?;
                return Ok((next.unwrap_or(location), offset));
            }
            let _ = read_error(&mut resp);
        }
        let _ = self.send(s, "DELETE", &location, &[], None);
        let mut resp = self.send(s, "POST", &s.url("blobs/uploads/"), &[], Some(&[]))?;
        if resp.status().as_u16() != 202 {
            let e = read_error(&mut resp);
            return Err(push_error(&e, reference, s));
        }
        Ok((self.location(s, &resp)?, 0))
    }

    /// The upload URL from a `Location` header (absolute or relative).
    fn location(&self, s: &Session, resp: &ureq::http::Response<ureq::Body>) -> Result<String> {
        let loc = header(resp, "location").ok_or_else(|| Error::Registry("upload response without Location".into()))?;
        Ok(if loc.starts_with("http://") || loc.starts_with("https://") {
            loc
        } else if loc.starts_with('/') {
            format!("{}{loc}", s.base)
        } else {
            format!("{}/{loc}", s.base)
        })
    }
}

fn push_error(e: &RegistryError, reference: &Reference, s: &Session) -> Error {
    match (e.status, e.code.as_str()) {
        (401, _) if s.credentials_refused() => Error::Unauthorized(e.docker_text()),
        (401 | 403, _) | (_, "DENIED" | "UNAUTHORIZED") => Error::Unauthorized(if e.code.is_empty() {
            "denied: requested access to the resource is denied".into()
        } else {
            e.docker_text()
        }),
        (_, "NAME_UNKNOWN") => {
            Error::NotFound(format!("repository {} not found: {}", reference.familiar_name(), e.docker_text()))
        }
        _ => Error::Registry(format!("{}: {}", reference.familiar(), e.docker_text())),
    }
}
