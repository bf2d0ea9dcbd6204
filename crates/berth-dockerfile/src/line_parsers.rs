//! Per-instruction argument parsers (BuildKit `parser/line_parsers.go` and
//! `parser/split_command.go`).
//!
//! They turn the text after the instruction keyword into the argument list of
//! a [`Node`](crate::Node). Quotes and escapes are kept: they are removed when
//! the builder expands the words with the shell lexer.

use crate::json::{self, JsonError};
use crate::lexer::is_space;
use crate::quote::go_quote;

/// Arguments produced by a line parser.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub args: Vec<String>,
    pub json: bool,
}

impl Parsed {
    fn plain(args: Vec<String>) -> Self {
        Parsed { args, json: false }
    }
}

/// BuildKit's whitespace regexp `[\t\v\f\r ]+`.
fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go's `regexp.Split(s, n)` for `[\t\v\f\r ]+` (`n` = `None` for all).
pub(crate) fn ws_split(s: &str, n: Option<usize>) -> Vec<String> {
    if n == Some(0) {
        return Vec::new();
    }
    if s.is_empty() {
        return vec![String::new()];
    }
    // Non-overlapping maximal runs of blanks, at most n of them.
    let mut matches = Vec::new();
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if !is_ws(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = iter.peek() {
            if !is_ws(d) {
                break;
            }
            end = j + d.len_utf8();
            iter.next();
        }
        matches.push((i, end));
        if n.is_some_and(|n| matches.len() == n) {
            break;
        }
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for (m0, m1) in matches {
        if n.is_some_and(|n| out.len() + 1 == n) {
            break;
        }
        end = m0;
        if m1 != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = m1;
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// Splits a logical line into keyword, flags and the rest (BuildKit
/// `splitCommand`).
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = ws_split(line.trim(), Some(2));
    let cmd = parts.first().cloned().unwrap_or_default();
    let (args, flags) = match parts.get(1) {
        Some(rest) => extract_builder_flags(rest, escape),
        None => (String::new(), Vec::new()),
    };
    (cmd, flags, args.trim().to_string())
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Takes the leading `--flag[=value]` words off `line` (BuildKit
/// `extractBuilderFlags`): quotes group, the escape token escapes, a bare
/// `--` ends the flags. BuildKit walks bytes here; this walks characters, so
/// non-ASCII flag values stay intact.
fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let n = chars.len();
    let byte_at = |p: usize| chars.get(p).map_or(line.len(), |&(b, _)| b);
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= n {
        let mut ch = chars.get(pos).map_or('\0', |&(_, c)| c);
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            // Only keep going if the next word starts with --.
            if ch != '-' || pos + 1 == n || chars[pos + 1].1 != '-' {
                return (line[byte_at(pos)..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if pos == n {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[byte_at(pos)..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = chars[pos].1;
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == escape {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = chars[pos].1;
        }
        word.push(ch);
        pos += 1;
    }
    (String::new(), words)
}

/// Splits on blanks keeping quotes and escapes (BuildKit `parseWords`).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut pos = 0;
    while pos <= n {
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !buf.is_empty() {
                words.push(std::mem::take(&mut buf));
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                buf.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    // An escape token at the end of the line is dropped.
                    pos += 1;
                    continue;
                }
                // Unquoted: keep the escape token and the escaped character.
                buf.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            buf.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        // Nothing can be escaped inside single quotes.
        if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            buf.push(ch);
            ch = chars[pos];
        }
        buf.push(ch);
        pos += 1;
    }
    words
}

/// `ENV`/`LABEL`: `key value` (legacy) or `k=v k2=v2`; arguments come in
/// triples `key, value, "="` (`""` for the legacy form).
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    // Legacy format: the first word has no `=`.
    if !first.contains('=') {
        let parts = ws_split(rest, Some(2));
        if parts.len() < 2 {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![parts[0].clone(), parts[1].clone(), String::new()]);
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in &words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!("Syntax error - can't find = in {}. Must be of the form: name=value", go_quote(word)));
        };
        args.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(args)
}

pub(crate) fn parse_env(rest: &str, escape: char) -> Result<Parsed, String> {
    parse_name_val(rest, "ENV", escape).map(Parsed::plain)
}

pub(crate) fn parse_label(rest: &str, escape: char) -> Result<Parsed, String> {
    parse_name_val(rest, "LABEL", escape).map(Parsed::plain)
}

/// `ARG a b=c`: the words as they are.
pub(crate) fn parse_name_or_name_val(rest: &str, escape: char) -> Parsed {
    Parsed::plain(parse_words(rest, escape))
}

/// Blank-separated arguments (`FROM`, `EXPOSE`).
pub(crate) fn parse_strings_whitespace_delimited(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::plain(ws_split(rest, None))
}

/// The whole rest as one argument (`MAINTAINER`, `USER`, `WORKDIR`, ...).
pub(crate) fn parse_string(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::plain(vec![rest.to_string()])
}

pub(crate) const ERR_NOT_STRING_ARRAY: &str = "when using JSON array syntax, arrays must be comprised of strings only";

enum JsonOutcome {
    Strings(Vec<String>),
    NotJson,
    NotStrings,
}

/// BuildKit `parseJSON`: a JSON array of strings.
fn parse_json(rest: &str) -> JsonOutcome {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return JsonOutcome::NotJson;
    }
    match json::parse(rest) {
        Ok(json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    json::Value::String(s) => out.push(s),
                    _ => return JsonOutcome::NotStrings,
                }
            }
            JsonOutcome::Strings(out)
        }
        Ok(_) | Err(JsonError::Syntax | JsonError::Range) => JsonOutcome::NotJson,
    }
}

/// Exec form when the rest is a JSON array, else the rest as one argument
/// (`CMD`, `ENTRYPOINT`, `RUN`, `SHELL`).
pub(crate) fn parse_maybe_json(rest: &str) -> Result<Parsed, String> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_json(rest) {
        JsonOutcome::Strings(args) => Ok(Parsed { args, json: true }),
        JsonOutcome::NotStrings => Err(ERR_NOT_STRING_ARRAY.to_string()),
        JsonOutcome::NotJson => Ok(Parsed::plain(vec![rest.to_string()])),
    }
}

