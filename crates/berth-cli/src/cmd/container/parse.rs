//! Turning `run`/`create` flags into the `POST /containers/create` body the
//! way docker-cli 28's `parse` (cli/command/container/opts.go) and its API
//! client's `ContainerCreate` do: same fields, same defaults, same `null`s
//! and empty lists, same key order — so a daemon sees from berth exactly what
//! it sees from `docker run` with the same flags.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::mounts::{parse_mount, parse_tmpfs, parse_volumes};
use super::opts::ContainerOpts;
use super::ports::{parse_expose, parse_publish};
use super::values::*;

/// A rejected flag, reported as docker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// A value rejected while parsing flags (pflag's `Set`):
    /// `invalid argument "v" for "--flag" flag: …` followed by the usage line.
    Flag { flag: &'static str, value: String, msg: String },
    /// A combination rejected by `parse`: `docker: …`.
    Invalid(String),
}

impl ParseError {
    /// The full text docker prints, with `berth` for `docker`.
    pub fn render(&self, command: &str) -> String {
        match self {
            ParseError::Flag { flag, value, msg } => format!(
                "invalid argument {} for {} flag: {msg}\n\nUsage:  berth {command} [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n\
                 Run 'berth {command} --help' for more information",
                go_quote(value),
                go_quote(flag)
            ),
            ParseError::Invalid(msg) => format!("berth: {msg}\n\nRun 'berth {command} --help' for more information"),
        }
    }
}

type R<T> = Result<T, ParseError>;

fn invalid(msg: impl Into<String>) -> ParseError {
    ParseError::Invalid(msg.into())
}

/// Validates each value with `f`, reporting the first failure against `flag`.
fn each(flag: &'static str, values: &[String], f: impl Fn(&str) -> Result<String, String>) -> R<Vec<String>> {
    values.iter().map(|v| f(v).map_err(|msg| ParseError::Flag { flag, value: v.clone(), msg })).collect()
}

fn one<T>(flag: &'static str, value: &Option<String>, f: impl Fn(&str) -> Result<T, String>) -> R<Option<T>> {
    match value {
        None => Ok(None),
        Some(v) => f(v).map(Some).map_err(|msg| ParseError::Flag { flag, value: v.clone(), msg }),
    }
}

fn int(flag: &'static str, value: &Option<String>, bits: u32) -> R<i64> {
    Ok(one(flag, value, |s| parse_int(s, bits))?.unwrap_or(0))
}

fn uint(flag: &'static str, value: &Option<String>, bits: u32) -> R<u64> {
    Ok(one(flag, value, |s| parse_uint(s, bits))?.unwrap_or(0))
}

fn bytes(flag: &'static str, value: &Option<String>) -> R<i64> {
    Ok(one(flag, value, ram_in_bytes)?.unwrap_or(0))
}

fn duration(flag: &'static str, value: &Option<String>) -> R<i64> {
    Ok(one(flag, value, go_duration)?.unwrap_or(0))
}

fn kv_map(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (v.clone(), String::new()),
        })
        .collect()
}

