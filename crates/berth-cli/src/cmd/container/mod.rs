//! Container commands: `run`, `create`, `start`, `stop`, `ps`, `exec`, … and
//! the `container` management group, written against the Engine API and
//! following docker-cli 28 (cli/command/container) for flags, requests,
//! output, error texts and exit codes.
//!
//! Every command returns its exit code; failures are printed here the way
//! docker's `main` prints them: the error text alone on stderr (docker 28 adds
//! no `Error:` prefix unless the message has one), exit status 1 unless the
//! command chose another (125/126/127 for `run`).

mod exec;
pub(crate) mod list;
mod manage;
mod mounts;
pub mod opts;
mod parse;
mod ports;
pub(crate) mod pull;
pub mod run;
mod stream;
mod values;
#[cfg(test)]
mod wire_tests;

use anyhow::Result;
use berth_client::Client;
use clap::Subcommand;

use super::Ctx;

pub use exec::ExecArgs;
pub use list::PsArgs;
pub use manage::{
    CommitArgs, DiffArgs, ExportArgs, InspectArgs, KillArgs, LogsArgs, NamesArgs, PortArgs, PruneArgs, RenameArgs,
    RmArgs, StopArgs, TopArgs, UpdateArgs, WaitArgs,
};
pub use opts::{CreateArgs, RunArgs};
pub use run::{AttachArgs, StartArgs};

/// An error carrying docker's exact text and exit status.
#[derive(Debug)]
pub struct StatusError {
    pub message: String,
    pub code: i32,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

pub fn status(message: impl Into<String>, code: i32) -> anyhow::Error {
    StatusError { message: message.into(), code }.into()
}

/// docker's text for a client error: daemon errors get their prefix.
pub fn error_text(e: &anyhow::Error) -> String {
    if let Some(s) = e.downcast_ref::<StatusError>() {
        return s.message.clone();
    }
    if let Some(c) = e.downcast_ref::<berth_client::Error>() {
        return client_error_text(c);
    }
    format!("{e:#}")
}

pub fn client_error_text(e: &berth_client::Error) -> String {
    match e {
        berth_client::Error::Api { message, .. } => {
            format!("Error response from daemon: {message}")
        }
        other => other.to_string(),
    }
}

/// Prints a command's failure as docker's `main` does and yields the exit code.
pub fn finish(r: Result<i32>) -> Result<i32> {
    match r {
        Ok(code) => Ok(code),
        // Output into a closed pipe (`berth logs x | head`): docker dies of
        // SIGPIPE without a word; exit as a shell reports that.
        Err(e) if is_broken_pipe(&e) => Ok(128 + libc::SIGPIPE),
        Err(e) => {
            let code = e.downcast_ref::<StatusError>().map_or(1, |s| s.code);
            let text = error_text(&e);
            if !text.is_empty() {
                eprintln!("{text}");
            }
            Ok(code)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
        || error_text(e).contains("Broken pipe")
}

/// Whether API version `v` is older than `than` (docker's `versions.LessThan`).
pub fn api_below(v: &str, than: &str) -> bool {
    berth_client::version_less(v, than)
}

/// A container reference as a path segment.
pub fn seg(name: &str) -> String {
    berth_client::enc_segment(name)
}

/// Whether `e` is a daemon 404.
pub fn is_not_found(e: &berth_client::Error) -> bool {
    e.status().is_some_and(|s| s.as_u16() == 404)
}

/// Runs `op` for each name (docker's `parallelOperation` keeps output in
/// argument order), printing each name that succeeded; the failures are
/// returned joined by newlines, as `errors.Join` prints them.
pub async fn for_each<F, Fut>(names: &[String], op: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), anyhow::Error>>,
{
    let results = futures_util::future::join_all(names.iter().map(|n| op(n.clone()))).await;
    let mut errs = Vec::new();
    for (name, r) in names.iter().zip(results) {
        match r {
            Ok(()) => println!("{name}"),
            Err(e) => errs.push(error_text(&e)),
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(errs.join("\n"), 1))
    }
}

/// Sends a request whose answer body is not needed.
pub async fn call(
    c: &Client,
    method: berth_client::hyper::Method,
    path: &str,
) -> std::result::Result<(), berth_client::Error> {
    let r = c.request(method, path, berth_client::empty(), &[]).await?;
    berth_client::read_bytes(r).await?;
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum ContainerCmd {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(crate::cmd::cp::CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
}

pub async fn container(ctx: &Ctx, c: ContainerCmd) -> Result<i32> {
    match c {
        ContainerCmd::Attach(a) => run::attach(ctx, a).await,
        ContainerCmd::Commit(a) => manage::commit(ctx, a).await,
        ContainerCmd::Cp(a) => crate::cmd::cp::cp(ctx, a).await,
        ContainerCmd::Create(a) => run::create(ctx, a).await,
        ContainerCmd::Diff(a) => manage::diff(ctx, a).await,
        ContainerCmd::Exec(a) => exec::exec(ctx, a).await,
        ContainerCmd::Export(a) => manage::export(ctx, a).await,
        ContainerCmd::Inspect(a) => manage::inspect(ctx, a).await,
        ContainerCmd::Kill(a) => manage::kill(ctx, a).await,
        ContainerCmd::Logs(a) => manage::logs(ctx, a).await,
        ContainerCmd::Ls(a) => list::ps(ctx, a).await,
        ContainerCmd::Pause(a) => manage::pause(ctx, a, true).await,
        ContainerCmd::Port(a) => manage::port(ctx, a).await,
        ContainerCmd::Prune(a) => manage::prune(ctx, a).await,
        ContainerCmd::Rename(a) => manage::rename(ctx, a).await,
        ContainerCmd::Restart(a) => manage::stop(ctx, a, true).await,
        ContainerCmd::Rm(a) => manage::rm(ctx, a).await,
        ContainerCmd::Run(a) => run::run(ctx, a).await,
        ContainerCmd::Start(a) => run::start(ctx, a).await,
        ContainerCmd::Stop(a) => manage::stop(ctx, a, false).await,
        ContainerCmd::Top(a) => manage::top(ctx, a).await,
        ContainerCmd::Unpause(a) => manage::pause(ctx, a, false).await,
        ContainerCmd::Update(a) => manage::update(ctx, a).await,
        ContainerCmd::Wait(a) => manage::wait(ctx, a).await,
    }
}

/// The generic `berth inspect`: containers first, then images, as docker's
/// `inspect` tries object types in order.
pub async fn inspect_any(
    ctx: &Ctx,
    names: &[String],
    kind: Option<&str>,
    size: bool,
    format: Option<&str>,
) -> Result<i32> {
    finish(manage::inspect_objects(ctx, names, kind, size, format).await)
}
