//! Registry endpoints: pull (`POST /images/create?fromImage=`), push
//! (`POST /images/{name}/push`), `POST /auth`, `GET /distribution/{name}/json`
//! and `GET /images/search`.
//!
//! Pulls and pushes run the blocking registry client in `spawn_blocking`
//! and stream Docker's JSON progress messages. As in moby, an error before
//! the first message is an HTTP error status (the CLI prints "Error
//! response from daemon: …"); once streaming, it is an `errorDetail` line.
//! Credentials arrive in `X-Registry-Auth` and are never logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_image::Reference;
use berth_registry::{Credentials, Platform, ProgressEvent, PullOptions, PushOptions};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, ok_json, Query};
use crate::State;

impl From<berth_registry::Error> for ApiError {
    fn from(e: berth_registry::Error) -> Self {
        Self::from_kind(e.kind(), e.to_string())
    }
}

/// Docker's `AuthConfig` as clients send it (field names are matched
/// case-insensitively, as Go's JSON decoder does).
fn auth_config(v: &Value) -> (Credentials, String) {
    let get = |k: &str| -> String {
        v.as_object()
            .and_then(|o| o.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)))
            .and_then(|(_, x)| x.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (mut username, mut password) = (get("username"), get("password"));
    // `auth` is base64("user:password"), as stored in config.json.
    let auth = get("auth");
    if username.is_empty() && !auth.is_empty() {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth.trim()) {
            if let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':') {
                username = u.to_string();
                password = p.to_string();
            }
        }
    }
    let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
    let creds = Credentials {
        username,
        password,
        identity_token: non_empty(get("identitytoken")),
        registry_token: non_empty(get("registrytoken")),
    };
    (creds, get("serveraddress"))
}

/// Decodes `X-Registry-Auth`: base64url (with padding, as the docker CLI
/// sends it) of a JSON `AuthConfig`. Like moby, a header that does not
/// decode counts as no credentials (older clients send odd values).
pub(crate) fn registry_auth(headers: &HeaderMap) -> Option<Credentials> {
    let raw = headers.get("x-registry-auth")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = [URL_SAFE, URL_SAFE_NO_PAD, STANDARD, STANDARD_NO_PAD].iter().find_map(|e| e.decode(raw).ok())?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let (c, _) = auth_config(&v);
    if c.username.is_empty() && c.password.is_empty() && c.identity_token.is_none() && c.registry_token.is_none() {
        return None;
    }
    Some(c)
}

enum Msg {
    Line(Value),
    Done(Result<(), ApiError>),
}

/// Docker's stream error line.
fn error_line(message: &str) -> Value {
    json!({"errorDetail": {"message": message}, "error": message})
}

fn event_lines(e: &ProgressEvent) -> Vec<Value> {
    match e {
        // moby writes the digest line and the structured record separately.
        ProgressEvent::Pushed { tag, digest, size } => vec![
            json!({"status": e.message()}),
            json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}),
        ],
        other => vec![other.to_json_value()],
    }
}

/// Runs `work` on the blocking pool with a progress sink, and answers with
/// an error status if it fails before saying anything, else with a stream.
/// `cancel` is set once nobody reads the stream any more.
async fn progress_stream<F>(cancel: Option<Arc<AtomicBool>>, work: F) -> ApiResult<Response>
where
    F: FnOnce(&mut dyn FnMut(ProgressEvent)) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let tx2 = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut sink = |e: ProgressEvent| {
            for l in event_lines(&e) {
                if tx2.send(Msg::Line(l)).is_err() {
                    if let Some(c) = &cancel {
                        c.store(true, Ordering::Relaxed);
                    }
                }
            }
        };
        let r = work(&mut sink);
        if let Err(e) = &r {
            // Registry errors name URLs and repositories, never credentials.
            tracing::info!("registry operation failed: {}", e.message);
        }
        let _ = tx2.send(Msg::Done(r));
    });
    drop(tx);
    let first = match rx.recv().await {
        Some(Msg::Line(v)) => v,
        Some(Msg::Done(Ok(()))) | None => return Ok(json_lines_response(Body::empty())),
        Some(Msg::Done(Err(e))) => return Err(e),
    };
    let stream = async_stream(first, rx);
    Ok(json_lines_response(Body::from_stream(stream)))
}

