//! Image archives: `docker load` of both layouts Docker writes (the legacy
//! docker-archive with `manifest.json`, and the OCI image layout with
//! `index.json` that Docker 25+ adds beside it), `docker save` (both layouts in
//! one archive, so Docker 20.10's loader and OCI tools both read it), and
//! `docker import` of a root filesystem tar.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path};

use serde_json::{json, Value};

use crate::config::{chain_ids, default_container_config, ImageConfig};
use crate::reference::Reference;
use crate::store::{decompress, media_type_of, rfc3339_now, ImageStore, LayerInfo, MEDIA_TAR};
use crate::{changes, Error, Result};

const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Metadata files are small; anything larger is not what it claims to be.
const MAX_META: u64 = 32 << 20;

/// One image a load registered.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: String,
    pub tags: Vec<Reference>,
}

/// Normalises an archive path: strips `./`, refuses `..` and absolute paths.
fn clean_path(p: &Path) -> Result<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => {
                return Err(Error::InvalidArchive(format!(
                    "invalid archive: entry {:?} points outside the archive",
                    p.display().to_string()
                )))
            }
        }
    }
    Ok(parts.join("/"))
}

/// Joins a relative link target to the directory of `entry`, refusing escapes.
fn resolve_link(entry: &str, target: &str) -> Result<String> {
    let base = match entry.rfind('/') {
        Some(i) => &entry[..i],
        None => "",
    };
    let mut parts: Vec<&str> =
        if target.starts_with('/') { Vec::new() } else { base.split('/').filter(|s| !s.is_empty()).collect() };
    for seg in target.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::InvalidArchive(format!(
                        "invalid archive: link {entry} -> {target} escapes the archive"
                    )));
                }
            }
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

struct Staged {
    /// Small metadata files kept in memory.
    meta: HashMap<String, Vec<u8>>,
    /// Other files, ingested into the content store: path → digest.
    blobs: HashMap<String, String>,
    /// Symlinks and hard links inside the archive: path → target path.
    links: HashMap<String, String>,
    /// Digests this load added to the content store (removed again if unused).
    new_blobs: BTreeSet<String>,
}

impl Staged {
    fn resolve(&self, path: &str) -> String {
        let mut p = path.trim_start_matches("./").to_string();
        for _ in 0..16 {
            match self.links.get(&p) {
                Some(t) => p = t.clone(),
                None => break,
            }
        }
        p
    }

    fn bytes(&self, store: &ImageStore, path: &str) -> Result<Vec<u8>> {
        let p = self.resolve(path);
        if let Some(b) = self.meta.get(&p) {
            return Ok(b.clone());
        }
        match self.blobs.get(&p) {
            Some(d) => Ok(store.content().read(d)?),
            None => Err(Error::InvalidArchive(format!("invalid archive: {path} not found in the archive"))),
        }
    }

    fn blob(&self, path: &str) -> Result<String> {
        let p = self.resolve(path);
        self.blobs
            .get(&p)
            .cloned()
            .ok_or_else(|| Error::InvalidArchive(format!("invalid archive: layer {path} not found in the archive")))
    }
}

fn is_meta_name(p: &str) -> bool {
    matches!(p, "manifest.json" | "index.json" | "oci-layout" | "repositories")
        || (!p.contains('/') && p.ends_with(".json"))
        || p.ends_with("/json")
        || p.ends_with("/VERSION")
}

fn stage(store: &ImageStore, input: impl Read) -> Result<Staged> {
    let mut st =
        Staged { meta: HashMap::new(), blobs: HashMap::new(), links: HashMap::new(), new_blobs: BTreeSet::new() };
    let mut ar = tar::Archive::new(input);
    let entries = ar.entries().map_err(|e| Error::InvalidArchive(format!("invalid archive: {e}")))?;
    let mut seen_any = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::InvalidArchive(format!("invalid archive: {e}")))?;
        seen_any = true;
        let raw_path = entry.path().map_err(|e| Error::InvalidArchive(format!("invalid archive: {e}")))?.into_owned();
        let path = clean_path(&raw_path)?;
        let et = entry.header().entry_type();
        if et.is_symlink() || et.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| Error::InvalidArchive(format!("invalid archive: {e}")))?
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            let resolved = if et.is_hard_link() { resolve_link("", &target)? } else { resolve_link(&path, &target)? };
            st.links.insert(path, resolved);
            continue;
        }
        if !(et.is_file() || et == tar::EntryType::Continuous) {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        if is_meta_name(&path) && size <= MAX_META {
            let mut buf = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut buf)
                .map_err(|e| Error::InvalidArchive(format!("invalid archive: reading {path}: {e}")))?;
            st.meta.insert(path, buf);
            continue;
        }
        let mut w = store.content().writer()?;
        std::io::copy(&mut entry, &mut w)
            .map_err(|e| Error::InvalidArchive(format!("invalid archive: reading {path}: {e}")))?;
        if w.size() != size {
            return Err(Error::InvalidArchive(format!("invalid archive: {path} is truncated")));
        }
        // A blob may already be stored (another image shares the layer).
        let (digest, _) = {
            let (d, n) = w.commit(None)?;
            (d, n)
        };
        st.blobs.insert(path, digest);
    }
    if !seen_any {
        return Err(Error::InvalidArchive("invalid archive: the archive is empty or not a tar file".into()));
    }
    Ok(st)
}

