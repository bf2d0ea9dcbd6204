//! A small JSON reader with Go `encoding/json` semantics, used for the exec
//! form (`CMD ["a", "b"]`) and JSON syntax directives.
//!
//! BuildKit unmarshals the exec form into `[]any`: any syntax error (or a
//! number out of float64 range) makes the line fall back to shell form, while
//! well-formed JSON holding a non-string is a hard error. Invalid `\u`
//! surrogates decode to U+FFFD as in Go.

/// A decoded JSON value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

/// Why a text did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not well-formed JSON.
    Syntax,
    /// Well-formed, but a number does not fit a float64 (Go's
    /// `UnmarshalTypeError`).
    Range,
}

/// Decodes a whole JSON text; trailing whitespace is allowed, anything else
/// after the value is a syntax error (as `json.Unmarshal`).
pub(crate) fn parse(text: &str) -> Result<Value, JsonError> {
    let mut p = Reader { s: text.as_bytes(), text, pos: 0, range_error: false };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != p.s.len() {
        return Err(JsonError::Syntax);
    }
    if p.range_error {
        return Err(JsonError::Range);
    }
    Ok(v)
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    range_error: bool,
}

/// Go's decoder refuses nesting deeper than 10000.
const MAX_DEPTH: usize = 10000;

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect_lit(&mut self, lit: &str) -> Result<(), JsonError> {
        if self.s[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(JsonError::Syntax)
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::Syntax);
        }
        match self.peek().ok_or(JsonError::Syntax)? {
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return Err(JsonError::Syntax),
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return Err(JsonError::Syntax);
                    }
                    let key = self.string()?;
                    self.skip_ws();
                    if self.peek() != Some(b':') {
                        return Err(JsonError::Syntax);
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let v = self.value(depth + 1)?;
                    members.push((key, v));
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Value::Object(members));
                        }
                        _ => return Err(JsonError::Syntax),
                    }
                }
            }
            b'"' => self.string().map(Value::String),
            b't' => self.expect_lit("true").map(|()| Value::Bool(true)),
            b'f' => self.expect_lit("false").map(|()| Value::Bool(false)),
            b'n' => self.expect_lit("null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(JsonError::Syntax),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(JsonError::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(JsonError::Syntax);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(JsonError::Syntax);
            }
        }
        let literal = &self.text[start..self.pos];
        let n: f64 = literal.parse().map_err(|_| JsonError::Syntax)?;
        if n.is_infinite() {
            // strconv.ParseFloat reports ErrRange; decoding goes on and the
            // error is returned at the end.
            self.range_error = true;
        }
        Ok(Value::Number(n))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        let mut v = 0u32;
        for &b in h {
            v = v * 16 + (b as char).to_digit(16)?;
        }
        Some(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        // Opening quote.
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let c = rest.chars().next().ok_or(JsonError::Syntax)?;
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    let esc = *self.s.get(self.pos + 1).ok_or(JsonError::Syntax)?;
                    self.pos += 2;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let r = self.hex4(self.pos).ok_or(JsonError::Syntax)?;
                            self.pos += 4;
                            if (0xD800..0xE000).contains(&r) {
                                // Go: a valid pair decodes, anything else is U+FFFD.
                                let low = if self.s.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                    self.hex4(self.pos + 2)
                                } else {
                                    None
                                };
                                match low {
                                    Some(lo) if (0xD800..0xDC00).contains(&r) && (0xDC00..0xE000).contains(&lo) => {
                                        self.pos += 6;
                                        let cp = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
                                        out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                                    }
                                    _ => out.push('\u{FFFD}'),
                                }
                            } else {
                                out.push(char::from_u32(r).unwrap_or('\u{FFFD}'));
                            }
                        }
                        _ => return Err(JsonError::Syntax),
                    }
                }
                c if (c as u32) < 0x20 => return Err(JsonError::Syntax),
                c => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_arrays_like_go() {
        assert_eq!(
            parse(r#" [ "a", "b\u00e9\/" ] "#),
            Ok(Value::Array(vec![Value::String("a".into()), Value::String("bé/".into())]))
        );
        assert_eq!(parse("[1e999]"), Err(JsonError::Range));
        assert_eq!(parse("[1, ]"), Err(JsonError::Syntax));
        assert_eq!(parse("[\"a\"] x"), Err(JsonError::Syntax));
        assert_eq!(parse("['a']"), Err(JsonError::Syntax));
        assert_eq!(parse(r#"["\ud800x"]"#), Ok(Value::Array(vec![Value::String("\u{FFFD}x".into())])));
        assert_eq!(parse(r#"["\ud83d\ude00"]"#), Ok(Value::Array(vec![Value::String("😀".into())])));
        assert_eq!(
            parse(r#"{"syntax": "x", "n": [null, true, -0.5e3]}"#).map(|v| matches!(v, Value::Object(_))),
            Ok(true)
        );
    }
}
