//! Docker's human-readable units (`github.com/docker/go-units`), so tables
//! read exactly as docker's do.

mod progress;

pub use progress::progress_bar;

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Go's `%.{prec}g`: `prec` significant digits, trailing zeros dropped.
fn fmt_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if exp < -4 || exp >= prec as i32 {
        let s = format!("{:.*e}", prec.saturating_sub(1), v);
        // Rust prints 1e3, Go prints 1e+03.
        if let Some((m, e)) = s.split_once('e') {
            let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
            let n: i32 = e.parse().unwrap_or(0);
            return format!("{m}e{}{:02}", if n < 0 { '-' } else { '+' }, n.abs());
        }
        return s;
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn size_and_unit(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// `units.HumanSizeWithPrecision(size, 3)`: "4.26MB".
pub fn human_size(size: f64) -> String {
    let (s, u) = size_and_unit(size, 1000.0, &DECIMAL);
    format!("{}{}", fmt_g(s, 3), u)
}

/// `units.HumanSize` (precision 4): "1.049MB", what `system df` and the
/// prunes' `Total reclaimed space` print.
pub fn human_size_4(size: f64) -> String {
    let (s, u) = size_and_unit(size, 1000.0, &DECIMAL);
    format!("{}{}", fmt_g(s, 4), u)
}

/// `units.BytesSize`: "23.47GiB".
pub fn bytes_size(size: f64) -> String {
    let (s, u) = size_and_unit(size, 1024.0, &BINARY);
    format!("{}{}", fmt_g(s, 4), u)
}

/// `units.HumanDuration`.
pub fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

pub fn now_unix() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// "2 weeks ago" for a unix time.
pub fn since(unix: i64) -> String {
    format!("{} ago", human_duration(now_unix() - unix as f64))
}

/// Go's `time.Unix(t, 0).String()` in local time: "2024-01-02 15:04:05 +0000 UTC".
pub fn go_time_string(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let off = t.format("%z").to_string();
            let zone = if off == "+0000" { "UTC".to_string() } else { off.clone() };
            format!("{} {} {}", t.format("%Y-%m-%d %H:%M:%S"), off, zone)
        }
        None => String::new(),
    }
}

/// docker-cli's `stringutils.Ellipsis`.
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(4_261_000.0), "4.26MB");
        assert_eq!(human_size(118_000_000.0), "118MB");
        assert_eq!(human_size(1_000.0), "1kB");
        assert_eq!(human_size(1_500_000_000.0), "1.5GB");
        assert_eq!(bytes_size(25_200_000_000.0), "23.47GiB");
    }

    #[test]
    fn durations_like_go_units() {
        assert_eq!(human_duration(0.5), "Less than a second");
        assert_eq!(human_duration(1.0), "1 second");
        assert_eq!(human_duration(59.0), "59 seconds");
        assert_eq!(human_duration(60.0), "About a minute");
        assert_eq!(human_duration(150.0), "2 minutes");
        assert_eq!(human_duration(3600.0), "About an hour");
        assert_eq!(human_duration(3.0 * 86400.0), "3 days");
        assert_eq!(human_duration(15.0 * 86400.0), "2 weeks");
        assert_eq!(human_duration(90.0 * 86400.0), "3 months");
        assert_eq!(human_duration(800.0 * 86400.0), "2 years");
    }

    #[test]
    fn ellipsis_like_docker() {
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }
}