#[derive(Debug)]
struct Candidate {
    config_path: String,
    layer_paths: Vec<String>,
    tags: Vec<Reference>,
}

fn legacy_candidates(st: &Staged) -> Result<Option<Vec<Candidate>>> {
    let Some(m) = st.meta.get("manifest.json") else { return Ok(None) };
    let v: Value =
        serde_json::from_slice(m).map_err(|source| Error::Json { context: "manifest.json".into(), source })?;
    let arr =
        v.as_array().ok_or_else(|| Error::InvalidArchive("invalid archive: manifest.json is not a list".into()))?;
    let mut out = Vec::new();
    for e in arr {
        let config_path = e
            .get("Config")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidArchive("invalid archive: manifest.json entry without Config".into()))?
            .to_string();
        let layer_paths = e
            .get("Layers")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let mut tags = Vec::new();
        if let Some(Value::Array(rt)) = e.get("RepoTags") {
            for t in rt.iter().filter_map(Value::as_str) {
                tags.push(Reference::parse_with_default_tag(t)?);
            }
        }
        out.push(Candidate { config_path, layer_paths, tags });
    }
    Ok(Some(out))
}

fn blob_path(digest: &str) -> Result<String> {
    Ok(format!("blobs/sha256/{}", berth_content::digest_hex(digest)?))
}

pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        other => other,
    }
}

fn oci_candidates(store: &ImageStore, st: &Staged) -> Result<Option<Vec<Candidate>>> {
    let Some(ix) = st.meta.get("index.json") else { return Ok(None) };
    let index: Value =
        serde_json::from_slice(ix).map_err(|source| Error::Json { context: "index.json".into(), source })?;
    let mut out = Vec::new();
    let manifests = index.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
    for desc in manifests {
        let annotations = desc.get("annotations").cloned().unwrap_or(Value::Null);
        let mut tags = Vec::new();
        if let Some(name) = annotations.get("io.containerd.image.name").and_then(Value::as_str) {
            tags.push(Reference::parse_with_default_tag(name)?);
        } else if let Some(name) = annotations.get("org.opencontainers.image.ref.name").and_then(Value::as_str) {
            // A bare tag names no repository: the image loads untagged.
            if name.contains('/') || name.contains(':') {
                if let Ok(r) = Reference::parse_with_default_tag(name) {
                    tags.push(r);
                }
            }
        }
        let Some(manifest) = resolve_manifest(store, st, &desc, 0)? else { continue };
        let config_path = manifest
            .pointer("/config/digest")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidArchive("invalid archive: manifest without config".into()))
            .and_then(blob_path)?;
        let mut layer_paths = Vec::new();
        for l in manifest.get("layers").and_then(Value::as_array).cloned().unwrap_or_default() {
            let d = l.get("digest").and_then(Value::as_str).unwrap_or("");
            layer_paths.push(blob_path(d)?);
        }
        out.push(Candidate { config_path, layer_paths, tags });
    }
    Ok(Some(out))
}

