//! The daemon's registry client from `--insecure-registry`,
//! `--registry-mirror` and `--max-concurrent-downloads`, validated as
//! dockerd validates them (`registry.ValidateMirror`, `ValidateIndexName`).

use berth_registry::{Registry, RegistryConfig};

use crate::{Error, Options};

/// dockerd's mirror rules: an http(s) URL without path, query or credentials.
fn validate_mirror(m: &str) -> Result<String, Error> {
    let bad = || Error::Config(format!("invalid mirror: \"{m}\" is not a valid URI"));
    let rest = m.strip_prefix("https://").or_else(|| m.strip_prefix("http://")).ok_or_else(|| {
        Error::Config(format!(
            "invalid mirror: unsupported scheme \"{}\" in \"{m}\"",
            m.split("://").next().unwrap_or("")
        ))
    })?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() || host.contains('@') || rest.contains('?') || rest.contains('#') {
        return Err(bad());
    }
    if !path.is_empty() {
        return Err(Error::Config(format!("invalid mirror: path, query, or fragment at end of the URI \"{m}\"")));
    }
    Ok(m.trim_end_matches('/').to_string())
}

fn validate_insecure(r: &str) -> Result<String, Error> {
    if r.contains("://") {
        return Err(Error::Config(format!("insecure registry {r} should not contain '://'")));
    }
    if r.is_empty() {
        return Err(Error::Config("insecure registry must not be empty".into()));
    }
    Ok(r.trim_end_matches('/').to_string())
}

pub(crate) fn client(opts: &Options) -> Result<Registry, Error> {
    let mirrors = opts.registry_mirrors.iter().map(|m| validate_mirror(m)).collect::<Result<Vec<_>, _>>()?;
    let insecure = opts.insecure_registries.iter().map(|r| validate_insecure(r)).collect::<Result<Vec<_>, _>>()?;
    if opts.max_concurrent_downloads == 0 {
        return Err(Error::Config("invalid max concurrent downloads: 0".into()));
    }
    if opts.max_concurrent_uploads == 0 {
        return Err(Error::Config("invalid max concurrent uploads: 0".into()));
    }
    let config = RegistryConfig { insecure, mirrors, user_agent: None };
    Ok(Registry::new(config)
        .with_parallel_downloads(opts.max_concurrent_downloads)
        .with_parallel_uploads(opts.max_concurrent_uploads))
}

/// `FROM` of an image the store lacks pulls it, as Docker's builder does;
/// the build output shows the pull's status lines (`Digest: …`, `Status: …`).
pub(crate) fn builder_puller(
    registry: std::sync::Arc<Registry>,
    images: std::sync::Arc<berth_image::ImageStore>,
    events: std::sync::Arc<berth_events::EventBus>,
) -> std::sync::Arc<berth_builder::Puller> {
    std::sync::Arc::new(move |name: &str, say: &mut dyn FnMut(String)| {
        let r = berth_image::Reference::parse(name).map_err(|e| e.to_string())?;
        let r = if r.tag.is_none() && r.digest.is_none() { r.with_tag("latest") } else { r };
        let mut sink = |ev: berth_registry::ProgressEvent| {
            if let berth_registry::ProgressEvent::Status { id, status } = ev {
                say(match id {
                    Some(id) => format!("{id}: {status}"),
                    None => status,
                });
            }
        };
        let pulled = registry
            .pull(&images, &r, &berth_registry::PullOptions::default(), &mut sink)
            .map_err(|e| e.to_string())?;
        events.emit("image", "pull", &r.familiar(), &[("name", &r.familiar_name())]);
        Ok(pulled.id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_and_insecure_registries_are_validated() {
        assert_eq!(validate_mirror("https://mirror.example/").unwrap(), "https://mirror.example");
        assert_eq!(validate_mirror("http://127.0.0.1:5000").unwrap(), "http://127.0.0.1:5000");
        assert!(validate_mirror("mirror.example").is_err());
        assert!(validate_mirror("https://mirror.example/v2/").is_err());
        assert!(validate_mirror("https://user:pw@mirror.example").is_err());
        assert!(validate_insecure("http://reg:5000").is_err());
        assert_eq!(validate_insecure("10.0.0.0/8").unwrap(), "10.0.0.0/8");
    }
}
