//! Parser directives (BuildKit `parser/directives.go`): `# syntax=`,
//! `# escape=` and `# check=` comments at the very top of a Dockerfile.
//!
//! Directives are only recognised before the first line that is not one
//! (an instruction, an ordinary comment or a blank line ends them), keys are
//! case-insensitive, each may appear once, and unknown keys end the directive
//! block like any comment.

use crate::json;

/// A parser directive found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// 1-based line of the directive.
    pub line: usize,
}

const VALID: [&str; 3] = ["syntax", "escape", "check"];

/// BuildKit's `DirectiveParser`: fed one line at a time until it is done.
#[derive(Debug)]
pub(crate) struct DirectiveParser {
    line: usize,
    comment: &'static str,
    seen: Vec<String>,
    done: bool,
}

impl DirectiveParser {
    pub(crate) fn new() -> Self {
        DirectiveParser::with_comment("#", 0)
    }

    fn with_comment(comment: &'static str, line: usize) -> Self {
        DirectiveParser { line, comment, seen: Vec::new(), done: false }
    }

    /// Looks at one line; an error is a repeated directive.
    pub(crate) fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, String> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix(self.comment) else {
            self.done = true;
            return Ok(None);
        };
        let rest = rest.trim_start_matches(char::is_whitespace);
        let Some((key, value)) = match_directive(rest) else {
            self.done = true;
            return Ok(None);
        };
        let key = key.to_ascii_lowercase();
        if !VALID.contains(&key.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        Ok(Some(Directive { name: key, value: value.to_string(), line: self.line }))
    }

    fn parse_all(&mut self, text: &str) -> Vec<Directive> {
        let mut out = Vec::new();
        for line in text.lines() {
            if self.done {
                break;
            }
            match self.parse_line(line) {
                Ok(Some(d)) => out.push(d),
                Ok(None) => {}
                Err(_) => break,
            }
        }
        out
    }
}

/// RE2's `\s`: ASCII blanks without `\v`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return None,
    }
    let key_end = s.char_indices().skip(1).find(|&(_, c)| !c.is_ascii_alphanumeric()).map_or(s.len(), |(i, _)| i);
    let key = &s[..key_end];
    let rest = s[key_end..].trim_start_matches(is_re_space);
    let rest = rest.strip_prefix('=')?;
    let trimmed = rest.trim_start_matches(is_re_space);
    let value = trimmed.trim_end_matches(is_re_space);
    if !value.is_empty() {
        return Some((key, value));
    }
    // Only blanks after `=`: the lazy group still needs one character, and
    // the regexp gives it the last blank.
    rest.chars().last().map(|c| {
        let start = rest.len() - c.len_utf8();
        (key, &rest[start..])
    })
}

/// A directive found by [`detect_syntax`] or [`parse_directive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedDirective {
    /// The first space-separated part of the value (for `syntax`, the
    /// frontend image reference).
    pub value: String,
    /// The whole value.
    pub cmdline: String,
    /// 1-based line of the directive, 0 for the JSON form.
    pub line: usize,
}

/// BuildKit `DetectSyntax`: the `syntax` directive as `# syntax=`, as
/// `// syntax=` or as a JSON document `{"syntax": "..."}`. A leading BOM and
/// a `#!` shebang line are skipped.
pub fn detect_syntax(text: &str) -> Option<DetectedDirective> {
    find_directive("syntax", text, true)
}

/// BuildKit `ParseDirective`: the directive `key` in `# key=value` form.
pub fn parse_directive(key: &str, text: &str) -> Option<DetectedDirective> {
    find_directive(key, text, false)
}

fn find_directive(key: &str, text: &str, any_format: bool) -> Option<DetectedDirective> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (text, line) = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with("#!") => (rest, 1),
        None if text.starts_with("#!") => ("", 1),
        _ => (text, 0),
    };
    let found = |comment: &'static str| {
        DirectiveParser::with_comment(comment, line).parse_all(text).into_iter().find(|d| d.name == key).map(|d| {
            DetectedDirective {
                value: d.value.split(' ').next().unwrap_or_default().to_string(),
                cmdline: d.value,
                line: d.line,
            }
        })
    };
    if let Some(d) = found("#") {
        return Some(d);
    }
    if !any_format {
        return None;
    }
    if let Some(d) = found("//") {
        return Some(d);
    }
    if let Ok(json::Value::Object(members)) = json::parse(text) {
        if let Some((_, json::Value::String(v))) = members.iter().rev().find(|(k, _)| k == key) {
            return Some(DetectedDirective { value: v.clone(), cmdline: v.clone(), line });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_directive_lines() {
        assert_eq!(match_directive("escape=`"), Some(("escape", "`")));
        assert_eq!(match_directive("syntax = a/b:1  "), Some(("syntax", "a/b:1")));
        assert_eq!(match_directive("check=skip=all;error=true"), Some(("check", "skip=all;error=true")));
        assert_eq!(match_directive("escape=  "), Some(("escape", " ")));
        assert_eq!(match_directive("escape="), None);
        assert_eq!(match_directive("Comment here. x=y"), None);
        assert_eq!(match_directive("1x=y"), None);
    }

    #[test]
    fn parser_rejects_repeats_and_stops() {
        let mut p = DirectiveParser::new();
        assert!(matches!(p.parse_line("# escape=`"), Ok(Some(_))));
        assert_eq!(p.parse_line("# ESCAPE=\\"), Err("only one escape parser directive can be used".to_string()));
        let mut p = DirectiveParser::new();
        assert_eq!(p.parse_line("# unknown=1"), Ok(None));
        assert_eq!(p.parse_line("# syntax=x"), Ok(None));
    }

    #[test]
    fn detects_syntax_in_all_forms() {
        let d = detect_syntax("#!/usr/bin/env buildctl\n# syntax = docker/dockerfile:1 --x\nFROM a");
        assert_eq!(
            d,
            Some(DetectedDirective {
                value: "docker/dockerfile:1".into(),
                cmdline: "docker/dockerfile:1 --x".into(),
                line: 2
            })
        );
        assert_eq!(detect_syntax("// syntax=foo\n").map(|d| d.value), Some("foo".to_string()));
        assert_eq!(detect_syntax("{\"syntax\": \"bar\"}").map(|d| d.value), Some("bar".to_string()));
        assert_eq!(detect_syntax("FROM a\n# syntax=x"), None);
        assert_eq!(
            parse_directive("check", "# check=skip=all\nFROM a").map(|d| d.cmdline),
            Some("skip=all".to_string())
        );
    }
}
