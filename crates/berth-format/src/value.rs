//! Runtime values of template execution and their Go-style printing.
//!
//! Data is `serde_json::Value`, borrowed for the duration of an execution;
//! functions may produce owned values. Printing follows Go's `fmt` `%v`
//! verb as used by `text/template` (`fmt.Fprint`): strings raw, integers in
//! decimal, floats with `strconv.FormatFloat(f, 'g', -1, 64)`, slices as
//! `[a b]`, maps as `map[k:v]` with sorted keys, nil as `<nil>`.

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::{Map, Value};

/// A value during template execution.
#[derive(Clone, Debug)]
pub(crate) enum Val<'a> {
    /// Go's invalid `reflect.Value`: the result of a missing map key.
    /// Printed as `<no value>`.
    Missing,
    /// A nil value: JSON `null` or the `nil` keyword.
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    /// A byte, as produced by indexing a string (Go's `uint8`).
    Byte(u8),
    Float(f64),
    Str(Cow<'a, str>),
    Array(&'a [Value]),
    Object(&'a Map<String, Value>),
    /// A `[]string`, as produced by `split`.
    Strings(Rc<[String]>),
}

impl<'a> Val<'a> {
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Nil,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Val::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Val::Uint(u)
                } else {
                    Val::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            Value::String(s) => Val::Str(Cow::Borrowed(s.as_str())),
            Value::Array(a) => Val::Array(a.as_slice()),
            Value::Object(o) => Val::Object(o),
        }
    }

    pub fn str(s: impl Into<String>) -> Val<'a> {
        Val::Str(Cow::Owned(s.into()))
    }

    /// The Go type name used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Missing => "<nil>",
            Val::Nil => "interface {}",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Uint(_) => "uint64",
            Val::Byte(_) => "uint8",
            Val::Float(_) => "float64",
            Val::Str(_) => "string",
            Val::Array(_) => "[]interface {}",
            Val::Object(_) => "map[string]interface {}",
            Val::Strings(_) => "[]string",
        }
    }

    /// Go's `isTrue`: the zero value of a type is false.
    pub fn truth(&self) -> bool {
        match self {
            Val::Missing | Val::Nil => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Uint(u) => *u != 0,
            Val::Byte(b) => *b != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::Array(a) => !a.is_empty(),
            Val::Object(o) => !o.is_empty(),
            Val::Strings(s) => !s.is_empty(),
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Val::Missing | Val::Nil)
    }

    /// Length for `len`, if the value has one.
    pub fn len(&self) -> Option<usize> {
        match self {
            Val::Str(s) => Some(s.len()),
            Val::Array(a) => Some(a.len()),
            Val::Object(o) => Some(o.len()),
            Val::Strings(s) => Some(s.len()),
            _ => None,
        }
    }

    /// Element `i` of a slice-like value.
    pub fn elem(&self, i: usize) -> Option<Val<'a>> {
        match self {
            Val::Array(a) => a.get(i).map(Val::from_json),
            Val::Strings(s) => s.get(i).map(|x| Val::str(x.clone())),
            Val::Str(s) => s.as_bytes().get(i).map(|b| Val::Byte(*b)),
            _ => None,
        }
    }

    /// Integer value usable as an index, as Go's `indexArg`.
    pub fn as_index(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Uint(u) => i64::try_from(*u).ok().or(Some(i64::MAX)),
            Val::Byte(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// Writes the value as Go's `fmt.Print` does.
    pub fn write_go(&self, out: &mut String) {
        match self {
            Val::Missing => out.push_str("<no value>"),
            Val::Nil => out.push_str("<nil>"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(i) => out.push_str(&i.to_string()),
            Val::Uint(u) => out.push_str(&u.to_string()),
            Val::Byte(b) => out.push_str(&b.to_string()),
            Val::Float(f) => out.push_str(&format_float_v(*f)),
            Val::Str(s) => out.push_str(s),
            Val::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    write_json_go(v, out);
                }
                out.push(']');
            }
            Val::Strings(s) => {
                out.push('[');
                out.push_str(&s.join(" "));
                out.push(']');
            }
            Val::Object(o) => write_map_go(o, out),
        }
    }

    /// The value printed by `{{.}}`-style actions.
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        self.write_go(&mut s);
        s
    }
}