fn json_lines_response(body: Body) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn line_bytes(v: &Value) -> bytes::Bytes {
    let mut b = v.to_string().into_bytes();
    b.extend_from_slice(b"\r\n");
    bytes::Bytes::from(b)
}

fn async_stream(
    first: Value,
    rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    let head = futures_util::stream::once(async move { Ok(line_bytes(&first)) });
    let rest = futures_util::stream::unfold(Some(rx), |state| async move {
        let mut rx = state?;
        match rx.recv().await {
            Some(Msg::Line(v)) => Some((Ok(line_bytes(&v)), Some(rx))),
            Some(Msg::Done(Err(e))) => Some((Ok(line_bytes(&error_line(&e.message))), None)),
            Some(Msg::Done(Ok(()))) | None => None,
        }
    });
    futures_util::StreamExt::chain(head, rest)
}

/// `POST /images/create?fromImage=&tag=&platform=`.
pub async fn pull(st: State, q: Query, headers: &HeaderMap) -> ApiResult<Response> {
    let image = q.str_or("fromImage", "").to_string();
    let tag = q.str_or("tag", "").to_string();
    let mut r = Reference::parse(&image)?;
    if !tag.is_empty() {
        // The "tag" may be a digest (moby's PullImage).
        if tag.starts_with("sha256:") {
            r = Reference::parse(&format!("{}@{tag}", r.name()))?;
        } else {
            r = Reference::parse(&format!("{}:{tag}", r.name()))?;
        }
    }
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        Some(p) => Platform::parse(p).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => Platform::host(),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = PullOptions { platform, credentials: registry_auth(headers), cancel: Some(cancel.clone()) };
    let all_tags = r.tag.is_none() && r.digest.is_none();
    progress_stream(Some(cancel), move |sink| {
        let pulled = if all_tags {
            st.registry.pull_all_tags(&st.images, &r, &opts, sink)?
        } else {
            vec![st.registry.pull(&st.images, &r, &opts, sink)?]
        };
        for p in &pulled {
            let shown = match p.tags.first() {
                Some(t) => t.familiar(),
                None if all_tags => r.familiar_name(),
                None => Reference { digest: Some(p.digest.clone()), tag: None, ..r.clone() }.familiar(),
            };
            st.events.emit("image", "pull", &shown, &[("name", &r.familiar_name())]);
        }
        Ok(())
    })
    .await
}

/// `POST /images/{name}/push?tag=`: without a tag (and none in the name),
/// every local tag of the repository (`docker push --all-tags`).
pub async fn push(st: State, name: String, q: Query, headers: &HeaderMap) -> ApiResult<Response> {
    let tag = q.str_or("tag", "").to_string();
    let mut r = Reference::parse(&name)?;
    if !tag.is_empty() {
        r = Reference::parse(&format!("{}:{tag}", r.name()))?;
    }
    let opts = PushOptions { credentials: registry_auth(headers) };
    progress_stream(None, move |sink| {
        let targets: Vec<Reference> = if r.tag.is_none() && r.digest.is_none() {
            let mut tags: Vec<Reference> = st
                .images
                .list()?
                .iter()
                .flat_map(|i| i.tags.clone())
                .filter(|t| t.domain == r.domain && t.path == r.path)
                .collect();
            tags.sort_by(|a, b| a.tag.cmp(&b.tag));
            if tags.is_empty() {
                sink(ProgressEvent::Status {
                    id: None,
                    status: format!("The push refers to repository [{}]", r.name()),
                });
                return Err(ApiError::not_found(format!(
                    "An image does not exist locally with the tag: {}",
                    r.familiar_name()
                )));
            }
            tags
        } else {
            vec![r.clone()]
        };
        for t in &targets {
            st.registry.push(&st.images, t, &opts, sink)?;
            st.events.emit("image", "push", &t.familiar(), &[("name", &t.familiar_name())]);
        }
        Ok(())
    })
    .await
}

