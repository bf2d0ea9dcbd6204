//! Pulling the image for `run`/`create` (`--pull`, or a missing image) and
//! showing the daemon's progress stream as docker's `jsonmessage` does.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use berth_client::hyper::Method;
use berth_client::Client;
use serde_json::Value;

/// A reference split docker's way: the normalized repository name (as the
/// API's `fromImage` takes it) and the tag or digest.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference {
    pub name: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses a reference, adding `docker.io/` and `library/` as docker's
    /// `ParseNormalizedNamed` does. `None` for a full image ID, which is not
    /// a name and is never pulled.
    pub fn parse(s: &str) -> Option<Reference> {
        let hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if hex64(s.strip_prefix("sha256:").unwrap_or(s)) {
            return None;
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (s, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if name.is_empty() || name.chars().any(|c| c.is_ascii_uppercase()) {
            return None;
        }
        let first = name.split('/').next().unwrap_or("");
        let has_domain = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
        let name = if has_domain {
            name.to_string()
        } else if name.contains('/') {
            format!("docker.io/{name}")
        } else {
            format!("docker.io/library/{name}")
        };
        Some(Reference { name, tag, digest })
    }

    /// `reference.FamiliarString(TagNameOnly(ref))`: `busybox:latest`.
    pub fn familiar_with_tag(&self) -> String {
        let mut s = familiar_name(&self.name);
        match (&self.tag, &self.digest) {
            (Some(t), _) => {
                s.push(':');
                s.push_str(t);
            }
            (None, None) => s.push_str(":latest"),
            (None, Some(_)) => {}
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// Drops docker.io's implicit prefixes.
pub fn familiar_name(name: &str) -> String {
    let n = name.strip_prefix("docker.io/").unwrap_or(name);
    n.strip_prefix("library/").filter(|r| !r.contains('/')).unwrap_or(n).to_string()
}

/// `POST /images/create?fromImage=&tag=` with the progress shown on stderr
/// (stdout is kept for the container ID), unless `quiet`.
pub async fn pull(client: &Client, image: &str, platform: Option<&str>, quiet: bool) -> Result<()> {
    let Some(r) = Reference::parse(image) else {
        anyhow::bail!("invalid reference format");
    };
    let tag = r.digest.clone().or(r.tag.clone()).unwrap_or_else(|| "latest".into());
    let q = super::super::query(&[
        ("fromImage", r.name.clone()),
        ("tag", tag),
        ("platform", platform.unwrap_or("").to_string()),
    ]);
    let auth = crate::cmd::auth::header_for_image(image);
    let resp = client
        .request(Method::POST, &format!("/images/create{q}"), berth_client::empty(), &[("X-Registry-Auth", &auth)])
        .await?;
    if let Some(e) = show_stream(resp, Out::Stderr, quiet, |_| {}).await? {
        return Err(super::status(e, 1));
    }
    Ok(())
}

/// Where progress goes: `pull`/`push` print it on stdout, `run`/`create` on
/// stderr (stdout is kept for the container ID).
#[derive(Clone, Copy)]
pub enum Out {
    Stdout,
    Stderr,
}

/// Shows a JSON progress stream (docker's `DisplayJSONMessagesStream`) and
/// returns the stream's error message, if it ended with one. `aux` sees the
/// structured records (push's Tag/Digest/Size).
pub async fn show_stream(
    resp: berth_client::hyper::Response<berth_client::hyper::body::Incoming>,
    out: Out,
    quiet: bool,
    mut aux: impl FnMut(&Value),
) -> Result<Option<String>> {
    let terminal = match out {
        Out::Stdout => std::io::stdout().is_terminal(),
        Out::Stderr => std::io::stderr().is_terminal(),
    };
    let mut display = Display::new(terminal);
    let mut failure = None;
    berth_client::for_each_json_line(resp, |v| {
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            failure = Some(e.to_string());
            return Ok(false);
        }
        if let Some(a) = v.get("aux") {
            aux(a);
            return Ok(true);
        }
        if !quiet {
            match out {
                Out::Stdout => display.show(&v, &mut std::io::stdout().lock()),
                Out::Stderr => display.show(&v, &mut std::io::stderr().lock()),
            }
        }
        Ok(true)
    })
    .await?;
    Ok(failure)
}

/// The terminal's width (docker draws the bar only beyond 110 columns).
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    for fd in [1, 2] {
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return ws.ws_col as usize;
        }
    }
    80
}

/// docker's `DisplayJSONMessagesStream`: on a terminal each layer keeps its
/// own line, updated in place; otherwise progress updates are dropped.
pub struct Display {
    terminal: bool,
    ids: Vec<String>,
    /// Terminal columns: docker draws the bar box only beyond 110.
    width: usize,
}

impl Display {
    fn new(terminal: bool) -> Self {
        Self { terminal, ids: Vec::new(), width: if terminal { terminal_width() } else { 200 } }
    }

    /// One message, as docker-cli's `DisplayJSONMessagesStream` and
    /// `JSONMessage.Display` do. A present `progressDetail` (even `{}`) makes
    /// the message a progress line: on a terminal it owns a line, kept by ID
    /// and updated in place with cursor moves; elsewhere it is printed only
    /// when it has no bar to draw.
    fn show(&mut self, v: &Value, out: &mut dyn Write) {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (id, status, progress_msg) = (s("id"), s("status"), s("progress"));
        let detail = v.get("progressDetail").filter(|d| d.is_object());
        let bar = detail.map(|d| {
            let n = |k: &str| d.get(k).and_then(Value::as_i64).unwrap_or(0);
            berth_units::progress_bar(n("current"), n("total"), self.width)
        });
        let mut diff = 0;
        if !id.is_empty() && (detail.is_some() || !progress_msg.is_empty()) {
            let line = match self.ids.iter().position(|i| *i == id) {
                Some(l) => l,
                None => {
                    self.ids.push(id.clone());
                    if self.terminal {
                        let _ = writeln!(out);
                    }
                    self.ids.len() - 1
                }
            };
            diff = self.ids.len() - line;
            if self.terminal && diff > 0 {
                let _ = write!(out, "\x1b[{diff}A");
            }
        } else {
            // Anything else ends the block of per-layer lines.
            self.ids.clear();
        }
        let mut endl = "";
        if self.terminal && detail.is_some() {
            let _ = write!(out, "\x1b[2K\r");
            endl = "\r";
        } else if bar.as_deref().is_some_and(|b| !b.is_empty()) {
            // No bars without a terminal.
            return;
        }
        if !id.is_empty() {
            let _ = write!(out, "{id}: ");
        }
        if self.terminal && detail.is_some() {
            let _ = write!(out, "{status} {}{endl}", bar.unwrap_or_default());
        } else if !progress_msg.is_empty() {
            let _ = write!(out, "{status} {progress_msg}{endl}");
        } else {
            let _ = writeln!(out, "{status}{endl}");
        }
        if !id.is_empty() && self.terminal && diff > 0 {
            let _ = write!(out, "\x1b[{diff}B");
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_without_a_terminal() {
        let mut d = Display::new(false);
        let mut out = Vec::new();
        for line in [
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":10,"total":100},"progress":"[==>   ] 10B/100B","id":"a1b2"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"a1b2"}"#,
            r#"{"status":"Digest: sha256:abc"}"#,
            r#"{"status":"Status: Downloaded newer image for busybox:latest"}"#,
        ] {
            d.show(&serde_json::from_str(line).unwrap(), &mut out);
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "latest: Pulling from library/busybox\na1b2: Pulling fs layer\na1b2: Pull complete\nDigest: sha256:abc\n\
             Status: Downloaded newer image for busybox:latest\n"
        );
    }

    #[test]
    fn progress_on_a_terminal_updates_each_layer_in_place() {
        let mut d = Display { terminal: true, ids: Vec::new(), width: 80 };
        let mut out = Vec::new();
        for line in [
            r#"{"status":"Pulling from library/busybox","id":"latest"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"a1"}"#,
            r#"{"status":"Pulling fs layer","progressDetail":{},"id":"b2"}"#,
            r#"{"status":"Downloading","progressDetail":{"current":10,"total":100},"id":"a1"}"#,
            r#"{"status":"Pull complete","progressDetail":{},"id":"a1"}"#,
            r#"{"status":"Digest: sha256:abc"}"#,
        ] {
            d.show(&serde_json::from_str(line).unwrap(), &mut out);
        }
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "latest: Pulling from library/busybox\n\
             \n\x1b[1A\x1b[2K\ra1: Pulling fs layer \r\x1b[1B\
             \n\x1b[1A\x1b[2K\rb2: Pulling fs layer \r\x1b[1B\
             \x1b[2A\x1b[2K\ra1: Downloading      10B/100B\r\x1b[2B\
             \x1b[2A\x1b[2K\ra1: Pull complete \r\x1b[2B\
             Digest: sha256:abc\n"
        );
    }

    #[test]
    fn references() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(r.name, "docker.io/library/busybox");
        assert_eq!(r.familiar_with_tag(), "busybox:latest");
        let r = Reference::parse("localhost:5000/a/b:1.0").unwrap();
        assert_eq!(r.name, "localhost:5000/a/b");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.familiar_with_tag(), "localhost:5000/a/b:1.0");
        let r = Reference::parse("user/app").unwrap();
        assert_eq!(r.name, "docker.io/user/app");
        assert_eq!(r.familiar_with_tag(), "user/app:latest");
        assert!(Reference::parse(&"a".repeat(64)).is_none());
        assert!(Reference::parse("Busybox").is_none());
    }
}
