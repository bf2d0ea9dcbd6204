//! `RUN --mount=...` and `RUN --device=...` (BuildKit
//! `instructions/commands_runmount.go` and `commands_rundevice.go`).
//!
//! A mount is a CSV list of `key=value` fields (and the bare `ro`, `rw`,
//! `required`). BuildKit validates it twice: when the instruction is parsed
//! (without variables: only CSV syntax and `from=` with a variable are
//! rejected) and when the instruction is dispatched, after expanding every
//! value with the build's variables (everything else). [`MountSpec::parse`]
//! is that second, full validation.

use std::fmt;

use crate::goconv::{parse_bool, parse_uint};
use crate::suggest;

/// The kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MountType {
    /// `type=bind` (the default): a read-only view of the context or a stage.
    #[default]
    Bind,
    /// `type=cache`: a persistent cache directory.
    Cache,
    /// `type=tmpfs`.
    Tmpfs,
    /// `type=secret`: a build secret as a file or an environment variable.
    Secret,
    /// `type=ssh`: an SSH agent socket.
    Ssh,
}

impl MountType {
    /// The name used in Dockerfiles.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareMode {
    /// Concurrent builds share the cache.
    Shared,
    /// Each concurrent build gets its own copy.
    Private,
    /// Concurrent builds wait for each other.
    Locked,
}

impl ShareMode {
    /// The name used in Dockerfiles.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareMode::Shared => "shared",
            ShareMode::Private => "private",
            ShareMode::Locked => "locked",
        }
    }
}

/// One `RUN --mount` (BuildKit `instructions.Mount`). Empty string options
/// are `None`, as BuildKit treats them as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountSpec {
    /// The flag value as written.
    pub raw: String,
    /// `type=`.
    pub kind: MountType,
    /// `from=`: a stage, image or named context.
    pub from: Option<String>,
    /// `source=` / `src=`.
    pub source: Option<String>,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// `ro`/`readonly`/`rw`/`readwrite`; defaults to read-write for cache and
    /// tmpfs mounts, read-only otherwise.
    pub read_only: bool,
    /// `size=` of a tmpfs, in bytes (0: unlimited).
    pub size_limit: i64,
    /// `id=`: cache id, or secret id.
    pub id: Option<String>,
    /// `sharing=` of a cache mount.
    pub sharing: Option<ShareMode>,
    /// `required` for secret and ssh mounts.
    pub required: bool,
    /// `env=`: environment variable a secret is exposed as (`Some("")` means
    /// the default).
    pub env: Option<String>,
    /// `mode=` (octal) for cache, secret and ssh mounts.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

/// A variable expander used while parsing mounts.
pub(crate) type Expander<'a> = &'a mut dyn FnMut(&str) -> Result<String, String>;

const ALL_MOUNT_TYPES: [&str; 5] = ["bind", "cache", "tmpfs", "secret", "ssh"];
const ALL_SHARE_MODES: [&str; 3] = ["shared", "private", "locked"];
const ALL_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

impl MountSpec {
    /// Parses and fully validates a mount, taking every value as written.
    pub fn parse(value: &str) -> Result<MountSpec, String> {
        parse_mount(value, Some(&mut |v: &str| Ok(v.to_string())))
    }
}

fn opt(v: String) -> Option<String> {
    Some(v).filter(|s| !s.is_empty())
}

