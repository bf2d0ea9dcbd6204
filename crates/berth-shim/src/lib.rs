//! The per-container shim of berth (DESIGN.md §2), after conmon's model: one
//! small, single-threaded process per container that holds the container's
//! stdio or terminal master, writes its json-file log, reaps it, records its
//! exit on disk and serves attach/exec/resize/kill on a unix socket. It runs
//! the OCI runtime only through the runc command-line contract (`create`,
//! `start`, `exec`, `kill`, `delete`), so any runc-compatible binary works.
//!
//! The daemon uses three parts of this crate:
//! * [`spawn()`] starts a shim and blocks until the container runs (or the
//!   runtime's error text),
//! * [`client::ShimClient`] talks to a running shim (blocking),
//! * [`protocol`] holds the messages and framing without any I/O, for a
//!   tokio implementation of the client.
//!
//! # Command line
//!
//! ```text
//! berth-shim --id <id> --bundle <dir> --state-dir <dir> --runtime <path>
//!            [--runtime-root <dir>] [--runtime-arg <arg>]...
//!            [--tty] [--stdin] [--stdin-once]
//!            [--log-path <file>] [--log-max-size <bytes>] [--log-max-files <n>]
//!            [--no-start] [--no-delete] [--ready-fd <fd>] [--foreground]
//! ```
//!
//! | flag | meaning |
//! |---|---|
//! | `--id` | container id, passed to the runtime (`[A-Za-z0-9_.-]`, ≤ 128 bytes) |
//! | `--bundle` | OCI bundle directory |
//! | `--state-dir` | directory for `shim.sock`, `exit.json`, `shim.pid` and scratch files (created 0700); `<state-dir>/shim.sock` must fit in 107 bytes |
//! | `--runtime` | runc-compatible executable |
//! | `--runtime-root` | the runtime's `--root` |
//! | `--runtime-arg` | extra global runtime flag, repeatable (e.g. `--systemd-cgroup`) |
//! | `--tty` | allocate a terminal (`--console-socket`); output is raw, logged as `stdout` |
//! | `--stdin` | keep the container's stdin open for attach (else `/dev/null`) |
//! | `--stdin-once` | close stdin when the first stdin-attached client ends its input (Docker's `StdinOnce`; not possible with a terminal, where input just stops) |
//! | `--log-path` | json-file log; without it output is read and discarded |
//! | `--log-max-size` | rotate when the log would exceed this many bytes; default 10 MiB, 0 = never |
//! | `--log-max-files` | files kept including the current one (`log`, `log.1`, …); default 3 |
//! | `--no-start` | stop after `runtime create`, report `created`, wait for a `start` request (so attach and wait precede the first output, as `docker run` needs) |
//! | `--no-delete` | do not `runtime delete` at exit; `shutdown` does it |
//! | `--ready-fd` | inherited descriptor for the one-line startup report (below) |
//! | `--foreground` | do not detach (debugging, or under a supervisor) |
//!
//! Unless `--foreground`, the shim forks; the first process exits at once
//! (the spawner reaps it), the second calls `setsid`, becomes a child
//! subreaper, changes to `/`, blocks SIGTERM/SIGINT/SIGHUP (reads and drops
//! them: stopping the shim never stops the container) and carries on. It
//! survives the daemon being killed: nothing ties it to the daemon. (If the
//! daemon is itself a child subreaper, the detached shim re-parents to it and
//! the daemon must reap it when it exits.) The runtime, and through it the
//! container, starts with an empty signal mask and default dispositions,
//! whatever the shim or the daemon blocked or ignored. A second shim for a
//! state directory whose shim still answers is refused (kind `conflict`).
//!
//! ## Startup report
//!
//! On the ready descriptor the shim writes exactly one JSON line and closes it:
//! `{"status":"running","pid":<init pid>,"shim_pid":<pid>}` (or `"created"`
//! with `--no-start`), or
//! `{"status":"failed","error":<text>,"kind":<ErrorKind name>,"runtime":b}`
//! after cleaning up (`runtime delete --force`, state files removed). With
//! `"runtime":true` the text is the runtime's own: the last error of its JSON
//! log (`--log <state-dir>/runtime.log --log-format json` is passed to every
//! invocation, as containerd's runc shim does), e.g. runc's `runc create
//! failed: unable to start container process: exec: "foo": executable file
//! not found in $PATH`; [`protocol::classify_start_error`] gives Docker's exit
//! code for it (127). [`spawn()`] does all this and returns
//! [`Error::Runtime`] with that text.
//!
//! ## Lifetime and files
//!
//! When the container's init exits, the shim drains its output, writes
//! `<state-dir>/exit.json` atomically (temp file, fsync, rename, fsync dir):
//! `{"exit_code":N,"exited_at":"2026-11-22T05:40:00.123456789Z","oom_killed":false}`
//! (128+signal for a signal death; `oom_killed` from the memory cgroup's
//! `oom_kill` counter), runs `runtime delete` (unless `--no-delete`), answers
//! `wait`ers and ends attach streams. Other processes re-parented to the shim
//! are reaped and ignored. It then exits as soon as no client connection is
//! open — at once if none is — leaving `exit.json` for a daemon that was
//! away, or on `shutdown`, which also removes `exit.json`, so the state
//! directory is left empty. Before exiting it unlinks `shim.sock` and serves
//! connections already queued, so a client either gets answers or finds no
//! socket ([`Error::NotFound`] from [`ShimClient::connect`]) and reads
//! [`client::read_exit_record`].
//!
//! ## For the daemon
//!
//! * [`spawn()`] blocks (up to [`SpawnOptions::timeout`]): call it in
//!   `spawn_blocking`. For `docker run` without `-d`, spawn with
//!   [`SpawnOptions::no_start`], attach and `wait` first, then `start`.
//! * A container that exits at once may take its shim with it before the
//!   daemon connects (when nobody is connected the shim does not linger):
//!   treat `NotFound` on connect as "read `exit.json`".
//! * On restart, connect to every state directory: `hello` gives the status
//!   and the exit record if it already exited; no socket means read
//!   `exit.json`; then remove the state directory's remaining files.
//! * From tokio, speak the protocol with [`protocol::Request::encode`],
//!   [`protocol::LineBuffer`] and [`protocol::Response::decode`]; after an
//!   `attached`/`exec-started` line, copy the socket to the API client
//!   unchanged (remember any bytes already read past the line).
//!
//! # Protocol (version 1)
//!
//! `<state-dir>/shim.sock`, mode 0600. A client sends one JSON object per
//! line; the shim answers each with one JSON line, in order, and several
//! requests may follow each other on one connection. `attach` and a
//! non-detached `exec` switch the connection to a byte stream right after
//! their answer line.
//!
//! | request | answer |
//! |---|---|
//! | `{"op":"hello","version":1}` | `{"type":"hello","version":1,"id":…,"shim_pid":N,"pid":N,"status":"created"\|"running"\|"exited","tty":b,"stdin":b,"exit":<record>\|null}` |
//! | `{"op":"start"}` | `{"type":"started","pid":N}` (only after `--no-start`) |
//! | `{"op":"attach","stdin":b,"stdout":b,"stderr":b}` | `{"type":"attached","tty":b}`, then the stream |
//! | `{"op":"exec","id":s,"process":{OCI process},"tty":b,"stdin":b,"detach":b}` | `{"type":"exec-started","pid":N,"tty":b}`, then the stream unless `detach` |
//! | `{"op":"exec-state","id":s}` | `{"type":"exec-status","id":s,"pid":N,"running":b,"exit_code":N\|null}` |
//! | `{"op":"exec-wait","id":s}` | the same, once the exec has exited and its output is drained |
//! | `{"op":"resize","exec_id":s\|null,"width":W,"height":H}` | `{"type":"done"}` (TIOCSWINSZ; no-op without a terminal) |
//! | `{"op":"kill","signal":N,"all":b,"exec_id":s\|null}` | `{"type":"done"}` (`runtime kill [--all]`, or kill(2) for an exec) |
//! | `{"op":"wait"}` | `{"type":"exit","exit":<record>}` once the exit record is on disk |
//! | `{"op":"shutdown"}` | `{"type":"exit","exit":<record>}`, then the shim cleans up and quits; only after the exit |
//!
//! Any request can instead get `{"type":"error","kind":"<berth_error::ErrorKind name>","message":…}`
//! (e.g. kind `conflict` for attach to an exited container, `not found` for
//! an unknown exec id).
//!
//! **Streams.** Shim → client: without a terminal, Docker's multiplexed
//! format exactly (`[1=stdout|2=stderr, 0, 0, 0, u32 big-endian length]` +
//! payload), so the daemon can copy it to an API client unchanged; with a
//! terminal, raw bytes. Client → shim: raw bytes for the process's stdin
//! (ignored unless requested and the process has stdin). A client's
//! half-close (`shutdown(SHUT_WR)`) ends its input: it closes the stdin of an
//! exec, and of the container when started with `--stdin-once`. Any number
//! of clients may attach at once; each gets all output from the moment it
//! attached. The container's output is always read and logged: an attach
//! client more than 256 KiB behind loses output rather than stall the
//! container; a slow exec client pauses that exec instead. When the process
//! exits the shim sends what is left and closes the stream; for an exec,
//! `exec-wait`/`exec-state` then return the exit code (the last 64 finished
//! execs are remembered).
//!
//! # Log format
//!
//! Docker's json-file: `{"log":"hi\n","stream":"stdout","time":"…Z"}` per
//! line (split at newlines; a line over 16 KiB is written in pieces without
//! a newline), rotated by size to `<log>.1`, `<log>.2`, …

mod config;
mod error;
mod json;
mod log;
mod runtime;
mod server;
mod shim;
mod sys;
mod time;

pub mod client;
pub mod protocol;
mod spawn;

pub use client::ShimClient;
pub use error::{Error, Result};
pub use log::{DEFAULT_MAX_FILES as DEFAULT_LOG_MAX_FILES, DEFAULT_MAX_SIZE as DEFAULT_LOG_MAX_SIZE};
pub use spawn::{spawn, SpawnOptions, SpawnResult};
pub use time::rfc3339_nanos;

/// Entry point of the `berth-shim` binary; returns the process exit code.
pub fn main() -> i32 {
    match config::parse(std::env::args_os().skip(1)) {
        Ok(config::Parsed::Run(cfg)) => shim::run(*cfg),
        Ok(config::Parsed::Help) => {
            println!("{}", config::USAGE);
            0
        }
        Ok(config::Parsed::Version) => {
            println!("berth-shim {} (protocol {})", env!("CARGO_PKG_VERSION"), protocol::PROTOCOL_VERSION);
            0
        }
        Err(e) => {
            eprintln!("berth-shim: {e}\n{}", config::USAGE);
            2
        }
    }
}
