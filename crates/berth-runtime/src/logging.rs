//! Log output in runc's format.
//!
//! runc logs through logrus: with `--log-format json` every line is
//! `{"level":"error","msg":"...","time":"..."}`, with `text` it is
//! `time="..." level=error msg="..."`. Shims (containerd's, and berth's) read
//! the log file after a failed command and surface the last error line, so
//! the fatal error of a command is always written as one such line.
//!
//! libcontainer reports through `tracing`; a tiny subscriber turns its events
//! into the same lines. It is deliberately not `tracing-subscriber`: we need
//! no spans, filters or formatting layers, and every runtime invocation pays
//! for initialisation on the container start path. The container's init
//! process is cloned from this process, so it inherits the subscriber and its
//! errors (after the caller has exited) still land in the log file.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// logrus' text formatter.
    #[default]
    Text,
    /// logrus' JSON formatter.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("invalid log-format: {other}")),
        }
    }
}

enum Sink {
    Stderr,
    File(File),
}

/// Where log lines go, shared by the tracing subscriber and the fatal-error
/// path of `main`.
pub struct Logger {
    sink: Mutex<Sink>,
    format: Format,
    max: LevelFilter,
}

impl Logger {
    /// Opens the log file (appending, like runc) or falls back to stderr.
    pub fn open(path: Option<&Path>, format: Format, max: LevelFilter) -> std::io::Result<Self> {
        let sink = match path {
            Some(p) => Sink::File(OpenOptions::new().create(true).append(true).open(p)?),
            None => Sink::Stderr,
        };
        Ok(Logger { sink: Mutex::new(sink), format, max })
    }

    /// True when lines go to a file, so fatal errors must also be printed to
    /// stderr (runc's `fatal` does both).
    pub fn is_file(&self) -> bool {
        self.sink.lock().map(|s| matches!(*s, Sink::File(_))).unwrap_or(false)
    }

    /// Writes one line at `level`.
    pub fn write(&self, level: Level, msg: &str) {
        let line = format_line(self.format, level, msg, &now());
        if let Ok(mut sink) = self.sink.lock() {
            // A failing log write has nowhere better to go; ignore it like
            // logrus does.
            let _ = match &mut *sink {
                Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
                Sink::File(f) => f.write_all(line.as_bytes()),
            };
        }
    }
}

/// logrus' default timestamp, RFC 3339 in seconds, as runc writes it.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// One log line, newline-terminated, in logrus' layout.
pub(crate) fn format_line(format: Format, level: Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            // Field order matches logrus (alphabetical): level, msg, time.
            let mut s = String::with_capacity(msg.len() + 64);
            s.push_str("{\"level\":\"");
            s.push_str(level_name(level));
            s.push_str("\",\"msg\":");
            s.push_str(&serde_json::Value::from(msg).to_string());
            s.push_str(",\"time\":\"");
            s.push_str(time);
            s.push_str("\"}\n");
            s
        }
        Format::Text => {
            let quoted = serde_json::Value::from(msg).to_string();
            format!("time=\"{time}\" level={} msg={quoted}\n", level_name(level))
        }
    }
}

/// Collects an event's message and fields into one logfmt-ish string.
struct MessageVisitor {
    msg: String,
    fields: String,
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// The tracing subscriber: events at or above the level become log lines;
/// spans are accepted and ignored.
pub struct LogSubscriber {
    logger: &'static Logger,
}

impl LogSubscriber {
    /// Wraps a logger that lives for the rest of the process.
    pub fn new(logger: &'static Logger) -> Self {
        LogSubscriber { logger }
    }
}

impl Subscriber for LogSubscriber {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.logger.max >= *metadata.level()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.logger.max)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut v = MessageVisitor { msg: String::new(), fields: String::new() };
        event.record(&mut v);
        v.msg.push_str(&v.fields);
        self.logger.write(*event.metadata().level(), &v.msg);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_is_logrus_shaped() {
        let line = format_line(
            Format::Json,
            Level::ERROR,
            r#"exec: "foo": executable file not found in $PATH"#,
            "2026-01-01T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], r#"exec: "foo": executable file not found in $PATH"#);
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
        assert!(line.ends_with('\n'));
        assert!(line.starts_with("{\"level\":\"error\",\"msg\":"));
    }

    #[test]
    fn text_line() {
        let line = format_line(Format::Text, Level::WARN, "a \"b\"", "T");
        assert_eq!(line, "time=\"T\" level=warning msg=\"a \\\"b\\\"\"\n");
    }

    #[test]
    fn format_parse() {
        assert_eq!("json".parse::<Format>(), Ok(Format::Json));
        assert!("xml".parse::<Format>().is_err());
    }
}
