//! Flag value parsers with docker-cli's rules and error texts (`opts/*.go`,
//! `go-units`, Go's `strconv` and `time.ParseDuration` messages), so a bad
//! value is reported exactly as `docker run` reports it.

use std::net::IpAddr;

/// Go's `strconv.ParseInt(s, 10, bits)` with its error text.
pub fn parse_int(s: &str, bits: u32) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s));
    let range = || format!("strconv.ParseInt: parsing {}: value out of range", go_quote(s));
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let v: i128 = s.parse().map_err(|_| range())?;
    let max = (1i128 << (bits - 1)) - 1;
    if v > max || v < -max - 1 {
        return Err(range());
    }
    Ok(v as i64)
}

/// Go's `strconv.ParseUint(s, 10, bits)`.
pub fn parse_uint(s: &str, bits: u32) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {}: invalid syntax", go_quote(s)));
    }
    let v: u128 = s.parse().map_err(|_| format!("strconv.ParseUint: parsing {}: value out of range", go_quote(s)))?;
    if v >= (1u128 << bits) {
        return Err(format!("strconv.ParseUint: parsing {}: value out of range", go_quote(s)));
    }
    Ok(v as u64)
}

/// Go's `%q` for the plain strings that appear in flag values.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// go-units `RAMInBytes`: `64m`, `1.5g`, `512kb`, `1GiB`, plain bytes.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size: '{s}'");
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(invalid());
    };
    let (num, sfx) =
        if s.as_bytes()[sep] != b' ' { (&s[..sep + 1], &s[sep + 1..]) } else { (&s[..sep], &s[sep + 1..]) };
    let size: f64 =
        num.parse().map_err(|_| format!("strconv.ParseFloat: parsing {}: invalid syntax", go_quote(num)))?;
    if size < 0.0 {
        return Err(invalid());
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || format!("invalid suffix: '{}'", sfx.to_lowercase());
    if sfx.len() > 3 {
        return Err(format!("invalid suffix: '{sfx}'"));
    }
    let lower = sfx.to_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        return if b.len() > 1 { Err(bad()) } else { Ok(size as i64) };
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0f64.powi(3),
        b't' => 1024.0f64.powi(4),
        b'p' => 1024.0f64.powi(5),
        _ => return Err(bad()),
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &lower[1..] != "ib") {
        return Err(bad());
    }
    Ok((size * mul) as i64)
}

/// docker-cli's `ParseCPUs`: a rational number of CPUs to nano-CPUs.
pub fn parse_cpus(s: &str) -> Result<i64, String> {
    let not_rational = || format!("failed to parse {s} as a rational number");
    // big.Rat's SetString: "a/b" or a decimal with an optional exponent.
    let (num, den): (i128, i128) = if let Some((a, b)) = s.split_once('/') {
        let a: i128 = a.parse().map_err(|_| not_rational())?;
        let b: i128 = b.parse().map_err(|_| not_rational())?;
        if b == 0 {
            return Err(not_rational());
        }
        (a, b)
    } else {
        let (mantissa, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().map_err(|_| not_rational())?),
            None => (s, 0),
        };
        let (neg, m) = match mantissa.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        let (int, frac) = m.split_once('.').unwrap_or((m, ""));
        if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(not_rational());
        }
        let digits: i128 = format!("{int}{frac}").parse().map_err(|_| not_rational())?;
        let scale = exp - frac.len() as i32;
        if scale.abs() > 30 {
            return Err(if scale < 0 { "value is too precise".into() } else { not_rational() });
        }
        let (mut n, d) =
            if scale >= 0 { (digits * 10i128.pow(scale as u32), 1) } else { (digits, 10i128.pow((-scale) as u32)) };
        if neg {
            n = -n;
        }
        (n, d)
    };
    let nano = num * 1_000_000_000;
    if nano % den != 0 {
        return Err("value is too precise".into());
    }
    i64::try_from(nano / den).map_err(|_| not_rational())
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn go_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(s));
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." {
            return Err(invalid());
        }
        let v: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let mul = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {}", go_quote(s))),
            u => return Err(format!("time: unknown unit {} in duration {}", go_quote(u), go_quote(s))),
        };
        total += v * mul;
    }
    if total > i64::MAX as f64 {
        return Err(invalid());
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

/// go-units `ParseUlimit`: `name=soft[:hard]` → (name, soft, hard).
pub fn parse_ulimit(val: &str) -> Result<(String, i64, i64), String> {
    const NAMES: [&str; 15] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let Some((name, limits)) = val.split_once('=') else {
        return Err(format!("invalid ulimit argument: {val}"));
    };
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [s] => {
            let s = parse_int(s, 64)?;
            (s, s)
        }
        [s, h] => {
            let h = parse_int(h, 64)?;
            (parse_int(s, 64)?, h)
        }
        _ => return Err(format!("too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")),
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"));
        }
    }
    Ok((name.to_string(), soft, hard))
}

