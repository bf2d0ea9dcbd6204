//! The `berth` command line: Docker's verbs, flags, tables and error texts,
//! spoken to a berth daemon (or any Docker Engine API) over a unix socket.

mod cmd;
mod connect;
mod output;
mod tty;
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
    /// Download an image from a registry
    Pull(cmd::registry::PullArgs),
    /// Upload an image to a registry
    Push(cmd::registry::PushArgs),
    /// Authenticate to a registry
    Login(cmd::registry::LoginArgs),
    /// Log out from a registry
    Logout(cmd::registry::LogoutArgs),
    /// Search Docker Hub for images
    Search(cmd::registry::SearchArgs),
    /// Return low-level information on berth objects
    Inspect(cmd::image::InspectArgs),
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(cmd::container::RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(cmd::container::CreateArgs),
    /// Start one or more stopped containers
    Start(cmd::container::StartArgs),
    /// Stop one or more running containers
    Stop(cmd::container::StopArgs),
    /// Restart one or more containers
    Restart(cmd::container::StopArgs),
    /// Kill one or more running containers
    Kill(cmd::container::KillArgs),
    /// Remove one or more containers
    Rm(cmd::container::RmArgs),
    /// List containers
    Ps(cmd::container::PsArgs),
    /// Fetch the logs of a container
    Logs(cmd::container::LogsArgs),
    /// Execute a command in a running container
    Exec(cmd::container::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(cmd::container::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(cmd::container::WaitArgs),
    /// Rename a container
    Rename(cmd::container::RenameArgs),
    /// Display the running processes of a container
    Top(cmd::container::TopArgs),
    /// Pause all processes within one or more containers
    Pause(cmd::container::NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(cmd::container::NamesArgs),
    /// List port mappings or a specific mapping for the container
    Port(cmd::container::PortArgs),
    /// Update configuration of one or more containers
    Update(cmd::container::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(cmd::container::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(cmd::container::ExportArgs),
    /// Create a new image from a container's changes
    Commit(cmd::container::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cmd::cp::CpArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(cmd::volume::VolumeCmd),
    /// Manage containers
    #[command(subcommand)]
    Container(cmd::container::ContainerCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(cmd::network::NetworkCmd),
    /// Build an image from a Dockerfile
    Build(cmd::build::BuildArgs),
    /// Manage builds
    #[command(subcommand)]
    Builder(cmd::build::BuilderCmd),
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
    use cmd::{container, image, system};
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
        Command::Network(c) => cmd::network::network(&ctx, c).await,
        Command::Tag(a) => image::tag(&ctx, a).await,
        Command::Rmi(a) => image::rm(&ctx, a).await,
        Command::History(a) => image::history(&ctx, a).await,
        Command::Load(a) => image::load(&ctx, a).await,
        Command::Save(a) => image::save(&ctx, a).await,
        Command::Import(a) => image::import(&ctx, a).await,
        Command::Inspect(a) => image::inspect(&ctx, a).await,
        Command::Pull(a) => cmd::registry::pull(&ctx, a).await,
        Command::Push(a) => cmd::registry::push(&ctx, a).await,
        Command::Login(a) => cmd::registry::login(&ctx, a).await,
        Command::Logout(a) => cmd::registry::logout(&ctx, a).await,
        Command::Search(a) => cmd::registry::search(&ctx, a).await,
        Command::Run(a) => container::run::run(&ctx, a).await,
        Command::Create(a) => container::run::create(&ctx, a).await,
        Command::Start(a) => container::run::start(&ctx, a).await,
        Command::Attach(a) => container::run::attach(&ctx, a).await,
        Command::Container(c) => container::container(&ctx, c).await,
        Command::Stop(a) => container::container(&ctx, container::ContainerCmd::Stop(a)).await,
        Command::Restart(a) => container::container(&ctx, container::ContainerCmd::Restart(a)).await,
        Command::Kill(a) => container::container(&ctx, container::ContainerCmd::Kill(a)).await,
        Command::Rm(a) => container::container(&ctx, container::ContainerCmd::Rm(a)).await,
        Command::Ps(a) => container::container(&ctx, container::ContainerCmd::Ls(a)).await,
        Command::Logs(a) => container::container(&ctx, container::ContainerCmd::Logs(a)).await,
        Command::Exec(a) => container::container(&ctx, container::ContainerCmd::Exec(a)).await,
        Command::Wait(a) => container::container(&ctx, container::ContainerCmd::Wait(a)).await,
        Command::Rename(a) => container::container(&ctx, container::ContainerCmd::Rename(a)).await,
        Command::Top(a) => container::container(&ctx, container::ContainerCmd::Top(a)).await,
        Command::Pause(a) => container::container(&ctx, container::ContainerCmd::Pause(a)).await,
        Command::Unpause(a) => container::container(&ctx, container::ContainerCmd::Unpause(a)).await,
        Command::Port(a) => container::container(&ctx, container::ContainerCmd::Port(a)).await,
        Command::Update(a) => container::container(&ctx, container::ContainerCmd::Update(a)).await,
        Command::Diff(a) => container::container(&ctx, container::ContainerCmd::Diff(a)).await,
        Command::Export(a) => container::container(&ctx, container::ContainerCmd::Export(a)).await,
        Command::Commit(a) => container::container(&ctx, container::ContainerCmd::Commit(a)).await,
        Command::Cp(a) => cmd::cp::cp(&ctx, a).await,
        Command::Volume(c) => cmd::volume::volume(&ctx, c).await,
        Command::Build(a) => cmd::build::build(&ctx, a).await,
        Command::Builder(c) => cmd::build::builder(&ctx, c).await,
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