/// Follows an index descriptor down to an image manifest for this platform.
fn resolve_manifest(store: &ImageStore, st: &Staged, desc: &Value, depth: usize) -> Result<Option<Value>> {
    if depth > 4 {
        return Err(Error::InvalidArchive("invalid archive: indexes nested too deep".into()));
    }
    let digest = desc.get("digest").and_then(Value::as_str).unwrap_or("");
    let path = blob_path(digest)?;
    let actual = st.blobs.get(&st.resolve(&path));
    let bytes = st.bytes(store, &path)?;
    // Blobs are named by digest: a file whose content does not match is corrupt.
    let computed = berth_content::sha256_digest(&bytes);
    if computed != digest || actual.is_some_and(|a| a != digest) {
        return Err(Error::InvalidArchive(format!("invalid archive: digest mismatch for {path}: got {computed}")));
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|source| Error::Json { context: path.clone(), source })?;
    let mt = v.get("mediaType").and_then(Value::as_str).or(desc.get("mediaType").and_then(Value::as_str)).unwrap_or("");
    if mt == MEDIA_OCI_INDEX || mt == MEDIA_DOCKER_LIST || (v.get("manifests").is_some() && v.get("layers").is_none()) {
        let list = v.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
        for d in &list {
            let os = d.pointer("/platform/os").and_then(Value::as_str).unwrap_or("linux");
            let arch = d.pointer("/platform/architecture").and_then(Value::as_str).unwrap_or(host_arch());
            if os == "linux" && arch == host_arch() {
                // Skip platforms whose blobs were not exported (a partial index).
                let p = blob_path(d.get("digest").and_then(Value::as_str).unwrap_or(""))?;
                if st.blobs.contains_key(&st.resolve(&p)) || st.meta.contains_key(&st.resolve(&p)) {
                    return resolve_manifest(store, st, d, depth + 1);
                }
            }
        }
        return Ok(None);
    }
    Ok(Some(v))
}

/// `docker load`: reads an archive (either layout), unpacks new layers and
/// registers every image in it. `progress` receives Docker's output lines.
/// On error nothing new stays registered and new blobs/snapshots are removed.
pub fn load(store: &ImageStore, input: impl Read, progress: &mut dyn FnMut(String)) -> Result<Vec<Loaded>> {
    let before: BTreeSet<String> = store.content().list()?.into_iter().collect();
    let staged = stage(store, input);
    let mut staged = match staged {
        Ok(s) => s,
        Err(e) => {
            cleanup_new_blobs(store, &before, &BTreeSet::new());
            return Err(e);
        }
    };
    staged.new_blobs = staged.blobs.values().filter(|d| !before.contains(*d)).cloned().collect();
    let mut new_snapshots: Vec<String> = Vec::new();
    let res = load_staged(store, &staged, &mut new_snapshots, progress);
    let keep: BTreeSet<String> = match &res {
        Ok(_) => referenced_blobs(store)?,
        Err(_) => BTreeSet::new(),
    };
    if res.is_err() {
        for s in new_snapshots.iter().rev() {
            if store.layer(s).ok().flatten().is_none() {
                let _ = store.snapshots().remove(s);
            }
        }
        let keep = referenced_blobs(store).unwrap_or_default();
        cleanup_new_blobs(store, &before, &keep);
        return res;
    }
    cleanup_new_blobs(store, &before, &keep);
    res
}

fn referenced_blobs(store: &ImageStore) -> Result<BTreeSet<String>> {
    let mut keep = BTreeSet::new();
    for img in store.list()? {
        keep.insert(img.id.clone());
        for l in &img.layers {
            keep.insert(l.blob.clone());
        }
    }
    Ok(keep)
}

/// Removes blobs that were not there before this operation and nothing uses.
fn cleanup_new_blobs(store: &ImageStore, before: &BTreeSet<String>, keep: &BTreeSet<String>) {
    if let Ok(now) = store.content().list() {
        for d in now {
            if !before.contains(&d) && !keep.contains(&d) {
                let _ = store.content().delete(&d);
            }
        }
    }
}

