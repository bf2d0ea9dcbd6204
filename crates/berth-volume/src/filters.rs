//! Docker's volume filters (`GET /volumes?filters=`, `POST /volumes/prune`).

use std::collections::BTreeMap;

use crate::{Error, Result, Volume};

/// Parsed filters. Values of one key are alternatives (OR) for `name` and
/// `driver`; every `label` must match (AND), as in Docker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub dangling: Option<bool>,
    /// Substrings of the name.
    pub names: Vec<String>,
    pub drivers: Vec<String>,
    /// `key` or `key=value`, all required.
    pub labels: Vec<String>,
    /// `label!=`: volumes matching any of these are excluded (prune).
    pub labels_not: Vec<String>,
    /// Prune's `all=true`.
    pub all: Option<bool>,
}

impl Filters {
    /// From the decoded `filters` query parameter (`{"label":["a=b"]}`; the
    /// old `{"label":{"a=b":true}}` form is the caller's to flatten).
    pub fn from_map(map: &BTreeMap<String, Vec<String>>) -> Result<Self> {
        let mut f = Filters::default();
        for (k, vals) in map {
            match k.as_str() {
                "dangling" => f.dangling = Some(parse_bool(k, vals)?),
                "all" => f.all = Some(parse_bool(k, vals)?),
                "name" => f.names.extend(vals.iter().cloned()),
                "driver" => f.drivers.extend(vals.iter().cloned()),
                "label" => f.labels.extend(vals.iter().cloned()),
                "label!" => f.labels_not.extend(vals.iter().cloned()),
                _ => return Err(Error::InvalidArgument(format!("invalid filter '{k}'"))),
            }
        }
        Ok(f)
    }

    /// Whether `v` passes; `dangling` is asked only when that filter is set.
    pub(crate) fn matches(&self, v: &Volume, dangling: impl FnOnce() -> Result<bool>) -> Result<bool> {
        if !self.names.is_empty() && !self.names.iter().any(|n| v.name.contains(n.as_str())) {
            return Ok(false);
        }
        if !self.drivers.is_empty() && !self.drivers.contains(&v.driver) {
            return Ok(false);
        }
        if !self.matches_labels(v) {
            return Ok(false);
        }
        if let Some(want) = self.dangling {
            if dangling()? != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn matches_labels(&self, v: &Volume) -> bool {
        self.labels.iter().all(|l| label_matches(v, l)) && !self.labels_not.iter().any(|l| label_matches(v, l))
    }
}

fn label_matches(v: &Volume, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(filter),
    }
}

/// Docker accepts `true`/`1` and `false`/`0`.
fn parse_bool(key: &str, vals: &[String]) -> Result<bool> {
    let mut out = None;
    for v in vals {
        let b = match v.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(Error::InvalidArgument(format!("invalid filter '{key}={v}'"))),
        };
        out = Some(b);
    }
    out.ok_or_else(|| Error::InvalidArgument(format!("invalid filter '{key}'")))
}
