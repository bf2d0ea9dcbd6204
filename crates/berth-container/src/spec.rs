//! The OCI runtime spec (`config.json`) of a container, built the way
//! Docker's `oci.DefaultSpec` + `daemon.createSpec` build it: Docker's
//! default capabilities, mounts, masked and read-only paths and device rules,
//! the container's process, user, rlimits and namespaces.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::config::strings;
use crate::{Error, Result};

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for `--privileged`.
const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A user resolved against the container's /etc/passwd and /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

fn read_db(rootfs: &Path, file: &str) -> Vec<Vec<String>> {
    // Read through the rootfs without following links out of it: the files
    // are plain text parsed here, never executed, and a link pointing out of
    // the rootfs resolves to the host file — refuse that by reading the
    // canonical path only when it stays inside.
    let p = rootfs.join(file);
    let inside = match (p.canonicalize(), rootfs.canonicalize()) {
        (Ok(c), Ok(r)) => c.starts_with(&r),
        _ => false,
    };
    if !inside {
        return Vec::new();
    }
    std::fs::read_to_string(&p)
        .map(|s| {
            s.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| l.split(':').map(String::from).collect())
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves `user[:group]` (names or numbers) as runc's `user.GetExecUser` does.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_db(rootfs, "etc/passwd");
    let group = read_db(rootfs, "etc/group");
    let u = if u.is_empty() { "0" } else { u };
    let entry = passwd.iter().find(|e| {
        e.first().map(String::as_str) == Some(u)
            || (u.parse::<u32>().is_ok() && e.get(2).map(String::as_str) == Some(u))
    });
    let (uid, mut gid, name, home) = match entry {
        Some(e) => (
            e.get(2).and_then(|x| x.parse().ok()).unwrap_or(0),
            e.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
            e.first().cloned().unwrap_or_default(),
            e.get(5).cloned().unwrap_or_else(|| "/".into()),
        ),
        None => match u.parse::<u32>() {
            Ok(n) => (n, 0, String::new(), "/".to_string()),
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                )))
            }
        },
    };
    if let Some(g) = g {
        gid = match group.iter().find(|e| e.first().map(String::as_str) == Some(g)) {
            Some(e) => e.get(2).and_then(|x| x.parse().ok()).unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::InvalidArgument(format!("unable to find group {g}: no matching entries in group file"))
            })?,
        };
    }
    let additional_gids: Vec<u32> = if name.is_empty() || g.is_some() {
        Vec::new()
    } else {
        group
            .iter()
            .filter(|e| e.get(3).is_some_and(|m| m.split(',').any(|x| x == name)))
            .filter_map(|e| e.get(2).and_then(|x| x.parse().ok()))
            .filter(|x| *x != gid)
            .collect()
    };
    Ok(ResolvedUser { uid, gid, additional_gids, home })
}

/// Inputs of a spec beyond the container's own config.
pub struct SpecInputs<'a> {
    pub id: &'a str,
    pub rootfs: &'a Path,
    pub config: &'a Map<String, Value>,
    pub host_config: &'a Map<String, Value>,
    pub path: &'a str,
    pub args: &'a [String],
    pub hostname: &'a str,
    pub hosts_path: &'a Path,
    pub hostname_path: &'a Path,
    pub resolv_path: &'a Path,
    /// None: a new network namespace; Some(None): the host's; Some(Some(p)): join `p`.
    pub netns: Option<Option<String>>,
    pub cgroup_parent: &'a str,
    /// Hard RLIMIT_NOFILE etc. of the daemon: a container may not ask for more.
    pub init_path: Option<&'a Path>,
    /// The container's volumes, binds and tmpfs mounts (OCI form); one on a
    /// default mount's destination replaces it (`-v x:/etc/hosts`).
    pub user_mounts: &'a [Value],
}

fn rlimit_name(n: &str) -> Option<&'static str> {
    Some(match n {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

fn host_hard_limit(res: &str) -> Option<u64> {
    let r = match res {
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    };
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we own.
    if unsafe { libc::getrlimit(r, &mut l) } != 0 || l.rlim_max == libc::RLIM_INFINITY {
        return None;
    }
    Some(l.rlim_max)
}

/// `--ulimit` entries → OCI rlimits, refusing more than the host allows (the
/// kernel would refuse them at start, leaving a half-created container).
pub fn rlimits(hc: &Map<String, Value>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for u in hc.get("Ulimits").and_then(Value::as_array).cloned().unwrap_or_default() {
        let name = u.get("Name").and_then(Value::as_str).unwrap_or("");
        let soft = u.get("Soft").and_then(Value::as_i64).unwrap_or(0);
        let hard = u.get("Hard").and_then(Value::as_i64).unwrap_or(soft);
        let typ = rlimit_name(name).ok_or_else(|| Error::InvalidArgument(format!("invalid ulimit type: {name}")))?;
        if soft > hard {
            return Err(Error::InvalidArgument(format!(
                "invalid ulimit argument: soft limit {soft} is greater than hard limit {hard}"
            )));
        }
        if let Some(max) = host_hard_limit(typ) {
            if hard >= 0 && hard as u64 > max {
                return Err(Error::InvalidArgument(format!(
                    "ulimit {name}: hard limit {hard} exceeds the host's hard limit {max}"
                )));
            }
        }
        out.push(json!({"type": typ, "soft": soft.max(0), "hard": hard.max(0)}));
    }
    Ok(out)
}

fn caps(hc: &Map<String, Value>) -> Vec<String> {
    if hc.get("Privileged").and_then(Value::as_bool).unwrap_or(false) {
        return ALL_CAPS.iter().map(|s| s.to_string()).collect();
    }
    let norm = |c: &str| {
        let c = c.to_ascii_uppercase();
        if c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        }
    };
    let add: Vec<String> = strings(hc.get("CapAdd")).iter().map(|c| norm(c)).collect();
    let drop: Vec<String> = strings(hc.get("CapDrop")).iter().map(|c| norm(c)).collect();
    let mut base: Vec<String> = if add.iter().any(|c| c == "CAP_ALL") {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).chain(add.iter().cloned()).collect()
    };
    if drop.iter().any(|c| c == "CAP_ALL") {
        base = add.into_iter().filter(|c| c != "CAP_ALL").collect();
    } else {
        base.retain(|c| !drop.contains(c));
    }
    base.sort();
    base.dedup();
    base
}

