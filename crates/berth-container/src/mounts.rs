//! A container's mounts: `HostConfig.Binds`, `HostConfig.Mounts`,
//! `HostConfig.Tmpfs`, `HostConfig.VolumesFrom` and `Config.Volumes` (the
//! image's `VOLUME`s merged in) become the container's mount points at
//! create, as moby's `registerMountPoints` and its Linux mount parser do,
//! with Docker's error texts. At start they become OCI mounts with their
//! destinations resolved inside the rootfs.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::strings;
use crate::{Error, Result};

/// One mount point of a container, persisted with its record; the public
/// fields serialise as the Engine API's `MountPoint` (`docker inspect`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Source")]
    pub source: String,
    #[serde(rename = "Destination")]
    pub destination: String,
    #[serde(rename = "Driver", default)]
    pub driver: String,
    #[serde(rename = "Mode")]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    #[serde(rename = "Propagation")]
    pub propagation: String,
    /// Copy the image's content into an empty volume at first mount
    /// (false with `nocopy` / `volume-nocopy`).
    #[serde(rename = "CopyData", default)]
    pub copy_data: bool,
    /// The volume was made for this container (`-v /path`, image `VOLUME`):
    /// `rm -v` and `--rm` remove it.
    #[serde(rename = "Anonymous", default)]
    pub anonymous: bool,
    /// tmpfs mount options (`size=…`, `mode=…`).
    #[serde(rename = "TmpfsOptions", default)]
    pub tmpfs_options: Vec<String>,
    /// From `HostConfig.Tmpfs`: not listed in inspect's `Mounts`, as Docker.
    #[serde(rename = "FromTmpfsField", default)]
    pub from_tmpfs_field: bool,
    /// `bind-nonrecursive`.
    #[serde(rename = "NonRecursive", default)]
    pub non_recursive: bool,
}

impl MountPoint {
    /// The Engine API view (inspect `Mounts`, `ps` `Mounts`).
    pub fn api(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if self.kind == "volume" {
            v["Name"] = json!(self.name);
            v["Driver"] = json!(self.driver);
        }
        v
    }
}

/// A volume the create step must make (or find) for a mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRequest {
    /// `None`: anonymous.
    pub name: Option<String>,
    pub driver: String,
    pub opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A mount point before its side effects: a volume still to be created, a
/// bind source to create (`-v /missing:/p` makes the host directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub mp: MountPoint,
    pub volume: Option<VolumeRequest>,
    pub create_source: bool,
}

struct MountErr;

impl MountErr {
    /// moby's `errMountConfig`.
    fn config(kind: &str, msg: impl std::fmt::Display) -> Error {
        Error::InvalidArgument(format!("invalid mount config for type {kind:?}: {msg}"))
    }
}

const PROPAGATIONS: [&str; 6] = ["shared", "rshared", "slave", "rslave", "private", "rprivate"];

/// moby's `ValidMountMode` for Linux: at most one of rw/ro, one label mode
/// (z/Z), one propagation, one copy mode (nocopy), and the consistency
/// modes Docker Desktop accepts.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let (mut rw, mut label, mut prop, mut copy, mut cons) = (0, 0, 0, 0, 0);
    for m in mode.split(',') {
        match m {
            "rw" | "ro" => rw += 1,
            "z" | "Z" => label += 1,
            "nocopy" => copy += 1,
            "consistent" | "cached" | "delegated" => cons += 1,
            p if PROPAGATIONS.contains(&p) => prop += 1,
            _ => return false,
        }
    }
    rw <= 1 && label <= 1 && prop <= 1 && copy <= 1 && cons <= 1
}

fn mode_has(mode: &str, m: &str) -> bool {
    mode.split(',').any(|x| x == m)
}

fn mode_propagation(mode: &str) -> Option<String> {
    mode.split(',').find(|x| PROPAGATIONS.contains(x)).map(String::from)
}

