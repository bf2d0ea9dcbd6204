//! RFC 3339 timestamps with nanoseconds in UTC, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as `2026-11-22T05:40:00.123456789Z`.
///
/// Always nine fractional digits: Docker's readers (Go's `time.Parse` with
/// RFC3339Nano) accept any precision, and a fixed width keeps the log lines
/// sortable as text.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(30);
    write_rfc3339_nanos(&mut out, t);
    String::from_utf8_lossy(&out).into_owned()
}

/// Appends the timestamp to `out` without going through `core::fmt`: this
/// runs for every log line, and keeping the formatting machinery out of the
/// steady-state path keeps its code out of the shim's resident set.
pub(crate) fn write_rfc3339_nanos(out: &mut Vec<u8>, t: SystemTime) {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        // Clocks before 1970 do not happen on hosts that run containers;
        // clamp rather than fail.
        Err(_) => (0, 0),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let digits = |out: &mut Vec<u8>, v: u64, width: u32| {
        for i in (0..width).rev() {
            out.push(b'0' + ((v / 10u64.pow(i)) % 10) as u8);
        }
    };
    digits(out, y.clamp(0, 9999) as u64, 4);
    out.push(b'-');
    digits(out, m.into(), 2);
    out.push(b'-');
    digits(out, d.into(), 2);
    out.push(b'T');
    digits(out, (rem / 3600) as u64, 2);
    out.push(b':');
    digits(out, ((rem % 3600) / 60) as u64, 2);
    out.push(b':');
    digits(out, (rem % 60) as u64, 2);
    out.push(b'.');
    digits(out, nanos.into(), 9);
    out.push(b'Z');
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_795_326_000, 123_456_789);
        assert_eq!(rfc3339_nanos(t), "2026-11-22T05:40:00.123456789Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_nanos(leap), "2000-02-29T00:00:00.000000000Z");
        let end = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339_nanos(end), "2099-12-31T23:59:59.000000000Z");
    }
}