fn load_staged(
    store: &ImageStore,
    st: &Staged,
    new_snapshots: &mut Vec<String>,
    progress: &mut dyn FnMut(String),
) -> Result<Vec<Loaded>> {
    let cands = match legacy_candidates(st)? {
        Some(c) => c,
        None => match oci_candidates(store, st)? {
            Some(c) => c,
            None => {
                return Err(Error::InvalidArchive(
                    "invalid archive: no manifest.json or index.json found (not an image archive)".into(),
                ))
            }
        },
    };
    if cands.is_empty() {
        return Err(Error::InvalidArchive("invalid archive: it contains no images".into()));
    }
    let mut out = Vec::new();
    for c in cands {
        let cfg_bytes = st.bytes(store, &c.config_path)?;
        let cfg = ImageConfig::parse(&cfg_bytes)?;
        let diff_ids = &cfg.rootfs.diff_ids;
        if diff_ids.len() != c.layer_paths.len() {
            return Err(Error::InvalidArchive(format!(
                "invalid manifest, layers length mismatch: expected {}, got {}",
                diff_ids.len(),
                c.layer_paths.len()
            )));
        }
        let chains = chain_ids(diff_ids);
        let mut layers = Vec::with_capacity(chains.len());
        for (i, lp) in c.layer_paths.iter().enumerate() {
            let parent = if i == 0 { None } else { Some(chains[i - 1].as_str()) };
            if let Some(existing) = store.layer(&chains[i])? {
                if store.snapshots().exists(&chains[i]) {
                    layers.push(existing);
                    continue;
                }
            }
            let blob = st.blob(lp)?;
            let head = {
                let f = store.content().open_blob(&blob)?;
                let mut r = BufReader::new(f);
                r.fill_buf().map_err(Error::io("reading layer"))?.iter().take(8).copied().collect::<Vec<u8>>()
            };
            let existed = store.snapshots().exists(&chains[i]);
            let size = store.unpack_blob(&blob, &chains[i], parent, &diff_ids[i])?;
            if !existed {
                new_snapshots.push(chains[i].clone());
            }
            let size = if existed { store.snapshots().usage(&chains[i]).unwrap_or(size) } else { size };
            layers.push(LayerInfo {
                chain_id: chains[i].clone(),
                diff_id: diff_ids[i].clone(),
                size,
                blob_size: store.content().size(&blob)?,
                media_type: media_type_of(&head).to_string(),
                blob: blob.clone(),
            });
        }
        let new_id = berth_content::sha256_digest(&cfg_bytes);
        for t in &c.tags {
            if let Ok(old) = store.resolve(&t.to_string()) {
                if old != new_id {
                    progress(format!(
                        "The image {} already exists, renaming the old one with ID {} to empty string\n",
                        t.familiar(),
                        old
                    ));
                }
            }
        }
        let id = store.register(&cfg_bytes, &layers, &c.tags, "")?;
        if c.tags.is_empty() {
            progress(format!("Loaded image ID: {id}\n"));
        }
        for t in &c.tags {
            progress(format!("Loaded image: {}\n", t.familiar()));
        }
        out.push(Loaded { id, tags: c.tags });
    }
    Ok(out)
}

/// `docker save`: writes the named images to `out` as one archive in both
/// layouts. A name that is a reference keeps that tag in the archive; an ID
/// saves the image untagged, as Docker does.
pub fn save(store: &ImageStore, names: &[String], out: impl Write) -> Result<()> {
    if names.is_empty() {
        return Err(Error::InvalidArgument("no images specified".into()));
    }
    // Resolve everything first, so a bad name fails before any byte is written.
    let mut order: Vec<String> = Vec::new();
    let mut tags: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
    for n in names {
        let id = store.resolve(n)?;
        if !order.contains(&id) {
            order.push(id.clone());
        }
        let is_ref =
            !n.starts_with("sha256:") && Reference::parse(n).is_ok() && !n.bytes().all(|b| b.is_ascii_hexdigit());
        if is_ref {
            let r = Reference::parse_with_default_tag(n)?;
            let e = tags.entry(id.clone()).or_default();
            if !e.contains(&r) {
                e.push(r);
            }
        } else {
            tags.entry(id).or_default();
        }
    }
    let mut tb = tar::Builder::new(out);
    tb.mode(tar::HeaderMode::Deterministic);
    let mut written: BTreeSet<String> = BTreeSet::new();
    let dir = |tb: &mut tar::Builder<_>, p: &str| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        tb.append_data(&mut h, p, std::io::empty()).map_err(Error::io("writing archive"))
    };
    dir(&mut tb, "blobs/")?;
    dir(&mut tb, "blobs/sha256/")?;
    let mut manifest_json = Vec::new();
    let mut index_manifests = Vec::new();
    for id in &order {
        let img = store.get_by_id(id)?;
        let mut layer_paths = Vec::new();
        let mut layer_descs = Vec::new();
        for l in &img.layers {
            let p = blob_path(&l.blob)?;
            if written.insert(l.blob.clone()) {
                let f = store.open_layer_blob(l)?;
                append_file(&mut tb, &p, l.blob_size, f)?;
            }
            layer_paths.push(p);
            layer_descs.push(json!({"mediaType": l.media_type, "digest": l.blob, "size": l.blob_size}));
        }
        let cfg_path = blob_path(&img.id)?;
        if written.insert(img.id.clone()) {
            append_file(&mut tb, &cfg_path, img.config_bytes.len() as u64, &img.config_bytes[..])?;
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": img.id, "size": img.config_bytes.len()},
            "layers": layer_descs,
        });
        let mbytes =
            serde_json::to_vec(&manifest).map_err(|source| Error::Json { context: "manifest".into(), source })?;
        let mdigest = berth_content::sha256_digest(&mbytes);
        if written.insert(mdigest.clone()) {
            append_file(&mut tb, &blob_path(&mdigest)?, mbytes.len() as u64, &mbytes[..])?;
        }
        let img_tags = tags.get(id).cloned().unwrap_or_default();
        if img_tags.is_empty() {
            index_manifests.push(json!({"mediaType": MEDIA_OCI_MANIFEST, "digest": mdigest, "size": mbytes.len()}));
        }
        for t in &img_tags {
            index_manifests.push(json!({
                "mediaType": MEDIA_OCI_MANIFEST, "digest": mdigest, "size": mbytes.len(),
                "annotations": {
                    "io.containerd.image.name": t.to_string(),
                    "org.opencontainers.image.ref.name": t.tag.clone().unwrap_or_default(),
                }
            }));
        }
        let repo_tags: Value = if img_tags.is_empty() {
            Value::Null
        } else {
            Value::Array(img_tags.iter().map(|t| Value::String(t.familiar())).collect())
        };
        manifest_json.push(json!({"Config": cfg_path, "RepoTags": repo_tags, "Layers": layer_paths}));
    }
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index_manifests});
    let to_bytes =
        |v: &Value| serde_json::to_vec(v).map_err(|source| Error::Json { context: "archive".into(), source });
    let ib = to_bytes(&index)?;
    append_file(&mut tb, "index.json", ib.len() as u64, &ib[..])?;
    let mb = to_bytes(&Value::Array(manifest_json))?;
    append_file(&mut tb, "manifest.json", mb.len() as u64, &mb[..])?;
    let ol = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append_file(&mut tb, "oci-layout", ol.len() as u64, &ol[..])?;
    let mut w = tb.into_inner().map_err(Error::io("writing archive"))?;
    w.flush().map_err(Error::io("writing archive"))?;
    Ok(())
}