/// Lexical clean of an absolute path (Go's `filepath.Clean`).
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

fn check_destination(kind: &str, dest: &str) -> Result<String> {
    if dest.is_empty() {
        return Err(MountErr::config(kind, "field Target must not be empty"));
    }
    if !dest.starts_with('/') {
        return Err(MountErr::config(kind, format!("invalid mount path: '{dest}' mount path must be absolute")));
    }
    let d = clean(dest);
    if d == "/" {
        return Err(MountErr::config(kind, "invalid specification: destination can't be '/'"));
    }
    Ok(d)
}

fn anonymous_volume(dest: String, rw: bool, mode: String, copy: bool, driver: &str) -> Planned {
    Planned {
        mp: MountPoint {
            kind: "volume".into(),
            name: String::new(),
            source: String::new(),
            destination: dest,
            driver: if driver.is_empty() { "local".into() } else { driver.into() },
            mode,
            rw,
            propagation: String::new(),
            copy_data: copy,
            anonymous: true,
            tmpfs_options: Vec::new(),
            from_tmpfs_field: false,
            non_recursive: false,
        },
        volume: Some(VolumeRequest {
            name: None,
            driver: driver.to_string(),
            opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        }),
        create_source: false,
    }
}

/// One `-v`/`Binds` entry, as moby's `linuxParser.ParseMountRaw`.
pub fn parse_bind(spec: &str, volume_driver: &str) -> Result<Planned> {
    let invalid = || Error::InvalidArgument(format!("invalid volume specification: '{spec}'"));
    let wrap = |e: Error| Error::InvalidArgument(format!("invalid volume specification: '{spec}': {e}"));
    let arr: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match arr.as_slice() {
        [d] => ("", *d, ""),
        [a, b] => {
            // `/foo:rw` is a destination with a mode: volumes need a name.
            if valid_mode(b) && !b.is_empty() {
                return Err(invalid());
            }
            (*a, *b, "")
        }
        [a, b, m] => {
            if !valid_mode(m) {
                return Err(Error::InvalidArgument(format!("invalid mode: {m}")));
            }
            (*a, *b, *m)
        }
        _ => return Err(invalid()),
    };
    if dst.is_empty() {
        return Err(invalid());
    }
    let rw = !mode_has(mode, "ro");
    let copy = !mode_has(mode, "nocopy");
    if src.is_empty() {
        let dest = check_destination("volume", dst).map_err(wrap)?;
        return Ok(anonymous_volume(
            dest,
            rw,
            if mode.is_empty() { "z".into() } else { mode.into() },
            copy,
            volume_driver,
        ));
    }
    if src.starts_with('/') {
        let dest = check_destination("bind", dst).map_err(wrap)?;
        if mode_has(mode, "nocopy") {
            return Err(wrap(MountErr::config("bind", "field VolumeOptions must not be specified")));
        }
        let source = clean(src);
        return Ok(Planned {
            mp: MountPoint {
                kind: "bind".into(),
                name: String::new(),
                source,
                destination: dest,
                driver: String::new(),
                mode: mode.into(),
                rw,
                propagation: mode_propagation(mode).unwrap_or_else(|| "rprivate".into()),
                copy_data: false,
                anonymous: false,
                tmpfs_options: Vec::new(),
                from_tmpfs_field: false,
                non_recursive: false,
            },
            volume: None,
            // Docker creates a missing host path for `-v` (not for --mount).
            create_source: true,
        });
    }
    let dest = check_destination("volume", dst).map_err(wrap)?;
    if mode_propagation(mode).is_some() {
        return Err(wrap(MountErr::config("volume", "field BindOptions must not be specified")));
    }
    let driver = if volume_driver.is_empty() { "local" } else { volume_driver };
    Ok(Planned {
        mp: MountPoint {
            kind: "volume".into(),
            name: src.into(),
            source: String::new(),
            destination: dest,
            driver: driver.into(),
            mode: if mode.is_empty() { "z".into() } else { mode.into() },
            rw,
            propagation: String::new(),
            copy_data: copy,
            anonymous: false,
            tmpfs_options: Vec::new(),
            from_tmpfs_field: false,
            non_recursive: false,
        },
        volume: Some(VolumeRequest {
            name: Some(src.into()),
            driver: driver.into(),
            opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        }),
        create_source: false,
    })
}

fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.iter().find(|(x, _)| x.eq_ignore_ascii_case(k)).map(|(_, v)| v).filter(|v| !v.is_null())
}

fn str_field(o: &Map<String, Value>, k: &str) -> String {
    field(o, k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default()
}

/// Docker's `ConvertTmpfsOptions`: size in KiB, mode in octal.
fn tmpfs_options(o: Option<&Map<String, Value>>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let Some(o) = o else { return Ok(out) };
    if let Some(size) = field(o, "SizeBytes").and_then(Value::as_i64) {
        if size < 0 {
            return Err(MountErr::config("tmpfs", format!("invalid tmpfs size: {size}")));
        }
        if size > 0 {
            // Round up to KiB as Docker does (the kernel would anyway).
            out.push(format!("size={}k", (size + 1023) / 1024));
        }
    }
    if let Some(mode) = field(o, "Mode").and_then(Value::as_u64) {
        if mode > 0 {
            out.push(format!("mode={:o}", mode & 0o7777));
        }
    }
    Ok(out)
}

/// One `HostConfig.Mounts` entry, as moby's `validateMountConfig` plus
/// `ParseMountSpec`.
pub fn parse_mount(m: &Value, volume_driver: &str) -> Result<Planned> {
    let o = m.as_object().ok_or_else(|| Error::InvalidArgument("invalid mount config: expected an object".into()))?;
    let kind = str_field(o, "Type");
    let source = str_field(o, "Source");
    let target = str_field(o, "Target");
    let read_only = field(o, "ReadOnly").and_then(Value::as_bool).unwrap_or(false);
    let bind_opts = field(o, "BindOptions").and_then(Value::as_object);
    let vol_opts = field(o, "VolumeOptions").and_then(Value::as_object);
    let tmpfs_opts = field(o, "TmpfsOptions").and_then(Value::as_object);
    let not_allowed = |what: &str| MountErr::config(&kind, format!("field {what} must not be specified"));
    match kind.as_str() {
        "bind" => {
            if vol_opts.is_some() {
                return Err(not_allowed("VolumeOptions"));
            }
            if tmpfs_opts.is_some() {
                return Err(not_allowed("TmpfsOptions"));
            }
            let dest = check_destination("bind", &target)?;
            if source.is_empty() {
                return Err(MountErr::config("bind", "field Source must not be empty"));
            }
            if !source.starts_with('/') {
                return Err(MountErr::config(
                    "bind",
                    format!("invalid mount path: '{source}' mount path must be absolute"),
                ));
            }
            let src = clean(&source);
            if std::fs::symlink_metadata(&src).is_err() {
                return Err(MountErr::config("bind", format!("bind source path does not exist: {src}")));
            }
            let prop = bind_opts.map(|b| str_field(b, "Propagation")).unwrap_or_default();
            if !prop.is_empty() && !PROPAGATIONS.contains(&prop.as_str()) {
                return Err(MountErr::config("bind", format!("invalid propagation mode: {prop}")));
            }
            let non_recursive =
                bind_opts.and_then(|b| field(b, "NonRecursive")).and_then(Value::as_bool).unwrap_or(false);
            Ok(Planned {
                mp: MountPoint {
                    kind: "bind".into(),
                    name: String::new(),
                    source: src,
                    destination: dest,
                    driver: String::new(),
                    mode: String::new(),
                    rw: !read_only,
                    propagation: if prop.is_empty() { "rprivate".into() } else { prop },
                    copy_data: false,
                    anonymous: false,
                    tmpfs_options: Vec::new(),
                    from_tmpfs_field: false,
                    non_recursive,
                },
                volume: None,
                create_source: false,
            })
        }
        "volume" => {
            if bind_opts.is_some() {
                return Err(not_allowed("BindOptions"));
            }
            if tmpfs_opts.is_some() {
                return Err(not_allowed("TmpfsOptions"));
            }
            let dest = check_destination("volume", &target)?;
            let nocopy = vol_opts.and_then(|v| field(v, "NoCopy")).and_then(Value::as_bool).unwrap_or(false);
            let labels = str_map(vol_opts.and_then(|v| field(v, "Labels")));
            let dc = vol_opts.and_then(|v| field(v, "DriverConfig")).and_then(Value::as_object);
            let driver = dc.map(|d| str_field(d, "Name")).filter(|d| !d.is_empty());
            let driver =
                driver.unwrap_or_else(|| if volume_driver.is_empty() { "local".into() } else { volume_driver.into() });
            let opts = str_map(dc.and_then(|d| field(d, "Options")));
            let anonymous = source.is_empty();
            Ok(Planned {
                mp: MountPoint {
                    kind: "volume".into(),
                    name: source.clone(),
                    source: String::new(),
                    destination: dest,
                    driver: driver.clone(),
                    mode: "z".into(),
                    rw: !read_only,
                    propagation: String::new(),
                    copy_data: !nocopy,
                    anonymous,
                    tmpfs_options: Vec::new(),
                    from_tmpfs_field: false,
                    non_recursive: false,
                },
                volume: Some(VolumeRequest { name: (!anonymous).then_some(source), driver, opts, labels }),
                create_source: false,
            })
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(not_allowed("Source"));
            }
            if bind_opts.is_some() {
                return Err(not_allowed("BindOptions"));
            }
            if vol_opts.is_some() {
                return Err(not_allowed("VolumeOptions"));
            }
            let dest = check_destination("tmpfs", &target)?;
            Ok(Planned {
                mp: MountPoint {
                    kind: "tmpfs".into(),
                    name: String::new(),
                    source: String::new(),
                    destination: dest,
                    driver: String::new(),
                    mode: String::new(),
                    rw: !read_only,
                    propagation: String::new(),
                    copy_data: false,
                    anonymous: false,
                    tmpfs_options: tmpfs_options(tmpfs_opts)?,
                    from_tmpfs_field: false,
                    non_recursive: false,
                },
                volume: None,
                create_source: false,
            })
        }
        "" => Err(MountErr::config("", "mount type unknown")),
        _ => Err(MountErr::config(&kind, "mount type unknown")),
    }
}

