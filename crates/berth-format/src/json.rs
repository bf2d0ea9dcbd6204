//! JSON output matching Go's `encoding/json`.
//!
//! Differences from `serde_json`'s writer that matter for byte-identical
//! output: floats use Go's layout (`1e+21`, `0.000001`, `1e-7`, integral
//! floats without `.0`), `\u2028`/`\u2029` are always escaped, control
//! characters other than `\b \f \n \r \t` are written as `\u00XX` with
//! lowercase hex, and optionally `<`, `>` and `&` are escaped as
//! `\u003c`, `\u003e` and `\u0026` (`json.Marshal`'s default; docker's
//! `json` template function turns this off with `SetEscapeHTML(false)`).

use serde_json::Value;

use crate::value::{format_float_json, Val};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' if escape_html => push_u00(out, c as u8),
            c if (c as u32) < 0x20 => push_u00(out, c as u8),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_u00(out: &mut String, b: u8) {
    out.push_str("\\u00");
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 0xf) as usize] as char);
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        out.push_str(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push_str(&u.to_string());
    } else {
        out.push_str(&format_float_json(n.as_f64().unwrap_or(0.0)));
    }
}

/// Compact encoding of a JSON value; object keys keep the data's order.
pub(crate) fn write_value(out: &mut String, v: &Value, escape_html: bool) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s, escape_html),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, e, escape_html);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k, escape_html);
                out.push(':');
                write_value(out, e, escape_html);
            }
            out.push('}');
        }
    }
}

/// Compact encoding of a template value.
pub(crate) fn write_val(out: &mut String, v: &Val<'_>, escape_html: bool) {
    match v {
        Val::Missing | Val::Nil => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Int(i) => out.push_str(&i.to_string()),
        Val::Uint(u) => out.push_str(&u.to_string()),
        Val::Byte(b) => out.push_str(&b.to_string()),
        Val::Float(f) => out.push_str(&format_float_json(*f)),
        Val::Str(s) => write_str(out, s, escape_html),
        Val::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, e, escape_html);
            }
            out.push(']');
        }
        Val::Object(o) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k, escape_html);
                out.push(':');
                write_value(out, e, escape_html);
            }
            out.push('}');
        }
        Val::Strings(s) => {
            out.push('[');
            for (i, e) in s.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, e, escape_html);
            }
            out.push(']');
        }
    }
}

/// A list row as docker's formatter contexts marshal themselves: a Go map
/// of the fields, so keys sorted, HTML-escaped.
pub(crate) fn row_json(o: &serde_json::Map<String, Value>) -> String {
    let mut out = String::from("{");
    for (i, (k, e)) in crate::value::sorted_entries(o).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(&mut out, k, true);
        out.push(':');
        write_value(&mut out, e, true);
    }
    out.push('}');
    out
}

/// Go's `json.MarshalIndent(v, prefix, indent)` layout (also what
/// `json.Indent` produces): one element per line, `": "` after keys,
/// empty arrays and objects kept as `[]` and `{}`.
pub(crate) fn write_indent(out: &mut String, v: &Value, prefix: &str, indent: &str, depth: usize, escape_html: bool) {
    let newline = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..d {
            out.push_str(indent);
        }
    };
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_indent(out, e, prefix, indent, depth + 1, escape_html);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_str(out, k, escape_html);
                out.push_str(": ");
                write_indent(out, e, prefix, indent, depth + 1, escape_html);
            }
            newline(out, depth);
            out.push('}');
        }
        other => write_value(out, other, escape_html),
    }
}

/// `json.Marshal`-style compact encoding of a value.
///
/// `escape_html` selects Go's default HTML escaping of `<`, `>` and `&`
/// (as `json.Marshal` does); docker's `{{json}}` template function disables
/// it.
pub fn to_go_json(v: &Value, escape_html: bool) -> String {
    let mut s = String::new();
    write_value(&mut s, v, escape_html);
    s
}

/// `json.MarshalIndent(v, "", indent)`-style encoding, HTML-escaped as Go
/// does by default. `docker inspect` without `--format` prints its elements
/// this way with an indent of four spaces.
pub fn to_go_json_indent(v: &Value, indent: &str) -> String {
    let mut s = String::new();
    write_indent(&mut s, v, "", indent, 0, true);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping() {
        let v = json!({"a": "<b>&\"\\\n\t\u{1}\u{7f}\u{2028}é"});
        assert_eq!(
            to_go_json(&v, true),
            r#"{"a":"\u003cb\u003e\u0026\"\\\n\t\u0001\u{7f}\u2028é"}"#.replace("\\u{7f}", "\u{7f}")
        );
        assert_eq!(to_go_json(&v, false), r#"{"a":"<b>&\"\\\n\t\u0001\u{7f}\u2028é"}"#.replace("\\u{7f}", "\u{7f}"));
    }

    #[test]
    fn indent() {
        let v = json!([{"Id": "x", "Args": [], "Config": {}, "N": [1, 2]}]);
        assert_eq!(
            to_go_json_indent(&v, "    "),
            "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"Config\": {},\n        \"N\": [\n            1,\n            2\n        ]\n    }\n]"
        );
    }
}
