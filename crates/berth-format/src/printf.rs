//! Go's `fmt.Sprintf`/`Sprint`/`Sprintln` over template values, and the
//! `strconv` quoting helpers the template package relies on.
//!
//! Supported: verbs `v s q d b o O x X c U e E f F g G t T %`, flags
//! `+ - # 0 space`, width and precision (including `*`), explicit argument
//! indexes `%[n]d`, and Go's error forms `%!d(string=x)`, `%!d(MISSING)`,
//! `%!(EXTRA type=value)` and `%!(NOVERB)`.

use crate::value::{format_float, sorted_entries, Val};
use serde_json::Value;

/// `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    quote_with(s, '"', false)
}

/// `%#U`-like form used by the lexer: `U+007D '}'`.
pub(crate) fn go_sharp_u(c: char) -> String {
    let code = format!("U+{:04X}", c as u32);
    if is_print(c) {
        format!("{code} '{c}'")
    } else {
        code
    }
}

/// An approximation of Go's `unicode.IsPrint`: graphic characters and the
/// ASCII space.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    // Format characters, surrogates, private use and non-characters.
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xFFFE | 0xFFFF | 0xF0000..=0x10FFFF)
}

fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        push_escaped(&mut out, c, quote, ascii_only);
    }
    out.push(quote);
    out
}

