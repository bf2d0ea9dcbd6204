//! state, list, ps, features and --version.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use libcgroups::common::CgroupManager;
use libcontainer::container::{Container, ContainerStatus, State};
use serde::Serialize;

use crate::cli::{Global, List, Ps};
use crate::container::{self, status_str};
use crate::error::{Error, Result};

/// The runtime-spec version we implement, from the oci-spec crate
/// libcontainer is built against.
pub fn spec_version() -> &'static str {
    libcontainer::oci_spec::runtime::VERSION
}

/// runc's `cState` (the JSON `runc state` prints), in its field order.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct StateJson {
    /// The spec version of the container's config.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// Init pid; 0 once stopped, as in runc.
    pub pid: i32,
    /// created, running, paused or stopped.
    pub status: &'static str,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Root filesystem.
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// Config annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
    /// runc leaves this empty for `state` and fills it for `list`.
    pub owner: String,
}

fn state_json(c: &Container, owner: String) -> StateJson {
    let pid = match c.status() {
        ContainerStatus::Stopped => 0,
        _ => c.pid().map(|p| p.as_raw()).unwrap_or(0),
    };
    let created = c
        .created()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        // Go's zero time, what runc prints when it has none.
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_owned());
    let rootfs = container::bundle_rootfs(c.bundle());
    StateJson {
        // runc reports the spec version it implements, not the config's.
        oci_version: c.state.oci_version.clone(),
        id: c.id().to_owned(),
        pid,
        status: status_str(c.status()),
        bundle: c.bundle().clone(),
        rootfs,
        created,
        annotations: c.state.annotations.clone().filter(|a| !a.is_empty()),
        owner,
    }
}

fn print_json<T: Serialize>(value: &T, pretty: bool) -> Result<()> {
    let text = if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) }
        .map_err(|e| Error::io("encode json", e.into()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| Error::io("write stdout", e))
}

/// `state`.
pub fn state(global: &Global, id: &str) -> Result<()> {
    let c = container::load(&global.root, id)?;
    print_json(&state_json(&c, String::new()), true)
}

fn all_containers(global: &Global) -> Result<Vec<Container>> {
    let entries = match std::fs::read_dir(&global.root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("read {}", global.root.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() || !State::file_path(&path).exists() {
            continue;
        }
        let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // A container being deleted concurrently is simply skipped.
        if let Ok(c) = container::load(&global.root, &id) {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.id().cmp(b.id()));
    Ok(out)
}

/// `list` (`-f table|json`, `-q`).
pub fn list(global: &Global, args: &List) -> Result<()> {
    let containers = all_containers(global)?;
    let mut out = std::io::stdout().lock();
    let w = |e: std::io::Error| Error::io("write stdout", e);
    if args.quiet {
        for c in &containers {
            writeln!(out, "{}", c.id()).map_err(w)?;
        }
        return Ok(());
    }
    let states: Vec<StateJson> = containers
        .iter()
        .map(|c| {
            let owner = c.creator().map(|o| o.to_string_lossy().into_owned()).unwrap_or_default();
            state_json(c, owner)
        })
        .collect();
    match args.format.as_str() {
        "json" => {
            drop(out);
            print_json(&states, false)
        }
        "table" => {
            let mut rows = vec![[
                "ID".to_owned(),
                "PID".to_owned(),
                "STATUS".to_owned(),
                "BUNDLE".to_owned(),
                "CREATED".to_owned(),
                "OWNER".to_owned(),
            ]];
            for s in &states {
                rows.push([
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_owned(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            out.write_all(table(&rows).as_bytes()).map_err(w)
        }
        other => Err(Error::InvalidArgument(format!("invalid format option: {other}"))),
    }
}

/// Go's `tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)` as runc uses it: cells
/// padded to max(12, widest + 3); the last column is not padded.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count() + 3).max(12);
        }
    }
    let mut s = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            s.push_str(cell);
            if i + 1 < N {
                let pad = widths[i] - cell.chars().count();
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.push('\n');
    }
    s
}

/// `ps`: the pids in the container's cgroup, as JSON, or the matching lines
/// of `ps -ef` (or the given ps options).
pub fn ps(global: &Global, args: &Ps) -> Result<()> {
    let c = container::load(&global.root, &args.id)?;
    let m = container::cgroup_manager(&c)?;
    let pids: Vec<i32> = m
        .get_all_pids()
        .map_err(|e| Error::cgroup("list container processes", e))?
        .iter()
        .map(|p| p.as_raw())
        .collect();
    match args.format.as_str() {
        "json" => print_json(&pids, false),
        "table" => {
            let ps_args = if args.ps_args.is_empty() { vec!["-ef".to_owned()] } else { args.ps_args.clone() };
            let output = Command::new("ps").args(&ps_args).output().map_err(|e| Error::io("run ps", e))?;
            if !output.status.success() {
                return Err(Error::InvalidArgument(format!("ps: {}", String::from_utf8_lossy(&output.stderr).trim())));
            }
            let text = String::from_utf8_lossy(&output.stdout);
            let mut out = std::io::stdout().lock();
            let w = |e: std::io::Error| Error::io("write stdout", e);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| Error::InvalidArgument("couldn't find PID field in ps output".into()))?;
            writeln!(out, "{header}").map_err(w)?;
            for line in lines {
                let pid = line.split_whitespace().nth(pid_col).and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    writeln!(out, "{line}").map_err(w)?;
                }
            }
            Ok(())
        }
        other => Err(Error::InvalidArgument(format!("invalid format option: {other}"))),
    }
}

/// `features`: runc's features document (runtime-spec features.md).
pub fn features() -> Result<()> {
    let caps: Vec<String> = CAPABILITIES.iter().map(|c| format!("CAP_{c}")).collect();
    let doc = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": spec_version(),
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
            "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
            "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime",
            "relatime", "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec",
            "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate",
            "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
            "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
            "suid", "symfollow", "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": true},
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": [
                    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86",
                    "SCMP_ARCH_X86_64"
                ]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "io.github.berth.runtime.version": env!("CARGO_PKG_VERSION"),
            "io.github.youki.libcontainer.version": "0.7"
        }
    });
    print_json(&doc, true)
}

const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// `--version`, in runc's layout.
pub fn version() -> String {
    format!("berth-runtime version {}\nspec: {}\nlibcontainer: 0.7\n", env!("CARGO_PKG_VERSION"), spec_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_like_tabwriter() {
        let rows = vec![["ID".to_owned(), "PID".to_owned()], ["a-long-container-id".to_owned(), "1".to_owned()]];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("ID{}PID", " ".repeat(20)));
        assert_eq!(lines[1], "a-long-container-id   1");
    }

    #[test]
    fn version_text() {
        assert!(version().starts_with("berth-runtime version "));
        assert!(version().contains("spec: 1."));
    }
}
