//! Lexer for the Go `text/template` language.
//!
//! This follows `text/template/parse/lex.go`: the input is split into text
//! and actions delimited by `{{` and `}}`, with `{{- ` / ` -}}` trimming the
//! adjacent white space, `{{/* ... */}}` comments, and the token set of Go
//! templates inside actions. Unlike Go's channel based lexer the whole input
//! is scanned up front; scanning stops at the first error, which becomes the
//! last item.

/// Kind of a lexical item (Go's `itemType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ItemKind {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemKind {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemKind::Block
                | ItemKind::Break
                | ItemKind::Continue
                | ItemKind::Dot
                | ItemKind::Define
                | ItemKind::Else
                | ItemKind::End
                | ItemKind::If
                | ItemKind::Nil
                | ItemKind::Range
                | ItemKind::Template
                | ItemKind::With
        )
    }
}

/// A token: kind, byte offset in the input, line number and text.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub kind: ItemKind,
    pub pos: usize,
    pub line: usize,
    pub val: String,
}

impl std::fmt::Display for Item {
    /// Mirrors Go's `item.String()`, used in "unexpected ..." messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ItemKind::Eof => f.write_str("EOF"),
            ItemKind::Error => f.write_str(&self.val),
            k if k.is_keyword() => write!(f, "<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    let short: String = self.val.chars().take(10).collect();
                    write!(f, "{}...", crate::printf::go_quote(&short))
                } else {
                    f.write_str(&crate::printf::go_quote(&self.val))
                }
            }
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
const TRIM_MARKER_LEN: usize = 2;

fn keyword(word: &str) -> Option<ItemKind> {
    Some(match word {
        "." => ItemKind::Dot,
        "block" => ItemKind::Block,
        "break" => ItemKind::Break,
        "continue" => ItemKind::Continue,
        "define" => ItemKind::Define,
        "else" => ItemKind::Else,
        "end" => ItemKind::End,
        "if" => ItemKind::If,
        "range" => ItemKind::Range,
        "nil" => ItemKind::Nil,
        "template" => ItemKind::Template,
        "with" => ItemKind::With,
        _ => return None,
    })
}

/// Go's `isSpace`: since Go 1.16 newlines may appear inside actions.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Go's `isAlphaNumeric`.
pub(crate) fn is_alpha_numeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// `{{- ` : a minus followed by a space character.
fn has_left_trim_marker(s: &str) -> bool {
    let mut it = s.chars();
    it.next() == Some('-') && it.next().is_some_and(is_space)
}

/// ` -}}` : a space character followed by a minus.
fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

fn left_trim_length(s: &str) -> usize {
    s.len() - s.trim_start_matches(is_space).len()
}

fn right_trim_length(s: &str) -> usize {
    s.len() - s.trim_end_matches(is_space).len()
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    paren_depth: i32,
    items: Vec<Item>,
    done: bool,
}

/// Scans `input` into items. The result always ends with an `Eof` or an
/// `Error` item.
pub(crate) fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer { input, pos: 0, start: 0, paren_depth: 0, items: Vec::new(), done: false };
    l.run();
    l.items
}

enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Done,
}

