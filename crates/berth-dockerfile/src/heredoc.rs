//! Heredocs (BuildKit `parser.go`: `ParseHeredoc`, `heredocsFromLine`,
//! `ChompHeredocContent`).
//!
//! Only `RUN`, `COPY` and `ADD` in shell form (also as an `ONBUILD` trigger)
//! may carry heredocs. The instruction line is split into words with the
//! shell lexer (quotes and escapes kept); every word of the form
//! `[fd]<<[-]NAME` opens a heredoc, read from the following lines in order
//! until a line equal to `NAME` (after removing leading tabs with `<<-`).
//! A quoted name (`<<'EOF'`, `<<"EOF"`, `<<E"O"F`) disables expansion of the
//! content.

use crate::error::Result;
use crate::lexer::{EmptyEnv, Lexer};

/// A heredoc attached to an instruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator, with quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor before `<<` (`3<<EOF`), 0 when absent.
    pub file_descriptor: u64,
    /// Whether variables in the content are expanded (the name was unquoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the content lines and terminator.
    pub chomp: bool,
    /// The raw content, every line with its line ending; tabs are not yet
    /// stripped for `<<-` (see [`chomp_heredoc_content`]).
    pub content: String,
}

impl Heredoc {
    /// The content as the build uses it: leading tabs removed for `<<-`.
    pub fn data(&self) -> String {
        if self.chomp {
            chomp_heredoc_content(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// RE2's `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Parses a word such as `<<EOF`, `<<-'EOF'` or `3<<EOF` (BuildKit
/// `ParseHeredoc`, regexp `^(\d*)<<(-?)\s*([^<]*)$`). `Ok(None)` when the word
/// is not a heredoc; an error when its name is badly quoted (`<<'EOF`).
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>> {
    let digits_end = src.find(|c: char| !c.is_ascii_digit()).unwrap_or(src.len());
    let digits = &src[..digits_end];
    let Some(rest) = src[digits_end..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_re_space);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    // Go ignores the ParseUint error: an overflow yields the maximum value.
    let file_descriptor = if digits.is_empty() { 0 } else { digits.parse::<u64>().unwrap_or(u64::MAX) };

    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    // Lex the name with and without quotes: if they differ, part of the name
    // is quoted and the content must not be expanded.
    let words = lex.process_words(rest, &EmptyEnv)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let words_raw = lex.process_words(rest, &EmptyEnv)?;
    if words_raw.len() != words.len() {
        return Err(crate::error::Error::Lex {
            word: rest.to_string(),
            message: format!("internal lexing of heredoc produced inconsistent results: {rest}"),
        });
    }
    let count = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let word = words.into_iter().next().unwrap_or_default();
    let raw = words_raw.into_iter().next().unwrap_or_default();
    let expand = count(&word) == count(&raw);
    Ok(Some(Heredoc { name: word, file_descriptor, expand, chomp, content: String::new() }))
}

/// The heredocs opened on an instruction line, in order (BuildKit
/// `heredocsFromLine`). A line the lexer cannot split has none.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &EmptyEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Removes leading tabs from every line (BuildKit `ChompHeredocContent`,
/// regexp `(?m)^\t+`).
pub fn chomp_heredoc_content(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for line in src.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_heredoc_cases_from_buildkit() {
        for src in
            ["<<EOF", "<<'EOF'", "<<\"EOF\"", "<<-EOF", "<<-'EOF'", "<<-\"EOF\"", "<<EO\"F\"", "<< EOF", "<<- EOF"]
        {
            let h = parse_heredoc(src).ok().flatten();
            assert_eq!(h.map(|h| h.name), Some("EOF".to_string()), "{src}");
        }
        for src in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(src).is_err(), "{src}");
        }
        for src in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(src).ok(), Some(None), "{src}");
        }
    }

    #[test]
    fn heredocs_from_lines() {
        let cases: [(&str, &[&str]); 10] = [
            ("RUN <<EOF", &["EOF"]),
            ("RUN <<-EOF", &["EOF"]),
            // `<<-` and the name are two words here, so no heredoc.
            ("RUN <<- EOF", &[]),
            ("RUN << -EOF", &["-EOF"]),
            ("RUN <<'EOF'", &["EOF"]),
            ("RUN 4<<EOF", &["EOF"]),
            ("RUN <<EOF <<EOF2", &["EOF", "EOF2"]),
            ("RUN '<<EOF'", &[]),
            ("RUN \"<<EOF\"", &[]),
            ("RUN <<  EOF  > foo", &["EOF"]),
        ];
        for (line, names) in cases {
            let docs = heredocs_from_line(line).unwrap_or_default();
            let got: Vec<String> = docs.into_iter().map(|d| d.name).collect();
            assert_eq!(got, names, "{line}");
        }
        let docs = heredocs_from_line("RUN 4<<-'EOF'").unwrap_or_default();
        assert_eq!(docs[0].file_descriptor, 4);
        assert!(docs[0].chomp);
        assert!(!docs[0].expand);
    }

    #[test]
    fn chomps_tabs() {
        assert_eq!(chomp_heredoc_content("\thello\n\t\tworld\n"), "hello\nworld\n");
        assert_eq!(chomp_heredoc_content(" \tkeep\n"), " \tkeep\n");
    }
}