/// docker-cli's `ParseRestartPolicy`: only the form is checked here; the
/// daemon validates the policy name, as with docker.
pub fn parse_restart(policy: &str) -> Result<(String, i64), String> {
    if policy.is_empty() {
        return Ok((String::new(), 0));
    }
    let (name, count) = policy.split_once(':').unwrap_or((policy, ""));
    if policy.contains(':') && name.is_empty() {
        return Err("invalid restart policy format: no policy provided before colon".into());
    }
    let count = if count.is_empty() {
        0
    } else {
        count
            .parse::<i64>()
            .map_err(|_| "invalid restart policy format: maximum retry count must be an integer".to_string())?
    };
    Ok((name.to_string(), count))
}

/// `ValidateEnv`: `KEY` alone takes the value from the local environment when set.
pub fn validate_env(val: &str) -> Result<String, String> {
    let (k, has_value) = match val.split_once('=') {
        Some((k, _)) => (k, true),
        None => (val, false),
    };
    if k.is_empty() {
        return Err(format!("invalid environment variable: {val}"));
    }
    if has_value {
        return Ok(val.to_string());
    }
    match std::env::var(k) {
        Ok(v) => Ok(format!("{k}={v}")),
        Err(_) => Ok(val.to_string()),
    }
}

pub fn validate_label(val: &str) -> Result<String, String> {
    let key = val.split_once('=').map_or(val, |(k, _)| k).trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(format!("invalid label '{val}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(val.to_string())
}

/// Go's `net.ParseIP(…).String()`.
pub fn canonical_ip(s: &str) -> Option<String> {
    match s.trim().parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        }),
        ip => Some(ip.to_string()),
    }
}

pub fn validate_ip(val: &str) -> Result<String, String> {
    canonical_ip(val).ok_or_else(|| format!("IP address is not correctly formatted: {val}"))
}

/// `ValidateExtraHost`: `host:ip` or `host=ip` (IPv6 possibly in brackets,
/// or `host-gateway`), sent to the daemon as `host:ip`.
pub fn validate_extra_host(val: &str) -> Result<String, String> {
    let (k, v) = match val.split_once('=') {
        Some(kv) => Some(kv),
        None => val.split_once(':'),
    }
    .ok_or_else(|| format!("bad format for add-host: {}", go_quote(val)))?;
    if k.is_empty() || k.contains(':') {
        return Err(format!("bad format for add-host: {}", go_quote(val)));
    }
    let mut v = v;
    if v != "host-gateway" {
        if v.len() > 2 && v.starts_with('[') && v.ends_with(']') {
            v = &v[1..v.len() - 1];
        }
        if canonical_ip(v).is_none() {
            return Err(format!("invalid IP address in add-host: {}", go_quote(v)));
        }
    }
    Ok(format!("{k}:{v}"))
}