/// `HostConfig.Tmpfs` (`--tmpfs /p:opts`): Docker's defaults
/// `rw,noexec,nosuid,nodev` merged with the user's options.
fn parse_tmpfs_field(dest: &str, opts: &str) -> Result<Planned> {
    let d = check_destination("tmpfs", dest).map_err(|_| {
        Error::InvalidArgument(format!("invalid tmpfs mount path: '{dest}' mount path must be absolute"))
    })?;
    let mut rw = true;
    let mut options = Vec::new();
    for o in opts.split(',').filter(|s| !s.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            o => options.push(o.to_string()),
        }
    }
    Ok(Planned {
        mp: MountPoint {
            kind: "tmpfs".into(),
            name: String::new(),
            source: String::new(),
            destination: d,
            driver: String::new(),
            mode: String::new(),
            rw,
            propagation: String::new(),
            copy_data: false,
            anonymous: false,
            tmpfs_options: options,
            from_tmpfs_field: true,
            non_recursive: false,
        },
        volume: None,
        create_source: false,
    })
}

/// All mount points of a new container, in Docker's precedence:
/// `VolumesFrom` first, then `Binds` and `Mounts` (a destination given
/// twice among these is `Duplicate mount point`), `Tmpfs`, and finally an
/// anonymous volume for each `Config.Volumes` entry nothing else covers.
/// `volumes_from` looks a container up and returns its mount points.
pub fn plan(
    config: &Map<String, Value>,
    host_config: &Map<String, Value>,
    volumes_from: &dyn Fn(&str) -> Result<Vec<MountPoint>>,
) -> Result<Vec<Planned>> {
    let driver = host_config.get("VolumeDriver").and_then(Value::as_str).unwrap_or("");
    let mut by_dest: BTreeMap<String, Planned> = BTreeMap::new();
    for spec in strings(host_config.get("VolumesFrom")) {
        let (name, mode) = match spec.split_once(':') {
            Some((n, m)) => (n.to_string(), m.to_string()),
            None => (spec.clone(), String::new()),
        };
        if !mode.is_empty() && mode != "ro" && mode != "rw" {
            return Err(Error::InvalidArgument(format!("invalid mode: {mode}")));
        }
        for mut mp in volumes_from(&name)? {
            if mp.kind == "tmpfs" {
                continue;
            }
            if !mode.is_empty() {
                mp.rw = mode == "rw";
                mp.mode = mode.clone();
            }
            // Shared, not owned: `rm -v` of this container keeps it.
            mp.anonymous = false;
            mp.copy_data = false;
            by_dest.insert(mp.destination.clone(), Planned { mp, volume: None, create_source: false });
        }
    }
    let mut seen = HashSet::new();
    let mut user = Vec::new();
    for b in strings(host_config.get("Binds")) {
        user.push(parse_bind(&b, driver)?);
    }
    for m in host_config.get("Mounts").and_then(Value::as_array).into_iter().flatten() {
        user.push(parse_mount(m, driver)?);
    }
    if let Some(Value::Object(t)) = host_config.get("Tmpfs") {
        for (dest, opts) in t {
            user.push(parse_tmpfs_field(dest, opts.as_str().unwrap_or(""))?);
        }
    }
    for p in user {
        if !seen.insert(p.mp.destination.clone()) {
            return Err(Error::InvalidArgument(format!("Duplicate mount point: {}", p.mp.destination)));
        }
        by_dest.insert(p.mp.destination.clone(), p);
    }
    if let Some(Value::Object(vols)) = config.get("Volumes") {
        for dest in vols.keys() {
            let d = check_destination("volume", dest)?;
            if by_dest.contains_key(&d) {
                continue;
            }
            by_dest.insert(d.clone(), anonymous_volume(d, true, String::new(), true, driver));
        }
    }
    Ok(by_dest.into_values().collect())
}