fn push_escaped(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    let printable = if ascii_only { c.is_ascii() && is_print(c) } else { is_print(c) };
    if printable {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// `strconv.UnquoteChar`: decodes the first character (or escape) of `s`
/// in a literal delimited by `quote`; returns it and the rest.
pub(crate) fn unquote_char(s: &str, quote: char) -> Option<(u32, &str)> {
    let mut it = s.chars();
    let c = it.next()?;
    if c == quote && (quote == '\'' || quote == '"') {
        return None;
    }
    if c != '\\' {
        return Some((c as u32, it.as_str()));
    }
    let e = it.next()?;
    let rest = it.as_str();
    let simple = match e {
        'a' => Some(7),
        'b' => Some(8),
        'f' => Some(12),
        'n' => Some(10),
        'r' => Some(13),
        't' => Some(9),
        'v' => Some(11),
        '\\' => Some(u32::from('\\')),
        '\'' | '"' => {
            if e != quote {
                return None;
            }
            Some(e as u32)
        }
        _ => None,
    };
    if let Some(v) = simple {
        return Some((v, rest));
    }
    let (n, radix) = match e {
        'x' => (2, 16),
        'u' => (4, 16),
        'U' => (8, 16),
        '0'..='7' => (2, 8),
        _ => return None,
    };
    let digits = rest.get(..n)?;
    let v = if radix == 8 {
        let all = format!("{e}{digits}");
        let v = u32::from_str_radix(&all, 8).ok()?;
        if v > 255 {
            return None;
        }
        v
    } else {
        u32::from_str_radix(digits, 16).ok()?
    };
    if e != 'x' && radix == 16 && char::from_u32(v).is_none() {
        return None;
    }
    Some((v, &rest[n..]))
}

/// `strconv.Unquote` for `"..."` and `` `...` `` literals. `\x` and octal
/// escapes are bytes; invalid UTF-8 is replaced.
pub(crate) fn go_unquote(q: &str) -> Option<String> {
    if let Some(inner) = q.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        if inner.contains('`') {
            return None;
        }
        // Carriage returns are discarded from raw strings.
        return Some(inner.replace('\r', ""));
    }
    let mut s = q.strip_prefix('"')?.strip_suffix('"')?;
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    while !s.is_empty() {
        let byte_escape = s.starts_with("\\x") || s.starts_with('\\') && s[1..].starts_with(|c: char| c.is_digit(8));
        let (v, rest) = unquote_char(s, '"')?;
        if byte_escape {
            bytes.push(u8::try_from(v).ok()?);
        } else {
            let c = char::from_u32(v)?;
            if c == '\n' && !s.starts_with('\\') {
                return None;
            }
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        s = rest;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `fmt.Sprint`: spaces are added between operands when neither is a string.
pub(crate) fn sprint(args: &[Val<'_>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Val::Str(_));
        if i > 0 && !is_str && !matches!(args[i - 1], Val::Str(_)) {
            out.push(' ');
        }
        write_arg_v(a, &mut out);
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands and a final newline.
pub(crate) fn sprintln(args: &[Val<'_>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_arg_v(a, &mut out);
    }
    out.push('\n');
    out
}

/// A function argument printed with `%v`: a missing value was converted to
/// a nil interface by the call, so it prints `<nil>`.
fn write_arg_v(a: &Val<'_>, out: &mut String) {
    match a {
        Val::Missing => out.push_str("<nil>"),
        other => other.write_go(out),
    }
}

#[derive(Default, Clone, Copy)]
struct Spec {
    plus: bool,
    minus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Val<'_>]) -> String {
    let mut out = String::new();
    let mut argn = 0usize;
    let mut reordered = false;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        // Flags.
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '+' => spec.plus = true,
                '-' => spec.minus = true,
                '#' => spec.sharp = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                _ => break,
            }
            chars.next();
        }
        // Argument index, width, precision.
        let mut bad_index = false;
        let take_index = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                          argn: &mut usize,
                          reordered: &mut bool,
                          bad: &mut bool| {
            if let Some(&(_, '[')) = chars.peek() {
                chars.next();
                let mut num = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d == ']' {
                        break;
                    }
                    num.push(d);
                    chars.next();
                }
                if chars.next().is_none() {
                    *bad = true;
                    return;
                }
                match num.parse::<usize>() {
                    Ok(n) if n >= 1 && n <= args.len() => {
                        *argn = n - 1;
                        *reordered = true;
                    }
                    _ => *bad = true,
                }
            }
        };
        take_index(&mut chars, &mut argn, &mut reordered, &mut bad_index);
        if let Some(&(_, '*')) = chars.peek() {
            chars.next();
            match args.get(argn).and_then(Val::as_index) {
                Some(w) => {
                    if w < 0 {
                        spec.minus = true;
                    }
                    spec.width = Some(w.unsigned_abs() as usize);
                }
                None => out.push_str("%!(BADWIDTH)"),
            }
            argn += 1;
        } else {
            let w = parse_num(&mut chars);
            spec.width = w;
        }
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            take_index(&mut chars, &mut argn, &mut reordered, &mut bad_index);
            if let Some(&(_, '*')) = chars.peek() {
                chars.next();
                match args.get(argn).and_then(Val::as_index) {
                    Some(p) if p >= 0 => spec.prec = Some(p as usize),
                    _ => out.push_str("%!(BADPREC)"),
                }
                argn += 1;
            } else {
                spec.prec = Some(parse_num(&mut chars).unwrap_or(0));
            }
        }
        take_index(&mut chars, &mut argn, &mut reordered, &mut bad_index);
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if spec.minus {
            spec.zero = false;
        }
        if verb == '%' {
            out.push('%');
            continue;
        }
        if bad_index {
            out.push_str(&format!("%!{verb}(BADINDEX)"));
            continue;
        }
        let Some(arg) = args.get(argn) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argn += 1;
        format_arg(&mut out, arg, verb, spec, true);
    }
    if !reordered && argn < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[argn..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if a.is_nil() {
                out.push_str("<nil>");
            } else {
                out.push_str(a.type_name());
                out.push('=');
                write_arg_v(a, &mut out);
            }
        }
        out.push(')');
    }
    out
}

fn parse_num(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, d)) = chars.peek() {
        let Some(v) = d.to_digit(10) else { break };
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(v as usize));
        chars.next();
    }
    n
}

