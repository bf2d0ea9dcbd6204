//! `--change` instructions of `docker import` and `docker commit`: Dockerfile
//! instructions applied to an image's container config (moby's
//! `dockerfile.BuildFromConfig` accepts the same set).

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The instructions Docker allows in `--change`.
const ALLOWED: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
];

/// Applies each change to `cfg` (a container config object).
pub fn apply(cfg: &mut Map<String, Value>, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (instr, rest) = match change.split_once(char::is_whitespace) {
            Some((i, r)) => (i, r.trim()),
            None => (change, ""),
        };
        let upper = instr.to_ascii_uppercase();
        if !ALLOWED.contains(&upper.as_str()) {
            return Err(Error::InvalidArgument(format!("{instr} is not a valid change command")));
        }
        if rest.is_empty() && upper != "HEALTHCHECK" {
            return Err(Error::InvalidArgument(format!("{} requires at least one argument", upper)));
        }
        match upper.as_str() {
            "CMD" => {
                cfg.insert("Cmd".into(), command_form(rest));
            }
            "ENTRYPOINT" => {
                cfg.insert("Entrypoint".into(), command_form(rest));
            }
            "ENV" => {
                let mut env: Vec<Value> = match cfg.get("Env") {
                    Some(Value::Array(a)) => a.clone(),
                    _ => Vec::new(),
                };
                for (k, v) in key_values(rest, "ENV")? {
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                    env.push(Value::String(format!("{k}={v}")));
                }
                cfg.insert("Env".into(), Value::Array(env));
            }
            "LABEL" => {
                let mut labels = match cfg.get("Labels") {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                for (k, v) in key_values(rest, "LABEL")? {
                    labels.insert(k, Value::String(v));
                }
                cfg.insert("Labels".into(), Value::Object(labels));
            }
            "EXPOSE" => {
                let mut ports = match cfg.get("ExposedPorts") {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                for p in words(rest)? {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let valid_num = num.split_once('-').map_or(num.parse::<u16>().is_ok(), |(a, b)| {
                        a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok()
                    });
                    if !valid_num || !matches!(proto, "tcp" | "udp" | "sctp") {
                        return Err(Error::InvalidArgument(format!("invalid containerPort: {p}")));
                    }
                    ports.insert(format!("{num}/{proto}"), Value::Object(Map::new()));
                }
                cfg.insert("ExposedPorts".into(), Value::Object(ports));
            }
            "VOLUME" => {
                let mut vols = match cfg.get("Volumes") {
                    Some(Value::Object(m)) => m.clone(),
                    _ => Map::new(),
                };
                let list = match json_array(rest) {
                    Some(a) => a,
                    None => words(rest)?,
                };
                for v in list {
                    vols.insert(v, Value::Object(Map::new()));
                }
                cfg.insert("Volumes".into(), Value::Object(vols));
            }
            "USER" => {
                cfg.insert("User".into(), Value::String(rest.into()));
            }
            "WORKDIR" => {
                // A relative WORKDIR is relative to the previous one, as in a Dockerfile.
                let prev = cfg.get("WorkingDir").and_then(Value::as_str).unwrap_or("").to_string();
                let wd = if rest.starts_with('/') {
                    rest.to_string()
                } else {
                    format!("{}/{}", if prev.is_empty() { "" } else { prev.trim_end_matches('/') }, rest)
                };
                cfg.insert("WorkingDir".into(), Value::String(wd));
            }
            "STOPSIGNAL" => {
                cfg.insert("StopSignal".into(), Value::String(rest.into()));
            }
            "ONBUILD" => {
                let mut ob = match cfg.get("OnBuild") {
                    Some(Value::Array(a)) => a.clone(),
                    _ => Vec::new(),
                };
                ob.push(Value::String(rest.into()));
                cfg.insert("OnBuild".into(), Value::Array(ob));
            }
            "HEALTHCHECK" => {
                if rest.eq_ignore_ascii_case("NONE") {
                    cfg.insert("Healthcheck".into(), serde_json::json!({"Test": ["NONE"]}));
                } else {
                    let cmd = rest
                        .strip_prefix("CMD")
                        .or_else(|| rest.strip_prefix("cmd"))
                        .ok_or_else(|| Error::InvalidArgument("HEALTHCHECK requires CMD or NONE".into()))?
                        .trim();
                    let test = match json_array(cmd) {
                        Some(a) => {
                            let mut t = vec![Value::String("CMD".into())];
                            t.extend(a.into_iter().map(Value::String));
                            t
                        }
                        None => vec![Value::String("CMD-SHELL".into()), Value::String(cmd.into())],
                    };
                    cfg.insert("Healthcheck".into(), serde_json::json!({ "Test": test }));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// Exec form when the argument is a JSON array of strings, else shell form.
fn command_form(rest: &str) -> Value {
    match json_array(rest) {
        Some(a) => Value::Array(a.into_iter().map(Value::String).collect()),
        None => serde_json::json!(["/bin/sh", "-c", rest]),
    }
}

/// Splits on unquoted white space, removing quotes and backslash escapes.
fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"') | (None, '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Error::InvalidArgument(format!("unmatched quote in {s:?}")));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"`, or the legacy `k v with spaces` form (ENV/LABEL with one pair).
fn key_values(rest: &str, instr: &str) -> Result<Vec<(String, String)>> {
    let ws = words(rest)?;
    let first_has_eq = ws.first().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| Error::InvalidArgument(format!("{instr} requires at least two arguments")))?;
        let v = words(v.trim())?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::InvalidArgument(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ch: &[&str]) -> Result<Map<String, Value>> {
        let mut cfg = crate::config::default_container_config();
        apply(&mut cfg, &ch.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(cfg)
    }

    #[test]
    fn applies_docker_change_commands() {
        let c = run(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/run --x",
            "ENV A=1 B=\"two words\"",
            "ENV C three four",
            "ENV A=override",
            "WORKDIR /app",
            "WORKDIR sub",
            "USER nobody",
            "EXPOSE 80 53/udp",
            "LABEL a=b \"c d\"=e",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c["Cmd"], serde_json::json!(["sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c", "/bin/run --x"]));
        assert_eq!(c["Env"], serde_json::json!(["B=two words", "C=three four", "A=override"]));
        assert_eq!(c["WorkingDir"], "/app/sub");
        assert_eq!(c["User"], "nobody");
        assert_eq!(c["ExposedPorts"], serde_json::json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Labels"], serde_json::json!({"a": "b", "c d": "e"}));
        assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
        assert_eq!(c["StopSignal"], "SIGINT");
    }

    #[test]
    fn rejects_bad_changes() {
        assert_eq!(run(&["FROM x"]).unwrap_err().to_string(), "FROM is not a valid change command");
        assert!(run(&["EXPOSE abc"]).is_err());
        assert!(run(&["ENV"]).is_err());
        assert!(run(&["LABEL a=\"b"]).is_err());
    }
}