fn strs(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

fn throttle(flag: &'static str, values: &[String], iops: bool) -> R<Vec<Value>> {
    let mut out = Vec::new();
    for val in values {
        let fail = |msg: String| ParseError::Flag { flag, value: val.clone(), msg };
        let (k, v) =
            val.split_once(':').filter(|(k, _)| !k.is_empty()).ok_or_else(|| fail(format!("bad format: {val}")))?;
        if !k.starts_with("/dev/") {
            return Err(fail(format!("bad format for device path: {val}")));
        }
        let rate = if iops {
            parse_uint(v, 64).map_err(|_| {
                fail(format!(
                    "invalid rate for device: {val}. The correct format is <device-path>:<number>. Number must be a positive integer"
                ))
            })?
        } else {
            let r = ram_in_bytes(v).ok().filter(|r| *r >= 0).ok_or_else(|| {
                fail(format!(
                    "invalid rate for device: {val}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb"
                ))
            })?;
            r as u64
        };
        out.push(json!({"Path": k, "Rate": rate}));
    }
    Ok(out)
}

fn weight_devices(values: &[String]) -> R<Vec<Value>> {
    let mut out = Vec::new();
    for val in values {
        let fail = |msg: String| ParseError::Flag { flag: "--blkio-weight-device", value: val.clone(), msg };
        let (k, v) =
            val.split_once(':').filter(|(k, _)| !k.is_empty()).ok_or_else(|| fail(format!("bad format: {val}")))?;
        if !k.starts_with("/dev/") {
            return Err(fail(format!("bad format for device path: {val}")));
        }
        let w = parse_uint(v, 16)
            .ok()
            .filter(|w| *w == 0 || (10..=1000).contains(w))
            .ok_or_else(|| fail(format!("invalid weight for device: {val}")))?;
        out.push(json!({"Path": k, "Weight": w}));
    }
    Ok(out)
}

/// One `--network` value (`NetworkOpt.Set`).
#[derive(Debug, Default, Clone)]
struct Attachment {
    target: String,
    aliases: Vec<String>,
    driver_opts: BTreeMap<String, String>,
    links: Vec<String>,
    ipv4: String,
    ipv6: String,
    link_local: Vec<String>,
    mac: String,
    gw_priority: i64,
}

/// pflag's check `\w+=\w+` anywhere in the value selects the long syntax.
fn long_network_syntax(v: &str) -> bool {
    let b = v.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (1..b.len().saturating_sub(1)).any(|i| b[i] == b'=' && word(b[i - 1]) && word(b[i + 1]))
}

fn parse_network(value: &str) -> Result<Attachment, String> {
    if !long_network_syntax(value) {
        return Ok(Attachment { target: value.to_string(), ..Default::default() });
    }
    let mut a = Attachment::default();
    for field in value.split(',') {
        let lower = field.to_lowercase();
        let (k, v) =
            lower.split_once('=').filter(|(k, _)| !k.is_empty()).ok_or_else(|| format!("invalid field {field}"))?;
        let (k, v) = (k.trim(), v.trim().to_string());
        match k {
            "name" => a.target = v,
            "alias" => a.aliases.push(v),
            "ip" => a.ipv4 = v,
            "ip6" => a.ipv6 = v,
            "mac-address" => a.mac = v,
            "link-local-ip" => a.link_local.push(v),
            "driver-opt" => {
                let (dk, dv) = v
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| "invalid key value pair format in driver options".to_string())?;
                a.driver_opts.insert(dk.trim().to_string(), dv.trim().to_string());
            }
            "gw-priority" => {
                a.gw_priority = v.parse().map_err(|_| format!("invalid gw-priority ({v}): invalid syntax"))?;
            }
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if a.target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(a)
}

fn is_user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

fn endpoint_json(a: &Attachment) -> Result<(Value, bool), String> {
    if a.target.trim().is_empty() {
        return Err("no name set for network".into());
    }
    if !is_user_defined(&a.target) {
        if !a.aliases.is_empty() {
            return Err("network-scoped aliases are only supported for user-defined networks".into());
        }
        if !a.links.is_empty() {
            return Err("links are only supported for user-defined networks".into());
        }
    }
    let ipam = if !a.ipv4.is_empty() || !a.ipv6.is_empty() || !a.link_local.is_empty() {
        let mut m = Map::new();
        if !a.ipv4.is_empty() {
            m.insert("IPv4Address".into(), json!(a.ipv4));
        }
        if !a.ipv6.is_empty() {
            m.insert("IPv6Address".into(), json!(a.ipv6));
        }
        if !a.link_local.is_empty() {
            m.insert("LinkLocalIPs".into(), json!(a.link_local));
        }
        Value::Object(m)
    } else {
        Value::Null
    };
    if !a.mac.is_empty() && !valid_mac(&a.mac) {
        return Err(format!("{} is not a valid mac address", a.mac));
    }
    let zero = ipam.is_null()
        && a.links.is_empty()
        && a.aliases.is_empty()
        && a.mac.is_empty()
        && a.driver_opts.is_empty()
        && a.gw_priority == 0;
    let ep = json!({
        "IPAMConfig": ipam,
        "Links": strs(&a.links),
        "Aliases": strs(&a.aliases),
        "MacAddress": a.mac,
        "DriverOpts": if a.driver_opts.is_empty() { Value::Null } else { json!(a.driver_opts) },
        "GwPriority": a.gw_priority,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": null
    });
    Ok((ep, zero))
}

/// `parseNetworkOpts` + `applyContainerOptions`: the `EndpointsConfig` map.
fn network_opts(
    o: &ContainerOpts,
    nets: &[Attachment],
    aliases: &[String],
    links: &[String],
) -> R<BTreeMap<String, Value>> {
    let apply = |n: &mut Attachment| -> R<()> {
        if !n.aliases.is_empty() && !aliases.is_empty() {
            return Err(invalid("conflicting options: cannot specify both --network-alias and per-network alias"));
        }
        if !n.ipv4.is_empty() && o.ip.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(invalid("conflicting options: cannot specify both --ip and per-network IPv4 address"));
        }
        if !n.ipv6.is_empty() && o.ip6.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(invalid("conflicting options: cannot specify both --ip6 and per-network IPv6 address"));
        }
        if !n.mac.is_empty() && o.mac_address.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(invalid("conflicting options: cannot specify both --mac-address and per-network MAC address"));
        }
        if !n.link_local.is_empty() && !o.link_local_ip.is_empty() {
            return Err(invalid(
                "conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses",
            ));
        }
        if !aliases.is_empty() {
            n.aliases = aliases.to_vec();
        }
        // For a user-defined network `--link` is an endpoint option (an alias);
        // for the default bridge it stays a legacy HostConfig link.
        if is_user_defined(&n.target) && !links.is_empty() {
            n.links = links.to_vec();
        }
        if let Some(ip) = o.ip.as_deref().filter(|s| !s.is_empty()) {
            n.ipv4 = ip.to_string();
        }
        if let Some(ip) = o.ip6.as_deref().filter(|s| !s.is_empty()) {
            n.ipv6 = ip.to_string();
        }
        if let Some(mac) = o.mac_address.as_deref().filter(|s| !s.is_empty()) {
            n.mac = mac.to_string();
        }
        if !o.link_local_ip.is_empty() {
            n.link_local = o.link_local_ip.clone();
        }
        Ok(())
    };
    let mut endpoints = BTreeMap::new();
    if nets.is_empty() {
        let mut n = Attachment { target: "default".into(), ..Default::default() };
        apply(&mut n)?;
        let (ep, _) = endpoint_json(&n).map_err(invalid)?;
        endpoints.insert("default".to_string(), ep);
    }
    let (mut user, mut non_user) = (false, false);
    for (i, n) in nets.iter().enumerate() {
        let mut n = n.clone();
        if is_user_defined(&n.target) {
            user = true;
        } else {
            non_user = true;
        }
        if i == 0 {
            apply(&mut n)?;
        }
        let (ep, zero) = endpoint_json(&n).map_err(invalid)?;
        if endpoints.contains_key(&n.target) {
            return Err(invalid(format!("network {} is specified multiple times", go_quote(&n.target))));
        }
        // A single network without options is left to the daemon, as docker does.
        if i == 0 && nets.len() == 1 && zero {
            continue;
        }
        endpoints.insert(n.target.clone(), ep);
    }
    if user && non_user {
        return Err(invalid("conflicting options: cannot attach both user-defined and non-user-defined network-modes"));
    }
    Ok(endpoints)
}

