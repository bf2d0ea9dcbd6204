//! berth-runtime: berth's OCI runtime, with runc's command line, built on
//! youki's `libcontainer`.
//!
//! The shim drives it exactly like runc (`create`, `start`, `state`, `kill`,
//! `delete`, `exec`, ...), and any runc-compatible binary can replace it per
//! container. Each invocation is a short-lived, single-threaded process: all
//! namespace and clone work happens here, never in the multi-threaded daemon
//! (DESIGN.md §2).

mod cgroups;
mod cli;
mod container;
mod control;
mod error;
mod exec;
mod executor;
mod info;
mod lifecycle;
mod logging;
mod wait;

use std::io::Write;

use clap::{CommandFactory, Parser};
use tracing::level_filters::LevelFilter;
use tracing::Level;

pub use error::{Error, Result};

use cli::{Command, Global, Opts};
use logging::{LogSubscriber, Logger};

/// Entry point of the `berth-runtime` binary; returns the process exit code.
pub fn main() -> i32 {
    let args = cli::normalize_args(std::env::args_os().collect());
    let opts = match Opts::try_parse_from(args) {
        Ok(o) => o,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    if opts.version {
        print!("{}", info::version());
        return 0;
    }
    let Some(command) = opts.command else {
        let _ = Opts::command().print_help();
        return 0;
    };

    let level = match opts.global.log_level.as_deref().map(str::parse::<LevelFilter>) {
        Some(Ok(l)) => l,
        Some(Err(_)) => {
            eprintln!("invalid log level");
            return 1;
        }
        None if opts.global.debug => LevelFilter::DEBUG,
        None => LevelFilter::ERROR,
    };
    let logger = match Logger::open(opts.global.log.as_deref(), opts.global.log_format, level) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("failed to open log file: {e}");
            return 1;
        }
    };
    // The subscriber must live as long as the process, and so must its
    // logger; the init process cloned from us keeps using both.
    let logger: &'static Logger = Box::leak(Box::new(logger));
    let _ = tracing::subscriber::set_global_default(LogSubscriber::new(logger));

    // runc prefixes the fatal error of these with "runc <cmd> failed: ",
    // which ends up in Docker's "OCI runtime create failed: ..." text.
    let prefix = match &command {
        Command::Create(_) => "berth-runtime create failed: ",
        Command::Run(_) => "berth-runtime run failed: ",
        Command::Exec(_) => "berth-runtime exec failed: ",
        _ => "",
    };
    match dispatch(&opts.global, command) {
        Ok(code) => code,
        Err(err) => {
            let msg = format!("{prefix}{err}");
            logger.write(Level::ERROR, &msg);
            if logger.is_file() {
                // runc's fatal(): the log for the shim, stderr for a human.
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
            1
        }
    }
}

fn dispatch(global: &Global, command: Command) -> Result<i32> {
    match command {
        Command::Create(args) => lifecycle::create(global, &args, true).map(|_| 0),
        Command::Start(args) => lifecycle::start(global, &args.id).map(|()| 0),
        Command::Run(args) => lifecycle::run(global, &args),
        Command::State(args) => info::state(global, &args.id).map(|()| 0),
        Command::Kill(args) => control::kill(global, &args).map(|()| 0),
        Command::Delete(args) => lifecycle::delete(global, &args).map(|()| 0),
        Command::Exec(args) => exec::exec(global, &args),
        Command::Pause(args) => control::pause(global, &args.id).map(|()| 0),
        Command::Resume(args) => control::resume(global, &args.id).map(|()| 0),
        Command::Ps(args) => info::ps(global, &args).map(|()| 0),
        Command::List(args) => info::list(global, &args).map(|()| 0),
        Command::Features => info::features().map(|()| 0),
    }
}
