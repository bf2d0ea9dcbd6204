//! Template functions: Go's `text/template` builtins (`funcs.go`) and the
//! functions docker-cli adds in `templates/templates.go`.
//!
//! Argument evaluation and arity checks live in `exec.rs`; this module
//! declares each function's parameter types and implements the calls.
//! Error strings are the ones Go produces; the executor prefixes them with
//! `error calling NAME: `.

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::Value;

use crate::printf::{sprint, sprintf, sprintln};
use crate::value::Val;

/// A template function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Html,
    Js,
    UrlQuery,
    Call,
    Json,
    Split,
    Join,
    Title,
    Lower,
    Upper,
    Pad,
    Truncate,
}

/// Parameter types, as far as they matter for argument conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `interface{}`: a missing value becomes nil.
    Any,
    /// `reflect.Value`: the value is passed as is.
    Value,
    Str,
    Int,
    StrSlice,
}

impl Ty {
    pub fn go_name(self) -> &'static str {
        match self {
            Ty::Any => "interface {}",
            Ty::Value => "reflect.Value",
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::StrSlice => "[]string",
        }
    }
}

/// Fixed parameter types and, for variadic functions, the element type.
pub(crate) struct Sig {
    pub fixed: &'static [Ty],
    pub variadic: Option<Ty>,
}

const fn sig(fixed: &'static [Ty], variadic: Option<Ty>) -> Sig {
    Sig { fixed, variadic }
}

impl Func {
    pub fn lookup(name: &str) -> Option<Func> {
        Some(match name {
            "and" => Func::And,
            "or" => Func::Or,
            "not" => Func::Not,
            "len" => Func::Len,
            "index" => Func::Index,
            "slice" => Func::Slice,
            "print" => Func::Print,
            "printf" => Func::Printf,
            "println" => Func::Println,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "lt" => Func::Lt,
            "le" => Func::Le,
            "gt" => Func::Gt,
            "ge" => Func::Ge,
            "html" => Func::Html,
            "js" => Func::Js,
            "urlquery" => Func::UrlQuery,
            "call" => Func::Call,
            "json" => Func::Json,
            "split" => Func::Split,
            "join" => Func::Join,
            "title" => Func::Title,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "pad" => Func::Pad,
            "truncate" => Func::Truncate,
            _ => return None,
        })
    }

    /// The signature; `header` selects docker's `HeaderFunctions`, which
    /// replace the string helpers with functions returning their first
    /// argument so that table headers stay intact.
    pub fn sig(self, header: bool) -> Sig {
        use Ty::*;
        if header {
            match self {
                Func::Json | Func::Title | Func::Lower | Func::Upper => return sig(&[Str], None),
                Func::Split | Func::Join => return sig(&[Str, Str], None),
                Func::Truncate => return sig(&[Str, Int], None),
                _ => {}
            }
        }
        match self {
            Func::And | Func::Or | Func::Index | Func::Slice => sig(&[Value], Some(Value)),
            Func::Eq => sig(&[Value], Some(Value)),
            Func::Call => sig(&[Value], Some(Value)),
            Func::Not | Func::Len => sig(&[Value], None),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => sig(&[Value, Value], None),
            Func::Print | Func::Println | Func::Html | Func::Js | Func::UrlQuery => sig(&[], Some(Any)),
            Func::Printf => sig(&[Str], Some(Any)),
            Func::Json => sig(&[Any], None),
            Func::Split => sig(&[Str, Str], None),
            Func::Join => sig(&[StrSlice, Str], None),
            Func::Title | Func::Lower | Func::Upper => sig(&[Str], None),
            Func::Pad => sig(&[Str, Int, Int], None),
            Func::Truncate => sig(&[Str, Int], None),
        }
    }
}

fn as_str<'v>(v: &'v Val<'_>) -> &'v str {
    match v {
        Val::Str(s) => s,
        _ => "",
    }
}

fn as_int(v: &Val<'_>) -> i64 {
    match v {
        Val::Int(i) => *i,
        _ => 0,
    }
}

