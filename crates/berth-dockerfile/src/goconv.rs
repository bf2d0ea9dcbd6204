//! Go standard-library conversions whose exact acceptance and error wording
//! BuildKit exposes: `strconv.ParseBool`, `strconv.ParseInt/ParseUint` and
//! `time.ParseDuration`.

use crate::quote::go_quote;

/// `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseUint(s, radix, bits)`; `None` on any error.
pub(crate) fn parse_uint(s: &str, radix: u32, bits: u32) -> Option<u64> {
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u64::from_str_radix(s, radix).ok()?;
    if bits < 64 && v >> bits != 0 {
        return None;
    }
    Some(v)
}

/// `strconv.ParseInt(s, 10, 32)` with Go's error text.
pub(crate) fn parse_int32(s: &str) -> Result<i32, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s)));
    }
    s.parse::<i32>().map_err(|_| format!("strconv.ParseInt: parsing {}: value out of range", go_quote(s)))
}

/// `time.ParseDuration`, in nanoseconds (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`,
/// units ns, us, µs, μs, ms, s, m, h; a lone `0` needs no unit).
pub(crate) fn parse_duration(orig: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix('-') {
        neg = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &s[..int_len];
        s = &s[int_len..];
        let mut frac_part = "";
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &rest[..frac_len];
            s = &rest[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = s.char_indices().find(|&(_, c)| c == '.' || c.is_ascii_digit()).map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {} in duration {}", go_quote(unit), go_quote(orig))),
        };
        let int: i128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| invalid())? };
        let mut value = int.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            let digits = &frac_part[..frac_part.len().min(18)];
            let frac: i128 = digits.parse().map_err(|_| invalid())?;
            let denom = 10i128.pow(digits.len() as u32);
            value += frac * scale / denom;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i128::from(i64::MAX) + i128::from(neg) {
            return Err(invalid());
        }
    }
    Ok(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_duration("1h2m3.5s"), Ok(3_723_500_000_000));
        assert_eq!(parse_duration("50ns"), Ok(50));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("-1.5ms"), Ok(-1_500_000));
        assert_eq!(parse_duration(".5us"), Ok(500));
        assert_eq!(parse_duration("5"), Err("time: missing unit in duration \"5\"".to_string()));
        assert_eq!(parse_duration("5x"), Err("time: unknown unit \"x\" in duration \"5x\"".to_string()));
        assert_eq!(parse_duration(""), Err("time: invalid duration \"\"".to_string()));
        assert!(parse_duration("3000000h").is_err());
    }

    #[test]
    fn numbers_like_go() {
        assert_eq!(parse_int32("3"), Ok(3));
        assert_eq!(parse_int32("-3"), Ok(-3));
        assert_eq!(parse_int32("x"), Err("strconv.ParseInt: parsing \"x\": invalid syntax".to_string()));
        assert!(parse_int32("99999999999").is_err());
        assert_eq!(parse_uint("755", 8, 32), Some(0o755));
        assert_eq!(parse_uint("8", 8, 32), None);
        assert_eq!(parse_uint("4294967296", 10, 32), None);
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}
