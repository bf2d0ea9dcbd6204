//! Docker's shell-word lexer (BuildKit `frontend/dockerfile/shell/lex.go`).
//!
//! It expands `$V`, `${V}` and the modifiers `${V:-x}`, `${V-x}`, `${V:+x}`,
//! `${V+x}`, `${V:?msg}`, `${V?msg}`, `${V#pat}`, `${V##pat}`, `${V%pat}`,
//! `${V%%pat}`, `${V/pat/repl}`, `${V//pat/repl}`; removes single and double
//! quotes; honours the escape token (`\` or `` ` ``); and optionally splits the
//! result into words. Positional (`$1`) and special (`$@`, `$#`, ...)
//! parameters are recognised and expand to nothing unless the environment
//! defines them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

use crate::error::{Error, Result};
use crate::pattern;

/// Looks up variables for the lexer (BuildKit `shell.EnvGetter`).
pub trait EnvGetter {
    /// The value of `key`, or `None` when it is not set (an empty value is set).
    fn get_env(&self, key: &str) -> Option<&str>;
}

impl<T: EnvGetter + ?Sized> EnvGetter for &T {
    fn get_env(&self, key: &str) -> Option<&str> {
        (**self).get_env(key)
    }
}

impl<S: BuildHasher> EnvGetter for HashMap<String, String, S> {
    fn get_env(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl EnvGetter for BTreeMap<String, String> {
    fn get_env(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// An ordered list of pairs; the last pair with a key wins, like a process
/// environment.
impl EnvGetter for [(String, String)] {
    fn get_env(&self, key: &str) -> Option<&str> {
        self.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl EnvGetter for Vec<(String, String)> {
    fn get_env(&self, key: &str) -> Option<&str> {
        self.as_slice().get_env(key)
    }
}

/// An environment without variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyEnv;

impl EnvGetter for EmptyEnv {
    fn get_env(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// An environment built from `KEY=value` strings (BuildKit
/// `shell.EnvsFromSlice`): a string without `=` sets the key to empty, later
/// entries override earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    vars: Vec<(String, String)>,
}

impl EnvList {
    /// Builds the list from `KEY=value` strings.
    pub fn from_strings<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let vars = items
            .into_iter()
            .map(|s| {
                let s = s.as_ref();
                match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (s.to_string(), String::new()),
                }
            })
            .collect();
        EnvList { vars }
    }

    /// Sets `key`, replacing an earlier value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.vars.retain(|(k, _)| *k != key);
        self.vars.push((key, value.into()));
    }

    /// The keys in the order they were first given.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(k, _)| k.as_str())
    }

    /// The pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.vars
    }
}

impl EnvGetter for EnvList {
    fn get_env(&self, key: &str) -> Option<&str> {
        self.vars.as_slice().get_env(key)
    }
}

/// The outcome of [`Lexer::process_word_with_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessedWord {
    /// The expanded word (quotes removed, spaces kept).
    pub result: String,
    /// The expanded word split into words.
    pub words: Vec<String>,
    /// Variables that were referenced and set.
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but not set.
    pub unmatched: BTreeSet<String>,
}

/// The shell-word lexer (BuildKit `shell.Lex`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the output (quotes still group words).
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (used to expand heredoc contents).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written (`$V`, `${V:-x}`).
    pub skip_unset_env: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``) as escape character.
    pub fn new(escape: char) -> Self {
        Lexer { escape, raw_quotes: false, raw_escapes: false, skip_process_quotes: false, skip_unset_env: false }
    }

    /// The escape character.
    pub fn escape_token(&self) -> char {
        self.escape
    }

    /// Expands `word` into a single string (BuildKit `ProcessWord`): spaces
    /// between words are kept, quotes removed.
    pub fn process_word(&self, word: &str, env: &dyn EnvGetter) -> Result<String> {
        self.process(word, env).map(|r| r.result)
    }

    /// Expands `word` and splits the result into words (BuildKit
    /// `ProcessWords`); splitting happens after substitution, quoted text is
    /// never split.
    pub fn process_words(&self, word: &str, env: &dyn EnvGetter) -> Result<Vec<String>> {
        self.process(word, env).map(|r| r.words)
    }

    /// Expands `word`, also reporting which variables were (not) found
    /// (BuildKit `ProcessWordWithMatches`).
    pub fn process_word_with_matches(&self, word: &str, env: &dyn EnvGetter) -> Result<ProcessedWord> {
        self.process(word, env)
    }

    fn process(&self, word: &str, env: &dyn EnvGetter) -> Result<ProcessedWord> {
        let mut sw = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            words_buffer: String::new(),
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match sw.process_stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(ProcessedWord { result, words, matched: sw.matched, unmatched: sw.unmatched }),
            Err(message) => Err(Error::Lex { word: word.to_string(), message }),
        }
    }
}