/// Exec form when the rest is a JSON array, else blank-separated words
/// (`ADD`, `COPY`, `VOLUME`).
pub(crate) fn parse_maybe_json_to_list(rest: &str) -> Result<Parsed, String> {
    match parse_json(rest) {
        JsonOutcome::Strings(args) => Ok(Parsed { args, json: true }),
        JsonOutcome::NotStrings => Err(ERR_NOT_STRING_ARRAY.to_string()),
        JsonOutcome::NotJson => Ok(parse_strings_whitespace_delimited(rest)),
    }
}

/// `HEALTHCHECK TYPE cmd...`: the type word, then the command as for `CMD`.
pub(crate) fn parse_health_config(rest: &str) -> Result<Parsed, String> {
    let sep = rest.find(is_space).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let next = rest[sep..].find(|c: char| !is_space(c)).map_or(rest.len(), |i| sep + i);
    let typ = rest[..sep].to_string();
    let cmd = parse_maybe_json(&rest[next..])?;
    let mut args = Vec::with_capacity(cmd.args.len() + 1);
    args.push(typ);
    args.extend(cmd.args);
    Ok(Parsed { args, json: cmd.json })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_words_like_buildkit() {
        let cases: [(&str, &[&str]); 8] = [
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            ("foo bar \"abc xyz\"", &["foo", "bar", "\"abc xyz\""]),
            ("àöû", &["àöû"]),
            ("föo bàr \"âbc xÿz\"", &["föo", "bàr", "\"âbc xÿz\""]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_words(input, '\\'), want, "{input}");
        }
    }

    #[test]
    fn go_regexp_split() {
        assert_eq!(ws_split("a  b\tc", None), ["a", "b", "c"]);
        assert_eq!(ws_split("a  b\tc", Some(2)), ["a", "b\tc"]);
        assert_eq!(ws_split(" a", None), ["", "a"]);
        assert_eq!(ws_split("a ", None), ["a", ""]);
        assert_eq!(ws_split("", Some(2)), [""]);
        assert_eq!(ws_split("abc", Some(2)), ["abc"]);
    }

    #[test]
    fn splits_commands_and_flags() {
        let (cmd, flags, args) = split_command("  COPY --from=a --chown='x y' src dst ", '\\');
        assert_eq!(cmd, "COPY");
        assert_eq!(flags, ["--from=a", "--chown=x y"]);
        assert_eq!(args, "src dst");
        let (_, flags, args) = split_command("CMD --doit -- [ ]", '\\');
        assert_eq!(flags, ["--doit"]);
        assert_eq!(args, "[ ]");
        let (_, flags, args) = split_command("RUN --mount=type=cache", '\\');
        assert_eq!(flags, ["--mount=type=cache"]);
        assert_eq!(args, "");
        let (_, flags, args) = split_command("RUN -x --y", '\\');
        assert!(flags.is_empty());
        assert_eq!(args, "-x --y");
    }

    #[test]
    fn name_val_errors() {
        assert_eq!(parse_env("PATH", '\\').map(|p| p.args), Err("ENV must have two arguments".to_string()));
        assert_eq!(
            parse_label("a=b c", '\\').map(|p| p.args),
            Err("Syntax error - can't find = in \"c\". Must be of the form: name=value".to_string())
        );
    }
}
