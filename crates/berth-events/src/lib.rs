//! The engine's event bus (`docker events`): every component publishes here,
//! `/events` subscribers receive live events, and a bounded ring of recent
//! events answers `--since` for events that already happened.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

/// Recent events kept for `since` queries (Docker keeps 256 in memory).
const RING: usize = 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

/// One event, serialised exactly as Docker's `events.Message`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Legacy fields Docker still sends for container and image events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let legacy = kind == "container" || kind == "image";
        Event {
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if kind == "container" { attributes.get("image").cloned() } else { None },
            kind: kind.into(),
            action: action.into(),
            actor: Actor { id: id.into(), attributes },
            scope: "local".into(),
            time: now / 1_000_000_000,
            time_nano: now,
        }
    }
}

pub struct EventBus {
    tx: broadcast::Sender<Event>,
    ring: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self { tx, ring: Mutex::new(VecDeque::with_capacity(RING)) }
    }

    pub fn publish(&self, ev: Event) {
        if let Ok(mut r) = self.ring.lock() {
            if r.len() == RING {
                r.pop_front();
            }
            r.push_back(ev.clone());
        }
        // No subscribers is fine.
        let _ = self.tx.send(ev);
    }

    /// Convenience for the common case.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) {
        let attributes = attrs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.publish(Event::new(kind, action, id, attributes));
    }

    /// Past events (for `since`) and a receiver for the live ones, taken
    /// atomically so no event falls between the two.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let guard = self.ring.lock();
        let rx = self.tx.subscribe();
        let past = match guard {
            Ok(r) => r.iter().cloned().collect(),
            Err(_) => Vec::new(),
        };
        (past, rx)
    }

    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_like_docker() {
        let bus = EventBus::new();
        bus.emit("image", "tag", "sha256:abc", &[("name", "busybox:latest")]);
        let (past, _rx) = bus.subscribe();
        let v = serde_json::to_value(&past[0]).unwrap();
        assert_eq!(v["Type"], "image");
        assert_eq!(v["status"], "tag");
        assert_eq!(v["Actor"]["Attributes"]["name"], "busybox:latest");
        assert_eq!(v["scope"], "local");
        assert!(v["timeNano"].as_i64().unwrap() > 0);
    }
}