/// The environment: image+user env, then HOSTNAME, HOME, PATH and TERM
/// defaults the way Docker adds them.
pub fn process_env(config: &Map<String, Value>, hostname: &str, home: &str) -> Vec<String> {
    let mut env = strings(config.get("Env"));
    let has = |env: &Vec<String>, k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    let mut out = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    if config.get("Tty").and_then(Value::as_bool).unwrap_or(false) {
        out.push("TERM=xterm".into());
    }
    out.retain(|e| !has(&env, e.split('=').next().unwrap_or("")));
    out.append(&mut env);
    if !has(&out, "HOME") {
        out.push(format!("HOME={home}"));
    }
    out
}

/// Builds config.json.
pub fn build(i: &SpecInputs<'_>) -> Result<Value> {
    let cfg = i.config;
    let hc = i.host_config;
    let user_spec = cfg.get("User").and_then(Value::as_str).unwrap_or("");
    let user = resolve_user(i.rootfs, user_spec)?;
    let mut gids = user.additional_gids.clone();
    for g in strings(hc.get("GroupAdd")) {
        match g.parse::<u32>() {
            Ok(n) => gids.push(n),
            Err(_) => gids.push(resolve_user(i.rootfs, &format!("0:{g}"))?.gid),
        }
    }
    let tty = cfg.get("Tty").and_then(Value::as_bool).unwrap_or(false);
    let cwd = match cfg.get("WorkingDir").and_then(Value::as_str) {
        Some(w) if !w.is_empty() => w.to_string(),
        _ => "/".to_string(),
    };
    if !cwd.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        )));
    }
    let mut args = vec![i.path.to_string()];
    args.extend(i.args.iter().cloned());
    if let Some(init) = i.init_path {
        let _ = init;
        let mut a = vec!["/sbin/docker-init".to_string(), "--".to_string()];
        a.extend(args);
        args = a;
    }
    let caps = caps(hc);
    let privileged = hc.get("Privileged").and_then(Value::as_bool).unwrap_or(false);
    let readonly = hc.get("ReadonlyRootfs").and_then(Value::as_bool).unwrap_or(false);
    let shm_size = hc.get("ShmSize").and_then(Value::as_i64).filter(|n| *n > 0).unwrap_or(64 << 20);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
        json!({"destination": "/etc/resolv.conf", "type": "bind", "source": i.resolv_path, "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/hostname", "type": "bind", "source": i.hostname_path, "options": ["rbind", "rprivate"]}),
        json!({"destination": "/etc/hosts", "type": "bind", "source": i.hosts_path, "options": ["rbind", "rprivate"]}),
    ];
    if let Some(init) = i.init_path {
        mounts.push(json!({"destination": "/sbin/docker-init", "type": "bind", "source": init, "options": ["rbind", "ro", "rprivate"]}));
    }
    if !i.user_mounts.is_empty() {
        let dest = |m: &Value| m.get("destination").and_then(Value::as_str).map(String::from);
        let user: Vec<String> = i.user_mounts.iter().filter_map(dest).collect();
        mounts.retain(|m| dest(m).is_none_or(|d| !user.contains(&d)));
        mounts.extend(i.user_mounts.iter().cloned());
    }
    let mut namespaces =
        vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"})];
    match &i.netns {
        None => namespaces.push(json!({"type": "network"})),
        Some(None) => {}
        Some(Some(p)) => namespaces.push(json!({"type": "network", "path": p})),
    }
    let mut resources = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
        ]
    });
    if privileged {
        resources["devices"] = json!([{"allow": true, "access": "rwm"}]);
    }
    if let Some(m) = hc.get("Memory").and_then(Value::as_i64).filter(|m| *m > 0) {
        let swap = hc.get("MemorySwap").and_then(Value::as_i64).unwrap_or(0);
        let mut mem = json!({"limit": m});
        if swap > 0 {
            mem["swap"] = json!(swap);
        } else if swap == 0 {
            // Docker's default: swap equal to the memory limit again.
            mem["swap"] = json!(m * 2);
        }
        resources["memory"] = mem;
    }
    let mut cpu = Map::new();
    if let Some(s) = hc.get("CpuShares").and_then(Value::as_i64).filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(n) = hc.get("NanoCpus").and_then(Value::as_i64).filter(|n| *n > 0) {
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(n * 100_000 / 1_000_000_000));
    }
    if let Some(q) = hc.get("CpuQuota").and_then(Value::as_i64).filter(|q| *q > 0) {
        cpu.insert("quota".into(), json!(q));
        if let Some(p) = hc.get("CpuPeriod").and_then(Value::as_i64).filter(|p| *p > 0) {
            cpu.insert("period".into(), json!(p));
        }
    }
    if let Some(c) = hc.get("CpusetCpus").and_then(Value::as_str).filter(|c| !c.is_empty()) {
        cpu.insert("cpus".into(), json!(c));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = hc.get("PidsLimit").and_then(Value::as_i64).filter(|p| *p != 0) {
        resources["pids"] = json!({"limit": p});
    }
    let mut sysctl = Map::new();
    if let Some(Value::Object(s)) = hc.get("Sysctls") {
        for (k, v) in s {
            sysctl.insert(k.clone(), v.clone());
        }
    }
    let cgroup_parent =
        hc.get("CgroupParent").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(i.cgroup_parent);
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": tty,
            "consoleSize": {"height": 0, "width": 0},
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": if gids.is_empty() { Value::Null } else { json!(gids) }},
            "args": args,
            "env": process_env(cfg, i.hostname, &user.home),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits(hc)?,

            "oomScoreAdj": hc.get("OomScoreAdj").and_then(Value::as_i64).unwrap_or(0),
        },
        "root": {"path": i.rootfs, "readonly": readonly},
        "hostname": i.hostname,
        "mounts": mounts,
        "linux": {
            "sysctl": sysctl,
            "resources": resources,
            "cgroupsPath": format!("{}/{}", cgroup_parent.trim_end_matches('/'), i.id),
            "namespaces": namespaces,
            "maskedPaths": if privileged { json!([]) } else { json!(MASKED_PATHS) },
            "readonlyPaths": if privileged { json!([]) } else { json!(READONLY_PATHS) },
        }
    });
    let mut spec = spec;
    // Only when set: an explicit `false` next to a seccomp profile makes
    // libcontainer fail to load the filter.
    if strings(hc.get("SecurityOpt")).iter().any(|s| s == "no-new-privileges" || s == "no-new-privileges:true") {
        spec["process"]["noNewPrivileges"] = Value::Bool(true);
    }
    Ok(strip_nulls(spec))
}