impl<'a> Lexer<'a> {
    fn run(&mut self) {
        let mut state = State::Text;
        while !self.done {
            state = match state {
                State::Text => self.lex_text(),
                State::LeftDelim => self.lex_left_delim(),
                State::Comment => self.lex_comment(),
                State::RightDelim => self.lex_right_delim(),
                State::InsideAction => self.lex_inside_action(),
                State::Done => break,
            };
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn line_at(&self, pos: usize) -> usize {
        1 + self.input[..pos].bytes().filter(|&b| b == b'\n').count()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn backup(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pos -= c.len_utf8();
        }
    }

    fn emit(&mut self, kind: ItemKind) {
        let val = self.input[self.start..self.pos].to_string();
        self.items.push(Item { kind, pos: self.start, line: self.line_at(self.start), val });
        self.start = self.pos;
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    fn errorf(&mut self, msg: String) -> State {
        self.items.push(Item { kind: ItemKind::Error, pos: self.start, line: self.line_at(self.start), val: msg });
        self.done = true;
        State::Done
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    /// Scans until an opening action delimiter.
    fn lex_text(&mut self) -> State {
        if let Some(x) = self.rest().find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let trim = if has_left_trim_marker(&self.input[delim_end..]) {
                    right_trim_length(&self.input[self.start..self.pos])
                } else {
                    0
                };
                self.pos -= trim;
                if self.pos > self.start {
                    self.emit(ItemKind::Text);
                }
                self.pos += trim;
                self.ignore();
            }
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.emit(ItemKind::Text);
        }
        self.emit(ItemKind::Eof);
        self.done = true;
        State::Done
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(self.rest());
        let after_marker = if trim { TRIM_MARKER_LEN } else { 0 };
        if self.input[self.pos + after_marker..].starts_with(LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return State::Comment;
        }
        self.emit(ItemKind::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.rest().find(RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".into());
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".into());
        }
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += left_trim_length(self.rest());
        }
        self.ignore();
        State::Text
    }

    /// Reports whether the input is at a right delimiter, possibly preceded
    /// by a trim marker.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        if rest.starts_with(RIGHT_DELIM) {
            return (true, false);
        }
        (false, false)
    }