/// A JSON value nested in a slice or map prints like an element of a Go
/// `[]interface{}` or `map[string]interface{}`: `null` is `<nil>`.
pub(crate) fn write_json_go(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        other => Val::from_json(other).write_go(out),
    }
}

/// Go's fmt prints maps with their keys sorted (`internal/fmtsort`).
fn write_map_go(o: &Map<String, Value>, out: &mut String) {
    out.push_str("map[");
    for (i, (k, v)) in sorted_entries(o).into_iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push(':');
        write_json_go(v, out);
    }
    out.push(']');
}

/// Map entries sorted by key, the order of Go's fmt and `range`.
pub(crate) fn sorted_entries(o: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = o.iter().collect();
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    v
}

/// Decimal digits and exponent of the shortest representation that
/// round-trips, as `strconv` computes them: value = 0.d1d2d3... × 10^dp.
pub(crate) fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` prints the shortest round-trip digits.
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        return ("0".into(), 1);
    }
    (digits.to_string(), exp + 1)
}

/// Digits rounded to `n` significant digits (n ≥ 1), trailing zeros removed.
pub(crate) fn rounded_digits(f: f64, n: usize) -> (String, i32) {
    let s = format!("{:.*e}", n.saturating_sub(1), f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = digits.trim_end_matches('0');
    if digits.is_empty() {
        return ("0".into(), 1);
    }
    (digits.to_string(), exp + 1)
}

/// `%e` layout of a digit string: d.ddde±XX with `prec` fraction digits.
pub(crate) fn fmt_e(neg: bool, digits: &str, dp: i32, prec: usize, upper: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let bytes = digits.as_bytes();
    s.push(bytes.first().map_or('0', |b| *b as char));
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(bytes.get(i).map_or('0', |b| *b as char));
        }
    }
    s.push(if upper { 'E' } else { 'e' });
    let exp = if digits == "0" { 0 } else { dp - 1 };
    s.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        s.push('0');
    }
    s.push_str(&e.to_string());
    s
}

/// `%f` layout of a digit string with `prec` fraction digits.
pub(crate) fn fmt_f(neg: bool, digits: &str, dp: i32, prec: usize) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let bytes = digits.as_bytes();
    let digit = |i: i32| -> char {
        if i < 0 {
            return '0';
        }
        bytes.get(i as usize).map_or('0', |b| *b as char)
    };
    if dp > 0 {
        for i in 0..dp {
            s.push(digit(i));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 0..prec as i32 {
            s.push(digit(dp + i));
        }
    }
    s
}

fn special_float(f: f64, plus_inf: bool) -> Option<String> {
    if f.is_nan() {
        return Some("NaN".into());
    }
    if f.is_infinite() {
        return Some(if f > 0.0 { if plus_inf { "+Inf" } else { "Inf" }.into() } else { "-Inf".into() });
    }
    None
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`, which is what `%v` prints: with
/// the shortest precision Go's ftoa decides between `%e` and `%f` using a
/// precision of 6, so 100000 prints as `100000` but 1e6 as `1e+06`.
pub(crate) fn format_float_v(f: f64) -> String {
    if let Some(s) = special_float(f, true) {
        return s;
    }
    let neg = f.is_sign_negative();
    let (digits, dp) = shortest_digits(f);
    let nd = digits.len() as i32;
    let eprec = 6;
    let exp = dp - 1;
    if exp < -4 || exp >= eprec {
        return fmt_e(neg, &digits, dp, (nd - 1).max(0) as usize, false);
    }
    fmt_f(neg, &digits, dp, (nd - dp).max(0) as usize)
}

