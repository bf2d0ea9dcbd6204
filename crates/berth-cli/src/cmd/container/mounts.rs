//! `-v/--volume`, `--mount` and `--tmpfs`, parsed as docker-cli 28 parses them
//! (`cli/compose/loader/volume.go`, `opts/mount.go`), producing the JSON
//! docker sends: `Binds` strings, anonymous `Volumes`, and `Mounts` objects
//! with Go's field order and `omitempty` rules.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::values::ram_in_bytes;

/// What a `-v` spec turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub struct VolumeSpec {
    pub source: String,
    pub target: String,
    pub bind: bool,
}

fn is_windows_drive(buf: &[char], c: char) -> bool {
    c == ':' && buf.len() == 1 && buf[0].is_alphabetic()
}

fn is_file_path(source: &str) -> bool {
    let chars: Vec<char> = source.chars().collect();
    match chars.first() {
        Some('.' | '/' | '~') => return true,
        None => return false,
        _ => {}
    }
    if chars.len() == 1 {
        return false;
    }
    if source.starts_with("\\\\") {
        return true;
    }
    is_windows_drive(&chars[..1], chars[1])
}

/// `loader.ParseVolume`: `[source:]target[:options]`.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, String> {
    match spec.chars().count() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => return Ok(VolumeSpec { source: String::new(), target: spec.into(), bind: false }),
        _ => {}
    }
    let (mut source, mut target) = (String::new(), String::new());
    let mut buf: Vec<char> = Vec::new();
    let chars: Vec<char> = spec.chars().chain(std::iter::once('\0')).collect();
    for c in chars {
        if is_windows_drive(&buf, c) {
            buf.push(c);
        } else if c == ':' || c == '\0' {
            let s: String = buf.iter().collect();
            if buf.is_empty() {
                return Err(format!("invalid spec: {spec}: empty section between colons"));
            } else if source.is_empty() && c == '\0' {
                target = s;
            } else if source.is_empty() {
                source = s;
            } else if target.is_empty() {
                target = s;
            } else if c == ':' {
                return Err(format!("invalid spec: {spec}: too many colons"));
            }
            // Options (ro, rw, nocopy, propagation) stay in the bind string.
            buf.clear();
        } else {
            buf.push(c);
        }
    }
    let bind = !source.is_empty() && is_file_path(&source);
    Ok(VolumeSpec { source, target, bind })
}

/// `-v` values → (Binds, anonymous Volumes), relative bind sources made
/// absolute as docker does.
pub fn parse_volumes(specs: &[String]) -> Result<(Vec<String>, BTreeMap<String, Value>), String> {
    let mut binds = Vec::new();
    let mut volumes = BTreeMap::new();
    for spec in specs {
        let parsed = parse_volume(spec)?;
        if parsed.source.is_empty() {
            volumes.insert(spec.clone(), json!({}));
            continue;
        }
        let mut bind = spec.clone();
        if parsed.bind {
            if let Some((host, target)) = spec.split_once(':') {
                let mut host = host.to_string();
                if !host.starts_with('/') && host.starts_with('.') {
                    if let Ok(cwd) = std::env::current_dir() {
                        host = clean(&cwd.join(&host).to_string_lossy());
                    }
                }
                bind = format!("{host}:{target}");
            }
        }
        if !binds.contains(&bind) {
            binds.push(bind);
        }
    }
    Ok((binds, volumes))
}

/// Lexical path cleaning (Go's `filepath.Clean` for absolute paths).
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `--tmpfs /path[:options]` → the `Tmpfs` map.
pub fn parse_tmpfs(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|t| match t.split_once(':') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect()
}

/// Go's `encoding/csv` reading one record: comma separated, double quotes
/// around fields that contain commas.
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Err("EOF".into());
    }
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut in_quotes = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' if at_start => {
                in_quotes = true;
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    if in_quotes {
        return Err(format!("parse error on line 1, column {}: extraneous or missing \" in quoted-field", s.len() + 1));
    }
    fields.push(cur);
    Ok(fields)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[derive(Default)]