/// BuildKit `parseMount`. Without an expander only the checks BuildKit does
/// at parse time run, and the result is not meaningful.
pub(crate) fn parse_mount(val: &str, mut expander: Option<Expander<'_>>) -> Result<MountSpec, String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = MountSpec { raw: val.to_string(), ..MountSpec::default() };
    let mut ro_auto = true;

    for field in &fields {
        let (key, value, has_value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v.to_string(), true),
            None => (field.to_lowercase(), String::new(), false),
        };
        if !has_value {
            if expander.is_none() {
                // Evaluated later.
                continue;
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                    continue;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                    continue;
                }
                "required" => {
                    if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                        m.required = true;
                        continue;
                    }
                    return Err(format!("unexpected key '{key}' for mount type '{}'", m.kind));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
        }

        let value = match expander.as_mut() {
            Some(expand) => expand(&value)?,
            None if key == "from" => {
                if let Some(idx) = value.find('$') {
                    if idx != value.len() - 1 {
                        return Err(format!("'{key}' doesn't support variable expansion, define alias stage instead"));
                    }
                }
                value
            }
            // Without an expander, evaluation waits for the build.
            None => continue,
        };

        let bad_value = || format!("invalid value for {key}: {value}");
        match key.as_str() {
            "type" => {
                m.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(suggest::wrap(
                            format!("unsupported mount type {}", crate::quote::go_quote(&value)),
                            &value,
                            &ALL_MOUNT_TYPES,
                            true,
                        ))
                    }
                };
            }
            "from" => m.from = opt(value),
            "source" | "src" => m.source = opt(value),
            "target" | "dst" | "destination" => m.target = opt(value),
            "readonly" | "ro" => {
                m.read_only = parse_bool(&value).ok_or_else(bad_value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(&value).ok_or_else(bad_value)?;
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    return Err(format!("unexpected key '{key}' for mount type '{}'", m.kind));
                }
                m.required = parse_bool(&value).ok_or_else(bad_value)?;
            }
            "size" => {
                if m.kind != MountType::Tmpfs {
                    return Err(format!("unexpected key '{key}' for mount type '{}'", m.kind));
                }
                m.size_limit = ram_in_bytes(&value).ok_or_else(bad_value)?;
            }
            "id" => m.id = opt(value),
            "sharing" => {
                m.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => ShareMode::Shared,
                    "private" => ShareMode::Private,
                    "locked" => ShareMode::Locked,
                    _ => {
                        return Err(suggest::wrap(
                            format!("unsupported sharing value {}", crate::quote::go_quote(&value)),
                            &value,
                            &ALL_SHARE_MODES,
                            true,
                        ))
                    }
                });
            }
            "mode" => {
                let mode = parse_uint(&value, 8, 32).ok_or_else(|| format!("invalid value {value} for mode"))?;
                m.mode = u32::try_from(mode).ok();
            }
            "uid" => {
                let uid = parse_uint(&value, 10, 32).ok_or_else(|| format!("invalid value {value} for uid"))?;
                m.uid = u32::try_from(uid).ok();
            }
            "gid" => {
                let gid = parse_uint(&value, 10, 32).ok_or_else(|| format!("invalid value {value} for gid"))?;
                m.gid = u32::try_from(gid).ok();
            }
            "env" => m.env = Some(value),
            _ => return Err(suggest::wrap(format!("unexpected key '{key}' in '{field}'"), &key, &ALL_KEYS, true)),
        }
    }

    let file_info_allowed = matches!(m.kind, MountType::Secret | MountType::Ssh | MountType::Cache);
    if !file_info_allowed {
        let kind = crate::quote::go_quote(m.kind.as_str());
        if m.mode.is_some() {
            return Err(format!("mode not allowed for {kind} type mounts"));
        }
        if m.uid.is_some() {
            return Err(format!("uid not allowed for {kind} type mounts"));
        }
        if m.gid.is_some() {
            return Err(format!("gid not allowed for {kind} type mounts"));
        }
    }

    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }

    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".to_string());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".to_string());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".to_string());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".to_string());
        }
    }

    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {} mount", m.kind));
    }
    Ok(m)
}

/// One `RUN --device` (BuildKit `instructions.Device`): a CDI device name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    /// The device name (`vendor.com/class=name`).
    pub name: String,
    /// Fail the build when the device is not available.
    pub required: bool,
}