/// The registry domain of a login's server address: Docker Hub's
/// `https://index.docker.io/v1/` (or nothing) is `docker.io`.
fn login_domain(server: &str) -> String {
    let s = server.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// `POST /auth`: checks credentials against the registry (`docker login`).
pub async fn auth(
    axum::extract::State(st): axum::extract::State<State>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let (creds, server) = auth_config(&v);
    let domain = login_domain(&server);
    blocking(move || Ok(st.registry.login(&domain, &creds)?)).await?;
    Ok(ok_json(&json!({"Status": "Login Succeeded", "IdentityToken": ""})))
}

/// `GET /distribution/{name}/json`.
pub async fn distribution(
    axum::extract::State(st): axum::extract::State<State>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(name) = rest.strip_suffix("/json") else {
        return Err(ApiError::not_found(format!("page not found: /distribution/{rest}")));
    };
    let r = Reference::parse(name)?;
    let creds = registry_auth(&headers);
    let v = blocking(move || Ok(st.registry.distribution_inspect(&r, creds.as_ref())?)).await?;
    Ok(ok_json(&v))
}

/// `GET /images/search?term=&limit=&filters=`.
pub async fn search(
    axum::extract::State(st): axum::extract::State<State>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let term = q.str_or("term", "").to_string();
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => 25,
        Some(l) => l.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
    };
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit} is outside the range of [1, 100]")));
    }
    let f = q.filters()?;
    f.validate(&["is-automated", "is-official", "stars"])?;
    let official = f.bool("is-official")?;
    let automated = f.bool("is-automated")?;
    let mut stars = 0u64;
    for s in f.get("stars") {
        stars = s
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid filter 'stars={s}'")))
            .map(|n: u64| n.max(stars))?;
    }
    let creds = registry_auth(&headers);
    let results = blocking(move || Ok(st.registry.search(&term, limit as usize, creds.as_ref())?)).await?;
    let out: Vec<_> = results
        .into_iter()
        .filter(|r| official.is_none_or(|o| r.is_official == o))
        .filter(|r| automated.is_none_or(|a| r.is_automated == a))
        .filter(|r| r.star_count >= stars)
        .take(limit as usize)
        .collect();
    Ok(ok_json(&out))
}

/// `/info`'s `RegistryConfig`, as moby's `registry.ServiceConfig`: loopback
/// is always insecure, named insecure registries get an index entry, and
/// mirrors are listed with a trailing slash.
pub(crate) fn registry_config_json(c: &berth_registry::RegistryConfig) -> Value {
    let mut cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    let mirrors: Vec<String> = c.mirrors.iter().map(|m| format!("{}/", m.trim_end_matches('/'))).collect::<Vec<_>>();
    let mut index = serde_json::Map::new();
    index
        .insert("docker.io".into(), json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true}));
    for entry in &c.insecure {
        if entry.contains('/') {
            if !cidrs.contains(entry) {
                cidrs.push(entry.clone());
            }
        } else {
            index.insert(entry.clone(), json!({"Name": entry, "Mirrors": [], "Secure": false, "Official": false}));
        }
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": null,
        "AllowNondistributableArtifactsHostnames": null,
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index,
        "Mirrors": if mirrors.is_empty() { Value::Null } else { json!(mirrors) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert("x-registry-auth", HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn registry_auth_decoding_is_lenient() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
        let json = r#"{"username":"u","password":"p?>~","serveraddress":"localhost:5000"}"#;
        for enc in [URL_SAFE.encode(json), URL_SAFE_NO_PAD.encode(json), STANDARD.encode(json)] {
            let c = registry_auth(&h(&enc)).unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>~"));
        }
        // `auth` only, field names in any case.
        let json = format!(r#"{{"Auth":"{}"}}"#, STANDARD.encode("a:b:c"));
        let c = registry_auth(&h(&URL_SAFE.encode(json))).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("a", "b:c"));
        assert!(registry_auth(&h("e30=")).is_none());
        assert!(registry_auth(&h("%%%not base64")).is_none());
        assert!(registry_auth(&HeaderMap::new()).is_none());
    }

    #[test]
    fn login_domains() {
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain("localhost:5000"), "localhost:5000");
        assert_eq!(login_domain("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }
}
