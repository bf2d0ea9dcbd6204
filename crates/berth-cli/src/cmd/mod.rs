pub mod auth;
pub mod build;
pub mod container;
pub mod cp;
pub mod disk;
pub mod image;
pub mod network;
pub mod registry;
pub mod system;
pub mod volume;

use anyhow::Result;
use berth_client::Client;

use crate::connect::{self, Target};

/// What every command needs.
pub struct Ctx {
    pub target: Target,
}

impl Ctx {
    pub async fn client(&self) -> Result<Client> {
        connect::connect(&self.target).await
    }
}

/// Asks a yes/no question on the terminal (`[y/N]`), as docker's prune commands do.
pub fn confirm(prompt: &str) -> bool {
    use std::io::{BufRead, Write};
    print!("{prompt} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Short form of an ID: 12 hex digits without the algorithm.
pub fn short_id(id: &str) -> String {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    h.chars().take(12).collect()
}

/// Builds `?k=v&…` from pairs (values encoded; empty values dropped).
pub fn query(pairs: &[(&str, String)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", berth_client::enc(v))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `--filter k=v` flags as the API's JSON filters map.
pub fn filters_json(filters: &[String]) -> Result<String> {
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in filters {
        let (k, v) = f.split_once('=').ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        m.entry(k.trim().to_ascii_lowercase()).or_default().push(v.to_string());
    }
    if m.is_empty() {
        return Ok(String::new());
    }
    Ok(serde_json::to_string(&m)?)
}
