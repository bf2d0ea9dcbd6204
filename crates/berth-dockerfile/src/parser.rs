//! The line parser (BuildKit `parser.Parse`): text to a list of raw
//! instruction nodes.
//!
//! Behaviour followed from BuildKit:
//! - a UTF-8 BOM on the first line is dropped;
//! - parser directives are read from the top (see [`crate::directives`]);
//!   `# escape=` changes the escape token for the rest of the file;
//! - lines whose first non-blank character is `#` are comments, blank lines
//!   are skipped; comments right above an instruction are kept on it;
//! - an escape token that ends a line (trailing blanks allowed) continues the
//!   instruction on the next line; comment lines inside a continuation are
//!   dropped and blank ones too, with a warning (`no-empty-continuation`);
//! - the keyword is matched case-insensitively; unknown keywords are kept
//!   (with one empty argument) and rejected later by the instruction parser;
//! - leading `--flags` are split off; arguments are parsed per keyword
//!   (exec/JSON form, blank-separated words, key/value pairs, ...);
//! - `RUN`/`COPY`/`ADD` in shell form read heredoc bodies from the lines
//!   that follow.

use crate::directives::{Directive, DirectiveParser};
use crate::error::{Error, Result};
use crate::heredoc::{heredocs_from_line, Heredoc};
use crate::lexer::is_space;
use crate::line_parsers::{self as lp, Parsed};
use crate::quote::{go_quote, go_quote_list};

/// One instruction of the raw parse tree (BuildKit `parser.Node`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    /// The keyword as written (`RUN`, `run`, `Copy`, ...).
    pub value: String,
    /// The leading `--flag[=value]` words, quotes and escapes processed.
    pub flags: Vec<String>,
    /// The arguments, in BuildKit's layout per instruction: `ENV`/`LABEL`
    /// give `key, value, "="` triples (`""` instead of `"="` for the legacy
    /// `ENV key value` form), `HEALTHCHECK` gives the type then the command,
    /// shell forms give one string, exec forms one string per element.
    /// Quotes and escapes in shell-form words are kept.
    pub args: Vec<String>,
    /// The trigger of an `ONBUILD`.
    pub sub: Option<Box<Node>>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// Heredocs read after the instruction line.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined) the node was parsed from.
    pub original: String,
    /// 1-based first line of the instruction.
    pub start_line: usize,
    /// 1-based last line (continuations and heredocs included).
    pub end_line: usize,
    /// Comment lines directly above the instruction, `#` removed.
    pub comments: Vec<String>,
}

impl Node {
    /// The keyword in lower case (`run`, `copy`, ...).
    pub fn keyword(&self) -> String {
        self.value.to_lowercase()
    }

    /// The node as one S-expression body, BuildKit's `Node.Dump`:
    /// `copy ["--from=x"] "src" "dst"`.
    pub fn dump(&self) -> String {
        let mut s = self.value.to_lowercase();
        if !self.flags.is_empty() {
            s.push(' ');
            s.push_str(&go_quote_list(&self.flags));
        }
        if let Some(sub) = &self.sub {
            s.push_str(" (");
            s.push_str(&sub.dump());
            s.push(')');
        }
        for arg in &self.args {
            s.push(' ');
            s.push_str(&go_quote(arg));
        }
        s.trim_matches(is_space).to_string()
    }

    /// Whether this node may carry heredocs: `ADD`, `COPY`, `RUN` (also as an
    /// `ONBUILD` trigger) in shell form.
    fn can_contain_heredoc(&self) -> bool {
        let node = match (&self.sub, self.keyword().as_str()) {
            (Some(sub), "onbuild") => sub.as_ref(),
            _ => self,
        };
        matches!(node.keyword().as_str(), "add" | "copy" | "run") && !node.json
    }
}

/// A non-fatal finding of the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// One-line summary.
    pub short: String,
    /// Longer explanation.
    pub detail: String,
    /// Documentation link.
    pub url: String,
    /// 1-based line the warning refers to.
    pub line: usize,
}

