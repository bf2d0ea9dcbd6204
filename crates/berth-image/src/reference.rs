//! Image references, parsed and normalised the way Docker's
//! `distribution/reference.ParseNormalizedNamed` does: `busybox` is
//! `docker.io/library/busybox:latest`, `localhost:5000/x` keeps its registry,
//! upper case in a repository is refused, and a 64-hex string is an ID, not a name.

use std::fmt;

use crate::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_TOTAL_MAX: usize = 255;

/// A parsed, normalised reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidReference(msg.into())
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
fn valid_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.starts_with('[') || h.ends_with(']') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some((alg, hex)) => {
            !alg.is_empty()
                && alg
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'.' | b'_' | b'-'))
                && hex.len() >= 32
                && hex.bytes().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// True for a full 64-hex-digit ID, with or without `sha256:`.
pub fn is_full_id(s: &str) -> bool {
    let h = s.strip_prefix("sha256:").unwrap_or(s);
    h.len() == 64 && h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

impl Reference {
    /// Parses a user-supplied reference and normalises it (docker.io, library/).
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() {
            return Err(invalid("invalid reference format"));
        }
        if is_full_id(s) && !s.starts_with("sha256:") {
            return Err(invalid(format!("invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                if !valid_digest(d) {
                    return Err(invalid("invalid reference format"));
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/'.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                if !valid_tag(t) {
                    return Err(invalid("invalid reference format"));
                }
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid("invalid reference format"));
        }
        let (domain, mut path) = split_domain(name);
        if !valid_domain(&domain) {
            return Err(invalid("invalid reference format"));
        }
        if domain == DEFAULT_DOMAIN && !path.contains('/') {
            path = format!("{OFFICIAL_PREFIX}{path}");
        }
        if path.split('/').any(|c| !valid_path_component(c)) {
            if path.chars().any(|c| c.is_ascii_uppercase())
                && path.to_ascii_lowercase().split('/').all(valid_path_component)
            {
                return Err(invalid(format!("invalid reference format: repository name ({path}) must be lowercase")));
            }
            return Err(invalid("invalid reference format"));
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_MAX {
            return Err(invalid("invalid reference format: repository name must not be more than 255 characters"));
        }
        Ok(Reference { domain, path, tag, digest })
    }

    /// Parses, and adds the `latest` tag when neither a tag nor a digest is given
    /// (`reference.TagNameOnly`).
    pub fn parse_with_default_tag(s: &str) -> Result<Self> {
        let mut r = Self::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some("latest".into());
        }
        Ok(r)
    }

    /// The repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker shows: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix(OFFICIAL_PREFIX).unwrap_or(&self.path).to_string()
        } else {
            self.name()
        }
    }

    /// `busybox:latest` / `busybox@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The same reference with only its tag (no digest).
    pub fn with_tag(&self, tag: &str) -> Self {
        Reference { domain: self.domain.clone(), path: self.path.clone(), tag: Some(tag.into()), digest: None }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// `splitDockerDomain`: the first component is a registry only if it looks like
/// one (has `.` or `:`, or is `localhost`, or has upper case).
fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let d = if first == LEGACY_DOMAIN { DEFAULT_DOMAIN } else { first };
            (d.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        Reference::parse_with_default_tag(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(n("user/app"), "docker.io/user/app:latest");
        assert_eq!(n("index.docker.io/library/x"), "docker.io/library/x:latest");
        assert_eq!(n("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(n("localhost/a"), "localhost/a:latest");
        assert_eq!(n("127.0.0.1:5000/a"), "127.0.0.1:5000/a:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(n(&format!("busybox@{d}")), format!("docker.io/library/busybox@{d}"));
        let r = Reference::parse("localhost:5000/a:t").unwrap();
        assert_eq!(r.familiar(), "localhost:5000/a:t");
        assert_eq!(Reference::parse("busybox").unwrap().familiar_name(), "busybox");
        assert_eq!(Reference::parse("a__b/c-d.e").unwrap().path, "a__b/c-d.e");
        // A first component with a dot is a registry, and `_` is not valid in one.
        assert!(Reference::parse("a__b.c-d/e").is_err());
    }

    #[test]
    fn rejects_bad_references() {
        let e = Reference::parse("Foo:Bar").unwrap_err().to_string();
        assert_eq!(e, "invalid reference format: repository name (library/Foo) must be lowercase");
        for bad in ["a::b", "", ":tag", "a:", "a@sha256:xyz", "-a", "a/", "a//b", "a..b", "a:ta g", "UPPER/x/"] {
            assert!(Reference::parse(bad).is_err(), "{bad} should fail");
        }
        let e = Reference::parse(&"a".repeat(64)).unwrap_err().to_string();
        assert!(e.contains("cannot specify 64-byte hexadecimal strings"), "{e}");
    }
}
