//! runc's command line. Callers (containerd-style shims, berth's shim, OCI
//! test suites) build argument lists for runc, so names, short flags and
//! defaults follow `runc --help` (runc 1.1/1.2).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::container::DEFAULT_ROOT;
use crate::logging::Format;

/// berth's OCI runtime (runc-compatible command line).
#[derive(Parser, Debug)]
#[command(name = "berth-runtime", disable_version_flag = true)]
pub struct Opts {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// runc's global options. runc wants them before the command; we also accept
/// them after it.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Root directory for storage of container state.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: Format,
    /// Enable debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Log level (error, warn, info, debug, trace); overrides --debug.
    #[arg(long = "log-level", global = true)]
    pub log_level: Option<String>,
    /// Manage cgroups with systemd (only used on cgroup v2 hosts with
    /// `slice:prefix:name` cgroup paths).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (true|false|auto); ignored.
    #[arg(long, global = true, hide = true)]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility; checkpointing is not supported.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its init waits for `start`).
    Create(Create),
    /// Start the user process of a created container.
    Start(Id),
    /// Create and start a container, and wait for it unless --detach.
    Run(Run),
    /// Print the state of a container as JSON.
    State(Id),
    /// Send a signal to the container's init (or all) processes.
    Kill(Kill),
    /// Delete a container's resources.
    Delete(Delete),
    /// Run a new process in a running container.
    Exec(Box<Exec>),
    /// Suspend all processes of a container (cgroup freezer).
    Pause(Id),
    /// Resume a paused container.
    Resume(Id),
    /// List the processes of a container.
    Ps(Ps),
    /// List containers.
    List(List),
    /// Print the runtime's features as JSON.
    Features,
}

/// A command that takes only a container id.
#[derive(Args, Debug)]
pub struct Id {
    /// Container id.
    pub id: String,
}

/// `create`.
#[derive(Args, Debug, Clone)]
pub struct Create {
    /// Path to the bundle (config.json and rootfs).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the PTY master (SCM_RIGHTS).
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the init process' pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use chroot-like move instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility: no session keyring is created.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Number of extra fds (from 3) passed into the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Container id.
    pub id: String,
}

/// `run`.
#[derive(Args, Debug)]
pub struct Run {
    /// Create options.
    #[command(flatten)]
    pub create: Create,
    /// Return after starting instead of waiting for the container.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
}

