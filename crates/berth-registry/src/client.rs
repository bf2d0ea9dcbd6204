//! Transport and authentication: which URL a registry lives at (HTTPS, or
//! plain HTTP for insecure registries), and Docker's challenge-driven auth:
//! a request answered `401` with `WWW-Authenticate: Basic …` is retried with
//! basic credentials, one with `Bearer realm=…,service=…` gets a token from
//! the realm for `repository:<name>:<actions>` and is retried with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use berth_image::Reference;
use ureq::http::{Request, Response};
use ureq::{AsSendBody, Body};

use crate::{Error, Result};

/// Upload chunk size: big enough that a layer rarely needs more than a few
/// requests, small enough that a dropped connection costs little to resend.
pub(crate) const DEFAULT_UPLOAD_CHUNK: u64 = 64 << 20;

/// Docker Hub's API endpoint for `docker.io` references.
pub(crate) const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// Credentials for one registry. `Debug` never shows secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth refresh token from `docker login` (Docker's `IdentityToken`):
    /// exchanged for access tokens at the realm instead of the password.
    pub identity_token: Option<String>,
    /// A bearer token to send as is (Docker's `RegistryToken`).
    pub registry_token: Option<String>,
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), password: password.into(), ..Default::default() }
    }

    fn basic_header(&self) -> Option<String> {
        if self.username.is_empty() && self.password.is_empty() {
            return None;
        }
        let raw = format!("{}:{}", self.username, self.password);
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw)))
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("identity_token", &self.identity_token.as_ref().map(|_| "<redacted>"))
            .field("registry_token", &self.registry_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Looks credentials up by registry domain (`docker.io`, `localhost:5000`).
pub type CredentialLookup = dyn Fn(&str) -> Option<Credentials> + Send + Sync;

/// Registry settings, as in Docker's `daemon.json`.
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// `insecure-registries`: `host[:port]` names or CIDRs reached over plain
    /// HTTP. `localhost` and 127.0.0.0/8 (and ::1) are always insecure, as in Docker.
    pub insecure: Vec<String>,
    /// `registry-mirrors` for docker.io (`https://mirror.example`), tried in
    /// order before Docker Hub for pulls.
    pub mirrors: Vec<String>,
    /// Sent as `User-Agent`.
    pub user_agent: Option<String>,
}

/// A registry client. Cheap to share: it is `Send + Sync`, and the token
/// cache is shared by every operation.
pub struct Registry {
    agent: ureq::Agent,
    config: RegistryConfig,
    lookup: Option<Arc<CredentialLookup>>,
    // (realm, service, scope, user) → token and when it expires.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    pub(crate) parallel_downloads: usize,
    /// Concurrent layer uploads (Docker's `max-concurrent-uploads`, default 5).
    pub(crate) parallel_uploads: usize,
    pub(crate) retries: u32,
    /// Bytes per `PATCH` of a blob upload.
    pub(crate) upload_chunk: u64,
}

/// Where one operation talks to: a base URL, the repository path there, and
/// the credentials to answer challenges with.
pub(crate) struct Session {
    pub base: String,
    pub repo: String,
    pub creds: Option<Credentials>,
    /// `pull` or `pull,push`.
    pub actions: &'static str,
    pub mirror: bool,
    // The Authorization value that last worked, reused for later requests.
    auth: Mutex<Option<String>>,
    // Whether `auth` holds basic credentials (a 401 then means they are wrong).
    sent_basic: Mutex<bool>,
    // More token scopes (`repository:<other>:pull` for cross-repository mounts).
    extra_scopes: Mutex<Vec<String>>,
}

impl Session {
    pub fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{}", self.base, self.repo, tail)
    }

    /// Asks tokens for these scopes too.
    pub fn set_extra_scopes(&self, scopes: Vec<String>) {
        if let Ok(mut g) = self.extra_scopes.lock() {
            *g = scopes;
        }
    }

    /// Whether a final 401 happened although credentials were sent.
    pub fn credentials_refused(&self) -> bool {
        self.sent_basic.lock().map(|g| *g).unwrap_or(false)
    }
}

/// An HTTP error body of the distribution API: `{"errors":[{code,message}]}`.
#[derive(Debug, Default, Clone)]
pub(crate) struct RegistryError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl RegistryError {
    /// Docker's `errcode.Error.Error()`: the code lower-cased with spaces,
    /// then the message (`manifest unknown: manifest unknown`).
    pub fn docker_text(&self) -> String {
        if self.code.is_empty() {
            return if self.message.is_empty() {
                format!("unexpected HTTP status {}", self.status)
            } else {
                self.message.clone()
            };
        }
        format!("{}: {}", self.code.to_ascii_lowercase().replace('_', " "), self.message)
    }
}

