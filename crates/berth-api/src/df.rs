//! `GET /system/df`: disk usage of images, containers, volumes and the
//! build cache, in the shape of Docker's `types.DiskUsage`.

use std::collections::{HashMap, HashSet};

use axum::extract::State as AxState;
use axum::http::Uri;
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, ok_json, Query};
use crate::{ApiVersion, Engine, State};

/// The build cache's entries (`BuildCache`: step results and cache
/// mounts) and their total size (`BuilderSize`).
pub fn build_cache_usage(engine: &Engine) -> (Vec<Value>, u64) {
    match engine.builder.disk_usage() {
        Ok(entries) => {
            let total = entries.iter().filter_map(|v| v["Size"].as_u64()).sum();
            (entries, total)
        }
        Err(e) => {
            tracing::warn!("build cache usage: {e}");
            (Vec::new(), 0)
        }
    }
}

pub async fn df(AxState(st): AxState<State>, Extension(ver): Extension<ApiVersion>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let mut types: HashSet<String> = q.all("type").into_iter().collect();
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::bad_request(format!("unknown object type: {t}")));
        }
    }
    if types.is_empty() {
        types = ["container", "image", "volume", "build-cache"].iter().map(|s| s.to_string()).collect();
    }
    let st2 = st.clone();
    let out = blocking(move || {
        let st = st2;
        let mut out = serde_json::Map::new();
        if types.contains("image") {
            // Untagged build step results are the build cache's, counted there.
            let cache = st.builder.cache_images();
            let images: Vec<_> = st
                .images
                .list()?
                .into_iter()
                .filter(|i| !(i.tags.is_empty() && i.digests.is_empty() && cache.contains(&i.id)))
                .collect();
            // Containers per image, and how many images hold each layer.
            let mut per_image: HashMap<String, i64> = HashMap::new();
            for c in st.containers.list() {
                *per_image.entry(c.image.clone()).or_default() += 1;
            }
            let mut holders: HashMap<&str, usize> = HashMap::new();
            let mut layer_size: HashMap<&str, u64> = HashMap::new();
            for img in &images {
                for l in &img.layers {
                    *holders.entry(l.chain_id.as_str()).or_default() += 1;
                    layer_size.insert(l.chain_id.as_str(), l.size);
                }
            }
            let mut rows: Vec<Value> = images
                .iter()
                .map(|img| {
                    let shared: u64 = img
                        .layers
                        .iter()
                        .filter(|l| holders.get(l.chain_id.as_str()).is_some_and(|n| *n > 1))
                        .map(|l| l.size)
                        .sum();
                    let mut v = crate::images::summary(img, ver);
                    v["SharedSize"] = json!(shared);
                    v["Containers"] = json!(per_image.get(&img.id).copied().unwrap_or(0));
                    v
                })
                .collect();
            rows.sort_by_key(|v| std::cmp::Reverse(v["Created"].as_i64().unwrap_or(0)));
            // Each layer counted once, however many images share it.
            out.insert("LayersSize".into(), json!(layer_size.values().sum::<u64>()));
            out.insert("Images".into(), json!(rows));
        }
        if types.contains("container") {
            let mut cs = st.containers.list();
            cs.sort_by(|a, b| b.created.cmp(&a.created));
            let rows: Vec<Value> =
                cs.iter().map(|c| crate::containers::summary(c, Some(st.containers.sizes(c)))).collect();
            out.insert("Containers".into(), json!(rows));
        }
        if types.contains("volume") {
            let mgr = &st.containers;
            let in_use = |n: &str| mgr.containers_using_volume(n);
            let mut rows = Vec::new();
            for v in mgr.volumes().list(&Default::default(), &in_use)? {
                rows.push(mgr.volumes().get_with_usage(&v.name, &in_use)?);
            }
            out.insert("Volumes".into(), json!(rows));
        }
        if types.contains("build-cache") {
            let (entries, size) = build_cache_usage(&st);
            out.insert("BuildCache".into(), json!(entries));
            out.insert("BuilderSize".into(), json!(size));
        }
        Ok(Value::Object(out))
    })
    .await?;
    Ok(ok_json(&out))
}