/// `kill`.
#[derive(Args, Debug)]
pub struct Kill {
    /// Signal every process in the container's cgroup.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `delete`.
#[derive(Args, Debug)]
pub struct Delete {
    /// Kill the container first if it is running.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id.
    pub id: String,
}

/// `exec`.
#[derive(Args, Debug)]
pub struct Exec {
    /// Unix socket that receives the PTY master.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Working directory of the process.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// Allocate a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// uid[:gid].
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Path to a process.json (OCI process); overrides the other options.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the process' pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Accepted for runc compatibility (SELinux is not supported).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Capabilities to add.
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// Number of extra fds passed into the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Sub-cgroup to run the process in.
    #[arg(long)]
    pub cgroup: Option<String>,
    /// Allow exec in a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Container id.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `ps`.
#[derive(Args, Debug)]
pub struct Ps {
    /// table or json.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Container id.
    pub id: String,
    /// Options passed to ps(1) in table format.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `list`.
#[derive(Args, Debug)]
pub struct List {
    /// table or json.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Go's flag package (and so runc) also accepts long options with a single
/// dash (`-bundle x`, `-pid-file=y`). Rewrite those to `--name` for every
/// long option we know. Rewriting stops at `--` and at the third positional
/// word (command, id, then e.g. the command line of `exec`), which belongs
/// to the container.
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    // Shims use `--name`; skip building clap's command tree (on every
    // container start) unless some word looks like `-name`.
    let go_style = args.iter().skip(1).any(|a| {
        a.to_str().is_some_and(|s| {
            let mut chars = s.chars();
            chars.next() == Some('-') && chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.next().is_some()
        })
    });
    if !go_style {
        return args;
    }
    let cmd = Opts::command();
    // (long name, takes a value) and short flags that take a value.
    let mut longs: Vec<(String, bool)> = Vec::new();
    let mut shorts: Vec<char> = Vec::new();
    let mut collect = |c: &clap::Command| {
        for a in c.get_arguments() {
            let takes = a.get_action().takes_values();
            if let Some(l) = a.get_long() {
                longs.push((l.to_owned(), takes));
            }
            if let (Some(ch), true) = (a.get_short(), takes) {
                shorts.push(ch);
            }
        }
    };
    collect(&cmd);
    for sub in cmd.get_subcommands() {
        collect(sub);
    }
    let mut out = Vec::with_capacity(args.len());
    let mut positional = 0usize;
    let mut passthrough = false;
    let mut skip_value = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if skip_value {
            skip_value = false;
            out.push(arg);
            continue;
        }
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if s == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        if let Some(long) = s.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            skip_value = !long.contains('=') && longs.iter().any(|(l, t)| l == name && *t);
            out.push(arg);
        } else if let Some(rest) = s.strip_prefix('-').filter(|r| !r.is_empty()) {
            let name = rest.split('=').next().unwrap_or(rest);
            match longs.iter().find(|(l, _)| l == name) {
                Some((_, takes)) if name.len() > 1 => {
                    skip_value = *takes && !rest.contains('=');
                    out.push(OsString::from(format!("-{s}")));
                }
                _ => {
                    // A short flag (cluster); it takes the next word as its
                    // value when it is the last letter and takes one.
                    skip_value = rest.len() == 1 && rest.chars().next().is_some_and(|c| shorts.contains(&c));
                    out.push(arg);
                }
            }
        } else {
            positional += 1;
            passthrough = positional >= 3;
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(args: &[&str]) -> Opts {
        let v = args.iter().map(OsString::from).collect();
        match Opts::try_parse_from(normalize_args(v)) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn containerd_style_create() {
        let o = parse(&[
            "berth-runtime",
            "--root",
            "/r",
            "--log",
            "/l.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "--console-socket",
            "/s",
            "c1",
        ]);
        assert_eq!(o.global.root, PathBuf::from("/r"));
        assert_eq!(o.global.log_format, Format::Json);
        match o.command {
            Some(Command::Create(c)) => {
                assert_eq!(c.id, "c1");
                assert_eq!(c.bundle, PathBuf::from("/b"));
                assert_eq!(c.console_socket, Some(PathBuf::from("/s")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn go_style_single_dash() {
        let o = parse(&["berth-runtime", "-root=/r", "create", "-bundle", "/b", "c1"]);
        assert_eq!(o.global.root, PathBuf::from("/r"));
        assert!(matches!(o.command, Some(Command::Create(c)) if c.bundle == Path::new("/b")));
        let o = parse(&[
            "berth-runtime",
            "--root",
            "/r",
            "-log-format",
            "json",
            "create",
            "-pid-file",
            "/p",
            "-bundle=/b",
            "c1",
        ]);
        assert_eq!(o.global.log_format, Format::Json);
        assert!(matches!(o.command, Some(Command::Create(c)) if c.pid_file == Some(PathBuf::from("/p"))));
        // Words of the exec'd command are never rewritten.
        let o = parse(&["berth-runtime", "exec", "-d", "c1", "ls", "-root"]);
        assert!(matches!(o.command, Some(Command::Exec(e)) if e.command == ["ls", "-root"]));
    }

    #[test]
    fn kill_defaults_and_signal() {
        let o = parse(&["berth-runtime", "kill", "c1"]);
        assert!(matches!(o.command, Some(Command::Kill(k)) if k.signal == "SIGTERM" && !k.all));
        let o = parse(&["berth-runtime", "kill", "--all", "c1", "KILL"]);
        assert!(matches!(o.command, Some(Command::Kill(k)) if k.signal == "KILL" && k.all));
    }

    #[test]
    fn exec_trailing_command_keeps_dashes() {
        let o = parse(&["berth-runtime", "exec", "-e", "A=1", "--tty", "c1", "sh", "-c", "echo -root"]);
        match o.command {
            Some(Command::Exec(e)) => {
                assert_eq!(e.id, "c1");
                assert_eq!(e.command, vec!["sh", "-c", "echo -root"]);
                assert!(e.tty);
                assert_eq!(e.env, vec!["A=1"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_flags() {
        assert!(parse(&["berth-runtime", "-v"]).version);
        assert!(parse(&["berth-runtime", "--version"]).version);
    }
}