fn append_file<W: Write>(tb: &mut tar::Builder<W>, path: &str, size: u64, r: impl Read) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    tb.append_data(&mut h, path, r).map_err(Error::io("writing archive"))
}

/// Options of `docker import`.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    pub tag: Option<Reference>,
    pub changes: Vec<String>,
    pub message: String,
    /// Where the tar came from, for the default history comment ("-" for stdin).
    pub source: String,
}

/// `docker import`: a root filesystem tar (plain, gzip or zstd) becomes a
/// one-layer image.
pub fn import(store: &ImageStore, input: impl Read + Send, opts: &ImportOptions) -> Result<String> {
    let mut cfg = default_container_config();
    changes::apply(&mut cfg, &opts.changes)?;
    let before: BTreeSet<String> = store.content().list()?.into_iter().collect();
    let r = decompress(BufReader::with_capacity(1 << 20, input))?;
    let res = (|| {
        // The layer is stored uncompressed: its digest is then its diff ID.
        let (diff_id, blob_size) = store.content().ingest(r, None).map_err(|e| match e {
            berth_content::Error::Io { source, .. } => Error::InvalidArchive(format!("invalid tar: {source}")),
            other => other.into(),
        })?;
        let size = store.unpack_blob(&diff_id, &diff_id, None, &diff_id)?;
        let created = rfc3339_now();
        let msg = if opts.message.is_empty() {
            format!("Imported from {}", if opts.source.is_empty() { "-" } else { &opts.source })
        } else {
            opts.message.clone()
        };
        let config = json!({
            "architecture": host_arch(),
            "comment": msg,
            "config": Value::Object(cfg.clone()),
            "created": created,
            "docker_version": env!("CARGO_PKG_VERSION"),
            "history": [{"created": created, "comment": msg}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        let bytes = serde_json::to_vec(&config).map_err(|source| Error::Json { context: "config".into(), source })?;
        let layer = LayerInfo {
            chain_id: diff_id.clone(),
            diff_id: diff_id.clone(),
            size,
            blob: diff_id.clone(),
            media_type: MEDIA_TAR.into(),
            blob_size,
        };
        let tags: Vec<Reference> = opts.tag.iter().cloned().collect();
        store.register(&bytes, &[layer], &tags, "")
    })();
    if res.is_err() {
        let keep = referenced_blobs(store).unwrap_or_default();
        for d in store.content().list().unwrap_or_default() {
            if !before.contains(&d) && !keep.contains(&d) {
                let _ = store.snapshots().remove(&d);
            }
        }
        cleanup_new_blobs(store, &before, &keep);
    }
    res
}