/// Calls `f` with converted arguments. `header` selects docker's header
/// variants. `callee` is the source text of `call`'s first argument.
pub(crate) fn call<'a>(f: Func, args: Vec<Val<'a>>, header: bool, callee: &str) -> Result<Val<'a>, String> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Val::Missing);
    if header {
        match f {
            Func::Json | Func::Split | Func::Join | Func::Title | Func::Lower | Func::Upper | Func::Truncate => {
                return Ok(arg(0));
            }
            _ => {}
        }
    }
    Ok(match f {
        // and/or are evaluated lazily by the executor.
        Func::And | Func::Or => arg(args.len().saturating_sub(1)),
        Func::Not => Val::Bool(!arg(0).truth()),
        Func::Len => match arg(0) {
            Val::Missing => return Err("reflect: call of reflect.Value.Type on zero Value".into()),
            Val::Nil => return Err("len of nil pointer".into()),
            v => match v.len() {
                Some(n) => Val::Int(n as i64),
                None => return Err(format!("len of type {}", v.type_name())),
            },
        },
        Func::Index => index(&args)?,
        Func::Slice => slice(&args)?,
        Func::Print => Val::str(sprint(&args)),
        Func::Println => Val::str(sprintln(&args)),
        Func::Printf => Val::str(sprintf(as_str(&arg(0)), &args[1.min(args.len())..])),
        Func::Eq => Val::Bool(eq(&args)?),
        Func::Ne => Val::Bool(!eq(&args)?),
        Func::Lt => Val::Bool(lt(&arg(0), &arg(1))?),
        Func::Le => Val::Bool(lt(&arg(0), &arg(1))? || eq(&args)?),
        Func::Gt => Val::Bool(!(lt(&arg(0), &arg(1))? || eq(&args)?)),
        Func::Ge => Val::Bool(!lt(&arg(0), &arg(1))?),
        Func::Html => Val::str(html_escape(&eval_args(&args))),
        Func::Js => Val::str(js_escape(&eval_args(&args))),
        Func::UrlQuery => Val::str(query_escape(&eval_args(&args))),
        Func::Call => {
            return Err(match arg(0) {
                Val::Missing | Val::Nil => "call of nil".into(),
                v => format!("non-function {callee} of type {}", v.type_name()),
            })
        }
        Func::Json => {
            // docker-cli: json.NewEncoder with SetEscapeHTML(false), the
            // trailing newline trimmed.
            let mut s = String::new();
            crate::json::write_val(&mut s, &arg(0), false);
            Val::str(s)
        }
        Func::Split => Val::Strings(split(as_str(&arg(0)), as_str(&arg(1)))),
        Func::Join => {
            let sep = as_str(&arg(1)).to_string();
            match arg(0) {
                Val::Strings(s) => Val::str(s.join(&sep)),
                Val::Array(a) => {
                    Val::str(a.iter().map(|v| v.as_str().unwrap_or_default()).collect::<Vec<_>>().join(&sep))
                }
                _ => Val::str(""),
            }
        }
        Func::Title => Val::str(title(as_str(&arg(0)))),
        Func::Lower => Val::str(as_str(&arg(0)).to_lowercase()),
        Func::Upper => Val::str(as_str(&arg(0)).to_uppercase()),
        Func::Pad => {
            // docker-cli padWithSpace: only non-empty strings are padded.
            let a0 = arg(0);
            let (s, pre, suf) = (as_str(&a0), as_int(&arg(1)), as_int(&arg(2)));
            if pre < 0 || suf < 0 {
                return Err("strings: negative Repeat count".into());
            }
            if s.is_empty() {
                Val::str("")
            } else {
                Val::str(format!("{}{s}{}", " ".repeat(pre as usize), " ".repeat(suf as usize)))
            }
        }
        Func::Truncate => {
            // docker-cli truncateWithLength slices bytes: source[:length].
            let a0 = arg(0);
            let (s, n) = (as_str(&a0), as_int(&arg(1)));
            if (s.len() as i64) < n {
                Val::str(s)
            } else if n < 0 {
                return Err(format!("runtime error: slice bounds out of range [:{n}]"));
            } else {
                Val::str(String::from_utf8_lossy(&s.as_bytes()[..n as usize]).into_owned())
            }
        }
    })
}

