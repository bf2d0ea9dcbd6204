//! create, start, run and delete.

use std::fs;
use std::path::Path;

use libcontainer::config::YoukiConfig;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus, State};
use libcontainer::error::LibcontainerError;
use libcontainer::hooks::run_hooks;
use libcontainer::process::intel_rdt::cleanup_intel_rdt;
use libcontainer::syscall::syscall::SyscallType;

use crate::cli::{Create, Delete, Global, Run};
use crate::container::{self, container_dir, ensure_root, status_str};
use crate::error::{Error, Result};
use crate::executor::{ExecStatus, ExecStatusReader, RuncExecutor};
use crate::wait;
use crate::{cgroups, control};

/// `create`: sets up namespaces, cgroups and the rootfs, and leaves the init
/// process waiting for `start` (runc semantics). With no console socket the
/// init process keeps our fds 0-2, which the shim points at its pipes.
pub fn create(global: &Global, args: &Create, detach: bool) -> Result<Container> {
    let root = ensure_root(&global.root)?;
    let dir = container_dir(&root, &args.id)?;
    if dir.exists() {
        return Err(Error::Exists);
    }
    let bundle = args.bundle.canonicalize().map_err(|e| Error::io(format!("bundle {}", args.bundle.display()), e))?;
    let status = ExecStatus::create(&root, &args.id, args.preserve_fds)?;

    let built = build_init(global, args, &root, &bundle, detach, status.raw_fd());
    match built {
        Ok(container) => {
            status.install(&dir)?;
            if let Some(pid) = container.pid() {
                container::record_start_time(&dir, pid.as_raw())?;
            }
            Ok(container)
        }
        Err(err) => {
            wait::reap_failed_children();
            let reported = status.abandon();
            // libcontainer removes the state directory only for failures after
            // the init process was cloned; earlier ones (console socket not
            // listening, bad config) leave it behind and the id unusable.
            if !matches!(err, LibcontainerError::Exist) {
                let _ = fs::remove_dir_all(&dir);
            }
            // The pid file was written before the init process failed.
            if let Some(pid_file) = &args.pid_file {
                let _ = fs::remove_file(pid_file);
            }
            Err(match (reported, err) {
                (_, LibcontainerError::Exist) => Error::Exists,
                (Some(msg), _) => Error::ProcessStart(msg),
                (None, err) => Error::lib(create_context(&bundle, &err), err),
            })
        }
    }
}

/// libcontainer 0.7 installs the seccomp filter before dropping
/// capabilities only when `noNewPrivileges` is absent; an explicit `false`
/// (which runc treats as absent) makes it load the filter after the drop,
/// where the kernel refuses it. Say so instead of the bare libseccomp error.
fn create_context(bundle: &Path, err: &LibcontainerError) -> String {
    let base = "create container";
    if !crate::error::chain(err).contains("seccomp") {
        return base.to_owned();
    }
    let explicit_false = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["process"]["noNewPrivileges"] == serde_json::json!(false));
    if explicit_false {
        format!(
            "{base} (config.json sets \"noNewPrivileges\": false with a seccomp profile; \
             omit the field instead)"
        )
    } else {
        base.to_owned()
    }
}

fn build_init(
    global: &Global,
    args: &Create,
    root: &Path,
    bundle: &Path,
    detach: bool,
    status_fd: i32,
) -> Result<Container, LibcontainerError> {
    ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(RuncExecutor::new(Some(status_fd)))
        .with_root_path(root)?
        .with_pid_file(args.pid_file.as_ref())?
        .with_console_socket(args.console_socket.as_ref())
        .with_preserved_fds(args.preserve_fds)
        .validate_id()?
        .as_init(bundle)
        .with_systemd(global.systemd_cgroup)
        .with_detach(detach)
        .with_no_pivot(args.no_pivot)
        .build()
}

/// `start`: lets the waiting init process exec the user process, and waits
/// until it has (or has failed to).
pub fn start(global: &Global, id: &str) -> Result<()> {
    let mut c = container::load(&global.root, id)?;
    match c.status() {
        ContainerStatus::Created => {}
        ContainerStatus::Stopped => {
            return Err(Error::IncorrectState("cannot start a container that has stopped".into()))
        }
        ContainerStatus::Running => {
            return Err(Error::IncorrectState("cannot start an already running container".into()))
        }
        other => {
            return Err(Error::IncorrectState(format!("cannot start a container in the {} state", status_str(other))))
        }
    }
    let exec_status = ExecStatusReader::open(&c.root);
    c.start().map_err(|e| Error::lib("start container", e))?;
    if let Some(msg) = exec_status.and_then(ExecStatusReader::wait) {
        // runc's start succeeds here too; the container exits 1 and the
        // shim sees that. Keep the reason in the log.
        tracing::error!("container process failed after start: {msg}");
    }
    Ok(())
}