/// Pads `s` to the width, as Go's `fmt.pad`: widths count runes.
fn pad(out: &mut String, s: &str, spec: Spec) {
    let n = s.chars().count();
    let w = spec.width.unwrap_or(0);
    if n >= w {
        out.push_str(s);
        return;
    }
    let fill = w - n;
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero {
        // Zero padding goes after the sign.
        let (sign, rest) = match s.strip_prefix(['-', '+', ' ']) {
            Some(r) => (&s[..1], r),
            None => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

/// Go's `badVerb`: `%!verb(type=value)`, the value printed with `%v` and
/// the directive's flags and width.
fn bad_verb(out: &mut String, arg: &Val<'_>, verb: char, spec: Spec) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    if arg.is_nil() {
        out.push_str("<nil>");
    } else {
        out.push_str(arg.type_name());
        out.push('=');
        format_arg(out, arg, 'v', spec, true);
    }
    out.push(')');
}

/// Formats one operand. `top` is false for elements of slices and maps,
/// where Go prints nil interfaces as `<nil>` whatever the verb.
fn format_arg(out: &mut String, arg: &Val<'_>, verb: char, spec: Spec, top: bool) {
    if verb == 'T' {
        let t = if arg.is_nil() { "<nil>" } else { arg.type_name() };
        pad(out, t, spec);
        return;
    }
    match arg {
        Val::Missing | Val::Nil => {
            if verb == 'v' || !top {
                pad(out, "<nil>", spec);
            } else {
                bad_verb(out, arg, verb, spec);
            }
        }
        Val::Bool(b) => match verb {
            't' | 'v' => pad(out, if *b { "true" } else { "false" }, spec),
            _ => bad_verb(out, arg, verb, spec),
        },
        Val::Int(i) => format_int(out, i128::from(*i), verb, spec, arg),
        Val::Uint(u) => format_int(out, i128::from(*u), verb, spec, arg),
        Val::Byte(b) => format_int(out, i128::from(*b), verb, spec, arg),
        Val::Float(f) => format_float_verb(out, *f, verb, spec, arg),
        Val::Str(s) => format_str(out, s, verb, spec, arg),
        Val::Array(a) => {
            // Go applies the verb to each element of a slice.
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, &Val::from_json(v), verb, spec, false);
            }
            out.push(']');
        }
        Val::Strings(s) => {
            out.push('[');
            for (i, v) in s.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, &Val::str(v.clone()), verb, spec, false);
            }
            out.push(']');
        }
        Val::Object(o) => {
            out.push_str("map[");
            for (i, (k, v)) in sorted_entries(o).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, &Val::str(k.clone()), verb, spec, false);
                out.push(':');
                let elem = match v {
                    Value::Null => Val::Nil,
                    other => Val::from_json(other),
                };
                format_arg(out, &elem, verb, spec, false);
            }
            out.push(']');
        }
    }
}