/// `strings.Split`.
fn split(s: &str, sep: &str) -> Rc<[String]> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(String::from).collect()
}

/// `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let is_separator = |c: char| -> bool {
        if c.is_ascii() {
            return !(c.is_ascii_alphanumeric() || c == '_');
        }
        if c.is_alphabetic() || c.is_numeric() {
            return false;
        }
        c.is_whitespace()
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_separator(prev) {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => out.push(u),
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

/// Go's `evalArgs`: a single string argument is used as is, otherwise the
/// arguments are printed with `fmt.Sprint` after nil values became
/// `<no value>`.
fn eval_args(args: &[Val<'_>]) -> String {
    if let [Val::Str(s)] = args {
        return s.to_string();
    }
    let conv: Vec<Val<'_>> = args.iter().map(|a| if a.is_nil() { Val::str("<no value>") } else { a.clone() }).collect();
    sprint(&conv)
}

/// `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c if crate::printf::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `indexArg`.
fn index_arg(v: &Val<'_>, cap: usize) -> Result<usize, String> {
    let x = match v {
        Val::Missing | Val::Nil => return Err("cannot index slice/array with nil".into()),
        v => v.as_index().ok_or_else(|| format!("cannot index slice/array with type {}", v.type_name()))?,
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

/// The zero value of a map's element type for a missing key. JSON has no
/// element types, so it is inferred from the other values: maps of strings
/// (such as labels, and empty maps) give `""` like Go's `map[string]string`,
/// anything else gives nil.
pub(crate) fn map_zero<'a>(o: &serde_json::Map<String, Value>) -> Val<'a> {
    if o.values().all(Value::is_string) {
        Val::Str(Cow::Borrowed(""))
    } else {
        Val::Nil
    }
}

fn index<'a>(args: &[Val<'a>]) -> Result<Val<'a>, String> {
    let mut item = args.first().cloned().unwrap_or(Val::Missing);
    if item.is_nil() {
        return Err("index of untyped nil".into());
    }
    for idx in &args[1..] {
        item = match &item {
            Val::Nil => return Err("index of nil pointer".into()),
            Val::Array(_) | Val::Strings(_) | Val::Str(_) => {
                let len = item.len().unwrap_or(0);
                let i = index_arg(idx, len)?;
                match item.elem(i) {
                    Some(v) => v,
                    None if matches!(item, Val::Str(_)) => return Err("reflect: string index out of range".into()),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Val::Object(o) => {
                let key = match idx {
                    Val::Str(s) => s,
                    Val::Missing | Val::Nil => return Err("value is nil; should be of type string".into()),
                    other => return Err(format!("value has type {}; should be string", other.type_name())),
                };
                match o.get(key.as_ref()) {
                    Some(v) => Val::from_json(v),
                    None => map_zero(o),
                }
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice<'a>(args: &[Val<'a>]) -> Result<Val<'a>, String> {
    let item = args.first().cloned().unwrap_or(Val::Missing);
    if item.is_nil() {
        return Err("slice of untyped nil".into());
    }
    let idxs = &args[1..];
    if idxs.len() > 3 {
        return Err(format!("too many slice indexes: {}", idxs.len()));
    }
    let cap = match &item {
        Val::Str(s) => {
            if idxs.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Val::Array(a) => a.len(),
        Val::Strings(s) => s.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0usize, item.len().unwrap_or(0), 0];
    for (i, v) in idxs.iter().enumerate() {
        idx[i] = index_arg(v, cap)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if idxs.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    let (i, j) = (idx[0], idx[1]);
    Ok(match item {
        Val::Str(s) => Val::str(String::from_utf8_lossy(&s.as_bytes()[i..j]).into_owned()),
        Val::Array(a) => Val::Array(&a[i..j]),
        Val::Strings(s) => Val::Strings(s[i..j].iter().cloned().collect()),
        _ => Val::Missing,
    })
}

/// Go's `basicKind` classes.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Str,
}

fn kind(v: &Val<'_>) -> Kind {
    match v {
        Val::Bool(_) => Kind::Bool,
        Val::Int(_) => Kind::Int,
        Val::Uint(_) | Val::Byte(_) => Kind::Uint,
        Val::Float(_) => Kind::Float,
        Val::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

fn uint_of(v: &Val<'_>) -> u64 {
    match v {
        Val::Uint(u) => *u,
        Val::Byte(b) => u64::from(*b),
        _ => 0,
    }
}

/// Go's `errBadComparison` (Go 1.24, which docker 28 is built with, does
/// not name the types).
const BAD_COMPARISON: &str = "incompatible types for comparison";

/// `eq arg1 arg2...`: true if arg1 equals any of the others.
fn eq(args: &[Val<'_>]) -> Result<bool, String> {
    let Some((a, rest)) = args.split_first() else {
        return Err("missing argument for comparison".into());
    };
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = kind(a);
    for b in rest {
        let k2 = kind(b);
        let truth = if k1 != k2 {
            // Integers can be compared regardless of the sign of the type.
            match (a, b) {
                (Val::Int(i), _) if k2 == Kind::Uint => *i >= 0 && *i as u64 == uint_of(b),
                (_, Val::Int(i)) if k1 == Kind::Uint => *i >= 0 && uint_of(a) == *i as u64,
                _ => {
                    if !a.is_nil() && !b.is_nil() {
                        return Err(BAD_COMPARISON.into());
                    }
                    false
                }
            }
        } else {
            match (a, b) {
                (Val::Bool(x), Val::Bool(y)) => x == y,
                (Val::Int(x), Val::Int(y)) => x == y,
                (Val::Float(x), Val::Float(y)) => x == y,
                (Val::Str(x), Val::Str(y)) => x == y,
                _ if k1 == Kind::Uint => uint_of(a) == uint_of(b),
                _ => {
                    // Non-basic kinds: only comparisons with nil are possible.
                    if a.is_nil() || b.is_nil() {
                        a.is_nil() == b.is_nil()
                    } else if std::mem::discriminant(a) != std::mem::discriminant(b) {
                        return Err(format!(
                            "non-comparable types {}: {}, {}: {}",
                            sprintf("%s", std::slice::from_ref(a)),
                            a.type_name(),
                            b.type_name(),
                            sprintf("%v", std::slice::from_ref(b))
                        ));
                    } else {
                        return Err(format!(
                            "non-comparable type {}: {}",
                            sprintf("%s", std::slice::from_ref(b)),
                            b.type_name()
                        ));
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `lt arg1 arg2`.
fn lt(a: &Val<'_>, b: &Val<'_>) -> Result<bool, String> {
    let (k1, k2) = (kind(a), kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (a, b) {
            (Val::Int(i), _) if k2 == Kind::Uint => Ok(*i < 0 || (*i as u64) < uint_of(b)),
            (_, Val::Int(i)) if k1 == Kind::Uint => Ok(*i >= 0 && uint_of(a) < *i as u64),
            _ => Err(BAD_COMPARISON.into()),
        };
    }
    Ok(match (a, b) {
        (Val::Bool(_), _) => return Err("invalid type for comparison".into()),
        (Val::Int(x), Val::Int(y)) => x < y,
        (Val::Float(x), Val::Float(y)) => x < y,
        (Val::Str(x), Val::Str(y)) => x.as_bytes() < y.as_bytes(),
        _ => uint_of(a) < uint_of(b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapers() {
        assert_eq!(html_escape("<a&b>\"'"), "&lt;a&amp;b&gt;&#34;&#39;");
        assert_eq!(js_escape("<a&b>=\"'\n\u{e9}\\"), "\\u003Ca\\u0026b\\u003E\\u003D\\\"\\'\\u000A\u{e9}\\\\");
        assert_eq!(query_escape("a b&c/é"), "a+b%26c%2F%C3%A9");
    }

    #[test]
    fn title_case() {
        assert_eq!(title("hello wORLD foo_bar x-y"), "Hello WORLD Foo_bar X-Y");
    }

    #[test]
    fn split_like_go() {
        assert_eq!(&*split("a,b,,c", ","), &["a", "b", "", "c"]);
        assert_eq!(&*split("", ","), &[""]);
        assert_eq!(&*split("", ""), &[] as &[String]);
        assert_eq!(&*split("日本", ""), &["日", "本"]);
    }
}
