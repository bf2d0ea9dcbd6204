//! Read-only registry queries the Engine API exposes besides pull/push:
//! `GET /distribution/{name}/json` (a manifest's descriptor and platforms,
//! without pulling) and `GET /images/search` (the v1 search API of an index).

use berth_image::Reference;
use serde_json::{json, Value};

use crate::client::{header, read_error, Credentials, Registry};
use crate::manifest::{self, Manifest, ACCEPT};
use crate::pull::{pull_error, sha256};
use crate::{Error, Result};

/// One search result as the v1 API returns it (and Docker's API forwards).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub star_count: u64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub is_automated: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(serde::Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<SearchResult>,
}

impl Registry {
    /// `docker manifest inspect`-lite as moby's distribution endpoint
    /// answers it: `{"Descriptor": {…}, "Platforms": […]}`.
    pub fn distribution_inspect(&self, reference: &Reference, creds: Option<&Credentials>) -> Result<Value> {
        let reference = if reference.tag.is_none() && reference.digest.is_none() {
            reference.with_tag("latest")
        } else {
            reference.clone()
        };
        let what = reference.digest.clone().or_else(|| reference.tag.clone()).unwrap_or_else(|| "latest".into());
        let sessions = self.sessions(&reference, creds, false);
        let Some(s) = sessions.iter().find(|s| !s.mirror) else {
            return Err(Error::NotFound(format!("no endpoint for {}", reference.familiar_name())));
        };
        let url = s.url(&format!("manifests/{what}"));
        let mut resp = self.send(s, "GET", &url, &[("Accept", ACCEPT.to_string())], None)?;
        if resp.status().as_u16() != 200 {
            let e = read_error(&mut resp);
            return Err(pull_error(&e, &reference, s));
        }
        let ct = header(&resp, "content-type").unwrap_or_default();
        let body = resp.body_mut().with_config().limit(8 << 20).read_to_vec().map_err(Error::http(&url))?;
        let digest = sha256(&body);
        if what.starts_with("sha256:") && what != digest {
            return Err(Error::DataLoss(format!("manifest verification failed for digest {what}")));
        }
        let (media_type, platforms) = match manifest::parse_manifest(&ct, &body)? {
            Manifest::Index(idx) => {
                let mt = idx.media_type.clone().unwrap_or_else(|| manifest::MEDIA_OCI_INDEX.to_string());
                let ps: Vec<Value> = idx
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .filter(|p| p.os != "unknown")
                    .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
                    .collect();
                (mt, ps)
            }
            Manifest::Image(m) => {
                let mt = m.media_type.clone().unwrap_or_else(|| manifest::MEDIA_OCI_MANIFEST.to_string());
                // The platform of a single manifest is in its config.
                let cfg_url = s.url(&format!("blobs/{}", m.config.digest));
                let mut r = self.send(s, "GET", &cfg_url, &[], None)?;
                let mut ps = Vec::new();
                if r.status().as_u16() == 200 {
                    let b = r.body_mut().with_config().limit(64 << 20).read_to_vec().map_err(Error::http(&cfg_url))?;
                    if let Ok(c) = serde_json::from_slice::<Value>(&b) {
                        let mut p = json!({
                            "architecture": c.get("architecture").cloned().unwrap_or(json!("")),
                            "os": c.get("os").cloned().unwrap_or(json!("")),
                        });
                        if let Some(v) = c.get("variant").and_then(Value::as_str) {
                            p["variant"] = json!(v);
                        }
                        ps.push(p);
                    }
                }
                (mt, ps)
            }
        };
        Ok(json!({
            "Descriptor": {"mediaType": media_type, "digest": digest, "size": body.len()},
            "Platforms": platforms,
        }))
    }

    /// The v1 search API (`GET /v1/search?q=&n=`) of the index `term` names:
    /// `host/term` searches that registry, anything else Docker Hub's index
    /// (moby's `ParseSearchIndexInfo`).
    pub fn search(&self, term: &str, limit: usize, creds: Option<&Credentials>) -> Result<Vec<SearchResult>> {
        let (index, query) = match term.split_once('/') {
            Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
                (host.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), term.to_string()),
        };
        let base = if index == "docker.io" { "https://index.docker.io".to_string() } else { self.base_url(&index) };
        let url = format!(
            "{base}/v1/search?q={}&n={}",
            crate::client::query_escape(&query),
            crate::client::query_escape(&limit.to_string())
        );
        let r =
            Reference::parse(&format!("{index}/library/search")).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let sessions = self.sessions(&r, creds, false);
        let Some(s) = sessions.iter().find(|s| !s.mirror) else {
            return Err(Error::InvalidArgument(format!("no endpoint for {index}")));
        };
        let mut resp = self.send(s, "GET", &url, &[], None)?;
        let status = resp.status().as_u16();
        if status != 200 {
            let _ = read_error(&mut resp);
            // moby's registry/session.go text.
            return Err(Error::Registry(format!("Unexpected status code {status}")));
        }
        let body = resp.body_mut().with_config().limit(16 << 20).read_to_vec().map_err(Error::http(&url))?;
        let v: SearchResults = serde_json::from_slice(&body)
            .map_err(|e| Error::Registry(format!("error decoding search results: {e}")))?;
        Ok(v.results)
    }
}