/// OCI mounts for the container's mount points, in Docker's order (fewer
/// path components first, so a parent is mounted before what is inside it).
/// `sources` gives each mount point's host path (volumes: their data dir);
/// `dests` its destination already resolved inside the rootfs.
pub fn oci_mounts(mps: &[MountPoint], dests: &[String]) -> Vec<Value> {
    let mut idx: Vec<usize> = (0..mps.len()).collect();
    idx.sort_by_key(|i| dests[*i].split('/').filter(|s| !s.is_empty()).count());
    let mut out = Vec::new();
    for i in idx {
        let mp = &mps[i];
        let dest = &dests[i];
        if mp.kind == "tmpfs" {
            let mut options: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
            let mut user = mp.tmpfs_options.clone();
            // The user's exec/suid/dev words override the defaults.
            for (neg, pos) in [("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")] {
                if user.iter().any(|o| o == pos) {
                    options.retain(|o| o != neg);
                }
            }
            options.append(&mut user);
            options.retain(|o| o != "exec" && o != "suid" && o != "dev");
            options.push(if mp.rw { "rw" } else { "ro" }.into());
            out.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}));
            continue;
        }
        let mut options = vec![if mp.non_recursive { "bind" } else { "rbind" }.to_string()];
        let prop = if mp.propagation.is_empty() { "rprivate" } else { mp.propagation.as_str() };
        options.push(prop.to_string());
        options.push(if mp.rw { "rw" } else { "ro" }.into());
        out.push(json!({"destination": dest, "type": "bind", "source": mp.source, "options": options}));
    }
    out
}

