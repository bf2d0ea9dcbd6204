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
}

impl Display {
    fn new(terminal: bool) -> Self {
        Self { terminal, ids: Vec::new() }
    }

    fn show(&mut self, v: &Value, err: &mut dyn Write) {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (id, status, mut progress) = (s("id"), s("status"), s("progress"));
        if self.terminal {
            // docker draws the bar from progressDetail at the terminal's width.
            if let Some(d) = v.get("progressDetail").filter(|d| d.as_object().is_some_and(|o| !o.is_empty())) {
                let n = |k: &str| d.get(k).and_then(Value::as_i64).unwrap_or(0);
                progress = berth_units::progress_bar(n("current"), n("total"), terminal_width());
            }
        }
        let has_progress = v.get("progressDetail").is_some_and(|p| p.as_object().is_some_and(|o| !o.is_empty()))
            || !progress.is_empty();
        if !self.terminal {
            if has_progress && !progress.is_empty() {
                return;
            }
            let line = if id.is_empty() { status } else { format!("{id}: {status}") };
            let _ = writeln!(err, "{line}");
            return;
        }
        let mut diff = 0;
        if !id.is_empty() && has_progress {
            let line = match self.ids.iter().position(|i| *i == id) {
                Some(l) => l,
                None => {
                    self.ids.push(id.clone());
                    let _ = writeln!(err);
                    self.ids.len() - 1
                }
            };
            diff = self.ids.len() - line;
            let _ = write!(err, "\x1b[{diff}A");
        } else if !id.is_empty() && self.ids.contains(&id) {
            let line = self.ids.iter().position(|i| *i == id).unwrap_or(0);
            diff = self.ids.len() - line;
            let _ = write!(err, "\x1b[{diff}A");
        } else {
            self.ids.clear();
        }
        let _ = write!(err, "\x1b[2K\r");
        let prefix = if id.is_empty() { String::new() } else { format!("{id}: ") };
        if has_progress {
            let _ = write!(err, "{prefix}{status} {progress}\r");
        } else {
            let _ = writeln!(err, "{prefix}{status}");
        }
        if diff > 0 {
            let _ = write!(err, "\x1b[{diff}B");
        }
        let _ = err.flush();
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
