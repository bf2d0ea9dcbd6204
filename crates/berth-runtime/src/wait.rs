//! Foreground waiting for `run` and `exec`: like runc's signal handler, the
//! runtime forwards the signals it gets to the container process and exits
//! with its status (128+signal when it was killed).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// All signals blocked in this (single-threaded) process, to be taken with
/// sigwait.
pub struct Forwarder {
    set: SigSet,
}

impl Forwarder {
    /// Blocks every signal. Call it only after the container process was
    /// cloned: children inherit the mask.
    pub fn block() -> Result<Self> {
        let set = SigSet::all();
        set.thread_block().map_err(|e| Error::io("block signals", e.into()))?;
        Ok(Forwarder { set })
    }

    /// Waits for `pid` and returns its exit code, forwarding other signals.
    pub fn wait(self, pid: Pid) -> Result<i32> {
        // The child may have exited before the mask was set, when a default-
        // ignored SIGCHLD is simply dropped; reap first.
        if let Some(code) = reap(pid)? {
            return Ok(code);
        }
        loop {
            let sig = self.set.wait().map_err(|e| Error::io("wait for signals", e.into()))?;
            match sig {
                Signal::SIGCHLD => {
                    if let Some(code) = reap(pid)? {
                        return Ok(code);
                    }
                }
                // SIGWINCH belongs to whoever holds the terminal (the PTY
                // master is with the shim); runc ignores SIGURG as its Go
                // runtime's preemption signal.
                Signal::SIGWINCH | Signal::SIGURG => {}
                other => {
                    let _ = kill(pid, other);
                }
            }
        }
    }
}

/// Reaps every exited child; returns the exit code once `pid` is among them.
fn reap(pid: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(Some(128 + sig as i32)),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => {
                return Err(Error::IncorrectState(format!("process {pid} is not a child of the runtime")))
            }
            Err(e) => return Err(Error::io("waitpid", e.into())),
        }
    }
}

/// Reaps the helper processes of a failed create/exec. On failure
/// libcontainer returns without waiting for its intermediate and init
/// processes; left alone they become zombies of the shim (our subreaper),
/// and a zombie in the container's pid namespace keeps that namespace's
/// init from finishing its exit. They are exiting already, so wait briefly.
pub fn reap_failed_children() {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