/// Go's `unicode.IsSpace`; Rust's `char::is_whitespace` is the same
/// White_Space property.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

struct ShellWord<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn EnvGetter,
    raw_escapes: bool,
    /// BuildKit keeps one word buffer per `shellWord` and every nested
    /// `processStopOn` (the `${V:-...}` forms) resets it, so the partial word
    /// before such an expansion is dropped from the split words:
    /// `ProcessWords("a${X:-b}c")` gives `["bc"]`. Kept for compatibility.
    words_buffer: String,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, ch: char) {
        if is_space(ch) && self.in_word {
            if !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else if !is_space(ch) {
            self.add_raw_char(buf, ch);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, ch: char) {
        buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for ch in s.chars() {
            self.add_char(buf, ch);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn get_words(&mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
            self.in_word = false;
        }
        std::mem::take(&mut self.words)
    }
}

/// How `string(rune)` prints a character in Go, end of input included.
fn go_char(c: Option<char>) -> char {
    c.unwrap_or('\u{FFFD}')
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> (String, bool) {
        match self.env.get_env(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                (v.to_string(), true)
            }
            None => {
                self.unmatched.insert(name.to_string());
                (String::new(), false)
            }
        }
    }

    /// Processes characters until `stop` (consumed) or the end of input.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> std::result::Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on(&mut self, stop: Option<char>) -> std::result::Result<(String, Vec<String>), String> {
        let mut result = String::new();
        self.words_buffer.clear();
        let mut words = Words::default();
        let process_quotes = !self.lex.skip_process_quotes;

        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                let w = words.get_words(&mut self.words_buffer);
                return Ok((result, w));
            }
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&mut self.words_buffer, &tmp);
                }
                '<' => {
                    let tmp = self.process_possible_heredoc();
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buffer, &tmp);
                }
                '\'' if process_quotes => {
                    let tmp = self.process_single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buffer, &tmp);
                }
                '"' if process_quotes => {
                    let tmp = self.process_double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buffer, &tmp);
                }
                _ => {
                    self.next();
                    let mut ch = ch;
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(&mut self.words_buffer, ch);
                            result.push(ch);
                        }
                        // The escape token escapes the next character, and is
                        // dropped at the end of the input.
                        match self.next() {
                            None => break,
                            Some(c) => ch = c,
                        }
                        words.add_raw_char(&mut self.words_buffer, ch);
                    } else {
                        words.add_char(&mut self.words_buffer, ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!("unexpected end of statement while looking for matching {stop}"));
        }
        let w = words.get_words(&mut self.words_buffer);
        Ok((result, w))
    }

    /// Everything between single quotes is literal; `'` cannot be escaped.
    fn process_single_quote(&mut self) -> std::result::Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".to_string()),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// Double quotes keep everything but `$` expansions; the escape token only
    /// escapes `"`, `$` and itself, other escapes stay literal.
    fn process_double_quote(&mut self) -> std::result::Result<String, String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".to_string()),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(_) => {
                    let Some(mut ch) = self.next() else { continue };
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape at the end of the word is ignored.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> std::result::Result<String, String> {
        self.next();

        // $xxx case
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            let (value, found) = self.get_env(&name);
            if !found && self.lex.skip_unset_env {
                return Ok(format!("${name}"));
            }
            return Ok(value);
        }

        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            // Invalid ${{xx}, ${:xx}, ${:}, ${} cases.
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let first = self.next();
        let mut chs = go_char(first).to_string();

        match first {
            Some('}') => {
                // Normal ${xx} case.
                let (value, set) = self.get_env(&name);
                if !set && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}}}"));
                }
                Ok(value)
            }
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut ch = first;
                let mut null_is_unset = false;
                if ch == Some(':') {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push(go_char(ch));
                }
                let raw_escapes = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw_escapes {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), raw_escapes) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".to_string());
                        }
                        return Err(e);
                    }
                };

                let (value, set) = self.get_env(&name);
                if self.lex.skip_unset_env && !set {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }

                match ch {
                    Some('-') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(word)
                        } else {
                            Ok(value)
                        }
                    }
                    Some('+') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(String::new())
                        } else {
                            Ok(word)
                        }
                    }
                    Some('?') => {
                        if !set {
                            let message = if word.is_empty() { "is not allowed to be unset".to_string() } else { word };
                            return Err(format!("{name}: {message}"));
                        }
                        if null_is_unset && value.is_empty() {
                            let message = if word.is_empty() { "is not allowed to be empty".to_string() } else { word };
                            return Err(format!("{name}: {message}"));
                        }
                        Ok(value)
                    }
                    Some(c @ ('%' | '#')) => {
                        // `%`/`#` remove the shortest match, `%%`/`##` the longest.
                        let (greedy, pat) = match word.strip_prefix(c) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        if c == '%' {
                            pattern::trim_suffix(&pat, &value, greedy)
                        } else {
                            pattern::trim_prefix(&pat, &value, greedy)
                        }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pat = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '/' in ${}".to_string());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".to_string());
                        }
                        return Err(e);
                    }
                };
                let (value, set) = self.get_env(&name);
                if self.lex.skip_unset_env && !set {
                    return Ok(format!("${{{name}/{pat}/{replacement}}}"));
                }
                pattern::replace(&pat, &value, &replacement, replace_all)
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    /// Reads a variable name: letters, digits and `_`; a name starting with a
    /// digit is all digits (positional parameter); a special parameter is a
    /// single character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(c) = self.peek().filter(|&c| is_digit(c)) {
                    self.next();
                    name.push(c);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// `<<` followed by blanks is kept together so that heredoc words
    /// (`<< EOF`) stay one word.
    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut result = "<<".to_string();
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            result.push(c);
            self.next();
        }
        result
    }
}

