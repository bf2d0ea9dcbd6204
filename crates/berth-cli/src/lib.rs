//! The `berth` command line: Docker's verbs, flags, tables and error texts,
//! spoken to a berth daemon (or any Docker Engine API) over a unix socket.

mod cmd;
mod connect;
mod output;
pub mod units;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use connect::{DEFAULT_DATA_ROOT, DEFAULT_SOCKET};

#[derive(Debug, Parser)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path)
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Set the logging level
    #[arg(short = 'l', long = "log-level", hide = true)]
    pub log_level: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the berth daemon (the Engine API server)
    #[command(disable_help_flag = true)]
    Daemon {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Show the berth version information
    Version(cmd::system::VersionArgs),
    /// Display system-wide information
    Info(cmd::system::InfoArgs),
    /// Get real time events from the server
    Events(cmd::system::EventsArgs),
    /// Manage berth
    #[command(subcommand)]
    System(cmd::system::SystemCmd),
    /// List images
    Images(cmd::image::ListArgs),
    /// Manage images
    #[command(subcommand)]
    Image(cmd::image::ImageCmd),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cmd::image::TagArgs),
    /// Remove one or more images
    Rmi(cmd::image::RmArgs),
    /// Show the history of an image
    History(cmd::image::HistoryArgs),
    /// Load an image from a tar archive or STDIN
    Load(cmd::image::LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(cmd::image::SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(cmd::image::ImportArgs),
    /// Return low-level information on berth objects
    Inspect(cmd::image::InspectArgs),
}

/// Entry point of the `berth` binary; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
        }
    };
    if cli.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    // A CLI call is short: one thread is enough and starts fastest.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    }
}

/// Prints an error the way docker does.
pub(crate) fn report(e: &anyhow::Error) {
    if let Some(ce) = e.downcast_ref::<berth_client::Error>() {
        match ce {
            berth_client::Error::Api { message, .. } => eprintln!("Error response from daemon: {message}"),
            other => eprintln!("{other}"),
        }
        return;
    }
    eprintln!("Error: {e:#}");
}

async fn run(cli: Cli) -> Result<i32> {
    let Some(command) = cli.command else { return Ok(0) };
    let target = connect::resolve(cli.host.as_deref())?;
    let ctx = cmd::Ctx { target };
    use cmd::{image, system};
    match command {
        Command::Daemon { .. } => {
            // The binary dispatches `berth daemon` before parsing; reaching
            // this means it was placed after global flags.
            anyhow::bail!("`daemon` must be the first argument: berth daemon [OPTIONS]")
        }
        Command::Version(a) => system::version(&ctx, a).await,
        Command::Info(a) => system::info(&ctx, a).await,
        Command::Events(a) => system::events(&ctx, a).await,
        Command::System(c) => system::system(&ctx, c).await,
        Command::Images(a) => image::list(&ctx, a).await,
        Command::Image(c) => image::image(&ctx, c).await,
        Command::Tag(a) => image::tag(&ctx, a).await,
        Command::Rmi(a) => image::rm(&ctx, a).await,
        Command::History(a) => image::history(&ctx, a).await,
        Command::Load(a) => image::load(&ctx, a).await,
        Command::Save(a) => image::save(&ctx, a).await,
        Command::Import(a) => image::import(&ctx, a).await,
        Command::Inspect(a) => image::inspect(&ctx, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn host_flag_before_command_and_human_flag_after() {
        let c = Cli::try_parse_from(["berth", "-H", "unix:///x.sock", "history", "-H=false", "img"]).unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///x.sock"));
        match c.command {
            Some(Command::History(h)) => assert!(!h.human),
            other => panic!("{other:?}"),
        }
    }
}