/// The output of [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseResult {
    /// The instructions in order.
    pub children: Vec<Node>,
    /// The escape token in force (`\` unless `# escape=` changed it).
    pub escape_token: char,
    /// Parser directives found at the top of the file.
    pub directives: Vec<Directive>,
    /// Warnings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl ParseResult {
    /// The tree in the S-expression format of BuildKit's parser corpus: one
    /// `(instruction ...)` line per node, no trailing newline.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for child in &self.children {
            s.push('(');
            s.push_str(&child.dump());
            s.push_str(")\n");
        }
        s.trim_matches(is_space).to_string()
    }

    /// The value of directive `name` (`syntax`, `escape`, `check`).
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives.iter().find(|d| d.name == name).map(|d| d.value.as_str())
    }
}

/// bufio.Scanner's maximum token size: longer lines are an error.
const MAX_LINE: usize = 64 * 1024;

/// Parser state that lines can change.
pub(crate) struct Directives {
    pub escape: char,
    parser: DirectiveParser,
    found: Vec<Directive>,
}

impl Directives {
    fn new() -> Self {
        Directives { escape: '\\', parser: DirectiveParser::new(), found: Vec::new() }
    }

    /// Returns whether the line was a directive.
    fn possible_parser_directive(&mut self, line: &str) -> std::result::Result<bool, String> {
        let Some(d) = self.parser.parse_line(line)? else {
            return Ok(false);
        };
        if d.name == "escape" {
            self.escape = match d.value.as_str() {
                "`" => '`',
                "\\" => '\\',
                v => return Err(format!("invalid escape token '{v}' does not match ` or \\")),
            };
        }
        self.found.push(d);
        Ok(true)
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_empty_continuation_line(line: &str) -> bool {
    trim_newline(line).trim_start_matches(is_space).is_empty()
}

/// The escape token as the last non-blank character continues the line,
/// unless it is itself escaped (BuildKit's regexp
/// `([^\\])\\[ \t]*$|^\\[ \t]*$`). Returns the line without it and whether
/// the logical line ends here.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    let Some(before) = body.strip_suffix(escape) else {
        return (line.to_string(), true);
    };
    match before.chars().last() {
        None => (String::new(), false),
        Some(c) if c == escape => (line.to_string(), true),
        Some(_) => (before.to_string(), false),
    }
}

/// BuildKit `processLine`: strips the line ending (and leading blanks on the
/// first line of an instruction), feeds the directive parser and blanks out
/// comments.
fn process_line(d: &mut Directives, token: &str, strip_left: bool) -> std::result::Result<(String, bool), String> {
    let mut token = trim_newline(token);
    if strip_left {
        token = token.trim_start_matches(is_space);
    }
    let directive = d.possible_parser_directive(token)?;
    let line = if is_comment(token) { String::new() } else { token.to_string() };
    Ok((line, directive))
}

/// Builds a node from a logical line (BuildKit `newNodeFromLine`).
pub(crate) fn node_from_line(line: &str, d: &Directives, comments: Vec<String>) -> std::result::Result<Node, String> {
    let (cmd, flags, rest) = lp::split_command(line, d.escape);
    let mut sub = None;
    let parsed = match cmd.to_lowercase().as_str() {
        "add" | "copy" | "volume" => lp::parse_maybe_json_to_list(&rest)?,
        "arg" => lp::parse_name_or_name_val(&rest, d.escape),
        "cmd" | "entrypoint" | "run" | "shell" => lp::parse_maybe_json(&rest)?,
        "env" => lp::parse_env(&rest, d.escape)?,
        "expose" | "from" => lp::parse_strings_whitespace_delimited(&rest),
        "healthcheck" => lp::parse_health_config(&rest)?,
        "label" => lp::parse_label(&rest, d.escape)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => lp::parse_string(&rest),
        "onbuild" => {
            if !rest.is_empty() {
                sub = Some(Box::new(node_from_line(&rest, d, Vec::new())?));
            }
            Parsed::default()
        }
        // Unknown instructions keep one empty argument (BuildKit
        // `parseIgnore`); the instruction parser rejects them.
        _ => Parsed { args: vec![String::new()], json: false },
    };
    Ok(Node {
        value: cmd,
        flags,
        args: parsed.args,
        sub,
        json: parsed.json,
        heredocs: Vec::new(),
        original: line.to_string(),
        start_line: 0,
        end_line: 0,
        comments,
    })
}

