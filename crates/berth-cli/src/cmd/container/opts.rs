//! The flags of `run` and `create` (docker-cli's `addFlags` and the run/create
//! specific ones). Values are kept as given and validated in `parse`, which
//! reports them with docker's texts.
//!
//! Boolean flags accept Go's `--flag=false` form (`require_equals`, so that
//! `--rm false` keeps `false` as the next argument, as pflag does).

use clap::Args;

/// Go's `strconv.ParseBool`.
pub fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {}: invalid syntax", super::values::go_quote(s))),
    }
}

/// Flags shared by `run` and `create`.
#[derive(Debug, Args, Default, Clone)]
pub struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach")]
    pub attach: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Add a host device to the container
    #[arg(long = "device")]
    pub device: Vec<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long = "entrypoint", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long = "hostname")]
    pub hostname: Option<String>,
    /// Container NIS domain name
    #[arg(long = "domainname")]
    pub domainname: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub interactive: Option<bool>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file")]
    pub label_file: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub read_only: Option<bool>,
    /// Restart policy to apply when a container exits
    #[arg(long = "restart", default_value = "no")]
    pub restart: String,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Sysctl options
    #[arg(long = "sysctl")]
    pub sysctl: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub tty: Option<bool>,
    /// Ulimit options
    #[arg(long = "ulimit")]
    pub ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long = "rm", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub rm: Option<bool>,

    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long = "privileged", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub privileged: Option<bool>,
    /// Security Options
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// User namespace to use
    #[arg(long = "userns")]
    pub userns: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long = "cgroupns")]
    pub cgroupns: Option<String>,

    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns")]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long = "expose")]
    pub expose: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long = "ip6")]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long = "link")]
    pub link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long = "link-local-ip")]
    pub link_local_ip: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub publish_all: Option<bool>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,

    /// Logging driver for the container
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver")]
    pub volume_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Storage driver options for the container
    #[arg(long = "storage-opt")]
    pub storage_opt: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long = "mount")]
    pub mount: Vec<String>,

    /// Command to run to check health
    #[arg(long = "health-cmd", allow_hyphen_values = true)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long = "health-interval", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long = "health-timeout", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-interval", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub no_healthcheck: Option<bool>,

    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<String>,
    /// Block IO weight (relative device weight)
    #[arg(long = "blkio-weight-device")]
    pub blkio_weight_device: Vec<String>,
    /// Write the container ID to the file
    #[arg(long = "cidfile")]
    pub cidfile: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// CPU count (Windows only)
    #[arg(long = "cpu-count", hide = true)]
    pub cpu_count: Option<String>,
    /// CPU percent (Windows only)
    #[arg(long = "cpu-percent", hide = true)]
    pub cpu_percent: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// Limit CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<String>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps")]
    pub device_read_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps")]
    pub device_write_bps: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops")]
    pub device_write_iops: Vec<String>,
    /// Maximum IO bandwidth limit for the system drive (Windows only)
    #[arg(long = "io-maxbandwidth", hide = true)]
    pub io_maxbandwidth: Option<String>,
    /// Maximum IOps limit for the system drive (Windows only)
    #[arg(long = "io-maxiops", hide = true)]
    pub io_maxiops: Option<String>,
    /// Kernel memory limit (deprecated)
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100) (default -1)
    #[arg(long = "memory-swappiness", allow_hyphen_values = true)]
    pub memory_swappiness: Option<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub oom_kill_disable: Option<bool>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,

    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent")]
    pub cgroup_parent: Option<String>,
    /// IPC mode to use
    #[arg(long = "ipc")]
    pub ipc: Option<String>,
    /// Container isolation technology
    #[arg(long = "isolation")]
    pub isolation: Option<String>,
    /// PID namespace to use
    #[arg(long = "pid")]
    pub pid: Option<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// UTS namespace to use
    #[arg(long = "uts")]
    pub uts: Option<String>,
    /// Runtime to use for this container
    #[arg(long = "runtime")]
    pub runtime: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long = "init", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub init: Option<bool>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long = "annotation")]
    pub annotation: Vec<String>,

    /// Assign a name to the container
    #[arg(long = "name")]
    pub name: Option<String>,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long = "pull", default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long = "quiet", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub quiet: Option<bool>,
    /// Set platform if server is multi-platform capable
    #[arg(long = "platform", env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Skip image verification (deprecated)
    #[arg(long = "disable-content-trust", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub disable_content_trust: Option<bool>,

    /// Print usage
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "IMAGE")]
    pub args: Vec<String>,
}

impl ContainerOpts {
    pub fn flag(v: Option<bool>) -> bool {
        v.unwrap_or(false)
    }
}

/// `berth create`.
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
}

/// `berth run`: the create flags plus the run-only ones.
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long = "detach", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub detach: Option<bool>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = go_bool)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[command(flatten)]
    pub opts: ContainerOpts,
}