/// `ValidateDNSSearch`.
pub fn validate_dns_search(val: &str) -> Result<String, String> {
    let v = val.trim_matches(' ');
    if v == "." {
        return Ok(v.to_string());
    }
    let bad = || format!("{v} is not a valid domain");
    if !v.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let trimmed = v.trim_end();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let label_ok = |l: &str| {
        let l = l.strip_prefix(':').unwrap_or(l);
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.split('.').all(label_ok) && name.len() < 255 {
        Ok(name.to_string())
    } else {
        Err(bad())
    }
}

/// `ValidateSysctl`: namespaced sysctls only.
pub fn validate_sysctl(val: &str) -> Result<String, String> {
    const ALLOWED: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let not_allowed = || format!("sysctl '{val}' is not allowed");
    let Some((k, _)) = val.split_once('=') else {
        return Err(not_allowed());
    };
    if k.is_empty() {
        return Err(not_allowed());
    }
    if ALLOWED.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.") {
        return Ok(val.to_string());
    }
    Err(not_allowed())
}

/// `ValidateLink` (`ParseLink`).
pub fn validate_link(val: &str) -> Result<String, String> {
    if val.is_empty() {
        return Err("empty string specified for links".into());
    }
    if val.splitn(3, ':').count() > 2 {
        return Err(format!("bad format for links: {val}"));
    }
    Ok(val.to_string())
}

pub fn validate_attach(val: &str) -> Result<String, String> {
    let s = val.to_lowercase();
    if ["stdin", "stdout", "stderr"].contains(&s.as_str()) {
        Ok(s)
    } else {
        Err("valid streams are STDIN, STDOUT and STDERR".into())
    }
}

/// Go's `net.ParseMAC` forms: 6, 8 or 20 octets separated by `:` or `-`, or
/// dotted groups of four hex digits.
pub fn valid_mac(s: &str) -> bool {
    let s = s.trim();
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    for sep in [':', '-'] {
        if s.contains(sep) {
            let parts: Vec<&str> = s.split(sep).collect();
            return [6, 8, 20].contains(&parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    let parts: Vec<&str> = s.split('.').collect();
    [3, 4, 10].contains(&parts.len()) && parts.iter().all(|p| hex(p, 4))
}

/// docker-cli's `kvfile.Parse`: `KEY=value` lines, `#` comments, a bare `KEY`
/// taking the local environment's value when `lookup` is set (env files) and
/// dropped otherwise (label files).
pub fn read_kv_file(path: &str, lookup: bool) -> Result<Vec<String>, String> {
    let data = std::fs::read(path).map_err(|e| format!("open {path}: {}", go_io_error(&e)))?;
    parse_kv(&data, lookup).map_err(|e| format!("invalid env file ({path}): {e}"))
}

fn parse_kv(data: &[u8], lookup: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    for (i, raw) in data.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(format!("invalid utf8 bytes at line {}: {:?}", i + 1, raw));
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, has_value) = match line.split_once('=') {
            Some((k, _)) => (k, true),
            None => (line, false),
        };
        if key.is_empty() {
            return Err(format!("no variable name on line '{line}'"));
        }
        if key.contains([' ', '\t']) {
            return Err(format!("variable '{key}' contains whitespaces"));
        }
        if has_value {
            out.push(line.to_string());
        } else if lookup {
            if let Ok(v) = std::env::var(line) {
                out.push(format!("{key}={v}"));
            }
        }
    }
    Ok(out)
}

/// The text Go's `os` errors carry for common failures.
pub fn go_io_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s,
            }
        }
    }
}

