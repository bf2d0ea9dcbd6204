//! Progress of a pull or push, mirroring the JSON messages Docker's daemon
//! streams (`pkg/jsonmessage`), so the API layer can forward them as is.

use serde_json::{json, Map, Value};

/// Per-layer states, with Docker's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    PullingFsLayer,
    Waiting,
    Downloading,
    VerifyingChecksum,
    DownloadComplete,
    Extracting,
    PullComplete,
    AlreadyExists,
    /// A dropped connection is being resumed (Docker: "Retrying in N seconds").
    Retrying,
    Preparing,
    Pushing,
    Pushed,
    LayerAlreadyExists,
}

impl LayerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerStatus::PullingFsLayer => "Pulling fs layer",
            LayerStatus::Waiting => "Waiting",
            LayerStatus::Downloading => "Downloading",
            LayerStatus::VerifyingChecksum => "Verifying Checksum",
            LayerStatus::DownloadComplete => "Download complete",
            LayerStatus::Extracting => "Extracting",
            LayerStatus::PullComplete => "Pull complete",
            LayerStatus::AlreadyExists => "Already exists",
            LayerStatus::Retrying => "Retrying",
            LayerStatus::Preparing => "Preparing",
            LayerStatus::Pushing => "Pushing",
            LayerStatus::Pushed => "Pushed",
            LayerStatus::LayerAlreadyExists => "Layer already exists",
        }
    }
}

/// One progress message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// A line without a layer, optionally with an ID (`Pulling from
    /// library/busybox` carries the tag as its ID), e.g. `Digest: sha256:…`,
    /// `Status: Downloaded newer image for busybox:latest`, `The push refers
    /// to repository [docker.io/library/busybox]`.
    Status { id: Option<String>, status: String },
    /// A layer's state; `id` is the 12-hex short digest Docker shows.
    Layer { id: String, status: LayerStatus, current: Option<u64>, total: Option<u64> },
    /// The end of a push: `latest: digest: sha256:… size: 527`, plus the
    /// `aux` record Docker adds for clients that want it structured.
    Pushed { tag: String, digest: String, size: u64 },
}

impl ProgressEvent {
    pub(crate) fn status(s: impl Into<String>) -> Self {
        ProgressEvent::Status { id: None, status: s.into() }
    }

    pub(crate) fn layer(digest: &str, status: LayerStatus) -> Self {
        ProgressEvent::Layer { id: short_id(digest), status, current: None, total: None }
    }

    pub(crate) fn layer_progress(digest: &str, status: LayerStatus, current: u64, total: u64) -> Self {
        ProgressEvent::Layer { id: short_id(digest), status, current: Some(current), total: Some(total) }
    }

    /// The human text of the event (`Downloading` without the bar).
    pub fn message(&self) -> String {
        match self {
            ProgressEvent::Status { status, .. } => status.clone(),
            ProgressEvent::Layer { id, status, .. } => format!("{id}: {}", status.as_str()),
            ProgressEvent::Pushed { tag, digest, size } => format!("{tag}: digest: {digest} size: {size}"),
        }
    }

    /// The event as a Docker JSON message value.
    pub fn to_json_value(&self) -> Value {
        let mut m = Map::new();
        match self {
            ProgressEvent::Status { id, status } => {
                m.insert("status".into(), json!(status));
                if let Some(id) = id {
                    m.insert("id".into(), json!(id));
                }
            }
            ProgressEvent::Layer { id, status, current, total } => {
                m.insert("status".into(), json!(status.as_str()));
                let mut detail = Map::new();
                if let Some(c) = current {
                    detail.insert("current".into(), json!(c));
                }
                if let Some(t) = total.filter(|t| *t > 0) {
                    detail.insert("total".into(), json!(t));
                }
                m.insert("progressDetail".into(), Value::Object(detail));
                // The rendered bar, as moby sends it for clients that do not draw their own.
                if let Some(c) = current {
                    let bar = berth_units::progress_bar(*c as i64, total.unwrap_or(0) as i64, 200);
                    if !bar.is_empty() {
                        m.insert("progress".into(), json!(bar));
                    }
                }
                m.insert("id".into(), json!(id));
            }
            ProgressEvent::Pushed { tag, digest, size } => {
                m.insert("status".into(), json!(self.message()));
                m.insert("progressDetail".into(), json!({}));
                m.insert("aux".into(), json!({"Tag": tag, "Digest": digest, "Size": size}));
            }
        }
        Value::Object(m)
    }

    /// The event as one line of Docker's JSON progress stream (no newline).
    pub fn to_json(&self) -> String {
        self.to_json_value().to_string()
    }
}

/// Docker's `stringid.TruncateID`: 12 hex characters without the algorithm.
pub(crate) fn short_id(digest: &str) -> String {
    let h = digest.split_once(':').map(|(_, h)| h).unwrap_or(digest);
    h[..h.len().min(12)].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let e = ProgressEvent::layer_progress(&d, LayerStatus::Downloading, 10, 100);
        assert_eq!(
            e.to_json(),
            r#"{"status":"Downloading","progressDetail":{"current":10,"total":100},"progress":"[=====>                                             ]      10B/100B","id":"abababababab"}"#
        );
        let e = ProgressEvent::layer(&d, LayerStatus::PullComplete);
        assert_eq!(e.to_json(), r#"{"status":"Pull complete","progressDetail":{},"id":"abababababab"}"#);
        let e = ProgressEvent::Status { id: Some("latest".into()), status: "Pulling from library/busybox".into() };
        assert_eq!(e.to_json(), r#"{"status":"Pulling from library/busybox","id":"latest"}"#);
    }
}