/// `run`: create + start; in the foreground it forwards signals, waits for
/// the init process and deletes the container (unless `--keep`), returning
/// the container's exit code like runc.
pub fn run(global: &Global, args: &Run) -> Result<i32> {
    if !args.detach && bundle_wants_terminal(&args.create.bundle) {
        // runc proxies a terminal for a foreground `run`; we only hand the
        // PTY to a console socket, so refuse rather than run without one.
        return Err(Error::InvalidArgument(
            "a terminal needs --console-socket and --detach: berth-runtime does not proxy one".into(),
        ));
    }
    let container = create(global, &args.create, args.detach)?;
    let id = container.id().to_owned();
    let Some(pid) = container.pid() else {
        return Err(Error::IncorrectState("container has no init process".into()));
    };
    // Block signals before the process can exit so that its SIGCHLD stays
    // pending for the wait loop; the init process was cloned with the old
    // mask already.
    let forwarder = if args.detach { None } else { Some(wait::Forwarder::block()?) };
    if let Err(e) = start(global, &id) {
        let _ = destroy(global, &id);
        return Err(e);
    }
    let Some(forwarder) = forwarder else {
        return Ok(0);
    };
    let code = forwarder.wait(pid);
    if !args.keep {
        destroy(global, &id)?;
    }
    code
}

fn bundle_wants_terminal(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["process"]["terminal"].as_bool())
        .unwrap_or(false)
}

fn destroy(global: &Global, id: &str) -> Result<()> {
    delete(global, &Delete { force: true, id: id.to_owned() })
}

/// `delete`: kills what is left (created containers, or anything with
/// `--force`), removes the cgroups, runs poststop hooks and removes the state
/// directory.
pub fn delete(global: &Global, args: &Delete) -> Result<()> {
    let dir = match global.root.canonicalize() {
        Ok(root) => container_dir(&root, &args.id)?,
        Err(_) => container_dir(&global.root, &args.id)?,
    };
    if !dir.exists() {
        return if args.force { Ok(()) } else { Err(Error::NotExist) };
    }
    if !State::file_path(&dir).exists() {
        // An aborted create can leave a directory without state (runc's
        // delete handles the same case by removing it).
        remove_state_dir(&dir)?;
        return if args.force { Ok(()) } else { Err(Error::NotExist) };
    }
    let mut c = container::load(&global.root, &args.id)?;
    match c.status() {
        ContainerStatus::Stopped | ContainerStatus::Created => {}
        _ if args.force => {}
        other => {
            return Err(Error::IncorrectState(format!(
                "cannot delete container {} that is not stopped: {}",
                args.id,
                status_str(other)
            )))
        }
    }
    destroy_container(&mut c)
}

/// What libcontainer's `Container::delete` does, with a cheaper cgroup
/// removal (see `cgroups`): kill what is left, remove the cgroups, clean up
/// Intel RDT, run poststop hooks, remove the state directory. On failure the
/// directory stays, so `delete` can be retried.
fn destroy_container(c: &mut Container) -> Result<()> {
    match c.status() {
        ContainerStatus::Stopped => {}
        ContainerStatus::Created => {
            // Nothing but the init process can run in a created container
            // (exec needs a running one), and it waits in accept(2).
            if let Some(pid) = c.pid() {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        _ => control::kill_all(c, libc::SIGKILL)?,
    }
    c.set_status(ContainerStatus::Stopped);
    match YoukiConfig::load(&c.root) {
        Ok(config) => {
            cgroups::remove(&config.cgroup_path, c.systemd(), c.id())?;
            if c.intel_rdt_dir().is_some() || c.intel_rdt_monitoring_dir().is_some() {
                if let Err(e) = cleanup_intel_rdt(
                    c.intel_rdt_dir().map(|p| p.as_path()),
                    c.intel_rdt_monitoring_dir().map(|p| p.as_path()),
                    c.clean_up_intel_rdt_subdirectory(),
                    c.id(),
                ) {
                    tracing::warn!("failed to clean up intel rdt: {e}");
                }
            }
            if let Some(hooks) = config.hooks.as_ref() {
                run_hooks(hooks.poststop().as_ref(), Some(&c.state), None, None, None)
                    .map_err(|e| Error::lib("run poststop hooks", e.into()))?;
            }
        }
        // As in libcontainer: a create that died before saving its config
        // has no cgroup or hooks to handle.
        Err(e) => tracing::warn!("no container config, skipping cgroup removal: {e}"),
    }
    remove_state_dir(&c.root)
}

fn remove_state_dir(dir: &Path) -> Result<()> {
    fs::remove_dir_all(dir).map_err(|e| Error::io(format!("remove {}", dir.display()), e))
}