/// Go's `unicode.IsDigit` (approximated by Rust's numeric property).
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// POSIX special parameters.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[&str]) -> EnvList {
        EnvList::from_strings(pairs)
    }

    #[test]
    fn mandatory_vars() {
        let lex = Lexer::new('\\');
        let set = env(&["VAR=plain", "ARG=x"]);
        let empty = env(&["VAR=", "ARG=x"]);
        let unset = env(&["ARG=x"]);
        let no_empty = "${VAR:?message here$ARG}";
        let no_unset = "${VAR?message here$ARG}";

        assert_eq!(lex.process_word(no_empty, &set).as_deref(), Ok("plain"));
        let err = lex.process_word(no_empty, &empty).unwrap_err().to_string();
        assert!(err.contains("message herex"), "{err}");
        let err = lex.process_word(no_empty, &unset).unwrap_err().to_string();
        assert!(err.contains("message herex"), "{err}");

        assert_eq!(lex.process_word(no_unset, &set).as_deref(), Ok("plain"));
        assert_eq!(lex.process_word(no_unset, &empty).as_deref(), Ok(""));
        let err = lex.process_word(no_unset, &unset).unwrap_err().to_string();
        assert!(err.contains("message herex"), "{err}");
    }

    #[test]
    fn error_wording() {
        let lex = Lexer::new('\\');
        let e = lex.process_word("he${}", &EmptyEnv).unwrap_err();
        assert_eq!(e.to_string(), "failed to process \"he${}\": syntax error: bad substitution");
        let e = lex.process_word("${X:?}", &EmptyEnv).unwrap_err();
        assert_eq!(e.to_string(), "failed to process \"${X:?}\": X: is not allowed to be unset");
        let e = lex.process_word("'abc", &EmptyEnv).unwrap_err();
        assert!(e.to_string().ends_with("matching single-quote"), "{e}");
        let e = lex.process_word("${X:=y}", &EmptyEnv).unwrap_err();
        assert!(e.to_string().ends_with("unsupported modifier (:=) in substitution"));
    }

    #[test]
    fn matches_and_unmatched() {
        let lex = Lexer::new('\\');
        let r = lex.process_word_with_matches("$A ${B:-x} ${C}", &env(&["A=1", "C=3"])).unwrap_or_default();
        assert_eq!(r.result, "1 x 3");
        assert_eq!(r.matched.into_iter().collect::<Vec<_>>(), ["A", "C"]);
        assert_eq!(r.unmatched.into_iter().collect::<Vec<_>>(), ["B"]);
    }

    #[test]
    fn pattern_modifiers() {
        let lex = Lexer::new('\\');
        let e = env(&["P=/usr/local/bin/tool.tar.gz"]);
        let cases = [
            ("${P#*/}", "usr/local/bin/tool.tar.gz"),
            ("${P##*/}", "tool.tar.gz"),
            ("${P%.*}", "/usr/local/bin/tool.tar"),
            ("${P%%.*}", "/usr/local/bin/tool"),
            ("${P/local/opt}", "/usr/opt/bin/tool.tar.gz"),
            ("${P//\\//_}", "_usr_local_bin_tool.tar.gz"),
            ("${P/#/x}", "/usr/local/bin/tool.tar.gz"),
            ("${NOPE#x}", ""),
        ];
        for (word, want) in cases {
            assert_eq!(lex.process_word(word, &e).as_deref(), Ok(want), "{word}");
        }
        assert!(lex.process_word("${P:#x}", &e).is_err());
        assert!(lex.process_word("${P#\\x}", &e).is_err());
    }

    #[test]
    fn skip_unset_and_raw_modes() {
        let mut lex = Lexer::new('\\');
        lex.skip_unset_env = true;
        let e = env(&["A=1"]);
        assert_eq!(lex.process_word("$A $B ${B} ${B:-x} ${B/a/b}", &e).as_deref(), Ok("1 $B ${B} ${B:-x} ${B/a/b}"));
        lex.raw_quotes = true;
        assert_eq!(lex.process_words("'a b' \"c\"", &e), Ok(vec!["'a b'".to_string(), "\"c\"".to_string()]));
        let mut raw = Lexer::new('`');
        raw.skip_process_quotes = true;
        assert_eq!(raw.process_word("'$A' \"`$A\"", &e).as_deref(), Ok("'1' \"$A\""));
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        let e = env(&["A=1"]);
        assert_eq!(lex.process_word("`$A \\ \"`\"\"", &e).as_deref(), Ok("$A \\ \""));
        assert_eq!(lex.process_words("a` b c", &e), Ok(vec!["a b".to_string(), "c".to_string()]));
    }

    #[test]
    fn heredoc_markers_stay_in_one_word() {
        let lex = Lexer::new('\\');
        assert_eq!(
            lex.process_words("RUN <<  EOF  > foo", &EmptyEnv),
            Ok(vec!["RUN".to_string(), "<<  EOF".to_string(), ">".to_string(), "foo".to_string()])
        );
    }

    #[test]
    fn nested_expansion_drops_partial_word_like_buildkit() {
        let lex = Lexer::new('\\');
        assert_eq!(lex.process_words("x a${X:-b}c", &EmptyEnv), Ok(vec!["x".to_string(), "bc".to_string()]));
        assert_eq!(lex.process_word("a${X:-b}c", &EmptyEnv).as_deref(), Ok("abc"));
    }
}