impl Device {
    /// BuildKit `ParseDevice`.
    pub fn parse(val: &str) -> Result<Device, String> {
        let fields = csv_fields(val).map_err(|e| format!("failed to parse csv devices: {e}"))?;
        let mut d = Device::default();
        for field in &fields {
            let Some((key, value)) = field.split_once('=') else {
                let key = field.to_lowercase();
                if key == "required" {
                    d.required = true;
                    continue;
                }
                if d.name.is_empty() {
                    d.name = field.clone();
                    continue;
                }
                return Err(format!("invalid field '{field}' must be a key=value pair"));
            };
            let key = key.to_lowercase();
            match key.as_str() {
                "name" => {
                    if !d.name.is_empty() {
                        return Err(format!("device name already set to {}", d.name));
                    }
                    d.name = value.to_string();
                }
                "required" => {
                    d.required = parse_bool(value).ok_or_else(|| format!("invalid value for {key}: {value}"))?;
                }
                _ => {
                    if d.name.is_empty() {
                        d.name = field.clone();
                        continue;
                    }
                    return Err(suggest::wrap(
                        format!("unexpected key '{key}' in '{field}'"),
                        &key,
                        &["name", "required"],
                        true,
                    ));
                }
            }
        }
        Ok(d)
    }
}

/// One CSV record (`tonistiigi/go-csvvalue`, the rules of Go's
/// `encoding/csv`): `"` only opens a quoted field at its start, `""` inside
/// is a quote. Errors use Go's wording.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix("\r\n").or_else(|| line.strip_suffix('\n')).unwrap_or(line);
    if line.is_empty() {
        return Err("EOF".to_string());
    }
    let err = |pos: usize, what: &str| format!("parse error on line 1, column {}: {what}", pos + 1);
    let bare = "bare \" in non-quoted-field";
    let extraneous = "extraneous or missing \" in quoted-field";

    let mut out: Vec<String> = Vec::new();
    let mut rest = line;
    let mut pos = 0;
    'fields: loop {
        if !rest.starts_with('"') {
            let (field, more) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(i)),
                None => (rest, None),
            };
            if let Some(j) = field.find('"') {
                return Err(err(pos + j, bare));
            }
            out.push(field.to_string());
            match more {
                Some(i) => {
                    rest = &rest[i + 1..];
                    pos += i + 1;
                    continue;
                }
                None => break,
            }
        }
        // Quoted field.
        rest = &rest[1..];
        pos += 1;
        let mut half_open = false;
        loop {
            let Some(i) = rest.find('"') else {
                return Err(err(pos, extraneous));
            };
            if half_open {
                if let Some(last) = out.last_mut() {
                    last.push_str(&rest[..i]);
                }
            } else {
                out.push(rest[..i].to_string());
            }
            rest = &rest[i + 1..];
            pos += i + 1;
            match rest.chars().next() {
                Some('"') => {
                    if let Some(last) = out.last_mut() {
                        last.push('"');
                    }
                    rest = &rest[1..];
                    pos += 1;
                    half_open = true;
                }
                Some(',') => {
                    rest = &rest[1..];
                    pos += 1;
                    continue 'fields;
                }
                None => break 'fields,
                Some(_) => return Err(err(pos - 1, extraneous)),
            }
        }
    }
    Ok(out)
}