/// OCI runtimes reject `null` where they expect a list; drop such keys.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n").unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nnogroup:x:65534:\napp:x:1000:\naudio:x:29:app\n")
            .unwrap();
        d
    }

    #[test]
    fn users_resolve_like_runc() {
        let r = rootfs();
        assert_eq!(resolve_user(r.path(), "").unwrap().uid, 0);
        let app = resolve_user(r.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone(), app.home.as_str()),
            (1000, 1000, vec![29], "/home/app")
        );
        let n = resolve_user(r.path(), "nobody:app").unwrap();
        assert_eq!((n.uid, n.gid), (65534, 1000));
        assert_eq!(resolve_user(r.path(), "4242:4243").unwrap().gid, 4243);
        let e = resolve_user(r.path(), "ghost").unwrap_err().to_string();
        assert_eq!(e, "unable to find user ghost: no matching entries in passwd file");
        assert!(resolve_user(r.path(), "app:nogroupx").is_err());
    }

    #[test]
    fn env_defaults() {
        let cfg = serde_json::json!({"Env": ["A=1", "PATH=/custom"], "Tty": true});
        let env = process_env(cfg.as_object().unwrap(), "h1", "/root");
        assert_eq!(env, vec!["HOSTNAME=h1", "TERM=xterm", "A=1", "PATH=/custom", "HOME=/root"]);
    }

    #[test]
    fn caps_add_drop() {
        let hc = serde_json::json!({"CapAdd": ["NET_ADMIN"], "CapDrop": ["chown", "CAP_KILL"]});
        let c = caps(hc.as_object().unwrap());
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()) && !c.contains(&"CAP_KILL".to_string()));
    }

    #[test]
    fn ulimits_validated() {
        let hc = serde_json::json!({"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]});
        assert_eq!(rlimits(hc.as_object().unwrap()).unwrap()[0]["type"], "RLIMIT_NOFILE");
        let bad = serde_json::json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]});
        assert!(rlimits(bad.as_object().unwrap()).is_err());
        let huge = serde_json::json!({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1_000_000_000_000i64}]});
        assert!(rlimits(huge.as_object().unwrap()).is_err());
        let unknown = serde_json::json!({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]});
        assert!(rlimits(unknown.as_object().unwrap()).is_err());
    }
}