/// `NormalizeCapability`, as docker's client applies it before create.
pub fn normalize_cap(c: &str) -> String {
    let c = c.trim().to_uppercase();
    if c == "ALL" || c == "RESET" || c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// Normalized, de-duplicated and sorted capability list (docker's client).
pub fn normalize_caps(caps: &[String]) -> Option<Vec<String>> {
    if caps.is_empty() {
        return None;
    }
    let mut v: Vec<String> = caps.iter().map(|c| normalize_cap(c)).collect();
    v.sort();
    v.dedup();
    Some(v)
}

fn valid_device_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return false;
    }
    let mut seen = [false; 3];
    for c in mode.chars() {
        let i = match c {
            'r' => 0,
            'w' => 1,
            'm' => 2,
            _ => return false,
        };
        if seen[i] {
            return false;
        }
        seen[i] = true;
    }
    true
}

fn clean_path(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `validateLinuxPath` + `parseLinuxDevice`: `host[:container][:mode]` →
/// (PathOnHost, PathInContainer, CgroupPermissions).
pub fn parse_device(val: &str) -> Result<(String, String, String), String> {
    if val.matches(':').count() > 2 {
        return Err(format!("bad format for path: {val}"));
    }
    let split: Vec<&str> = val.splitn(3, ':').collect();
    if split[0].is_empty() {
        return Err(format!("bad format for path: {val}"));
    }
    let (container_path, validated) = match split.as_slice() {
        [c] => (c.to_string(), clean_path(c)),
        [a, b] => {
            if valid_device_mode(b) {
                (a.to_string(), format!("{}:{b}", clean_path(a)))
            } else {
                (b.to_string(), format!("{a}:{}", clean_path(b)))
            }
        }
        [a, b, m] => {
            if !valid_device_mode(m) {
                return Err(format!("bad mode specified: {m}"));
            }
            (b.to_string(), format!("{a}:{b}:{m}"))
        }
        _ => return Err(format!("bad format for path: {val}")),
    };
    if !container_path.starts_with('/') {
        return Err(format!("{container_path} is not an absolute path"));
    }
    let arr: Vec<&str> = validated.splitn(4, ':').collect();
    let mut permissions = "rwm".to_string();
    let mut dst = String::new();
    match arr.as_slice() {
        [src] => Ok((src.to_string(), src.to_string(), permissions)),
        [src, b] => {
            if valid_device_mode(b) {
                permissions = b.to_string();
            } else {
                dst = b.to_string();
            }
            if dst.is_empty() {
                dst = src.to_string();
            }
            Ok((src.to_string(), dst, permissions))
        }
        [src, b, m] => {
            permissions = m.to_string();
            if valid_device_mode(b) {
                permissions = b.to_string();
            } else {
                dst = b.to_string();
            }
            if dst.is_empty() {
                dst = src.to_string();
            }
            Ok((src.to_string(), dst, permissions))
        }
        _ => Err(format!("invalid device specification: {val}")),
    }
}

/// `parseSecurityOpts` + `parseSystemPaths`: validates, inlines a seccomp
/// profile file, and turns `systempaths=unconfined` into empty masked and
/// read-only path lists. Returns (opts, unconfined_system_paths).
pub fn parse_security_opts(opts: &[String]) -> Result<(Vec<String>, bool), String> {
    let mut out = Vec::new();
    let mut unconfined = false;
    for opt in opts {
        let (k, v, ok) = match opt.split_once('=') {
            Some((k, v)) => (k, v, true),
            None if opt != "no-new-privileges" => match opt.split_once(':') {
                Some((k, v)) => (k, v, true),
                None => (opt.as_str(), "", false),
            },
            None => (opt.as_str(), "", false),
        };
        if (!ok || v.is_empty()) && k != "no-new-privileges" {
            return Err(format!("Invalid --security-opt: {}", go_quote(opt)));
        }
        if opt == "systempaths=unconfined" {
            unconfined = true;
            continue;
        }
        if k == "seccomp" && v != "builtin" && v != "unconfined" {
            let data = std::fs::read(v)
                .map_err(|e| format!("opening seccomp profile ({v}) failed: open {v}: {}", go_io_error(&e)))?;
            let parsed: serde_json::Value = serde_json::from_slice(&data)
                .map_err(|e| format!("compacting json for seccomp profile ({v}) failed: {e}"))?;
            out.push(format!("seccomp={parsed}"));
            continue;
        }
        out.push(opt.clone());
    }
    Ok((out, unconfined))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("64m"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("64"), Ok(64));
        assert_eq!(ram_in_bytes("1.5g"), Ok(1536 << 20));
        assert_eq!(ram_in_bytes("10MiB"), Ok(10 << 20));
        assert_eq!(ram_in_bytes("10 kb"), Ok(10 << 10));
        assert_eq!(ram_in_bytes("abc"), Err("invalid size: 'abc'".into()));
        assert_eq!(ram_in_bytes("x"), Err("invalid size: 'x'".into()));
        assert_eq!(ram_in_bytes("10q"), Err("invalid suffix: 'q'".into()));
        assert_eq!(ram_in_bytes("10mx"), Err("invalid suffix: 'mx'".into()));
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("0.5"), Ok(500_000_000));
        assert_eq!(parse_cpus("2"), Ok(2_000_000_000));
        assert_eq!(parse_cpus("3/2"), Ok(1_500_000_000));
        assert_eq!(parse_cpus("1e-3"), Ok(1_000_000));
        assert_eq!(parse_cpus("abc"), Err("failed to parse abc as a rational number".into()));
        assert_eq!(parse_cpus("0.0000000001"), Err("value is too precise".into()));
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("5s"), Ok(5_000_000_000));
        assert_eq!(go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration("100ms"), Ok(100_000_000));
        assert_eq!(go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(go_duration("-1s"), Ok(-1_000_000_000));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(go_duration("x"), Err("time: invalid duration \"x\"".into()));
        assert_eq!(go_duration("5"), Err("time: missing unit in duration \"5\"".into()));
        assert_eq!(go_duration("5y"), Err("time: unknown unit \"y\" in duration \"5y\"".into()));
    }

    #[test]
    fn ulimits_like_go_units() {
        assert_eq!(parse_ulimit("nofile=1024:2048"), Ok(("nofile".into(), 1024, 2048)));
        assert_eq!(parse_ulimit("nproc=10"), Ok(("nproc".into(), 10, 10)));
        assert_eq!(parse_ulimit("core=-1"), Ok(("core".into(), -1, -1)));
        assert_eq!(parse_ulimit("nofile"), Err("invalid ulimit argument: nofile".into()));
        assert_eq!(parse_ulimit("nofile=a"), Err("strconv.ParseInt: parsing \"a\": invalid syntax".into()));
        assert_eq!(
            parse_ulimit("nofile=10:5"),
            Err("ulimit soft limit must be less than or equal to hard limit: 10 > 5".into())
        );
        assert_eq!(parse_ulimit("foo=1"), Err("invalid ulimit type: foo".into()));
        assert_eq!(
            parse_ulimit("nofile=1:2:3"),
            Err("too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`".into())
        );
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("on-failure:3"), Ok(("on-failure".into(), 3)));
        assert_eq!(parse_restart("always"), Ok(("always".into(), 0)));
        assert_eq!(parse_restart("no"), Ok(("no".into(), 0)));
        assert_eq!(
            parse_restart("on-failure:x"),
            Err("invalid restart policy format: maximum retry count must be an integer".into())
        );
        assert_eq!(parse_restart(":3"), Err("invalid restart policy format: no policy provided before colon".into()));
    }

    #[test]
    fn hosts_labels_env() {
        assert_eq!(validate_extra_host("foo:1.2.3.4"), Ok("foo:1.2.3.4".into()));
        assert_eq!(validate_extra_host("foo=[::1]"), Ok("foo:::1".into()));
        assert_eq!(validate_extra_host("foo:::1"), Ok("foo:::1".into()));
        assert_eq!(validate_extra_host("gw:host-gateway"), Ok("gw:host-gateway".into()));
        assert_eq!(validate_extra_host("foo"), Err("bad format for add-host: \"foo\"".into()));
        assert_eq!(validate_extra_host("foo:bad"), Err("invalid IP address in add-host: \"bad\"".into()));
        assert_eq!(validate_label("=x"), Err("invalid label '=x': empty name".into()));
        assert_eq!(validate_label("a b=c"), Err("label 'a b' contains whitespaces".into()));
        assert_eq!(validate_env("=x"), Err("invalid environment variable: =x".into()));
        assert_eq!(validate_env("BERTH_SURELY_UNSET_VAR"), Ok("BERTH_SURELY_UNSET_VAR".into()));
        assert_eq!(validate_ip("bad"), Err("IP address is not correctly formatted: bad".into()));
        assert_eq!(validate_ip(" 8.8.8.8"), Ok("8.8.8.8".into()));
        assert_eq!(validate_dns_search("example.com."), Ok("example.com".into()));
        assert_eq!(validate_dns_search("123"), Err("123 is not a valid domain".into()));
        assert_eq!(validate_sysctl("kernel.foo=1"), Err("sysctl 'kernel.foo=1' is not allowed".into()));
        assert_eq!(validate_sysctl("net.ipv4.ip_forward=1"), Ok("net.ipv4.ip_forward=1".into()));
        assert!(valid_mac("02:42:ac:11:00:02"));
        assert!(valid_mac("02-42-ac-11-00-02"));
        assert!(!valid_mac("bad"));
    }

    #[test]
    fn kv_files() {
        std::env::set_var("BERTH_KV_TEST_FOO", "fooval");
        let got = parse_kv(b"A=1\n# comment\nB_UNSET_X\nBERTH_KV_TEST_FOO\n  C=spaced \nD= x\n", true).unwrap();
        assert_eq!(got, vec!["A=1", "BERTH_KV_TEST_FOO=fooval", "C=spaced ", "D= x"]);
        assert_eq!(parse_kv(b"l1=v1\nl2\n", false).unwrap(), vec!["l1=v1"]);
        assert_eq!(parse_kv(b"  C = x\n", true).unwrap_err(), "variable 'C ' contains whitespaces");
        assert_eq!(parse_kv(b"=x\n", true).unwrap_err(), "no variable name on line '=x'");
        assert_eq!(
            read_kv_file("/nonexistent/env", true).unwrap_err(),
            "open /nonexistent/env: no such file or directory"
        );
    }

    #[test]
    fn devices() {
        let d = |s: &str| parse_device(s);
        assert_eq!(d("/dev/fuse"), Ok(("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into())));
        assert_eq!(d("/dev/null:/dev/xnull:rw"), Ok(("/dev/null".into(), "/dev/xnull".into(), "rw".into())));
        assert_eq!(d("/dev/sda:r"), Ok(("/dev/sda".into(), "/dev/sda".into(), "r".into())));
        assert_eq!(d(""), Err("bad format for path: ".into()));
        assert_eq!(d("a:b:c:d"), Err("bad format for path: a:b:c:d".into()));
        assert_eq!(d("/dev/a:rwz"), Err("rwz is not an absolute path".into()));
        assert_eq!(d("/dev/a:/b:zz"), Err("bad mode specified: zz".into()));
    }

    #[test]
    fn security_opts() {
        let v = |a: &[&str]| parse_security_opts(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["no-new-privileges"]), Ok((vec!["no-new-privileges".into()], false)));
        assert_eq!(
            v(&["seccomp=unconfined", "label=disable", "systempaths=unconfined"]),
            Ok((vec!["seccomp=unconfined".into(), "label=disable".into()], true))
        );
        assert_eq!(v(&["foo"]), Err("Invalid --security-opt: \"foo\"".into()));
        assert_eq!(
            normalize_caps(&["net_admin".into(), "ALL".into(), "CAP_NET_ADMIN".into()]),
            Some(vec!["ALL".into(), "CAP_NET_ADMIN".into()])
        );
    }
}
