//! Manifest formats: Docker schema 2 (image manifest and manifest list) and
//! their OCI equivalents (image manifest and index), plus platform matching.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const MEDIA_DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const MEDIA_DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const MEDIA_DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// What we accept from `GET /v2/<name>/manifests/<ref>`, in Docker's order of
/// preference. Schema 1 is listed so that a registry holding only schema 1
/// answers with it and we can say why we refuse it instead of "not found".
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, \
application/vnd.docker.distribution.manifest.v1+json;q=0.1";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A platform as in manifest lists: `linux/amd64`, `linux/arm/v7`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            os_version: None,
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The platform of this host, as Go names it (`GOARCH`), which is what
    /// manifest lists use.
    pub fn host() -> Self {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new("linux", arch, variant)
    }

    /// Parses `os/arch[/variant]` (Docker's `--platform`).
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || Error::InvalidArgument(format!("invalid platform {s:?}: expected os/arch[/variant]"));
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform::new(os, &normalize_arch(arch), None)),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform::new(os, &normalize_arch(arch), Some(variant)))
            }
            _ => Err(bad()),
        }
    }

    /// containerd's matcher: same OS and architecture; a variant only
    /// matters when one is asked for (arm64's default `v8` equals none).
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        let norm = |v: &Option<String>| -> String {
            let v = v.clone().unwrap_or_default();
            if self.architecture == "arm64" && v == "v8" {
                String::new()
            } else {
                v
            }
        };
        match &self.variant {
            None => true,
            Some(_) => norm(&self.variant) == norm(&candidate.variant),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "i386" => "386".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// An image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest list / OCI index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A fetched manifest, classified.
#[derive(Debug)]
pub(crate) enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// What schema 1 manifests are refused with when the reference is unknown.
pub(crate) const SCHEMA1_REFUSED: &str =
    "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed";

/// moby 28's text for a schema 1 manifest (distribution/pull_v2.go), naming the image.
pub(crate) fn schema1_refused(reference: &str) -> String {
    format!(
        "{SCHEMA1_REFUSED}. Suggest the author of {reference} to upgrade the image to the OCI Format or \
         Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/"
    )
}

/// Classifies manifest bytes by the response's Content-Type, falling back to
/// the `mediaType` field and then the shape (some registries answer
/// `application/json`).
pub(crate) fn parse_manifest(content_type: &str, body: &[u8]) -> Result<Manifest> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    let probe: Probe =
        serde_json::from_slice(body).map_err(|e| Error::InvalidArgument(format!("invalid manifest: {e}")))?;
    let mt = match ct {
        MEDIA_DOCKER_MANIFEST
        | MEDIA_DOCKER_LIST
        | MEDIA_OCI_MANIFEST
        | MEDIA_OCI_INDEX
        | MEDIA_DOCKER_SCHEMA1
        | MEDIA_DOCKER_SCHEMA1_SIGNED => ct.to_string(),
        _ => match (&probe.media_type, probe.schema_version) {
            (_, Some(1)) => MEDIA_DOCKER_SCHEMA1.to_string(),
            (Some(m), _) => m.clone(),
            (None, _) if probe.manifests.is_some() => MEDIA_OCI_INDEX.to_string(),
            (None, _) if probe.layers.is_some() => MEDIA_OCI_MANIFEST.to_string(),
            _ => return Err(Error::InvalidArgument(format!("unsupported manifest media type {ct:?}"))),
        },
    };
    let invalid = |e: serde_json::Error| Error::InvalidArgument(format!("invalid manifest: {e}"));
    match mt.as_str() {
        MEDIA_DOCKER_SCHEMA1 | MEDIA_DOCKER_SCHEMA1_SIGNED => Err(Error::InvalidArgument(SCHEMA1_REFUSED.into())),
        MEDIA_DOCKER_LIST | MEDIA_OCI_INDEX => {
            Ok(Manifest::Index(Box::new(serde_json::from_slice(body).map_err(invalid)?)))
        }
        MEDIA_DOCKER_MANIFEST | MEDIA_OCI_MANIFEST => {
            Ok(Manifest::Image(Box::new(serde_json::from_slice(body).map_err(invalid)?)))
        }
        other => Err(Error::InvalidArgument(format!("unsupported manifest media type {other:?}"))),
    }
}

/// Picks the manifest for `want` from a list, as Docker does: the first
/// entry whose platform matches. Entries without a platform (attestations
/// carry `unknown/unknown`) never match.
pub(crate) fn select_platform<'a>(index: &'a ImageIndex, want: &Platform) -> Result<&'a Descriptor> {
    index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .ok_or_else(|| Error::NotFound(format!("no matching manifest for {want} in the manifest list entries")))
}

/// The content store's media type (OCI names) for a layer descriptor.
pub(crate) fn store_media_type(mt: &str) -> &'static str {
    if mt.ends_with("+zstd") || mt.ends_with(".zstd") {
        berth_image::store::MEDIA_TAR_ZSTD
    } else if mt.ends_with("gzip") {
        berth_image::store::MEDIA_TAR_GZIP
    } else {
        berth_image::store::MEDIA_TAR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema1_is_refused() {
        let err = parse_manifest("application/json", br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#)
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(SCHEMA1_REFUSED));
    }

    #[test]
    fn platform_matching() {
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(!want.matches(&Platform::new("linux", "amd64", None)));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!v7.matches(&Platform::new("linux", "arm", Some("v6"))));
        assert!(Platform::parse("linux").is_err());
    }
}