pub(crate) fn read_error(resp: &mut Response<Body>) -> RegistryError {
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(64 * 1024).read_to_vec().unwrap_or_default();
    let mut e = RegistryError { status, ..Default::default() };
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(first) = v.get("errors").and_then(|x| x.get(0)) {
            e.code = first.get("code").and_then(|c| c.as_str()).unwrap_or("").to_string();
            e.message = first.get("message").and_then(|c| c.as_str()).unwrap_or("").to_string();
        } else if let Some(d) = v.get("details").and_then(|d| d.as_str()) {
            e.message = d.to_string();
        }
    }
    if e.code.is_empty() && status == 401 {
        e.code = "UNAUTHORIZED".into();
        if e.message.is_empty() {
            e.message = "authentication required".into();
        }
    }
    e
}

/// A response header as a string.
pub(crate) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `Bearer realm="…",service="…"` into the scheme and its parameters.
fn parse_challenge(h: &str) -> (String, HashMap<String, String>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            // Quoted string: up to the closing quote, honouring backslash escapes.
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_ascii_lowercase(), params)
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else { return false };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else { return false };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

/// The host part of `host[:port]` (IPv6 in brackets kept without them).
fn host_only(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    hostport.rsplit_once(':').map(|(h, _)| h).unwrap_or(hostport)
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(RegistryConfig::default())
    }
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Self {
        let ua = config.user_agent.clone().unwrap_or_else(|| format!("berth/{}", env!("CARGO_PKG_VERSION")));
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Blob GETs redirect to storage (S3, CDNs): credentials must not
            // follow there, but may follow within the registry itself.
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .max_redirects(10)
            .user_agent(ua)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            // A stalled body counts as a dropped connection and is resumed.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build();
        Registry {
            agent: ureq::Agent::new_with_config(agent_config),
            config,
            lookup: None,
            tokens: Mutex::new(HashMap::new()),
            parallel_downloads: 3,
            parallel_uploads: 5,
            retries: 5,
            upload_chunk: DEFAULT_UPLOAD_CHUNK,
        }
    }

    /// Sets the function that finds stored credentials for a registry domain
    /// (`docker.io` for Docker Hub). Per-call credentials win over it.
    pub fn with_credentials(mut self, lookup: impl Fn(&str) -> Option<Credentials> + Send + Sync + 'static) -> Self {
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// Concurrent layer uploads (Docker's `max-concurrent-uploads`, default 5).
    pub fn with_parallel_uploads(mut self, n: usize) -> Self {
        self.parallel_uploads = n.max(1);
        self
    }

    /// Bytes sent per `PATCH` when uploading a blob (at least 1 KiB).
    pub fn with_upload_chunk(mut self, bytes: u64) -> Self {
        self.upload_chunk = bytes.max(1024);
        self
    }

    /// Concurrent layer downloads (Docker's `max-concurrent-downloads`, default 3).
    pub fn with_parallel_downloads(mut self, n: usize) -> Self {
        self.parallel_downloads = n.max(1);
        self
    }

    /// The settings this client was made with (the daemon's `/info` reports them).
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Whether `hostport` is reached over plain HTTP.
    pub fn is_insecure(&self, hostport: &str) -> bool {
        let host = host_only(hostport);
        if host == "localhost" {
            return true;
        }
        let ip = host.parse::<IpAddr>().ok();
        if ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.config
            .insecure
            .iter()
            .any(|entry| entry == hostport || entry == host || ip.is_some_and(|ip| cidr_contains(entry, ip)))
    }

    pub(crate) fn base_url(&self, hostport: &str) -> String {
        let scheme = if self.is_insecure(hostport) { "http" } else { "https" };
        format!("{scheme}://{hostport}")
    }

    /// The sessions to try for `reference`, in order: for docker.io pulls the
    /// mirrors first, then the registry itself.
    pub(crate) fn sessions(&self, reference: &Reference, creds: Option<&Credentials>, push: bool) -> Vec<Session> {
        let creds = creds.cloned().or_else(|| self.lookup.as_ref().and_then(|l| l(&reference.domain)));
        let actions = if push { "pull,push" } else { "pull" };
        let mk = |base: String, creds: Option<Credentials>, mirror: bool| Session {
            base,
            repo: reference.path.clone(),
            creds,
            actions,
            mirror,
            auth: Mutex::new(None),
            sent_basic: Mutex::new(false),
            extra_scopes: Mutex::new(Vec::new()),
        };
        let mut out = Vec::new();
        if reference.domain == berth_image::reference::DEFAULT_DOMAIN {
            if !push {
                for m in &self.config.mirrors {
                    let m = m.trim_end_matches('/');
                    let base = if m.contains("://") { m.to_string() } else { self.base_url(m) };
                    // Mirrors are pull-through caches; Docker sends them no Hub credentials.
                    out.push(mk(base, None, true));
                }
            }
            out.push(mk(format!("https://{DOCKER_HUB_HOST}"), creds, false));
        } else {
            out.push(mk(self.base_url(&reference.domain), creds, false));
        }
        out
    }

    fn run<B: AsSendBody>(&self, req: Request<B>, context: &str) -> Result<Response<Body>> {
        self.agent.run(req).map_err(Error::http(context.to_string()))
    }

    /// Sends a request with the session's authorization, answering one
    /// challenge. `body` is re-sent on the retry, so only small bodies go here.
    pub(crate) fn send(
        &self,
        s: &Session,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<Response<Body>> {
        let mut retried = false;
        loop {
            let auth = s.auth.lock().ok().and_then(|g| g.clone());
            let mut b = Request::builder().method(method).uri(url);
            for (k, v) in headers {
                b = b.header(*k, v.as_str());
            }
            if let Some(a) = &auth {
                b = b.header("Authorization", a.as_str());
            }
            let context = format!("{method} {url}");
            let resp = match body {
                Some(bytes) => {
                    let req = b.body(bytes).map_err(|e| Error::InvalidArgument(format!("{context}: {e}")))?;
                    self.run(req, &context)?
                }
                None => {
                    let req = b.body(()).map_err(|e| Error::InvalidArgument(format!("{context}: {e}")))?;
                    self.run(req, &context)?
                }
            };
            if resp.status().as_u16() != 401 || retried {
                return Ok(resp);
            }
            let Some(challenge) = header(&resp, "www-authenticate") else { return Ok(resp) };
            match self.authorize(s, &challenge)? {
                Some(new_auth) if Some(&new_auth) != auth.as_ref() => {
                    if let Ok(mut g) = s.auth.lock() {
                        *g = Some(new_auth);
                    }
                    retried = true;
                }
                _ => return Ok(resp),
            }
        }
    }

    /// Sends a streaming body (a blob upload) with the authorization already
    /// established by an earlier request of the session; no retry.
    pub(crate) fn send_stream(
        &self,
        s: &Session,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: &mut dyn std::io::Read,
    ) -> Result<Response<Body>> {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = s.auth.lock().ok().and_then(|g| g.clone()) {
            b = b.header("Authorization", a);
        }
        let context = format!("{method} {url}");
        let req =
            b.body(ureq::SendBody::from_reader(body)).map_err(|e| Error::InvalidArgument(format!("{context}: {e}")))?;
        self.run(req, &context)
    }

    /// Answers a challenge: the Authorization value to retry with, or None
    /// when there is nothing to answer with (anonymous against basic auth).
    fn authorize(&self, s: &Session, challenge: &str) -> Result<Option<String>> {
        let (scheme, params) = parse_challenge(challenge);
        match scheme.as_str() {
            "basic" => {
                let h = s.creds.as_ref().and_then(Credentials::basic_header);
                if h.is_some() {
                    if let Ok(mut g) = s.sent_basic.lock() {
                        *g = true;
                    }
                }
                Ok(h)
            }
            "bearer" => {
                if let Some(t) = s.creds.as_ref().and_then(|c| c.registry_token.clone()) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let Some(realm) = params.get("realm") else {
                    return Err(Error::Registry(format!("bearer challenge without realm: {challenge}")));
                };
                let service = params.get("service").cloned().unwrap_or_default();
                let mut scope = format!("repository:{}:{}", s.repo, s.actions);
                for extra in s.extra_scopes.lock().map(|g| g.clone()).unwrap_or_default() {
                    scope.push(' ');
                    scope.push_str(&extra);
                }
                self.token(s, realm, &service, &scope).map(|t| Some(format!("Bearer {t}")))
            }
            _ => Ok(None),
        }
    }

    /// Gets (or reuses) a bearer token for `scope` from `realm`.
    fn token(&self, s: &Session, realm: &str, service: &str, scope: &str) -> Result<String> {
        let user = s.creds.as_ref().map(|c| c.username.as_str()).unwrap_or("");
        let key = format!("{realm}\n{service}\n{scope}\n{user}");
        if let Ok(cache) = self.tokens.lock() {
            if let Some((tok, until)) = cache.get(&key) {
                if Instant::now() < *until {
                    return Ok(tok.clone());
                }
            }
        }
        let context = format!("token from {realm}");
        let mut resp = match s.creds.as_ref().and_then(|c| c.identity_token.clone()) {
            // An identity token is an OAuth2 refresh token (Docker's `oauth2 POST` flow).
            Some(refresh) => {
                let form = format!(
                    "grant_type=refresh_token&refresh_token={}&service={}&scope={}&client_id=berth",
                    query_escape(&refresh),
                    query_escape(service),
                    query_escape(scope)
                );
                let req = Request::builder()
                    .method("POST")
                    .uri(realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form.as_bytes())
                    .map_err(|e| Error::InvalidArgument(format!("{context}: {e}")))?;
                self.run(req, &context)?
            }
            None => {
                let sep = if realm.contains('?') { '&' } else { '?' };
                // One `scope` parameter per scope, as distribution's token clients send them.
                let scopes: Vec<String> = scope.split(' ').map(|sc| format!("scope={}", query_escape(sc))).collect();
                let mut url = format!("{realm}{sep}{}", scopes.join("&"));
                if !service.is_empty() {
                    url.push_str(&format!("&service={}", query_escape(service)));
                }
                let basic = s.creds.as_ref().and_then(Credentials::basic_header);
                if basic.is_some() {
                    url.push_str(&format!("&account={}", query_escape(user)));
                }
                let mut b = Request::builder().method("GET").uri(&url);
                if let Some(h) = &basic {
                    b = b.header("Authorization", h.as_str());
                }
                let req = b.body(()).map_err(|e| Error::InvalidArgument(format!("{context}: {e}")))?;
                self.run(req, &context)?
            }
        };
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            let e = read_error(&mut resp);
            // Docker Hub's token server answers wrong passwords this way.
            return Err(Error::Unauthorized(format!(
                "unauthorized: {}",
                non_empty(&e.message, "incorrect username or password")
            )));
        }
        if status != 200 {
            let e = read_error(&mut resp);
            return Err(Error::Registry(format!("{context}: {}", e.docker_text())));
        }
        let body = resp.body_mut().with_config().limit(1 << 20).read_to_vec().map_err(Error::http(context.clone()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| Error::Registry(format!("{context}: invalid JSON: {e}")))?;
        let tok = v
            .get("token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .or_else(|| v.get("access_token").and_then(|t| t.as_str()))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Registry(format!("{context}: no token in response")))?
            .to_string();
        // distribution's default lifetime is 60 s; refresh a little early.
        let secs = v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(60).max(60);
        let until = Instant::now() + Duration::from_secs(secs.saturating_sub(10));
        if let Ok(mut cache) = self.tokens.lock() {
            cache.insert(key, (tok.clone(), until));
        }
        Ok(tok)
    }

    /// `docker login`: checks credentials against a registry's `/v2/` endpoint.
    pub fn login(&self, domain: &str, creds: &Credentials) -> Result<()> {
        let r = Reference::parse(&format!("{domain}/berth/login-check"))
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let sessions = self.sessions(&r, Some(creds), false);
        let Some(s) = sessions.into_iter().find(|s| !s.mirror) else {
            return Err(Error::InvalidArgument(format!("no endpoint for {domain}")));
        };
        let url = format!("{}/v2/", s.base);
        // moby's loginV2 texts: a token server's refusal is reported as the
        // failed GET, anything but 200 from the endpoint by its status.
        let mut resp = match self.send(&s, "GET", &url, &[], None) {
            Ok(r) => r,
            Err(Error::Unauthorized(m)) => return Err(Error::Unauthorized(format!("Get \"{url}\": {m}"))),
            Err(e) => return Err(e),
        };
        let status = resp.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            code => {
                let _ = read_error(&mut resp);
                let text = format!(
                    "login attempt to {url} failed with status: {code} {}",
                    status.canonical_reason().unwrap_or("")
                );
                Err(if code == 401 || code == 403 { Error::Unauthorized(text) } else { Error::Registry(text) })
            }
        }
    }
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/x:pull");
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!(s, "basic");
        assert_eq!(p["realm"], "basic-realm");
    }

    #[test]
    fn insecure_defaults() {
        let r = Registry::new(RegistryConfig {
            insecure: vec!["10.0.0.0/8".into(), "reg.local:5000".into()],
            ..Default::default()
        });
        assert!(r.is_insecure("localhost:5000"));
        assert!(r.is_insecure("127.0.0.1:5000"));
        assert!(r.is_insecure("127.3.2.1"));
        assert!(r.is_insecure("[::1]:5000"));
        assert!(r.is_insecure("10.1.2.3:443"));
        assert!(r.is_insecure("reg.local:5000"));
        assert!(!r.is_insecure("reg.local:5001"));
        assert!(!r.is_insecure("registry-1.docker.io"));
    }

    #[test]
    fn registry_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Registry>();
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials::basic("user", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
