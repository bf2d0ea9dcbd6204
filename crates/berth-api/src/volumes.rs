//! Volume endpoints: `GET /volumes`, `POST /volumes/create`,
//! `GET|DELETE /volumes/{name}`, `POST /volumes/prune`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use berth_container::volume::{Filters as VolumeFilters, Volume};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, json as json_resp, ok_json, Query};
use crate::{ApiVersion, State};

impl From<berth_container::volume::Error> for ApiError {
    fn from(e: berth_container::volume::Error) -> Self {
        Self::from_kind(e.kind(), e.to_string())
    }
}

fn volume_filters(q: &Query) -> ApiResult<VolumeFilters> {
    let f = q.filters()?;
    Ok(VolumeFilters::from_map(&f.0)?)
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default()
}

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.iter().find(|(x, _)| x.eq_ignore_ascii_case(k)).map(|(_, v)| v))
}

pub async fn list(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let filters = volume_filters(&q)?;
    let st2 = st.clone();
    let vols: Vec<Volume> = blocking(move || {
        let mgr = &st2.containers;
        let in_use = |n: &str| mgr.containers_using_volume(n);
        Ok(mgr.volumes().list(&filters, &in_use)?)
    })
    .await?;
    Ok(ok_json(&json!({"Volumes": vols, "Warnings": []})))
}

pub async fn create(AxState(st): AxState<State>, body: Body) -> ApiResult<Response> {
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let v: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let name = field(&v, "Name").and_then(Value::as_str).unwrap_or("").to_string();
    let driver = field(&v, "Driver").and_then(Value::as_str).unwrap_or("").to_string();
    let opts = str_map(field(&v, "DriverOpts"));
    let labels = str_map(field(&v, "Labels"));
    let st2 = st.clone();
    let (vol, new) = blocking(move || {
        let store = st2.containers.volumes();
        let existed = !name.is_empty() && store.get(&name).is_ok();
        let vol = store.create(Some(&name), &driver, &opts, &labels)?;
        Ok((vol, !existed))
    })
    .await?;
    if new {
        st.containers.volume_created(&vol.name);
    }
    Ok(json_resp(StatusCode::CREATED, &vol))
}

pub async fn inspect(AxState(st): AxState<State>, Path(name): Path<String>) -> ApiResult<Response> {
    let st2 = st.clone();
    let vol = blocking(move || Ok(st2.containers.volumes().get(&name)?)).await?;
    Ok(ok_json(&vol))
}

pub async fn remove(AxState(st): AxState<State>, Path(name): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let force = q.bool("force");
    let st2 = st.clone();
    let n = name.clone();
    let existed = blocking(move || {
        let mgr = &st2.containers;
        let existed = mgr.volumes().get(&n).is_ok();
        let in_use = |v: &str| mgr.containers_using_volume(v);
        mgr.volumes().remove(&n, force, &in_use)?;
        Ok(existed)
    })
    .await?;
    if existed {
        st.containers.volume_destroyed(&name);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune(
    AxState(st): AxState<State>,
    Extension(ver): Extension<ApiVersion>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(&["label", "label!", "all"])?;
    if f.has("all") && ver.below(1, 42) {
        return Err(ApiError::bad_request("invalid filter 'all'"));
    }
    let filters = volume_filters(&q)?;
    // Before API 1.42 prune removed every unused volume, named or not.
    let all = ver.below(1, 42);
    let st2 = st.clone();
    let (removed, reclaimed) = blocking(move || {
        let mgr = &st2.containers;
        let in_use = |n: &str| mgr.containers_using_volume(n);
        Ok(mgr.volumes().prune(all, &in_use, &filters)?)
    })
    .await?;
    for v in &removed {
        st.containers.volume_destroyed(v);
    }
    st.events.emit("volume", "prune", "", &[("reclaimed", &reclaimed.to_string())]);
    let deleted = if removed.is_empty() { Value::Null } else { json!(removed) };
    Ok(ok_json(&json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})))
}
