//! Registry credentials in docker-cli's `config.json` (`$DOCKER_CONFIG`, or
//! `~/.docker`): `auths` entries with base64 `auth`, or a credential helper
//! (`credsStore` for every registry, `credHelpers` per registry) run as
//! `docker-credential-<name> get|store|erase`, so berth and the docker CLI
//! share logins. Secrets are only ever sent to the daemon in
//! `X-Registry-Auth`; nothing here prints them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// docker-cli's `registry.IndexServer`: Docker Hub's key in `auths`.
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    pub server: String,
    pub identity_token: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig").field("username", &self.username).field("server", &self.server).finish()
    }
}

impl AuthConfig {
    /// The `X-Registry-Auth` value: base64url (padded) of the JSON AuthConfig,
    /// as docker-cli's `registry.EncodeAuthConfig` writes it.
    pub fn header(&self) -> String {
        let mut v = json!({"username": self.username, "password": self.password, "serveraddress": self.server});
        if !self.identity_token.is_empty() {
            v["identitytoken"] = json!(self.identity_token);
        }
        base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
    }
}

pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker")
}

pub fn config_path() -> PathBuf {
    config_dir().join("config.json")
}

fn load() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(anyhow!("loading config file: {}: invalid JSON", p.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(anyhow!("loading config file: {}: {e}", p.display())),
    }
}

/// Writes the file atomically with mode 0600, as docker-cli does.
fn save(m: &Map<String, Value>) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = config_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".config.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(&Value::Object(m.clone()))?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, config_path()).context("saving config file")?;
    Ok(())
}

/// docker-cli's `ConvertToHostname`: `https://host/v1/` → `host`.
pub fn hostname(server: &str) -> String {
    let s = server.strip_prefix("https://").or_else(|| server.strip_prefix("http://")).unwrap_or(server);
    s.split('/').next().unwrap_or(s).to_string()
}

/// The key a registry domain is stored under (Docker Hub's is the index URL).
pub fn server_for_domain(domain: &str) -> String {
    if domain == "docker.io" || domain == "index.docker.io" {
        INDEX_SERVER.to_string()
    } else {
        domain.to_string()
    }
}

fn helper_for(m: &Map<String, Value>, server: &str) -> Option<String> {
    let host = hostname(server);
    m.get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.get(&host).or_else(|| h.get(server)))
        .or_else(|| m.get("credsStore"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn run_helper(helper: &str, action: &str, input: &str) -> Result<String> {
    let bin = format!("docker-credential-{helper}");
    let mut child = Command::new(&bin)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow!("error getting credentials - err: exec: \"{bin}\": {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(input.as_bytes());
    }
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        // The protocol's "not found" answer is on stdout.
        return Err(anyhow!(
            "{}",
            if stdout.is_empty() { String::from_utf8_lossy(&out.stderr).trim().to_string() } else { stdout }
        ));
    }
    Ok(stdout)
}

/// Stored credentials for a registry domain (`docker.io`, `localhost:5000`).
pub fn lookup(domain: &str) -> Option<AuthConfig> {
    let m = load().ok()?;
    let server = server_for_domain(domain);
    if let Some(helper) = helper_for(&m, &server) {
        let out = run_helper(&helper, "get", &server).ok()?;
        let v: Value = serde_json::from_str(&out).ok()?;
        let user = v.get("Username").and_then(Value::as_str).unwrap_or("").to_string();
        let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("").to_string();
        // A helper returns `<token>` as the user name for identity tokens.
        return Some(if user == "<token>" {
            AuthConfig { identity_token: secret, server, ..Default::default() }
        } else {
            AuthConfig { username: user, password: secret, server, ..Default::default() }
        });
    }
    let auths = m.get("auths")?.as_object()?;
    let entry =
        auths.get(&server).or_else(|| auths.iter().find(|(k, _)| hostname(k) == hostname(&server)).map(|(_, v)| v))?;
    let mut a = AuthConfig { server, ..Default::default() };
    if let Some(enc) = entry.get("auth").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD.decode(enc.trim()).ok()?;
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (u, p) = raw.split_once(':')?;
        a.username = u.to_string();
        a.password = p.trim_end_matches('\n').to_string();
    }
    a.identity_token = entry.get("identitytoken").and_then(Value::as_str).unwrap_or("").to_string();
    Some(a)
}

/// The `X-Registry-Auth` header for an image reference's registry; Docker
/// sends an empty AuthConfig when nothing is stored.
pub fn header_for_image(name: &str) -> String {
    let domain = super::container::pull::Reference::parse(name)
        .map(|r| r.name.split('/').next().unwrap_or("docker.io").to_string())
        .unwrap_or_else(|| "docker.io".into());
    match lookup(&domain) {
        Some(a) => a.header(),
        None => base64::engine::general_purpose::URL_SAFE.encode("{}"),
    }
}

/// Stores a login: in the helper when one is configured, else in `auths`.
/// Returns the file written when the credentials are kept unencrypted.
pub fn store(a: &AuthConfig) -> Result<Option<PathBuf>> {
    let mut m = load()?;
    if let Some(helper) = helper_for(&m, &a.server) {
        let (user, secret) = if a.identity_token.is_empty() {
            (a.username.as_str(), a.password.as_str())
        } else {
            ("<token>", a.identity_token.as_str())
        };
        let input = json!({"ServerURL": a.server, "Username": user, "Secret": secret}).to_string();
        run_helper(&helper, "store", &input).map_err(|e| anyhow!("error storing credentials - err: {e}"))?;
        // docker-cli keeps an empty entry so `auths` lists the registry.
        let auths = m.entry("auths").or_insert_with(|| json!({}));
        if let Some(o) = auths.as_object_mut() {
            o.insert(a.server.clone(), json!({}));
        }
        save(&m)?;
        return Ok(None);
    }
    let mut entry = Map::new();
    if a.identity_token.is_empty() {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.username, a.password));
        entry.insert("auth".into(), json!(enc));
    } else {
        let enc = base64::engine::general_purpose::STANDARD.encode(format!("{}:", a.username));
        entry.insert("auth".into(), json!(enc));
        entry.insert("identitytoken".into(), json!(a.identity_token));
    }
    let auths = m.entry("auths").or_insert_with(|| json!({}));
    if !auths.is_object() {
        *auths = json!({});
    }
    if let Some(o) = auths.as_object_mut() {
        o.insert(a.server.clone(), Value::Object(entry));
    }
    save(&m)?;
    Ok(Some(config_path()))
}

/// Removes a login; Ok(false) when there was none under `server`.
pub fn erase(server: &str) -> Result<bool> {
    let mut m = load()?;
    let mut found = false;
    if let Some(helper) = helper_for(&m, server) {
        found = run_helper(&helper, "erase", server).is_ok();
    }
    if let Some(o) = m.get_mut("auths").and_then(Value::as_object_mut) {
        found |= o.remove(server).is_some();
    }
    if found {
        save(&m)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_and_headers() {
        assert_eq!(hostname("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(hostname("localhost:5000"), "localhost:5000");
        assert_eq!(server_for_domain("docker.io"), INDEX_SERVER);
        let a = AuthConfig {
            username: "u".into(),
            password: "s3cret".into(),
            server: "r:5000".into(),
            ..Default::default()
        };
        let raw = base64::engine::general_purpose::URL_SAFE.decode(a.header()).unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["username"], "u");
        assert_eq!(v["serveraddress"], "r:5000");
        assert_eq!(v["password"], "s3cret");
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