    fn lex_right_delim(&mut self) -> State {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(ItemKind::RightDelim);
        if trim {
            self.pos += left_trim_length(self.rest());
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.errorf("unclosed left paren".into());
        }
        let Some(r) = self.next() else {
            return self.errorf("unclosed action".into());
        };
        match r {
            c if is_space(c) => {
                self.backup(Some(c));
                return self.lex_space();
            }
            '=' => self.emit(ItemKind::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".into());
                }
                self.emit(ItemKind::Declare);
            }
            '|' => self.emit(ItemKind::Pipe),
            '"' => return self.lex_quote(),
            '`' => return self.lex_raw_quote(),
            '$' => return self.lex_variable(),
            '\'' => return self.lex_char(),
            '.' => {
                // Special look-ahead for ".field" so a following digit still
                // makes a number such as ".5".
                match self.peek() {
                    Some(c) if c.is_ascii_digit() => {
                        self.backup(Some('.'));
                        return self.lex_number();
                    }
                    _ => return self.lex_field_or_variable(ItemKind::Field),
                }
            }
            '+' | '-' | '0'..='9' => {
                self.backup(Some(r));
                return self.lex_number();
            }
            c if is_alpha_numeric(c) => {
                self.backup(Some(c));
                return self.lex_identifier();
            }
            '(' => {
                self.emit(ItemKind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.errorf("unexpected right paren".into());
                }
                self.emit(ItemKind::RightParen);
            }
            c if c.is_ascii() && !c.is_ascii_control() => self.emit(ItemKind::Char),
            c => return self.errorf(format!("unrecognized character in action: {}", crate::printf::go_sharp_u(c))),
        }
        State::InsideAction
    }

    fn lex_space(&mut self) -> State {
        let mut num_spaces = 0;
        while let Some(c) = self.peek() {
            if !is_space(c) {
                break;
            }
            self.pos += c.len_utf8();
            num_spaces += 1;
        }
        // A trim-marked closing delimiter has a minus after a space: leave
        // that space for the delimiter.
        let before = self.pos - 1;
        if has_right_trim_marker(&self.input[before..])
            && self.input[before + TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM)
        {
            self.pos = before;
            if num_spaces == 1 {
                return State::RightDelim;
            }
        }
        self.emit(ItemKind::Space);
        State::InsideAction
    }

    fn lex_identifier(&mut self) -> State {
        while let Some(c) = self.peek() {
            if !is_alpha_numeric(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        let word = &self.input[self.start..self.pos];
        let kind = match keyword(word) {
            Some(k) => k,
            None if word == "true" || word == "false" => ItemKind::Bool,
            None => ItemKind::Identifier,
        };
        self.emit(kind);
        State::InsideAction
    }

    fn bad_character(&mut self) -> State {
        let msg = match self.peek() {
            Some(c) => format!("bad character {}", crate::printf::go_sharp_u(c)),
            None => "bad character U+FFFFFFFFFFFFFFFF".into(),
        };
        self.errorf(msg)
    }

    fn lex_variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(ItemKind::Variable);
            return State::InsideAction;
        }
        self.lex_field_or_variable(ItemKind::Variable)
    }

    fn lex_field_or_variable(&mut self, kind: ItemKind) -> State {
        if self.at_terminator() {
            self.emit(if kind == ItemKind::Variable { ItemKind::Variable } else { ItemKind::Dot });
            return State::InsideAction;
        }
        while let Some(c) = self.peek() {
            if !is_alpha_numeric(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        self.emit(kind);
        State::InsideAction
    }

    /// Reports whether the input is at a character that may follow an
    /// identifier; this splits `.X.Y` into two pieces.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    fn lex_char(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(c) if c != '\n' => {}
                    _ => return self.errorf("unterminated character constant".into()),
                },
                None | Some('\n') => return self.errorf("unterminated character constant".into()),
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemKind::CharConstant);
        State::InsideAction
    }

    fn lex_number(&mut self) -> State {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_string();
            return self.errorf(format!("bad number syntax: {}", crate::printf::go_quote(&text)));
        }
        if let Some('+' | '-') = self.peek() {
            // Complex: 1+2i. No spaces, must end in 'i'.
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_string();
                return self.errorf(format!("bad number syntax: {}", crate::printf::go_quote(&text)));
            }
            self.emit(ItemKind::Complex);
        } else {
            self.emit(ItemKind::Number);
        }
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if let Some(c) = self.peek() {
            if is_alpha_numeric(c) {
                self.pos += c.len_utf8();
                return false;
            }
        }
        true
    }

    fn lex_quote(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(c) if c != '\n' => {}
                    _ => return self.errorf("unterminated quoted string".into()),
                },
                None | Some('\n') => return self.errorf("unterminated quoted string".into()),
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemKind::String);
        State::InsideAction
    }

    fn lex_raw_quote(&mut self) -> State {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".into()),
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemKind::RawString);
        State::InsideAction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(ItemKind, String)> {
        lex(s).into_iter().map(|i| (i.kind, i.val)).collect()
    }

    #[test]
    fn text_and_action() {
        let k = kinds("a {{.B}} c");
        assert_eq!(
            k,
            vec![
                (ItemKind::Text, "a ".into()),
                (ItemKind::LeftDelim, "{{".into()),
                (ItemKind::Field, ".B".into()),
                (ItemKind::RightDelim, "}}".into()),
                (ItemKind::Text, " c".into()),
                (ItemKind::Eof, "".into()),
            ]
        );
    }

    #[test]
    fn trim_markers() {
        let k = kinds("a  {{- 3 -}}  b");
        assert_eq!(k[0], (ItemKind::Text, "a".into()));
        assert_eq!(k[2], (ItemKind::Number, "3".into()));
        assert_eq!(k[4], (ItemKind::Text, "b".into()));
        // Without a space the minus belongs to the number.
        let k = kinds("{{-3}}");
        assert_eq!(k[1], (ItemKind::Number, "-3".into()));
    }

    #[test]
    fn comments_are_dropped() {
        let k = kinds("x {{- /* hi */ -}} y");
        assert_eq!(k, vec![(ItemKind::Text, "x".into()), (ItemKind::Text, "y".into()), (ItemKind::Eof, "".into())]);
    }

    #[test]
    fn errors() {
        assert_eq!(lex("{{.A").last().map(|i| i.val.clone()), Some("unclosed action".into()));
        assert_eq!(lex("{{.A}").last().map(|i| i.val.clone()), Some("bad character U+007D '}'".into()));
        assert_eq!(lex("{{/* x }}").last().map(|i| i.val.clone()), Some("unclosed comment".into()));
    }
}