/// `strconv.FormatFloat(f, fmt, prec, 64)` for the `e`, `f` and `g` verbs
/// with an explicit or default precision, as used by `printf`.
pub(crate) fn format_float(f: f64, verb: char, prec: Option<usize>, sharp: bool) -> String {
    if let Some(s) = special_float(f, false) {
        return s;
    }
    let neg = f.is_sign_negative();
    let upper = verb.is_ascii_uppercase();
    match verb.to_ascii_lowercase() {
        'e' => {
            let p = prec.unwrap_or(6);
            let (digits, dp) = rounded_digits(f, p + 1);
            fmt_e(neg, &digits, dp, p, upper)
        }
        'f' => {
            let p = prec.unwrap_or(6);
            let s = format!("{:.*}", p, f.abs());
            if neg {
                format!("-{s}")
            } else {
                s
            }
        }
        _ => {
            // 'g': shortest when no precision is given.
            let (digits, dp, eprec, shortest) = match prec {
                None => {
                    let (d, dp) = shortest_digits(f);
                    (d, dp, 6, true)
                }
                Some(p) => {
                    let p = p.max(1);
                    let (d, dp) = rounded_digits(f, p);
                    (d, dp, p as i32, false)
                }
            };
            let nd = digits.len() as i32;
            let mut eprec = eprec;
            if !shortest && eprec > nd && nd >= dp {
                eprec = nd;
            }
            let exp = dp - 1;
            let s = if exp < -4 || exp >= eprec {
                fmt_e(neg, &digits, dp, (nd - 1).max(0) as usize, upper)
            } else {
                fmt_f(neg, &digits, dp, (nd - dp).max(0) as usize)
            };
            if sharp {
                sharp_g(s, prec.unwrap_or(6))
            } else {
                s
            }
        }
    }
}

/// The `#` flag of `%g` (Go's `fmt.fmtFloat`): keep a decimal point and
/// pad with zeros up to the precision's number of significant digits.
fn sharp_g(s: String, prec: usize) -> String {
    let (num, tail) = match s.find(['e', 'E']) {
        Some(i) => (s[..i].to_string(), s[i..].to_string()),
        None => (s, String::new()),
    };
    let mut digits = prec as i64;
    let mut seen_nonzero = false;
    for c in num.chars().filter(char::is_ascii_digit) {
        if c != '0' {
            seen_nonzero = true;
        }
        if seen_nonzero {
            digits -= 1;
        }
    }
    let mut num = num;
    if !num.contains('.') {
        if num.trim_start_matches(['-', '+']) == "0" {
            digits -= 1;
        }
        num.push('.');
    }
    while digits > 0 {
        num.push('0');
        digits -= 1;
    }
    num + &tail
}

/// Float formatting of Go's `encoding/json`: `%f` style between 1e-6 and
/// 1e21, otherwise `%e` style with a short exponent (`1e-7`, `1e+21`).
pub(crate) fn format_float_json(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    let abs = f.abs();
    let neg = f.is_sign_negative() && f != 0.0;
    let (digits, dp) = shortest_digits(f);
    let nd = digits.len() as i32;
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = fmt_e(neg, &digits, dp, (nd - 1).max(0) as usize, false);
        // Clean up e-09 to e-9.
        if let Some(i) = s.find("e-0") {
            return format!("{}e-{}", &s[..i], &s[i + 3..]);
        }
        return s;
    }
    fmt_f(neg, &digits, dp, (nd - dp).max(0) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_v_floats() {
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (-0.0, "-0"),
            (4.56789, "4.56789"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float_v(f), want, "{f}");
        }
    }

    #[test]
    fn printf_floats() {
        assert_eq!(format_float(4.56789, 'f', Some(2), false), "4.57");
        assert_eq!(format_float(4.56789, 'f', None, false), "4.567890");
        assert_eq!(format_float(1234.5678, 'e', Some(2), false), "1.23e+03");
        assert_eq!(format_float(1234.5678, 'E', None, false), "1.234568E+03");
        assert_eq!(format_float(1.0, 'g', Some(3), false), "1");
        assert_eq!(format_float(1234.0, 'g', Some(3), false), "1.23e+03");
        assert_eq!(format_float(0.5, 'g', None, false), "0.5");
        assert_eq!(format_float(2.5, 'f', Some(0), false), "2");
    }

    #[test]
    fn json_floats() {
        assert_eq!(format_float_json(1e21), "1e+21");
        assert_eq!(format_float_json(1e20), "100000000000000000000");
        assert_eq!(format_float_json(0.00001), "0.00001");
        assert_eq!(format_float_json(1e-7), "1e-7");
        assert_eq!(format_float_json(1.5), "1.5");
        assert_eq!(format_float_json(1e6), "1000000");
        assert_eq!(format_float_json(-0.0), "0");
    }
}
