//! `exec`: a new process in a running container.
//!
//! Without `--process`, runc starts from the container's own `process` in
//! config.json (user, capabilities, rlimits, apparmor, no_new_privileges)
//! and overrides args, cwd, env, terminal and user from the flags
//! (runc's `getProcess`). libcontainer's own flag handling starts from an
//! empty process instead (root, no rlimits), so we build the process.json
//! here and always hand libcontainer a file.

use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::ContainerStatus;
use libcontainer::error::LibcontainerError;
use libcontainer::syscall::syscall::SyscallType;
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::cli::{Exec, Global};
use crate::container::{self, status_str};
use crate::error::{Error, Result};
use crate::executor::RuncExecutor;
use crate::wait::Forwarder;

/// Runs `exec`; returns the process' exit code (0 with `--detach`).
pub fn exec(global: &Global, args: &Exec) -> Result<i32> {
    let root = global.root.canonicalize().map_err(|_| Error::NotExist)?;
    let c = container::load(&root, &args.id)?;
    match c.status() {
        ContainerStatus::Running => {}
        ContainerStatus::Paused if args.ignore_paused => {}
        ContainerStatus::Paused => {
            return Err(Error::IncorrectState(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        other => return Err(Error::IncorrectState(format!("cannot exec in a {} container", status_str(other)))),
    }

    // runc proxies a terminal itself for a foreground `exec -t`; we only
    // hand the PTY to a console socket (how shims use it), so say so rather
    // than silently running without a terminal.
    let wants_tty = match &args.process {
        Some(p) => std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["terminal"].as_bool())
            .unwrap_or(false),
        None => args.tty,
    };
    if wants_tty && args.console_socket.is_none() {
        return Err(Error::InvalidArgument(
            "a terminal needs --console-socket (and --detach): berth-runtime does not proxy one".into(),
        ));
    }

    let (process_path, temp) = match &args.process {
        Some(p) => (p.clone(), None),
        None => {
            let process = process_from_flags(&c.bundle().join("config.json"), args)?;
            let path = c.root.join(format!(
                "exec-{}-{}.json",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ));
            let text = serde_json::to_vec(&process).map_err(|e| Error::io("encode process.json", e.into()))?;
            std::fs::write(&path, text).map_err(|e| Error::io("write process.json", e))?;
            (path.clone(), Some(path))
        }
    };

    let built = build_tenant(&root, args, &process_path);
    if let Some(t) = temp {
        let _ = std::fs::remove_file(t);
    }
    if built.is_err() {
        crate::wait::reap_failed_children();
    }
    let pid = built.map_err(|e| match e {
        // libcontainer hands back the exec'd process' own failure text
        // (from our executor) as a plain message.
        LibcontainerError::Other(msg) if msg.starts_with("exec") => Error::ProcessStart(msg),
        other => exec_error(other),
    })?;
    if args.detach {
        return Ok(0);
    }
    Forwarder::block()?.wait(pid)
}

/// Failures while setting up the process carry our executor's runc-style
/// text somewhere in libcontainer's wrapping; surface it alone.
fn exec_error(err: LibcontainerError) -> Error {
    let text = crate::error::chain(&err);
    match text.find("exec: \"") {
        Some(i) => Error::ProcessStart(text[i..].to_owned()),
        None => Error::lib("exec failed", err),
    }
}

fn build_tenant(root: &Path, args: &Exec, process: &Path) -> Result<Pid, LibcontainerError> {
    ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(RuncExecutor::new(None))
        .with_root_path(root)?
        .with_console_socket(args.console_socket.as_ref())
        .with_pid_file(args.pid_file.as_ref())?
        .with_preserved_fds(args.preserve_fds)
        .validate_id()?
        .as_tenant()
        .with_detach(args.detach)
        .with_process(Some(process))
        .with_ignore_paused(args.ignore_paused)
        .with_sub_cgroup(args.cgroup.clone())
        .build()
}

/// runc's `getProcess` for `exec` without `--process`.
fn process_from_flags(config: &Path, args: &Exec) -> Result<Value> {
    if args.command.is_empty() {
        return Err(Error::InvalidArgument("exec: args must not be empty".into()));
    }
    let text = std::fs::read(config).map_err(|e| Error::io(format!("read {}", config.display()), e))?;
    let spec: Value = serde_json::from_slice(&text)
        .map_err(|e| Error::InvalidArgument(format!("parse {}: {e}", config.display())))?;
    let mut p = spec.get("process").cloned().unwrap_or_else(|| json!({}));
    let Some(obj) = p.as_object_mut() else {
        return Err(Error::InvalidArgument("config.json: process is not an object".into()));
    };
    obj.insert("args".into(), json!(args.command));
    if let Some(cwd) = &args.cwd {
        if !cwd.is_absolute() {
            return Err(Error::InvalidArgument("cwd must be an absolute path".into()));
        }
        obj.insert("cwd".into(), json!(cwd));
    }
    if !obj.contains_key("cwd") {
        obj.insert("cwd".into(), json!(PathBuf::from("/")));
    }
    if let Some(profile) = &args.apparmor {
        obj.insert("apparmorProfile".into(), json!(profile));
    }
    if let Some(label) = &args.process_label {
        obj.insert("selinuxLabel".into(), json!(label));
    }
    if !args.cap.is_empty() {
        let caps = obj.entry("capabilities").or_insert_with(|| json!({}));
        if let Some(caps) = caps.as_object_mut() {
            // Ambient needs the bit in the inheritable set too, so runc only
            // extends it when the spec has an inheritable set.
            let with_ambient = caps.contains_key("inheritable");
            for set in ["bounding", "effective", "permitted", "ambient"] {
                if set == "ambient" && !with_ambient {
                    continue;
                }
                let list = caps.entry(set).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    for cap in &args.cap {
                        list.push(json!(cap));
                    }
                }
            }
        }
    }
    if !args.env.is_empty() {
        let env = obj.entry("env").or_insert_with(|| json!([]));
        if let Some(list) = env.as_array_mut() {
            for e in &args.env {
                list.push(json!(e));
            }
        }
    }
    obj.insert("terminal".into(), json!(args.tty));
    if args.no_new_privs {
        obj.insert("noNewPrivileges".into(), json!(true));
    }
    let user = obj.entry("user").or_insert_with(|| json!({"uid": 0, "gid": 0}));
    if let Some(user) = user.as_object_mut() {
        if let Some(spec) = &args.user {
            let (uid, gid) = parse_user(spec)?;
            user.insert("uid".into(), json!(uid));
            if let Some(gid) = gid {
                user.insert("gid".into(), json!(gid));
            }
        }
        if !args.additional_gids.is_empty() {
            let gids = user.entry("additionalGids").or_insert_with(|| json!([]));
            if let Some(list) = gids.as_array_mut() {
                for g in &args.additional_gids {
                    list.push(json!(g));
                }
            }
        }
    }
    Ok(p)
}

/// `uid[:gid]`, numeric as in runc.
fn parse_user(spec: &str) -> Result<(u32, Option<u32>)> {
    let bad = || Error::InvalidArgument(format!("parsing {spec} as uid[:gid]: invalid number"));
    let mut parts = spec.splitn(2, ':');
    let uid = parts.next().unwrap_or_default().parse().map_err(|_| bad())?;
    let gid = match parts.next() {
        Some(g) => Some(g.parse().map_err(|_| bad())?),
        None => None,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn exec_args(argv: &[&str]) -> Exec {
        let mut full = vec!["berth-runtime", "exec"];
        full.extend_from_slice(argv);
        match crate::cli::Opts::try_parse_from(full) {
            Ok(crate::cli::Opts { command: Some(crate::cli::Command::Exec(e)), .. }) => *e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn process_inherits_spec_and_applies_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            r#"{"process":{"user":{"uid":1000,"gid":1000},"args":["sh"],"env":["PATH=/bin"],
               "cwd":"/home","rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],
               "capabilities":{"bounding":["CAP_CHOWN"],"effective":["CAP_CHOWN"],"permitted":["CAP_CHOWN"]}}}"#,
        )
        .expect("write");
        let args = exec_args(&[
            "-e",
            "A=1",
            "-u",
            "0:5",
            "-g",
            "7",
            "--cap",
            "CAP_NET_ADMIN",
            "--cwd",
            "/tmp",
            "-t",
            "c1",
            "echo",
            "hi",
        ]);
        let p = process_from_flags(&config, &args).expect("process");
        assert_eq!(p["args"], json!(["echo", "hi"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(p["user"]["uid"], 0);
        assert_eq!(p["user"]["gid"], 5);
        assert_eq!(p["user"]["additionalGids"], json!([7]));
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["terminal"], true);
        assert_eq!(p["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_CHOWN", "CAP_NET_ADMIN"]));
        assert!(p["capabilities"].get("ambient").is_none());
    }

    #[test]
    fn user_parsing() {
        assert_eq!(parse_user("5").ok(), Some((5, None)));
        assert_eq!(parse_user("5:6").ok(), Some((5, Some(6))));
        assert!(parse_user("root").is_err());
    }

    #[test]
    fn exec_error_extracts_runc_text() {
        let e = exec_error(LibcontainerError::Other(
            "error in executing process : exec: \"nope\": executable file not found in $PATH".into(),
        ));
        assert_eq!(
            e.to_string(),
            "unable to start container process: exec: \"nope\": executable file not found in $PATH"
        );
    }
}
