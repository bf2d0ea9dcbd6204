//! Network endpoints: list, inspect, create, remove, prune, connect and
//! disconnect (Engine API `/networks`).

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, json as json_resp, ok_json, parse_timestamp, Query};
use crate::State;

impl From<berth_network::Error> for ApiError {
    fn from(e: berth_network::Error) -> Self {
        Self::from_kind(e.kind(), e.to_string())
    }
}

async fn body_json(body: Body) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Go decodes JSON field names case-insensitively.
fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.iter().find(|(x, _)| x.eq_ignore_ascii_case(k)).map(|(_, v)| v))
}

fn canonical(v: &Value, keys: &[&str]) -> Value {
    let mut o = Map::new();
    for k in keys {
        if let Some(x) = field(v, k) {
            o.insert((*k).to_string(), x.clone());
        }
    }
    Value::Object(o)
}

const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// Networks referenced by any container (running or not).
fn used_networks(st: &State) -> Vec<String> {
    let mut v = Vec::new();
    for c in st.containers.list() {
        v.extend(c.requested_networks.keys().cloned());
        v.push(c.network_mode());
    }
    v
}

pub async fn list(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(&["dangling", "driver", "id", "label", "name", "scope", "type"])?;
    for t in f.get("type") {
        if t != "custom" && t != "builtin" {
            return Err(ApiError::bad_request(format!("invalid filter: 'type'='{t}'")));
        }
    }
    let dangling = f.bool("dangling")?;
    let used = used_networks(&st);
    let net = st.networks.clone();
    let all = blocking(move || Ok(net.list()?)).await?;
    let mut out = Vec::new();
    for n in all {
        let builtin = PREDEFINED.contains(&n.name.as_str());
        let ok = (f.get("name").is_empty() || f.get("name").iter().any(|x| n.name.contains(x.as_str())))
            && (f.get("id").is_empty() || f.get("id").iter().any(|x| n.id.starts_with(x.as_str())))
            && (f.get("driver").is_empty() || f.get("driver").contains(&n.driver))
            && (f.get("scope").is_empty() || f.get("scope").iter().any(|x| x == "local"))
            && (f.get("type").is_empty() || f.get("type").iter().any(|x| (x == "builtin") == builtin))
            && f.labels_match("label", &n.labels)
            && dangling.is_none_or(|d| d == (!builtin && !used.iter().any(|u| *u == n.name || *u == n.id)));
        if ok {
            out.push(st.networks.inspect_json(&n, false));
        }
    }
    Ok(ok_json(&Value::Array(out)))
}

pub async fn inspect(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    let net = st.networks.clone();
    let v = blocking(move || {
        let n = net.get(&id)?;
        Ok(net.inspect_json(&n, true))
    })
    .await?;
    Ok(ok_json(&v))
}

pub async fn create(AxState(st): AxState<State>, body: Body) -> ApiResult<Response> {
    let v = body_json(body).await?;
    let mut req = canonical(
        &v,
        &[
            "Name",
            "Driver",
            "Internal",
            "Attachable",
            "Ingress",
            "EnableIPv6",
            "Options",
            "Labels",
            "Scope",
            "ConfigOnly",
        ],
    );
    if let Some(ipam) = field(&v, "IPAM") {
        let mut i = canonical(ipam, &["Driver", "Options"]);
        let cfgs: Vec<Value> = field(ipam, "Config")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|c| canonical(c, &["Subnet", "IPRange", "Gateway", "AuxiliaryAddresses"])).collect())
            .unwrap_or_default();
        i["Config"] = Value::Array(cfgs);
        req["IPAM"] = i;
    }
    let net = st.networks.clone();
    let n = blocking(move || Ok(net.create(&req)?)).await?;
    Ok(json_resp(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""})))
}

pub async fn remove(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    let net = st.networks.clone();
    blocking(move || Ok(net.remove(&id)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(&["until", "label", "label!"])?;
    let until = f.get("until").first().map(|s| parse_timestamp(s)).transpose()?;
    let used = used_networks(&st);
    let net = st.networks.clone();
    let all = blocking(move || Ok(net.list()?)).await?;
    let mut deleted = Vec::new();
    for n in all {
        if PREDEFINED.contains(&n.name.as_str()) || used.iter().any(|u| *u == n.name || *u == n.id) {
            continue;
        }
        if !f.labels_match("label", &n.labels) {
            continue;
        }
        let created = chrono::DateTime::parse_from_rfc3339(&n.created).map(|t| t.timestamp() as f64).unwrap_or(0.0);
        if until.is_some_and(|u| created >= u) {
            continue;
        }
        let net = st.networks.clone();
        let id = n.id.clone();
        if blocking(move || Ok(net.remove(&id)?)).await.is_ok() {
            deleted.push(n.name.clone());
        }
    }
    st.events.emit("network", "prune", "", &[]);
    let d = if deleted.is_empty() { Value::Null } else { json!(deleted) };
    Ok(ok_json(&json!({"NetworksDeleted": d})))
}

pub async fn connect(AxState(st): AxState<State>, Path(id): Path<String>, body: Body) -> ApiResult<Response> {
    let v = body_json(body).await?;
    let container = field(&v, "Container").and_then(Value::as_str).unwrap_or("").to_string();
    if container.is_empty() {
        return Err(ApiError::bad_request("no container specified"));
    }
    let cfg = field(&v, "EndpointConfig")
        .map(|e| canonical(e, &["IPAMConfig", "Links", "Aliases", "MacAddress", "DriverOpts", "GwPriority"]))
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut cfg = cfg;
    if let Some(ipam) = cfg.get("IPAMConfig").cloned().filter(|v| !v.is_null()) {
        cfg["IPAMConfig"] = canonical(&ipam, &["IPv4Address", "IPv6Address", "LinkLocalIPs"]);
    }
    st.containers.network_connect(&container, &id, &cfg).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn disconnect(AxState(st): AxState<State>, Path(id): Path<String>, body: Body) -> ApiResult<Response> {
    let v = body_json(body).await?;
    let container = field(&v, "Container").and_then(Value::as_str).unwrap_or("").to_string();
    if container.is_empty() {
        return Err(ApiError::bad_request("no container specified"));
    }
    st.containers.network_disconnect(&container, &id).await?;
    Ok(StatusCode::OK.into_response())
}
