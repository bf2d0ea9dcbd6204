//! Making a new image from a parent image plus one layer of changes: what
//! `docker commit` does with a container's writable layer, and what each
//! filesystem-changing build step does.
//!
//! The layer is stored as an uncompressed tar (its digest is its diff ID, as
//! for `docker import` and `load`), unpacked as the snapshot of its chain ID,
//! and the new config is the parent's with the given container config,
//! `created`, one more history entry and one more diff ID. Steps that change
//! no files (`ENV`, `LABEL`, `commit` of config alone in a build) add a
//! history entry marked `empty_layer` and no diff ID, as Docker does.

use std::io::{BufReader, Write};

use serde_json::{json, Map, Value};

use crate::archive::host_arch;
use crate::config::chain_ids;
use crate::store::{rfc3339_now, MEDIA_TAR};
use crate::{Error, ImageStore, LayerInfo, Reference, Result};

/// Where the new layer's content comes from.
pub enum LayerSource<'a> {
    /// No layer: the history entry is marked `empty_layer`.
    Empty,
    /// A function writing the layer tar (uncompressed) to the given writer,
    /// e.g. `Snapshotter::diff` of a container's writable snapshot.
    Tar(&'a mut dyn FnMut(&mut dyn Write) -> Result<()>),
}

/// What goes into the new image besides its layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Full ID of the parent image; `None` builds on an empty root (`FROM scratch`).
    pub parent: Option<String>,
    /// The new image's container config (the `config` object), complete.
    pub config: Map<String, Value>,
    /// History `created_by` (the command, or `/bin/sh -c #(nop) …` for build steps).
    pub created_by: String,
    /// Image and history `comment` (`commit -m`).
    pub comment: String,
    /// Image and history `author` (`commit -a`).
    pub author: String,
    /// Set as the config's `container` field (the committed container's ID), as Docker does.
    pub container: String,
    /// Tags to point at the new image.
    pub tags: Vec<Reference>,
    /// Overrides `created` (RFC 3339), e.g. for reproducible build results.
    pub created: Option<String>,
}

