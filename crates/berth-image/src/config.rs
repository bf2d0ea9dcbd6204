//! The parts of an image config (the OCI/Docker image JSON) berth reads. The
//! raw bytes are kept separately and never re-serialised: the image ID is
//! their sha256, and re-encoding would change it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub empty_layer: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A parsed image config; `raw` keeps every field, including ones this struct
/// does not model (Healthcheck, OnBuild, Shell…).
#[derive(Debug, Clone)]
pub struct ImageConfig {
    pub raw: Value,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let raw: Value =
            serde_json::from_slice(bytes).map_err(|source| Error::Json { context: "image config".into(), source })?;
        if !raw.is_object() {
            return Err(Error::InvalidArchive("image config is not a JSON object".into()));
        }
        let rootfs: RootFs = match raw.get("rootfs") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|source| Error::Json { context: "image config rootfs".into(), source })?,
            None => return Err(Error::InvalidArchive("image config has no rootfs".into())),
        };
        for d in &rootfs.diff_ids {
            berth_content::digest_hex(d)?;
        }
        let history = match raw.get("history") {
            Some(Value::Array(_)) => serde_json::from_value(raw["history"].clone())
                .map_err(|source| Error::Json { context: "image config history".into(), source })?,
            _ => Vec::new(),
        };
        Ok(Self { raw, rootfs, history })
    }

    pub fn str_field(&self, key: &str) -> &str {
        self.raw.get(key).and_then(Value::as_str).unwrap_or("")
    }

    pub fn created(&self) -> &str {
        self.str_field("created")
    }

    /// The container config part (`config`), or an empty object.
    pub fn container_config(&self) -> Map<String, Value> {
        match self.raw.get("config") {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }

    pub fn labels(&self) -> Map<String, Value> {
        match self.raw.get("config").and_then(|c| c.get("Labels")) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }
}

/// Chain IDs of a layer stack (OCI image spec: ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))). A snapshot is keyed
/// by its chain ID, so layers shared between images are unpacked once.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let h = Sha256::digest(format!("{prev} {d}").as_bytes());
                format!("sha256:{}", hex::encode(h))
            }
        };
        out.push(next);
    }
    out
}

/// A Docker `container.Config` with every field present, as Docker marshals it
/// into image configs (`docker import`, `commit`): clients index these fields.
pub fn default_container_config() -> Map<String, Value> {
    let v = serde_json::json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        let expect = format!("sha256:{}", hex::encode(Sha256::digest(format!("{a} {b}").as_bytes())));
        assert_eq!(c[1], expect);
    }

    #[test]
    fn parse_rejects_bad_configs() {
        assert!(ImageConfig::parse(b"[]").is_err());
        assert!(ImageConfig::parse(b"{}").is_err());
        assert!(ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":["sha256:x"]}}"#).is_err());
        let ok = ImageConfig::parse(br#"{"rootfs":{"type":"layers","diff_ids":[]},"created":"2024-01-01T00:00:00Z"}"#)
            .unwrap();
        assert_eq!(ok.created(), "2024-01-01T00:00:00Z");
    }
}