fn format_int(out: &mut String, v: i128, verb: char, spec: Spec, arg: &Val<'_>) {
    let neg = v < 0;
    let abs = v.unsigned_abs();
    let mut digits = match verb {
        'v' | 'd' => abs.to_string(),
        'b' => format!("{abs:b}"),
        'o' | 'O' => format!("{abs:o}"),
        'x' => format!("{abs:x}"),
        'X' => format!("{abs:X}"),
        'c' => {
            let c = u32::try_from(v).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec);
            return;
        }
        'q' => {
            let c = u32::try_from(v).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}');
            let q = quote_with(&c.to_string(), '\'', spec.plus);
            pad(out, &q, spec);
            return;
        }
        'U' => {
            let mut s = format!("U+{abs:04X}");
            if spec.sharp {
                if let Some(c) = u32::try_from(v).ok().and_then(char::from_u32) {
                    if is_print(c) {
                        s.push_str(&format!(" '{c}'"));
                    }
                }
            }
            pad(out, &s, spec);
            return;
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => {
            bad_verb(out, arg, verb, spec);
            return;
        }
        _ => {
            bad_verb(out, arg, verb, spec);
            return;
        }
    };
    if let Some(p) = spec.prec {
        if p == 0 && abs == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let prefix = match verb {
        'b' if spec.sharp => "0b",
        'o' if spec.sharp && !digits.starts_with('0') => "0",
        'O' => "0o",
        'x' if spec.sharp => "0x",
        'X' if spec.sharp => "0X",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let body = format!("{prefix}{digits}");
    // Zero padding is ignored when a precision is given.
    let mut s2 = spec;
    if spec.prec.is_some() {
        s2.zero = false;
    }
    if s2.zero && !s2.minus {
        let w = s2.width.unwrap_or(0);
        let len = sign.len() + body.len();
        out.push_str(sign);
        if w > len {
            out.extend(std::iter::repeat_n('0', w - len));
        }
        out.push_str(&body);
        return;
    }
    pad(out, &format!("{sign}{body}"), s2);
}

fn format_float_verb(out: &mut String, f: f64, verb: char, spec: Spec, arg: &Val<'_>) {
    let s = match verb {
        'v' => {
            // `%#v` is Go syntax, which for floats is the plain `%v` form.
            if spec.prec.is_some() {
                format_float(f, 'g', spec.prec, false)
            } else {
                crate::value::format_float_v(f)
            }
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let v = if verb == 'F' { 'f' } else { verb };
            format_float(f, v, spec.prec, spec.sharp)
        }
        _ => {
            bad_verb(out, arg, verb, spec);
            return;
        }
    };
    let s = if !s.starts_with(['-', '+']) && s != "NaN" {
        if spec.plus {
            format!("+{s}")
        } else if spec.space {
            format!(" {s}")
        } else {
            s
        }
    } else {
        s
    };
    if !f.is_finite() {
        let mut s2 = spec;
        s2.zero = false;
        pad(out, &s, s2);
        return;
    }
    pad(out, &s, spec);
}

fn format_str(out: &mut String, s: &str, verb: char, spec: Spec, arg: &Val<'_>) {
    let truncated: String;
    let s = match spec.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q' | 'x' | 'X') => {
            truncated = s.chars().take(p).collect();
            truncated.as_str()
        }
        _ => s,
    };
    match verb {
        's' | 'v' => pad(out, s, spec),
        'q' => {
            let q = if spec.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || is_print(c)) {
                format!("`{s}`")
            } else {
                quote_with(s, '"', spec.plus)
            };
            pad(out, &q, spec);
        }
        'x' | 'X' => {
            let mut h = String::new();
            for (i, b) in s.bytes().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    h.push_str(&format!("{b:02x}"));
                } else {
                    h.push_str(&format!("{b:02X}"));
                }
            }
            pad(out, &h, spec);
        }
        _ => bad_verb(out, arg, verb, spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Val<'static> {
        Val::str(x)
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b\n\t\\"), "\"a\\\"b\\n\\t\\\\\"");
        assert_eq!(go_quote("é\u{7}"), "\"é\\a\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_unquote("\"a\\tb\\x41\\u00e9\""), Some("a\tbAé".into()));
        assert_eq!(go_unquote("`a\\tb`"), Some("a\\tb".into()));
        assert_eq!(go_unquote("\"a\\'\""), None);
    }

    #[test]
    fn printf_basics() {
        let args = [Val::Float(4.56789), s("ab"), s("a\"b"), s("hi"), Val::Int(42), Val::Bool(true), Val::Int(7)];
        assert_eq!(sprintf("%5.2f|%-6s|%q|%x|%d|%v|%s", &args), " 4.57|ab    |\"a\\\"b\"|6869|42|true|%!s(int=7)");
        assert_eq!(sprintf("%d %s", &[]), "%!d(MISSING) %!s(MISSING)");
        assert_eq!(sprintf("%d", &[s("x"), Val::Int(3)]), "%!d(string=x)%!(EXTRA int=3)");
        assert_eq!(
            sprintf(
                "%05d|%+d|%x|%#x|%o|%b|%c|%U",
                &[
                    Val::Int(-42),
                    Val::Int(5),
                    Val::Int(255),
                    Val::Int(255),
                    Val::Int(8),
                    Val::Int(5),
                    Val::Int(65),
                    Val::Int(65)
                ]
            ),
            "-0042|+5|ff|0xff|10|101|A|U+0041"
        );
        assert_eq!(sprintf("%.3s|%5.1s|%%", &[s("abcdef"), s("xyz")]), "abc|    x|%");
        assert_eq!(sprintf("%[2]s %[1]s", &[s("a"), s("b")]), "b a");
        assert_eq!(sprintf("%*d", &[Val::Int(4), Val::Int(7)]), "   7");
        assert_eq!(sprintf("%v %s", &[Val::Nil, Val::Nil]), "<nil> %!s(<nil>)");
        assert_eq!(sprintf("%t", &[Val::Int(1)]), "%!t(int=1)");
        assert_eq!(sprintf("%6.2f%%", &[Val::Float(12.345)]), " 12.35%");
        assert_eq!(sprintf("%T %T", &[s("a"), Val::Int(1)]), "string int");
        assert_eq!(sprintf("abc%", &[]), "abc%!(NOVERB)");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(sprint(&[Val::Int(1), Val::Int(2), s("a"), Val::Int(3), Val::Int(4)]), "1 2a3 4");
        assert_eq!(sprintln(&[Val::Int(1), s("a")]), "1 a\n");
    }
}