/// Splits text into lines that keep their `\n`.
fn scan_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Parses Dockerfile text into raw instruction nodes (BuildKit
/// `parser.Parse`).
pub fn parse(text: &str) -> Result<ParseResult> {
    let mut lines = scan_lines(text);
    // bufio.Scanner stops at a line longer than its buffer; the error is
    // reported once the lines before it are parsed.
    let too_long = lines.iter().position(|l| l.len() > MAX_LINE || (l.len() == MAX_LINE && !l.ends_with('\n')));
    if let Some(idx) = too_long {
        lines.truncate(idx);
    }

    let mut d = Directives::new();
    let mut current_line = 0usize;
    let mut children: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut idx = 0;

    while idx < lines.len() {
        let mut raw = lines[idx];
        idx += 1;
        if current_line == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        if is_comment(raw) {
            let comment = raw.chars().skip(1).collect::<String>().trim_matches(is_space).to_string();
            if comment.is_empty() {
                comments.clear();
            } else {
                comments.push(comment);
            }
        }
        let (line, directive_ok) = process_line(&mut d, raw, true).map_err(|e| Error::parse(current_line + 1, e))?;
        if directive_ok {
            // A directive is not a comment of the next instruction.
            comments.pop();
        }
        current_line += 1;

        let start_line = current_line;
        let (first, mut end_of_line) = trim_continuation(&line, d.escape);
        if end_of_line && first.is_empty() {
            continue;
        }
        let mut buf = first;

        let mut has_empty_continuation = false;
        while !end_of_line && idx < lines.len() {
            let raw = lines[idx];
            idx += 1;
            let (cont, _) = process_line(&mut d, raw, false).map_err(|e| Error::parse(current_line + 1, e))?;
            current_line += 1;
            if is_comment(raw) {
                // Comment lines inside a continuation are dropped.
                continue;
            }
            if is_empty_continuation_line(&cont) {
                has_empty_continuation = true;
                continue;
            }
            let (cont, eol) = trim_continuation(&cont, d.escape);
            end_of_line = eol;
            buf.push_str(&cont);
        }

        if has_empty_continuation {
            warnings.push(Warning {
                short: format!("Empty continuation line found in: {buf}"),
                detail: "Empty continuation lines will become errors in a future release".to_string(),
                url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/".to_string(),
                line: current_line,
            });
        }

        let mut child =
            node_from_line(&buf, &d, std::mem::take(&mut comments)).map_err(|e| Error::parse(start_line, e))?;

        if child.can_contain_heredoc() && buf.contains("<<") {
            let heredocs = heredocs_from_line(&buf).map_err(|e| Error::parse(start_line, e.message()))?;
            for mut heredoc in heredocs {
                let mut terminated = false;
                let mut content = std::mem::take(&mut heredoc.content);
                while idx < lines.len() {
                    let raw = lines[idx];
                    idx += 1;
                    current_line += 1;
                    let mut candidate = trim_newline(raw);
                    if heredoc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(Error::parse(start_line, "unterminated heredoc"));
                }
                heredoc.content = content;
                child.heredocs.push(heredoc);
            }
        }

        child.start_line = start_line;
        child.end_line = current_line;
        if let Some(sub) = child.sub.as_deref_mut() {
            sub.start_line = start_line;
            sub.end_line = current_line;
        }
        children.push(child);
    }

    if children.is_empty() {
        return Err(Error::parse(current_line.max(1), "file with no instructions"));
    }
    if too_long.is_some() {
        return Err(Error::parse(
            current_line + 1,
            format!("dockerfile line greater than max allowed size of {}", MAX_LINE - 1),
        ));
    }
    Ok(ParseResult { children, escape_token: d.escape, directives: d.found, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_character() {
        assert_eq!(trim_continuation("foo \\", '\\'), ("foo ".to_string(), false));
        assert_eq!(trim_continuation("foo\\  \t", '\\'), ("foo".to_string(), false));
        assert_eq!(trim_continuation("\\", '\\'), (String::new(), false));
        assert_eq!(trim_continuation("foo\\\\", '\\'), ("foo\\\\".to_string(), true));
        assert_eq!(trim_continuation("foo `", '`'), ("foo ".to_string(), false));
        assert_eq!(trim_continuation("foo \\", '`'), ("foo \\".to_string(), true));
        assert_eq!(trim_continuation("foo", '\\'), ("foo".to_string(), true));
    }
}
