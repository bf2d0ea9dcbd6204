//! A container's record: its configuration, its state, and the strings
//! Docker derives from them (`Up 2 minutes`, `Exited (0) 3 seconds ago`).

use berth_units::human_duration;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            oom_killed: false,
        }
    }
}

impl State {
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// Everything berth keeps about one container (stored as JSON in SQLite).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub config: Map<String, Value>,
    pub host_config: Map<String, Value>,
    /// The image ID.
    pub image: String,
    pub state: State,
    pub restart_count: u32,
    /// Set by `stop`/`kill` from a user, cleared by `start` (unless-stopped, and
    /// "a manually stopped container is not restarted").
    pub stopped_by_user: bool,
    pub has_been_started: bool,
    pub runtime: String,
    pub shim_pid: i32,
    #[serde(default)]
    pub network_settings: Value,
    /// Volumes, binds and tmpfs mounts, resolved at create.
    #[serde(default)]
    pub mount_points: Vec<crate::mounts::MountPoint>,
    /// The endpoints asked for at create/connect (`NetworkSettings.Networks`
    /// without addresses), by network name.
    #[serde(default)]
    pub requested_networks: Map<String, Value>,
}

impl Container {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
    pub fn image_name(&self) -> &str {
        self.config.get("Image").and_then(Value::as_str).unwrap_or("")
    }
    pub fn tty(&self) -> bool {
        self.config.get("Tty").and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn open_stdin(&self) -> bool {
        self.config.get("OpenStdin").and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn stdin_once(&self) -> bool {
        self.config.get("StdinOnce").and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn auto_remove(&self) -> bool {
        self.host_config.get("AutoRemove").and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn restart_policy(&self) -> (String, i64) {
        let rp = self.host_config.get("RestartPolicy").cloned().unwrap_or(Value::Null);
        (
            rp.get("Name").and_then(Value::as_str).unwrap_or("no").to_string(),
            rp.get("MaximumRetryCount").and_then(Value::as_i64).unwrap_or(0),
        )
    }
    pub fn labels(&self) -> Map<String, Value> {
        self.config.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default()
    }
    pub fn network_mode(&self) -> String {
        self.host_config.get("NetworkMode").and_then(Value::as_str).unwrap_or("bridge").to_string()
    }
    pub fn stop_signal(&self) -> String {
        self.config.get("StopSignal").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("SIGTERM").to_string()
    }
    pub fn stop_timeout(&self) -> i64 {
        self.config.get("StopTimeout").and_then(Value::as_i64).unwrap_or(10)
    }

    /// Docker's `Status` column text.
    pub fn status_text(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let ago = |t: &str| -> String {
            match chrono::DateTime::parse_from_rfc3339(t) {
                Ok(t) => human_duration((now - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0),
                Err(_) => String::new(),
            }
        };
        match self.state.status {
            Status::Running => format!("Up {}", ago(&self.state.started_at)),
            Status::Paused => format!("Up {} (Paused)", ago(&self.state.started_at)),
            Status::Restarting => format!("Restarting ({}) {} ago", self.state.exit_code, ago(&self.state.finished_at)),
            Status::Removing => "Removal In Progress".into(),
            Status::Dead => "Dead".into(),
            Status::Created => "Created".into(),
            Status::Exited => {
                if self.state.finished_at == ZERO_TIME {
                    "Created".into()
                } else {
                    format!("Exited ({}) {} ago", self.state.exit_code, ago(&self.state.finished_at))
                }
            }
        }
    }
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("web-1") && valid_name("a.b_c") && valid_name("ab"));
        assert!(!valid_name("a") && !valid_name("-a") && !valid_name("a b") && !valid_name("a/b"));
    }

    #[test]
    fn status_strings() {
        let now = chrono::Utc::now();
        let mut c: Container = serde_json::from_value(serde_json::json!({
            "id": "abc", "name": "n", "created": "", "path": "sh", "args": [], "config": {}, "host_config": {},
            "image": "", "state": State::default(), "restart_count": 0, "stopped_by_user": false,
            "has_been_started": false, "runtime": "berth", "shim_pid": 0
        }))
        .unwrap();
        assert_eq!(c.status_text(now), "Created");
        c.state.status = Status::Running;
        c.state.started_at = (now - chrono::Duration::seconds(125)).to_rfc3339();
        assert_eq!(c.status_text(now), "Up 2 minutes");
        c.state.status = Status::Exited;
        c.state.exit_code = 3;
        c.state.finished_at = (now - chrono::Duration::seconds(3)).to_rfc3339();
        assert_eq!(c.status_text(now), "Exited (3) 3 seconds ago");
    }
}