/// `go-units.RAMInBytes`: a size with an optional binary suffix (`64m`,
/// `1GiB`, `512kb`).
fn ram_in_bytes(size: &str) -> Option<i64> {
    let sep = size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) =
        if size.as_bytes()[sep] != b' ' { (&size[..=sep], &size[sep + 1..]) } else { (&size[..sep], &size[sep + 1..]) };
    let value: f64 = num.parse().ok()?;
    if value < 0.0 || !value.is_finite() {
        return None;
    }
    if sfx.is_empty() {
        return Some(value as i64);
    }
    if sfx.len() > 3 {
        return None;
    }
    let sfx = sfx.to_lowercase();
    let mut chars = sfx.chars();
    let first = chars.next()?;
    if first == 'b' {
        return (sfx.len() == 1).then_some(value as i64);
    }
    let mul: i64 = match first {
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        't' => 1 << 40,
        'p' => 1 << 50,
        _ => return None,
    };
    let tail = chars.as_str();
    if !(tail.is_empty() || tail == "b" || tail == "ib") {
        return None;
    }
    Some((value * mul as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_like_go() {
        assert_eq!(csv_fields("a,b=c"), Ok(vec!["a".to_string(), "b=c".to_string()]));
        assert_eq!(csv_fields("\"a,b\",c"), Ok(vec!["a,b".to_string(), "c".to_string()]));
        assert_eq!(csv_fields("\"a\"\"b\""), Ok(vec!["a\"b".to_string()]));
        assert_eq!(csv_fields("a,"), Ok(vec!["a".to_string(), String::new()]));
        assert_eq!(
            csv_fields("a=\"b\""),
            Err("parse error on line 1, column 3: bare \" in non-quoted-field".to_string())
        );
        assert_eq!(
            csv_fields("\"ab"),
            Err("parse error on line 1, column 2: extraneous or missing \" in quoted-field".to_string())
        );
        assert_eq!(csv_fields(""), Err("EOF".to_string()));
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1GiB"), Some(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Some(1536));
        assert_eq!(ram_in_bytes("10 kb"), Some(10 << 10));
        assert_eq!(ram_in_bytes("12x"), None);
        assert_eq!(ram_in_bytes("abc"), None);
    }

    #[test]
    fn mounts() {
        let m = MountSpec::parse("type=cache,target=/root/.cache,sharing=locked,id=pip,mode=0755,uid=1")
            .unwrap_or_default();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(ShareMode::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert_eq!(m.uid, Some(1));
        assert!(!m.read_only);

        let m = MountSpec::parse("type=secret,id=tok,env=TOKEN,required").unwrap_or_default();
        assert_eq!(m.kind, MountType::Secret);
        assert!(m.required && m.read_only);
        assert_eq!(m.env.as_deref(), Some("TOKEN"));

        let m = MountSpec::parse("target=/src,from=builder,rw").unwrap_or_default();
        assert_eq!(m.kind, MountType::Bind);
        assert!(!m.read_only);

        let m = MountSpec::parse("type=tmpfs,target=/t,size=64m").unwrap_or_default();
        assert_eq!(m.size_limit, 64 << 20);

        let errors = [
            ("type=cahce", "unsupported mount type \"cahce\" (did you mean cache?)"),
            ("type=bind,mode=0700", "mode not allowed for \"bind\" type mounts"),
            ("type=secret", "invalid secret mount. one of source, target required"),
            ("type=secret,id=a,src=b", "both source and id can't be set"),
            ("type=secret,id=a,from=x", "secret mount should not have a from"),
            ("type=bind,sharing=locked", "invalid cache sharing set for bind mount"),
            ("type=cache,sharing=lock", "unsupported sharing value \"lock\" (did you mean locked?)"),
            ("required,type=secret,id=a", "unexpected key 'required' for mount type 'bind'"),
            ("type=cache,size=1m", "unexpected key 'size' for mount type 'cache'"),
            ("type=cache,targte=/x", "unexpected key 'targte' in 'targte=/x' (did you mean target?)"),
            ("type=cache,foo", "invalid field 'foo' must be a key=value pair"),
            ("type=cache,ro=maybe", "invalid value for ro: maybe"),
            ("type=cache,mode=9", "invalid value 9 for mode"),
            ("", "failed to parse csv mounts: EOF"),
        ];
        for (raw, want) in errors {
            assert_eq!(MountSpec::parse(raw), Err(want.to_string()), "{raw}");
        }
        // Parse-time checks only look at `from`.
        assert!(parse_mount("type=nope,from=$X", None).is_err());
        assert!(parse_mount("type=nope,from=x$", None).is_ok());
    }

    #[test]
    fn devices() {
        assert_eq!(
            Device::parse("vendor.com/gpu=all,required"),
            Ok(Device { name: "vendor.com/gpu=all".into(), required: true })
        );
        assert_eq!(Device::parse("name=x,required=false"), Ok(Device { name: "x".into(), required: false }));
        assert_eq!(Device::parse("name=x,name=y"), Err("device name already set to x".to_string()));
    }
}
