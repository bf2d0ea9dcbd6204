//! Shell patterns of `${V#pat}`, `${V%pat}` and `${V/pat/repl}`.
//!
//! BuildKit (`shell/lex.go`, `convertShellPatternToRegex`) turns the pattern
//! into a Go regular expression — `*` becomes `.*` (greedy) or `.*?`, `?`
//! becomes `.`, `\*`, `\?` and `\\` are literals, `\}` and `\/` drop the
//! backslash, other escapes are errors — and uses Go's leftmost-first
//! matching. This module matches the same language directly, with the same
//! priorities (see `Matcher`). As in Go's regexp, `?` and `*` do not match a
//! newline.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// A compiled shell pattern.
#[derive(Debug)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Pattern {
    /// Compiles `pattern`; the error text is Go's (`invalid escape '\x'`).
    pub(crate) fn new(pattern: &str, greedy: bool) -> Result<Pattern, String> {
        let mut toks = Vec::new();
        let mut it = pattern.chars().peekable();
        while let Some(tok) = it.next() {
            match tok {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => {
                    // `}` and `/` are escaped inside ${}, the escape is not
                    // part of the pattern.
                    if let Some('}' | '/') = it.peek() {
                        continue;
                    }
                    match it.next() {
                        Some(c @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(c)),
                        other => return Err(format!("invalid escape '\\{}'", other.unwrap_or('\u{FFFD}'))),
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern { toks, greedy })
    }
}

/// Where the leftmost-first match of a pattern starting at each position of
/// a text ends.
///
/// Go's regexp returns the match a backtracking engine would find first:
/// a greedy star tries its longest run first, a lazy one its shortest, and
/// the first choice that lets the rest match wins. With `R(p, t)` the end of
/// that first match of tokens `p..` from text position `t`, a literal or `?`
/// gives `R(p, t) = R(p+1, t+1)` when it matches, and a star gives
/// `R(p+1, t')` for the largest (greedy) or smallest (lazy) `t'` in its
/// newline-free run with `R(p+1, t')` defined. Filling `R` one token at a
/// time, last token first, costs O(tokens x text) time and O(text) memory.
struct Matcher {
    /// `ends[t]`: end of the first match starting at `t`.
    ends: Vec<Option<usize>>,
}

impl Matcher {
    fn new(pat: &Pattern, text: &[char]) -> Self {
        let n = text.len();
        let mut next: Vec<Option<usize>> = (0..=n).map(Some).collect();
        for tok in pat.toks.iter().rev() {
            let mut cur = vec![None; n + 1];
            match *tok {
                Tok::Lit(c) => {
                    for t in 0..n {
                        if text[t] == c {
                            cur[t] = next[t + 1];
                        }
                    }
                }
                Tok::Any => {
                    for t in 0..n {
                        if text[t] != '\n' {
                            cur[t] = next[t + 1];
                        }
                    }
                }
                Tok::Star => {
                    // Walking backwards, a newline (or the end) closes the
                    // runs of the positions before it.
                    let mut best: Option<usize> = None;
                    for t in (0..=n).rev() {
                        let defined = next[t].is_some();
                        if t == n || text[t] == '\n' {
                            best = defined.then_some(t);
                        } else if defined && (!pat.greedy || best.is_none()) {
                            best = Some(t);
                        }
                        cur[t] = best.and_then(|b| next[b]);
                    }
                }
            }
            next = cur;
        }
        Matcher { ends: next }
    }

    /// The end of the leftmost-first match starting exactly at `start`.
    fn match_at(&self, start: usize) -> Option<usize> {
        self.ends.get(start).copied().flatten()
    }

    /// The leftmost-first match at or after `from`: `(start, end)`.
    fn find_from(&self, from: usize) -> Option<(usize, usize)> {
        (from..self.ends.len()).find_map(|s| self.match_at(s).map(|e| (s, e)))
    }
}

/// BuildKit's `reversePattern`: reverses a pattern keeping `\x` escapes in
/// front of the character they escape.
fn reverse_pattern(pattern: &str) -> String {
    let p: Vec<char> = pattern.chars().collect();
    if p.is_empty() {
        return String::new();
    }
    let last = p.len() - 1;
    let mut out = vec!['\0'; p.len()];
    let mut i = 0;
    while i <= last {
        let tok = p[i];
        let out_idx = last - i;
        if tok == '\\' && i != last {
            out[out_idx - 1] = tok;
            out[out_idx] = p[i + 1];
            i += 2;
        } else {
            out[out_idx] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn invalid(pattern: &str, err: String) -> String {
    format!("invalid pattern ({pattern}) in substitution: {err}")
}

/// `${value#pattern}` / `${value##pattern}`.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let re = Pattern::new(pattern, greedy).map_err(|e| invalid(pattern, e))?;
    let text: Vec<char> = value.chars().collect();
    Ok(match Matcher::new(&re, &text).match_at(0) {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// `${value%pattern}` / `${value%%pattern}`: BuildKit reverses pattern and
/// value to turn the rightmost search into a leftmost one.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let rev_pattern = reverse_pattern(pattern);
    let rev_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&rev_pattern, &rev_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// `${value/pattern/replacement}` (first match, replacement taken literally)
/// and `${value//pattern/replacement}` (Go's `Regexp.ReplaceAllString`,
/// whose replacement expands `$0`/`${0}` to the match, other `$name` to
/// nothing and `$$` to `$`).
pub(crate) fn replace(pattern: &str, value: &str, replacement: &str, all: bool) -> Result<String, String> {
    let re = Pattern::new(pattern, true).map_err(|e| invalid(pattern, e))?;
    let text: Vec<char> = value.chars().collect();
    let matcher = Matcher::new(&re, &text);
    if !all {
        return Ok(match matcher.find_from(0) {
            Some((s, e)) => {
                let mut out: String = text[..s].iter().collect();
                out.push_str(replacement);
                out.extend(&text[e..]);
                out
            }
            None => value.to_string(),
        });
    }
    let mut out = String::new();
    let mut last_match_end = 0;
    let mut search_pos = 0;
    while search_pos <= text.len() {
        let Some((s, e)) = matcher.find_from(search_pos) else {
            break;
        };
        out.extend(&text[last_match_end..s]);
        // No replacement for an empty match right after another match.
        if e > last_match_end || s == 0 {
            expand_template(&mut out, replacement, &text[s..e]);
        }
        last_match_end = e;
        if search_pos + 1 > e {
            search_pos += 1;
        } else {
            search_pos = e;
        }
    }
    out.extend(&text[last_match_end.min(text.len())..]);
    Ok(out)
}

/// Go's `Regexp.expand` for a regexp whose only group is the whole match.
fn expand_template(out: &mut String, template: &str, matched: &[char]) {
    let mut rest = template;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        rest = &rest[idx + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (name, after, ok) = extract_name(rest);
        if !ok {
            // Malformed: the `$` is literal text.
            out.push('$');
            continue;
        }
        rest = after;
        if name.bytes().all(|b| b.is_ascii_digit()) && name.parse::<u64>() == Ok(0) {
            out.extend(matched);
        }
    }
    out.push_str(rest);
}

fn extract_name(s: &str) -> (&str, &str, bool) {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body.char_indices().find(|&(_, c)| !(c.is_alphanumeric() || c == '_')).map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return ("", s, false);
    }
    let name = &body[..end];
    let after = &body[end..];
    if brace {
        match after.strip_prefix('}') {
            Some(a) => (name, a, true),
            None => ("", s, false),
        }
    } else {
        (name, after, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverses_patterns_like_buildkit() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }

    #[test]
    fn rejects_bad_escapes() {
        for p in ["\\", "\\x", "\\\\\\"] {
            assert!(Pattern::new(p, true).is_err(), "{p}");
        }
        assert!(Pattern::new("(()[]{\\}^$.\\*\\?|\\\\", true).is_ok());
    }

    #[test]
    fn trims_and_replaces() {
        assert_eq!(trim_prefix("*/", "a/b/c", false).as_deref(), Ok("b/c"));
        assert_eq!(trim_prefix("*/", "a/b/c", true).as_deref(), Ok("c"));
        assert_eq!(trim_suffix("/*", "a/b/c", false).as_deref(), Ok("a/b"));
        assert_eq!(trim_suffix("/*", "a/b/c", true).as_deref(), Ok("a"));
        assert_eq!(trim_prefix("x", "abc", true).as_deref(), Ok("abc"));
        assert_eq!(trim_suffix("?", "abc", true).as_deref(), Ok("ab"));
        assert_eq!(replace("b", "abcb", "X", false).as_deref(), Ok("aXcb"));
        assert_eq!(replace("b", "abcb", "X", true).as_deref(), Ok("aXcX"));
        assert_eq!(replace("", "abc", "X", true).as_deref(), Ok("XaXbXcX"));
        assert_eq!(replace("b*", "abc", "X", true).as_deref(), Ok("aX"));
        assert_eq!(replace("*", "abc", "X", true).as_deref(), Ok("X"));
        assert_eq!(replace("?", "ab", "X", true).as_deref(), Ok("XX"));
        assert_eq!(replace("b", "abc", "<$0$$>", true).as_deref(), Ok("a<b$>c"));
        assert_eq!(replace("b", "abc", "<$x>", true).as_deref(), Ok("a<>c"));
        assert_eq!(trim_prefix("a*b*", "a\nbc", true).as_deref(), Ok("a\nbc"));
        assert_eq!(trim_prefix("*", "ab\ncd", true).as_deref(), Ok("\ncd"));
    }

    #[test]
    fn long_inputs_stay_cheap() {
        let value = "a".repeat(5_000);
        let pattern = "a".repeat(5_000);
        assert_eq!(trim_prefix(&pattern, &value, true).as_deref(), Ok(""));
        let stars = "*a".repeat(1_000) + "b";
        assert_eq!(trim_prefix(&stars, &value, false).as_deref(), Ok(value.as_str()));
        assert_eq!(replace("a", &value[..2_000], "b", true).map(|s| s.len()), Ok(2_000));
    }
}
