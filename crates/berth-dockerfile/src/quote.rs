//! Go's `strconv.Quote`, used by BuildKit's `Node.Dump` and in several error
//! messages (`%q`). The dump format of the conformance corpus depends on it.

use std::fmt::Write as _;

/// Quotes `s` the way Go's `strconv.Quote` does: `"`, `\` and non-printable
/// characters are escaped, printable Unicode is kept as is.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
pub(crate) fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// An approximation of Go's `strconv.IsPrint` (letters, marks, numbers,
/// punctuation, symbols and the ASCII space) without Unicode category tables:
/// control, separator, format, private-use and non-characters are rejected.
fn is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() || c.is_whitespace() {
        // Cc, and Zs/Zl/Zp other than U+0020.
        return false;
    }
    const NOT_PRINTABLE: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x206F),
        (0xE000, 0xF8FF),
        (0xFDD0, 0xFDEF),
        (0xFEFF, 0xFEFF),
        (0xFFF0, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0000, 0xE0FFF),
        (0xF0000, 0x10FFFF),
    ];
    if u & 0xFFFE == 0xFFFE {
        // U+xFFFE and U+xFFFF are non-characters in every plane.
        return false;
    }
    !NOT_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("abc"), "\"abc\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote("\u{0}\t\n"), "\"\\x00\\t\\n\"");
        assert_eq!(go_quote("♥☃"), "\"♥☃\"");
        assert_eq!(go_quote("\u{a0}\u{85}"), "\"\\u00a0\\u0085\"");
        assert_eq!(go_quote("\u{7f}"), "\"\\x7f\"");
        assert_eq!(go_quote("\u{F0000}"), "\"\\U000f0000\"");
        assert_eq!(go_quote_list(&["--a".to_string(), "b c".to_string()]), "[\"--a\" \"b c\"]");
    }
}