struct Mount {
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    consistency: String,
    bind: Option<Map<String, Value>>,
    volume: Option<VolumeOpts>,
    image_subpath: Option<String>,
    tmpfs: Option<Map<String, Value>>,
}

#[derive(Default)]
struct VolumeOpts {
    no_copy: bool,
    labels: BTreeMap<String, String>,
    subpath: String,
    driver_name: String,
    driver_options: Option<BTreeMap<String, String>>,
}

fn set_kv(map: &mut BTreeMap<String, String>, kv: &str) {
    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
    if !k.is_empty() {
        map.insert(k.to_string(), v.to_string());
    }
}

/// One `--mount` value → a `Mounts` entry (`MountOpt.Set`).
pub fn parse_mount(value: &str) -> Result<Value, String> {
    let mut m = Mount { kind: "volume".into(), ..Default::default() };
    for field in csv_fields(value)? {
        let (key, val, has_value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v.to_string(), true),
            None => (field.to_lowercase(), String::new(), false),
        };
        if !has_value {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => m.volume.get_or_insert_with(Default::default).no_copy = true,
                "bind-nonrecursive" => {
                    m.bind.get_or_insert_with(Map::new).insert("NonRecursive".into(), json!(true));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        }
        let bad = || format!("invalid value for {key}: {val}");
        match key.as_str() {
            "type" => m.kind = val.to_lowercase(),
            "source" | "src" => {
                m.source = val.clone();
                if !val.starts_with('/') && val.starts_with('.') {
                    if let Ok(cwd) = std::env::current_dir() {
                        m.source = clean(&cwd.join(&val).to_string_lossy());
                    }
                }
            }
            "target" | "dst" | "destination" => m.target = val.clone(),
            "readonly" | "ro" => m.read_only = parse_bool(&val).ok_or_else(bad)?,
            "consistency" => m.consistency = val.to_lowercase(),
            "bind-propagation" => {
                m.bind.get_or_insert_with(Map::new).insert("Propagation".into(), json!(val.to_lowercase()));
            }
            "bind-nonrecursive" => {
                let b = parse_bool(&val).ok_or_else(bad)?;
                m.bind.get_or_insert_with(Map::new).insert("NonRecursive".into(), json!(b));
            }
            "bind-recursive" => {
                let flag = match val.as_str() {
                    "enabled" => None,
                    "disabled" => Some("NonRecursive"),
                    "writable" => Some("ReadOnlyNonRecursive"),
                    "readonly" => Some("ReadOnlyForceRecursive"),
                    _ => {
                        return Err(format!(
                            "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                        ))
                    }
                };
                let b = m.bind.get_or_insert_with(Map::new);
                if let Some(f) = flag {
                    b.insert(f.into(), json!(true));
                }
            }
            "volume-subpath" => m.volume.get_or_insert_with(Default::default).subpath = val.clone(),
            "volume-nocopy" => {
                m.volume.get_or_insert_with(Default::default).no_copy =
                    parse_bool(&val).ok_or_else(|| format!("invalid value for volume-nocopy: {val}"))?
            }
            "volume-label" => set_kv(&mut m.volume.get_or_insert_with(Default::default).labels, &val),
            "volume-driver" => m.volume.get_or_insert_with(Default::default).driver_name = val.clone(),
            "volume-opt" => {
                let v = m.volume.get_or_insert_with(Default::default);
                set_kv(v.driver_options.get_or_insert_with(BTreeMap::new), &val);
            }
            "image-subpath" => m.image_subpath = Some(val.clone()),
            "tmpfs-size" => {
                let size = ram_in_bytes(&val).map_err(|_| bad())?;
                m.tmpfs.get_or_insert_with(Map::new).insert("SizeBytes".into(), json!(size));
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(&val, 8).map_err(|_| bad())?;
                m.tmpfs.get_or_insert_with(Map::new).insert("Mode".into(), json!(mode));
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if m.kind.is_empty() {
        return Err("type is required".into());
    }
    if m.target.is_empty() {
        return Err("target is required".into());
    }
    let mix = |what: &str| format!("cannot mix '{what}-*' options with mount type '{}'", m.kind);
    if m.volume.is_some() && m.kind != "volume" {
        return Err(mix("volume"));
    }
    if m.image_subpath.is_some() && m.kind != "image" {
        return Err(mix("image"));
    }
    if m.bind.is_some() && m.kind != "bind" {
        return Err(mix("bind"));
    }
    if m.tmpfs.is_some() && m.kind != "tmpfs" {
        return Err(mix("tmpfs"));
    }
    if let Some(b) = &m.bind {
        let set = |k: &str| b.get(k).and_then(Value::as_bool).unwrap_or(false);
        if set("ReadOnlyNonRecursive") && !m.read_only {
            return Err("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction".into());
        }
        if set("ReadOnlyForceRecursive") {
            if !m.read_only {
                return Err(
                    "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction".into()
                );
            }
            if b.get("Propagation").and_then(Value::as_str) != Some("rprivate") {
                return Err(
                    "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction".into()
                );
            }
        }
    }
    Ok(m.to_json())
}

impl Mount {
    /// Go's field order and `omitempty` for `mount.Mount`.
    fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("Type".into(), json!(self.kind));
        if !self.source.is_empty() {
            o.insert("Source".into(), json!(self.source));
        }
        o.insert("Target".into(), json!(self.target));
        if self.read_only {
            o.insert("ReadOnly".into(), json!(true));
        }
        if !self.consistency.is_empty() {
            o.insert("Consistency".into(), json!(self.consistency));
        }
        if let Some(b) = &self.bind {
            let mut bo = Map::new();
            for k in
                ["Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive"]
            {
                match b.get(k) {
                    Some(Value::Bool(false)) | None => {}
                    Some(v) => {
                        bo.insert(k.into(), v.clone());
                    }
                }
            }
            o.insert("BindOptions".into(), Value::Object(bo));
        }
        if let Some(v) = &self.volume {
            let mut vo = Map::new();
            if v.no_copy {
                vo.insert("NoCopy".into(), json!(true));
            }
            if !v.labels.is_empty() {
                vo.insert("Labels".into(), json!(v.labels));
            }
            if !v.subpath.is_empty() {
                vo.insert("Subpath".into(), json!(v.subpath));
            }
            // docker-cli 28 always allocates DriverConfig once any volume
            // option is given.
            let mut d = Map::new();
            if !v.driver_name.is_empty() {
                d.insert("Name".into(), json!(v.driver_name));
            }
            if let Some(opts) = v.driver_options.as_ref().filter(|o| !o.is_empty()) {
                d.insert("Options".into(), json!(opts));
            }
            vo.insert("DriverConfig".into(), Value::Object(d));
            o.insert("VolumeOptions".into(), Value::Object(vo));
        }
        if let Some(s) = &self.image_subpath {
            let mut io = Map::new();
            if !s.is_empty() {
                io.insert("Subpath".into(), json!(s));
            }
            o.insert("ImageOptions".into(), Value::Object(io));
        }
        if let Some(t) = &self.tmpfs {
            let mut to = Map::new();
            for k in ["SizeBytes", "Mode"] {
                if let Some(v) = t.get(k).filter(|v| v.as_i64() != Some(0)) {
                    to.insert(k.into(), v.clone());
                }
            }
            o.insert("TmpfsOptions".into(), Value::Object(to));
        }
        Value::Object(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_specs() {
        let v = |s: &str| parse_volume(s).unwrap();
        assert_eq!(v("/c1"), VolumeSpec { source: "".into(), target: "/c1".into(), bind: false });
        assert_eq!(v("/tmp:/data:ro"), VolumeSpec { source: "/tmp".into(), target: "/data".into(), bind: true });
        assert_eq!(v("myvol:/vol"), VolumeSpec { source: "myvol".into(), target: "/vol".into(), bind: false });
        assert_eq!(v("./rel:/r"), VolumeSpec { source: "./rel".into(), target: "/r".into(), bind: true });
        assert_eq!(v("a:b:c:d").source, "a:b");
        assert_eq!(parse_volume("").unwrap_err(), "invalid empty volume spec");
        assert_eq!(parse_volume("/a::/b").unwrap_err(), "invalid spec: /a::/b: empty section between colons");
        assert_eq!(parse_volume("/x:/y:ro:z").unwrap_err(), "invalid spec: /x:/y:ro:z: too many colons");
    }

    #[test]
    fn binds_and_anonymous_volumes() {
        let specs: Vec<String> =
            ["/tmp:/data:ro", "myvol:/vol", "/anon", "./rel:/r"].iter().map(|s| s.to_string()).collect();
        let (binds, vols) = parse_volumes(&specs).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(binds, vec!["/tmp:/data:ro".to_string(), "myvol:/vol".into(), format!("{}/rel:/r", cwd.display())]);
        assert_eq!(serde_json::to_value(vols).unwrap(), json!({"/anon": {}}));
    }

    #[test]
    fn mounts_like_docker_28() {
        // Recorded from docker 28.2.2's create request for the same flags.
        assert_eq!(
            parse_mount("type=bind,src=/etc,dst=/hostetc,readonly").unwrap().to_string(),
            r#"{"Type":"bind","Source":"/etc","Target":"/hostetc","ReadOnly":true}"#
        );
        assert_eq!(parse_mount("type=volume,dst=/v2").unwrap().to_string(), r#"{"Type":"volume","Target":"/v2"}"#);
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m").unwrap().to_string(),
            r#"{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576}}"#
        );
        assert_eq!(
            parse_mount("type=bind,source=/src,target=/dst,bind-propagation=rshared").unwrap().to_string(),
            r#"{"Type":"bind","Source":"/src","Target":"/dst","BindOptions":{"Propagation":"rshared"}}"#
        );
        assert_eq!(
            parse_mount(
                "type=volume,source=v,target=/v,volume-driver=local,volume-opt=o=bind,volume-label=a=b,volume-nocopy"
            )
            .unwrap()
            .to_string(),
            r#"{"Type":"volume","Source":"v","Target":"/v","VolumeOptions":{"NoCopy":true,"Labels":{"a":"b"},"DriverConfig":{"Name":"local","Options":{"o":"bind"}}}}"#
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/tm,tmpfs-mode=1770").unwrap().to_string(),
            r#"{"Type":"tmpfs","Target":"/tm","TmpfsOptions":{"Mode":1016}}"#
        );
        assert_eq!(
            parse_mount("type=bind,src=/s,dst=/d,ro=true,bind-recursive=readonly,bind-propagation=rprivate")
                .unwrap()
                .to_string(),
            r#"{"Type":"bind","Source":"/s","Target":"/d","ReadOnly":true,"BindOptions":{"Propagation":"rprivate","ReadOnlyForceRecursive":true}}"#
        );
    }

    #[test]
    fn mount_errors_like_docker_28() {
        let e = |s: &str| parse_mount(s).unwrap_err();
        assert_eq!(e("dst"), "invalid field 'dst' must be a key=value pair");
        assert_eq!(e(""), "EOF");
        assert_eq!(e("type=bind"), "target is required");
        assert_eq!(e("type=bind,dst=/x,volume-nocopy"), "cannot mix 'volume-*' options with mount type 'bind'");
        assert_eq!(e("type=bind,dst=/x,foo=bar"), "unexpected key 'foo' in 'foo=bar'");
        assert_eq!(e("type=tmpfs,dst=/x,tmpfs-size=x"), "invalid value for tmpfs-size: x");
        assert_eq!(
            e("type=bind,src=/s,dst=/d,ro=true,bind-recursive=readonly"),
            "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"
        );
    }

    #[test]
    fn tmpfs_and_csv() {
        let t = parse_tmpfs(&["/run:rw,size=64m".into(), "/x".into()]);
        assert_eq!(serde_json::to_value(t).unwrap(), json!({"/run": "rw,size=64m", "/x": ""}));
        assert_eq!(csv_fields(r#"type=bind,"src=/a,b",dst=/c"#).unwrap(), vec!["type=bind", "src=/a,b", "dst=/c"]);
    }
}