/// Creates the image and returns its ID. On failure nothing new is left: no
/// blob, snapshot or record (blobs and layers shared with other images stay).
pub fn commit(store: &ImageStore, layer: LayerSource<'_>, opts: &CommitOptions) -> Result<String> {
    let (mut base, mut layers) = match &opts.parent {
        Some(id) => {
            let img = store.get_by_id(id)?;
            match &img.config.raw {
                Value::Object(m) => (m.clone(), img.layers.clone()),
                _ => return Err(Error::InvalidArgument(format!("image {id} has a malformed config"))),
            }
        }
        None => (Map::new(), Vec::new()),
    };
    let created = opts.created.clone().unwrap_or_else(rfc3339_now);

    let mut new_blob = None;
    let mut new_snapshot = None;
    let res = (|| {
        let empty_layer = match layer {
            LayerSource::Empty => true,
            LayerSource::Tar(write) => {
                let blob_existed;
                let (diff_id, blob_size) = {
                    let mut w = store.content().writer()?;
                    write(&mut w)?;
                    w.flush().map_err(Error::io("writing layer"))?;
                    let size = w.size();
                    // Digest before commit, to know whether this blob is new.
                    let probe = w.digest();
                    blob_existed = store.content().exists(&probe);
                    let (d, _) = w.commit(Some(&probe))?;
                    (d, size)
                };
                if !blob_existed {
                    new_blob = Some(diff_id.clone());
                }
                let parent_chain = layers.last().map(|l| l.chain_id.clone());
                let mut diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
                diff_ids.push(diff_id.clone());
                let chain_id = chain_ids(&diff_ids).pop().unwrap_or_else(|| diff_id.clone());
                let existed = store.snapshots().exists(&chain_id);
                let f = store.content().open_blob(&diff_id)?;
                let applied = store.snapshots().apply_layer(
                    &chain_id,
                    parent_chain.as_deref(),
                    BufReader::with_capacity(1 << 20, f),
                    Some(&diff_id),
                )?;
                if !existed {
                    new_snapshot = Some(chain_id.clone());
                }
                layers.push(LayerInfo {
                    chain_id,
                    diff_id,
                    size: applied.size,
                    // Stored uncompressed: the blob's digest is the diff ID.
                    blob: applied.diff_id.clone(),
                    media_type: MEDIA_TAR.into(),
                    blob_size,
                });
                false
            }
        };

        let mut history = match base.remove("history") {
            Some(Value::Array(h)) => h,
            _ => Vec::new(),
        };
        let mut entry = Map::new();
        entry.insert("created".into(), json!(created));
        if !opts.author.is_empty() {
            entry.insert("author".into(), json!(opts.author));
        }
        entry.insert("created_by".into(), json!(opts.created_by));
        if !opts.comment.is_empty() {
            entry.insert("comment".into(), json!(opts.comment));
        }
        if empty_layer {
            entry.insert("empty_layer".into(), json!(true));
        }
        history.push(Value::Object(entry));

        // Docker's legacy fields describing the builder's container are not
        // carried over from the parent: they describe how *that* image was made.
        for k in ["id", "parent", "container_config", "container", "comment", "author"] {
            base.remove(k);
        }
        base.insert("architecture".into(), base.get("architecture").cloned().unwrap_or(json!(host_arch())));
        base.insert("os".into(), base.get("os").cloned().unwrap_or(json!("linux")));
        if !opts.author.is_empty() {
            base.insert("author".into(), json!(opts.author));
        }
        if !opts.comment.is_empty() {
            base.insert("comment".into(), json!(opts.comment));
        }
        if !opts.container.is_empty() {
            base.insert("container".into(), json!(opts.container));
        }
        base.insert("config".into(), Value::Object(opts.config.clone()));
        base.insert("created".into(), json!(created));
        base.insert("docker_version".into(), json!(env!("CARGO_PKG_VERSION")));
        base.insert("history".into(), Value::Array(history));
        let diff_ids: Vec<Value> = layers.iter().map(|l| json!(l.diff_id)).collect();
        base.insert("rootfs".into(), json!({"type": "layers", "diff_ids": diff_ids}));

        let bytes = serde_json::to_vec(&Value::Object(base.clone()))
            .map_err(|source| Error::Json { context: "config".into(), source })?;
        store.register(&bytes, &layers, &opts.tags, opts.parent.as_deref().unwrap_or(""))
    })();
    if res.is_err() {
        if let Some(s) = &new_snapshot {
            let _ = store.snapshots().remove(s);
        }
        if let Some(b) = &new_blob {
            let _ = store.content().delete(b);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_content::ContentStore;
    use berth_meta::Db;
    use berth_snapshot::Snapshotter;

    use super::*;

    fn store(dir: &std::path::Path) -> ImageStore {
        let db = Arc::new(Db::open(&dir.join("berth.db")).unwrap());
        let content = Arc::new(ContentStore::open(&dir.join("content")).unwrap());
        let snapshots = Arc::new(Snapshotter::new(&dir.join("snapshots")).unwrap());
        ImageStore::new(db, content, snapshots).unwrap()
    }

    fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    fn cfg(cmd: &str) -> Map<String, Value> {
        let mut c = crate::config::default_container_config();
        c.insert("Cmd".into(), json!([cmd]));
        c
    }

    #[test]
    fn layers_stack_and_history_records_each_step() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let t1 = tar_with("a.txt", b"one");
        let mut w1 = |w: &mut dyn Write| w.write_all(&t1).map_err(Error::io("test"));
        let base = commit(
            &s,
            LayerSource::Tar(&mut w1),
            &CommitOptions { config: cfg("sh"), created_by: "step one".into(), ..Default::default() },
        )
        .unwrap();
        let env = commit(
            &s,
            LayerSource::Empty,
            &CommitOptions {
                parent: Some(base.clone()),
                config: cfg("env"),
                created_by: "/bin/sh -c #(nop)  ENV A=1".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let t2 = tar_with("b.txt", b"two");
        let mut w2 = |w: &mut dyn Write| w.write_all(&t2).map_err(Error::io("test"));
        let top = commit(
            &s,
            LayerSource::Tar(&mut w2),
            &CommitOptions {
                parent: Some(env.clone()),
                config: cfg("top"),
                created_by: "step three".into(),
                author: "me".into(),
                comment: "msg".into(),
                tags: vec![Reference::parse("committed:1").unwrap()],
                ..Default::default()
            },
        )
        .unwrap();
        let img = s.get("committed:1").unwrap();
        assert_eq!(img.id, top);
        assert_eq!(img.parent, env);
        assert_eq!(img.layers.len(), 2);
        assert_eq!(img.config.rootfs.diff_ids.len(), 2);
        let h = &img.config.history;
        assert_eq!(h.len(), 3);
        assert!(!h[0].empty_layer && h[1].empty_layer && !h[2].empty_layer);
        assert_eq!(h[2].author.as_deref(), Some("me"));
        assert_eq!(img.config.raw["config"]["Cmd"], json!(["top"]));
        assert_eq!(img.config.str_field("comment"), "msg");
        // Both layers are unpacked, stacked by chain ID.
        let top_chain = img.top_chain_id().unwrap();
        assert!(s.snapshots().exists(top_chain));
        assert_eq!(s.snapshots().parent(top_chain).unwrap().as_deref(), Some(img.layers[0].chain_id.as_str()));
    }

    #[test]
    fn failure_leaves_no_blob_or_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let before = s.content().list().unwrap();
        // A truncated, invalid tar: the unpack fails after the blob was written.
        let mut bad = |w: &mut dyn Write| w.write_all(&[1u8; 700]).map_err(Error::io("test"));
        let err = commit(&s, LayerSource::Tar(&mut bad), &CommitOptions { config: cfg("x"), ..Default::default() });
        assert!(err.is_err());
        assert_eq!(s.content().list().unwrap(), before);
        assert!(s.snapshots().list().is_empty());
        // An unknown parent is refused before anything is written.
        let err = commit(
            &s,
            LayerSource::Empty,
            &CommitOptions { parent: Some(format!("sha256:{}", "0".repeat(64))), ..Default::default() },
        )
        .unwrap_err();
        assert_eq!(err.kind(), berth_error::ErrorKind::NotFound);
    }
}