/// Resolves `dest` inside `rootfs` without leaving it (a symlink in the
/// image pointing at `/etc` means the rootfs's `/etc`: CVE-2021-30465
/// class), creates the mount point (a directory, or an empty file when
/// the source is not a directory) and returns the container path the
/// runtime should mount on.
pub fn prepare_destination(rootfs: &Path, dest: &str, source_is_dir: bool) -> Result<String> {
    let host = berth_fsops::resolve_in_root(rootfs, dest, true)
        .map_err(|e| Error::InvalidArgument(format!("error while creating mount source path '{dest}': {e}")))?;
    let rel: PathBuf = host.strip_prefix(rootfs).map(Path::to_path_buf).map_err(|_| {
        Error::InvalidArgument(format!("mount destination {dest} resolves outside of the container root"))
    })?;
    match std::fs::symlink_metadata(&host) {
        Ok(_) => {}
        Err(_) if source_is_dir => {
            std::fs::create_dir_all(&host).map_err(Error::io(format!("creating mount point {dest}")))?;
        }
        Err(_) => {
            if let Some(parent) = host.parent() {
                std::fs::create_dir_all(parent).map_err(Error::io(format!("creating mount point {dest}")))?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&host)
                .map_err(Error::io(format!("creating mount point {dest}")))?;
        }
    }
    Ok(format!("/{}", rel.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Planned>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn binds_parse_like_docker() {
        let p = parse_bind("data:/d", "").unwrap();
        assert_eq!(
            (p.mp.kind.as_str(), p.mp.name.as_str(), p.mp.mode.as_str(), p.mp.rw),
            ("volume", "data", "z", true)
        );
        assert!(p.mp.copy_data);
        let p = parse_bind("data:/d:ro,nocopy", "").unwrap();
        assert!(!p.mp.rw && !p.mp.copy_data);
        let p = parse_bind("/h/../h2:/b/:ro", "").unwrap();
        assert_eq!((p.mp.kind.as_str(), p.mp.source.as_str(), p.mp.destination.as_str()), ("bind", "/h2", "/b"));
        assert_eq!((p.mp.mode.as_str(), p.mp.propagation.as_str(), p.create_source), ("ro", "rprivate", true));
        let p = parse_bind("/anon", "").unwrap();
        assert!(p.mp.anonymous && p.volume.as_ref().unwrap().name.is_none());
        assert_eq!(err(parse_bind("/foo:rw", "")), "invalid volume specification: '/foo:rw'");
        assert_eq!(err(parse_bind("a:/b:xx", "")), "invalid mode: xx");
        assert_eq!(err(parse_bind("a:b:c:d", "")), "invalid volume specification: 'a:b:c:d'");
        assert_eq!(
            err(parse_bind("foo:bar", "")),
            "invalid volume specification: 'foo:bar': invalid mount config for type \"volume\": invalid mount path: 'bar' mount path must be absolute"
        );
        assert!(err(parse_bind("v:/", "")).contains("destination can't be '/'"));
    }

    #[test]
    fn mounts_validate_like_docker() {
        let e = err(parse_mount(&json!({"Type": "bind", "Source": "/no/such/dir/x", "Target": "/x"}), ""));
        assert_eq!(e, "invalid mount config for type \"bind\": bind source path does not exist: /no/such/dir/x");
        let e = err(parse_mount(&json!({"Type": "bind", "Target": "/x"}), ""));
        assert_eq!(e, "invalid mount config for type \"bind\": field Source must not be empty");
        let e = err(parse_mount(&json!({"Type": "tmpfs", "Source": "x", "Target": "/x"}), ""));
        assert_eq!(e, "invalid mount config for type \"tmpfs\": field Source must not be specified");
        let e = err(parse_mount(&json!({"Type": "volume", "Target": "rel"}), ""));
        assert_eq!(
            e,
            "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"
        );
        let e = err(parse_mount(&json!({"Type": "foo", "Target": "/x"}), ""));
        assert_eq!(e, "invalid mount config for type \"foo\": mount type unknown");
        let e = err(parse_mount(&json!({"Type": "volume", "Target": "/x", "BindOptions": {}}), ""));
        assert_eq!(e, "invalid mount config for type \"volume\": field BindOptions must not be specified");
        let p = parse_mount(
            &json!({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1770}}),
            "",
        )
        .unwrap();
        assert_eq!(p.mp.tmpfs_options, vec!["size=1024k", "mode=1770"]);
        let p = parse_mount(
            &json!({"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"NoCopy": true, "Labels": {"a": "b"}, "DriverConfig": {"Options": {"type": "tmpfs", "device": "tmpfs"}}}}),
            "",
        )
        .unwrap();
        assert!(!p.mp.copy_data);
        let req = p.volume.unwrap();
        assert_eq!(req.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(req.opts.get("type").map(String::as_str), Some("tmpfs"));
    }

    #[test]
    fn plan_orders_and_detects_duplicates() {
        let cfg = json!({"Volumes": {"/data": {}, "/img": {}}});
        let hc = json!({"Binds": ["named:/data"], "Tmpfs": {"/run": "size=1m"}});
        let none = |_: &str| -> Result<Vec<MountPoint>> { Ok(Vec::new()) };
        let p = plan(cfg.as_object().unwrap(), hc.as_object().unwrap(), &none).unwrap();
        let d: Vec<(&str, &str)> = p.iter().map(|p| (p.mp.destination.as_str(), p.mp.kind.as_str())).collect();
        assert_eq!(d, vec![("/data", "volume"), ("/img", "volume"), ("/run", "tmpfs")]);
        assert_eq!(p[0].mp.name, "named");
        assert!(p[1].mp.anonymous);
        let hc = json!({"Binds": ["a:/x"], "Mounts": [{"Type": "volume", "Source": "b", "Target": "/x"}]});
        let e = plan(&Map::new(), hc.as_object().unwrap(), &none).unwrap_err().to_string();
        assert_eq!(e, "Duplicate mount point: /x");
    }

    #[test]
    fn oci_mounts_sorted_and_tmpfs_defaults() {
        let mk = |kind: &str, dest: &str| MountPoint {
            kind: kind.into(),
            name: String::new(),
            source: "/src".into(),
            destination: dest.into(),
            driver: String::new(),
            mode: String::new(),
            rw: false,
            propagation: String::new(),
            copy_data: false,
            anonymous: false,
            tmpfs_options: vec!["exec".into(), "size=1m".into()],
            from_tmpfs_field: true,
            non_recursive: false,
        };
        let mps = vec![mk("bind", "/a/b"), mk("tmpfs", "/a")];
        let dests: Vec<String> = mps.iter().map(|m| m.destination.clone()).collect();
        let m = oci_mounts(&mps, &dests);
        assert_eq!(m[0]["destination"], "/a");
        assert_eq!(m[0]["options"], json!(["nosuid", "nodev", "size=1m", "ro"]));
        assert_eq!(m[1]["options"], json!(["rbind", "rprivate", "ro"]));
    }

    #[test]
    fn destinations_stay_in_the_rootfs() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::os::unix::fs::symlink("/etc", r.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../tmp", r.join("up")).unwrap();
        assert_eq!(prepare_destination(r, "/link/x", true).unwrap(), "/etc/x");
        assert!(r.join("etc/x").is_dir());
        assert_eq!(prepare_destination(r, "/up/f", false).unwrap(), "/tmp/f");
        assert!(r.join("tmp/f").is_file());
    }
}