fn valid_container_mode(m: &str) -> bool {
    m.split_once(':').is_some_and(|(k, v)| k == "container" && !v.is_empty())
}

/// What `run`/`create` need besides the body.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The `POST /containers/create` body (Config with HostConfig and NetworkingConfig).
    pub body: Value,
    pub image: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub auto_remove: bool,
    pub attach_flags: usize,
}

/// Builds the create request from the flags. `console` is the local
/// terminal's (height, width), `(0, 0)` when stdout is not a terminal;
/// `api` the negotiated API version (docker's client moves the endpoint MAC
/// address to `Config.MacAddress` below 1.44).
pub fn parse(o: &ContainerOpts, console: (u16, u16), api: &str) -> R<Parsed> {
    // Values docker validates while reading flags.
    let attach = each("-a, --attach", &o.attach, validate_attach)?;
    let env = each("-e, --env", &o.env, validate_env)?;
    let labels = each("-l, --label", &o.label, validate_label)?;
    let extra_hosts = each("--add-host", &o.add_host, validate_extra_host)?;
    let dns = each("--dns", &o.dns, validate_ip)?;
    let dns_search = each("--dns-search", &o.dns_search, validate_dns_search)?;
    let links = each("--link", &o.link, validate_link)?;
    let sysctls = each("--sysctl", &o.sysctl, validate_sysctl)?;
    let mut ulimits: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for u in &o.ulimit {
        let (name, soft, hard) =
            parse_ulimit(u).map_err(|msg| ParseError::Flag { flag: "--ulimit", value: u.clone(), msg })?;
        ulimits.insert(name, (soft, hard));
    }
    let mut mounts = Vec::new();
    for m in &o.mount {
        mounts.push(parse_mount(m).map_err(|msg| ParseError::Flag { flag: "--mount", value: m.clone(), msg })?);
    }
    let mut nets = Vec::new();
    for n in &o.network {
        nets.push(parse_network(n).map_err(|msg| ParseError::Flag { flag: "--network", value: n.clone(), msg })?);
    }
    let memory = bytes("-m, --memory", &o.memory)?;
    let memory_reservation = bytes("--memory-reservation", &o.memory_reservation)?;
    let memory_swap = match o.memory_swap.as_deref() {
        Some("-1") => -1,
        _ => bytes("--memory-swap", &o.memory_swap)?,
    };
    let kernel_memory = bytes("--kernel-memory", &o.kernel_memory)?;
    let shm_size = bytes("--shm-size", &o.shm_size)?;
    let io_max_bandwidth = bytes("--io-maxbandwidth", &o.io_maxbandwidth)?;
    let nano_cpus = one("--cpus", &o.cpus, parse_cpus)?.unwrap_or(0);
    let cpu_shares = int("-c, --cpu-shares", &o.cpu_shares, 64)?;
    let cpu_period = int("--cpu-period", &o.cpu_period, 64)?;
    let cpu_quota = int("--cpu-quota", &o.cpu_quota, 64)?;
    let cpu_rt_period = int("--cpu-rt-period", &o.cpu_rt_period, 64)?;
    let cpu_rt_runtime = int("--cpu-rt-runtime", &o.cpu_rt_runtime, 64)?;
    let cpu_count = int("--cpu-count", &o.cpu_count, 64)?;
    let cpu_percent = int("--cpu-percent", &o.cpu_percent, 64)?;
    let io_max_iops = uint("--io-maxiops", &o.io_maxiops, 64)?;
    let blkio_weight = uint("--blkio-weight", &o.blkio_weight, 16)?;
    let pids_limit = int("--pids-limit", &o.pids_limit, 64)?;
    let oom_score_adj = int("--oom-score-adj", &o.oom_score_adj, 64)?;
    let swappiness = match &o.memory_swappiness {
        None => -1,
        some => int("--memory-swappiness", some, 64)?,
    };
    let stop_timeout = one("--stop-timeout", &o.stop_timeout, |s| parse_int(s, 64))?;
    let health_interval = duration("--health-interval", &o.health_interval)?;
    let health_timeout = duration("--health-timeout", &o.health_timeout)?;
    let health_start_period = duration("--health-start-period", &o.health_start_period)?;
    let health_start_interval = duration("--health-start-interval", &o.health_start_interval)?;
    let health_retries = int("--health-retries", &o.health_retries, 64)?;
    let blkio_weight_device = weight_devices(&o.blkio_weight_device)?;
    let read_bps = throttle("--device-read-bps", &o.device_read_bps, false)?;
    let write_bps = throttle("--device-write-bps", &o.device_write_bps, false)?;
    let read_iops = throttle("--device-read-iops", &o.device_read_iops, true)?;
    let write_iops = throttle("--device-write-iops", &o.device_write_iops, true)?;
    for rule in &o.device_cgroup_rule {
        if !valid_cgroup_rule(rule) {
            return Err(ParseError::Flag {
                flag: "--device-cgroup-rule",
                value: rule.clone(),
                msg: format!("invalid device cgroup format '{rule}'"),
            });
        }
    }

    // From here on, docker's `parse`.
    let image = o.args.first().cloned().unwrap_or_default();
    let cmd: Vec<String> = o.args.iter().skip(1).cloned().collect();
    let tty = ContainerOpts::flag(o.tty);
    let stdin = ContainerOpts::flag(o.interactive);
    let mut attach_stdin = attach.iter().any(|a| a == "stdin");
    let mut attach_stdout = attach.iter().any(|a| a == "stdout");
    let mut attach_stderr = attach.iter().any(|a| a == "stderr");
    if let Some(mac) = o.mac_address.as_deref().filter(|m| !m.is_empty()) {
        if !valid_mac(mac) {
            return Err(invalid(format!("{mac} is not a valid mac address")));
        }
    }
    if stdin {
        attach_stdin = true;
    }
    if attach.is_empty() {
        attach_stdout = true;
        attach_stderr = true;
    }
    if swappiness != -1 && !(0..=100).contains(&swappiness) {
        return Err(invalid(format!("invalid value: {swappiness}. Valid memory swappiness range is 0-100")));
    }
    let (binds, volumes) = parse_volumes(&o.volume).map_err(invalid)?;
    let tmpfs = parse_tmpfs(&o.tmpfs);
    let entrypoint = match o.entrypoint.as_deref() {
        None => Value::Null,
        Some(e) => json!([e]),
    };
    let (mut exposed, port_bindings) = parse_publish(&o.publish).map_err(invalid)?;
    parse_expose(&o.expose, &mut exposed).map_err(invalid)?;
    let mut devices = Vec::new();
    for d in &o.device {
        let (host, container, perms) = parse_device(d).map_err(invalid)?;
        devices.push(json!({"PathOnHost": host, "PathInContainer": container, "CgroupPermissions": perms}));
    }
    let mut env_vars = Vec::new();
    for f in &o.env_file {
        env_vars.extend(read_kv_file(f, true).map_err(invalid)?);
    }
    env_vars.extend(env);
    let mut label_vars = Vec::new();
    for f in &o.label_file {
        label_vars.extend(read_kv_file(f, false).map_err(invalid)?);
    }
    label_vars.extend(labels);

    let pid = o.pid.clone().unwrap_or_default();
    if !(pid.is_empty() || pid == "host" || valid_container_mode(&pid)) {
        return Err(invalid("--pid: invalid PID mode"));
    }
    let uts = o.uts.clone().unwrap_or_default();
    if !(uts.is_empty() || uts == "host") {
        return Err(invalid("--uts: invalid UTS mode"));
    }
    let userns = o.userns.clone().unwrap_or_default();
    if !(userns.is_empty() || userns == "host") {
        return Err(invalid("--userns: invalid USER mode"));
    }
    let cgroupns = o.cgroupns.clone().unwrap_or_default();
    if !["", "host", "private"].contains(&cgroupns.as_str()) {
        return Err(invalid("--cgroupns: invalid CGROUP mode"));
    }
    let (restart_name, restart_count) = parse_restart(&o.restart).map_err(invalid)?;
    let log_driver = o.log_driver.clone().unwrap_or_default();
    if log_driver == "none" && !o.log_opt.is_empty() {
        return Err(invalid(format!("invalid logging opts for driver {log_driver}")));
    }
    let log_opts = kv_map(&o.log_opt);
    let (security_opts, unconfined_paths) = parse_security_opts(&o.security_opt).map_err(invalid)?;
    let mut storage_opts = BTreeMap::new();
    for s in &o.storage_opt {
        let (k, v) = s.split_once('=').ok_or_else(|| invalid("invalid storage option"))?;
        storage_opts.insert(k.to_string(), v.to_string());
    }

    let have_health = o.health_cmd.as_deref().is_some_and(|c| !c.is_empty())
        || health_interval != 0
        || health_timeout != 0
        || health_start_period != 0
        || health_retries != 0
        || health_start_interval != 0;
    let healthcheck = if ContainerOpts::flag(o.no_healthcheck) {
        if have_health {
            return Err(invalid("--no-healthcheck conflicts with --health-* options"));
        }
        Some(json!({"Test": ["NONE"]}))
    } else if have_health {
        for (v, name) in [
            (health_interval, "--health-interval"),
            (health_timeout, "--health-timeout"),
            (health_retries, "--health-retries"),
            (health_start_period, "--health-start-period"),
            (health_start_interval, "--health-start-interval"),
        ] {
            if v < 0 {
                return Err(invalid(format!("{name} cannot be negative")));
            }
        }
        let mut h = Map::new();
        if let Some(c) = o.health_cmd.as_deref().filter(|c| !c.is_empty()) {
            h.insert("Test".into(), json!(["CMD-SHELL", c]));
        }
        for (k, v) in [
            ("Interval", health_interval),
            ("Timeout", health_timeout),
            ("StartPeriod", health_start_period),
            ("StartInterval", health_start_interval),
            ("Retries", health_retries),
        ] {
            if v != 0 {
                h.insert(k.into(), json!(v));
            }
        }
        Some(Value::Object(h))
    } else {
        None
    };

    let auto_remove = ContainerOpts::flag(o.rm);
    if auto_remove && !(restart_name.is_empty() || restart_name == "no") {
        return Err(invalid("conflicting options: cannot specify both --restart and --rm"));
    }
    let open_stdin = stdin;
    let stdin_once = open_stdin && attach_stdin;
    let network_mode = nets.first().map_or_else(|| "default".to_string(), |n| n.target.clone());
    let mut endpoints = network_opts(o, &nets, &o.network_alias, &links)?;

    // Config, in Go's field order.
    let mut c = Map::new();
    c.insert("Hostname".into(), json!(o.hostname.clone().unwrap_or_default()));
    c.insert("Domainname".into(), json!(o.domainname.clone().unwrap_or_default()));
    c.insert("User".into(), json!(o.user.clone().unwrap_or_default()));
    c.insert("AttachStdin".into(), json!(attach_stdin));
    c.insert("AttachStdout".into(), json!(attach_stdout));
    c.insert("AttachStderr".into(), json!(attach_stderr));
    if !exposed.is_empty() {
        c.insert("ExposedPorts".into(), json!(exposed));
    }
    c.insert("Tty".into(), json!(tty));
    c.insert("OpenStdin".into(), json!(open_stdin));
    c.insert("StdinOnce".into(), json!(stdin_once));
    c.insert("Env".into(), strs(&env_vars));
    c.insert("Cmd".into(), strs(&cmd));
    if let Some(h) = healthcheck {
        c.insert("Healthcheck".into(), h);
    }
    c.insert("Image".into(), json!(image));
    c.insert("Volumes".into(), json!(volumes));
    c.insert("WorkingDir".into(), json!(o.workdir.clone().unwrap_or_default()));
    c.insert("Entrypoint".into(), entrypoint);
    if crate::cmd::container::api_below(api, "1.44") {
        let main = if network_mode == "default" { "default".to_string() } else { network_mode.clone() };
        if let Some(ep) = endpoints.get_mut(&main) {
            let mac = ep.get("MacAddress").and_then(Value::as_str).unwrap_or("").to_string();
            if !mac.is_empty() {
                c.insert("MacAddress".into(), json!(mac));
                ep["MacAddress"] = json!("");
            }
        }
    }
    c.insert("OnBuild".into(), Value::Null);
    c.insert("Labels".into(), json!(kv_map(&label_vars)));
    if let Some(s) = o.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        c.insert("StopSignal".into(), json!(s));
    }
    if let Some(t) = stop_timeout {
        c.insert("StopTimeout".into(), json!(t));
    }

    // HostConfig, in Go's field order.
    let mut h = Map::new();
    h.insert("Binds".into(), strs(&binds));
    h.insert("ContainerIDFile".into(), json!(o.cidfile.clone().unwrap_or_default()));
    h.insert("LogConfig".into(), json!({"Type": log_driver, "Config": log_opts}));
    h.insert("NetworkMode".into(), json!(network_mode));
    h.insert("PortBindings".into(), json!(port_bindings));
    h.insert("RestartPolicy".into(), json!({"Name": restart_name, "MaximumRetryCount": restart_count}));
    h.insert("AutoRemove".into(), json!(auto_remove));
    h.insert("VolumeDriver".into(), json!(o.volume_driver.clone().unwrap_or_default()));
    h.insert("VolumesFrom".into(), strs(&o.volumes_from));
    h.insert("ConsoleSize".into(), json!([console.0, console.1]));
    if !o.annotation.is_empty() {
        h.insert("Annotations".into(), json!(kv_map(&o.annotation)));
    }
    h.insert("CapAdd".into(), json!(normalize_caps(&o.cap_add)));
    h.insert("CapDrop".into(), json!(normalize_caps(&o.cap_drop)));
    h.insert("CgroupnsMode".into(), json!(cgroupns));
    h.insert("Dns".into(), json!(dns));
    h.insert("DnsOptions".into(), json!(o.dns_option));
    h.insert("DnsSearch".into(), json!(dns_search));
    h.insert("ExtraHosts".into(), strs(&extra_hosts));
    h.insert("GroupAdd".into(), strs(&o.group_add));
    h.insert("IpcMode".into(), json!(o.ipc.clone().unwrap_or_default()));
    h.insert("Cgroup".into(), json!(""));
    h.insert("Links".into(), strs(&links));
    h.insert("OomScoreAdj".into(), json!(oom_score_adj));
    h.insert("PidMode".into(), json!(pid));
    h.insert("Privileged".into(), json!(ContainerOpts::flag(o.privileged)));
    h.insert("PublishAllPorts".into(), json!(ContainerOpts::flag(o.publish_all)));
    h.insert("ReadonlyRootfs".into(), json!(ContainerOpts::flag(o.read_only)));
    h.insert("SecurityOpt".into(), strs(&security_opts));
    if !storage_opts.is_empty() {
        h.insert("StorageOpt".into(), json!(storage_opts));
    }
    if !tmpfs.is_empty() {
        h.insert("Tmpfs".into(), json!(tmpfs));
    }
    h.insert("UTSMode".into(), json!(uts));
    h.insert("UsernsMode".into(), json!(userns));
    h.insert("ShmSize".into(), json!(shm_size));
    if !sysctls.is_empty() {
        h.insert("Sysctls".into(), json!(kv_map(&sysctls)));
    }
    if let Some(r) = o.runtime.as_deref().filter(|r| !r.is_empty()) {
        h.insert("Runtime".into(), json!(r));
    }
    h.insert("Isolation".into(), json!(o.isolation.clone().unwrap_or_default()));
    h.insert("CpuShares".into(), json!(cpu_shares));
    h.insert("Memory".into(), json!(memory));
    h.insert("NanoCpus".into(), json!(nano_cpus));
    h.insert("CgroupParent".into(), json!(o.cgroup_parent.clone().unwrap_or_default()));
    h.insert("BlkioWeight".into(), json!(blkio_weight));
    h.insert("BlkioWeightDevice".into(), json!(blkio_weight_device));
    h.insert("BlkioDeviceReadBps".into(), json!(read_bps));
    h.insert("BlkioDeviceWriteBps".into(), json!(write_bps));
    h.insert("BlkioDeviceReadIOps".into(), json!(read_iops));
    h.insert("BlkioDeviceWriteIOps".into(), json!(write_iops));
    h.insert("CpuPeriod".into(), json!(cpu_period));
    h.insert("CpuQuota".into(), json!(cpu_quota));
    h.insert("CpuRealtimePeriod".into(), json!(cpu_rt_period));
    h.insert("CpuRealtimeRuntime".into(), json!(cpu_rt_runtime));
    h.insert("CpusetCpus".into(), json!(o.cpuset_cpus.clone().unwrap_or_default()));
    h.insert("CpusetMems".into(), json!(o.cpuset_mems.clone().unwrap_or_default()));
    h.insert("Devices".into(), json!(devices));
    h.insert("DeviceCgroupRules".into(), strs(&o.device_cgroup_rule));
    h.insert("DeviceRequests".into(), Value::Null);
    // KernelMemory is sent only to API 1.40 and 1.41, as docker's client does.
    if kernel_memory != 0
        && !crate::cmd::container::api_below(api, "1.40")
        && crate::cmd::container::api_below(api, "1.42")
    {
        h.insert("KernelMemory".into(), json!(kernel_memory));
    }
    h.insert("MemoryReservation".into(), json!(memory_reservation));
    h.insert("MemorySwap".into(), json!(memory_swap));
    h.insert("MemorySwappiness".into(), json!(swappiness));
    h.insert("OomKillDisable".into(), json!(ContainerOpts::flag(o.oom_kill_disable)));
    h.insert("PidsLimit".into(), json!(pids_limit));
    h.insert(
        "Ulimits".into(),
        Value::Array(ulimits.iter().map(|(n, (s, hd))| json!({"Name": n, "Hard": hd, "Soft": s})).collect()),
    );
    h.insert("CpuCount".into(), json!(cpu_count));
    h.insert("CpuPercent".into(), json!(cpu_percent));
    h.insert("IOMaximumIOps".into(), json!(io_max_iops));
    h.insert("IOMaximumBandwidth".into(), json!(io_max_bandwidth));
    if !mounts.is_empty() {
        h.insert("Mounts".into(), json!(mounts));
    }
    let paths = if unconfined_paths { json!([]) } else { Value::Null };
    h.insert("MaskedPaths".into(), paths.clone());
    h.insert("ReadonlyPaths".into(), paths);
    if let Some(i) = o.init {
        h.insert("Init".into(), json!(i));
    }

    c.insert("HostConfig".into(), Value::Object(h));
    c.insert("NetworkingConfig".into(), json!({"EndpointsConfig": endpoints}));
    Ok(Parsed {
        body: Value::Object(c),
        image,
        tty,
        attach_stdin,
        attach_stdout,
        attach_stderr,
        auto_remove,
        attach_flags: attach.len(),
    })
}

/// `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`
fn valid_cgroup_rule(rule: &str) -> bool {
    let parts: Vec<&str> = rule.split(' ').collect();
    let num = |s: &str| s == "*" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    match parts.as_slice() {
        [t, mm, perm] => {
            ["a", "b", "c"].contains(t)
                && mm.split_once(':').is_some_and(|(a, b)| num(a) && num(b))
                && (1..=3).contains(&perm.len())
                && perm.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
