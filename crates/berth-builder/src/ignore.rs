//! `.dockerignore` files with Docker's rules (moby/patternmatcher and its
//! `ignorefile` reader): one pattern a line, `#` comments, blank lines
//! skipped, each pattern cleaned like Go's `filepath.Clean` with a leading
//! `/` dropped; `*` and `?` stay inside one path segment, `**` spans any
//! number of segments, `[...]` classes and `\` escapes as in
//! `filepath.Match`; `!` makes an exception. The last pattern that matches a
//! path, or one of its parent directories, decides.

/// One pattern of an ignore file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<String>,
    exclusion: bool,
}

/// The patterns of an ignore file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` for slash-separated relative paths.
pub fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

impl Matcher {
    /// Reads the lines of an ignore file (`ReadAll`).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            // A UTF-8 byte order mark on the first line is dropped, as Docker does.
            let line = if i == 0 { line.trim_start_matches('\u{feff}') } else { line };
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(format!("illegal exclusion pattern: {:?}", "!"));
                }
            }
            let mut c = clean(p);
            if c.len() > 1 && c.starts_with('/') {
                c = c[1..].to_string();
            }
            let segments = c.split('/').map(str::to_string).collect::<Vec<_>>();
            for s in &segments {
                validate(s).map_err(|_| "syntax error in pattern".to_string())?;
            }
            patterns.push(Pattern { segments, exclusion });
        }
        Ok(Matcher { patterns })
    }

    /// Whether no pattern is set.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!`): an excluded directory must
    /// then still be walked, a child may be re-included.
    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether the slash-separated relative path is excluded
    /// (`MatchesOrParentMatches`).
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        if path == "." {
            return false;
        }
        let segs: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // Exceptions are skipped while nothing matched, and inclusions
            // once something did: only they can change the answer.
            if p.exclusion != matched {
                continue;
            }
            let hit = (1..=segs.len()).any(|n| match_segments(&p.segments, &segs[..n]));
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

fn validate(seg: &str) -> Result<(), ()> {
    let b = seg.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if i + 1 >= b.len() {
                    return Err(());
                }
                i += 2;
            }
            b'[' => {
                let end = class_end(b, i).ok_or(())?;
                i = end;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Index after the `]` closing the class opening at `start`.
fn class_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if i < b.len() && b[i] == b'^' {
        i += 1;
    }
    let mut first = true;
    while i < b.len() {
        match b[i] {
            b']' if !first => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
        first = false;
    }
    None
}

/// Matches pattern segments against path segments; a `**` segment spans
/// zero or more path segments (one or more when it ends the pattern: Docker
/// compiles a trailing `**` to `.*` after a `/`).
pub(crate) fn match_segments(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            let min = usize::from(rest.is_empty());
            (min..=path.len()).any(|i| match_segments(rest, &path[i..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => glob(first.as_bytes(), p.as_bytes()) && match_segments(rest, prest),
            None => false,
        },
    }
}

/// `filepath.Match` for one segment.
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    if p.is_empty() {
        return s.is_empty();
    }
    match p[0] {
        b'*' => {
            let rest = &p[1..];
            (0..=s.len()).any(|i| glob(rest, &s[i..]))
        }
        b'?' => !s.is_empty() && glob(&p[1..], &s[1..]),
        b'[' => {
            let Some(end) = class_end(p, 0) else { return false };
            if s.is_empty() {
                return false;
            }
            let mut i = 1;
            let negate = p.get(1) == Some(&b'^');
            if negate {
                i += 1;
            }
            let c = s[0];
            let mut hit = false;
            while i < end - 1 {
                let mut lo = p[i];
                if lo == b'\\' {
                    i += 1;
                    lo = p[i];
                }
                let mut hi = lo;
                if i + 2 < end - 1 && p[i + 1] == b'-' {
                    hi = p[i + 2];
                    if hi == b'\\' {
                        hi = p[i + 3];
                        i += 1;
                    }
                    i += 2;
                }
                if lo <= c && c <= hi {
                    hit = true;
                }
                i += 1;
            }
            hit != negate && glob(&p[end..], &s[1..])
        }
        b'\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && glob(&p[2..], &s[1..]),
        c => !s.is_empty() && s[0] == c && glob(&p[1..], &s[1..]),
    }
}

/// Whether a COPY/ADD source contains wildcards.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Matches a cleaned relative path against a cleaned source pattern
/// (`*` and `?` within one segment, as `filepath.Match`).
pub fn source_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<String> = pattern.split('/').map(str::to_string).collect();
    let s: Vec<&str> = path.split('/').collect();
    p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| glob(p.as_bytes(), s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::parse(text).unwrap()
    }

    #[test]
    fn docker_pattern_rules() {
        let i = m("# comment\n\n*.pyc\n/build\n**/node_modules\n!important.pyc\ndocs/**/*.md\ntmp?\n[ab].txt\n");
        assert!(i.excluded("x.pyc"));
        assert!(!i.excluded("sub/x.pyc"), "* stays in one segment");
        assert!(!i.excluded("important.pyc"));
        assert!(i.excluded("build"));
        assert!(i.excluded("build/out/x"), "a parent directory match excludes its contents");
        assert!(i.excluded("node_modules/a"));
        assert!(i.excluded("a/b/node_modules/c"));
        assert!(i.excluded("docs/readme.md"));
        assert!(i.excluded("docs/a/b/readme.md"));
        assert!(!i.excluded("docs/readme.txt"));
        assert!(i.excluded("tmp1"));
        assert!(!i.excluded("tmp12"));
        assert!(i.excluded("a.txt") && i.excluded("b.txt") && !i.excluded("c.txt"));
        assert!(!i.excluded("# comment"));
    }

    #[test]
    fn last_match_wins_and_exceptions_reinclude() {
        let i = m("*\n!src\nsrc/*.tmp\n!Dockerfile\n");
        assert!(i.excluded("README"));
        assert!(!i.excluded("src/main.py"));
        assert!(i.excluded("src/x.tmp"));
        assert!(!i.excluded("Dockerfile"));
        assert!(i.has_exclusions());
    }

    #[test]
    fn cleaning_and_errors() {
        assert_eq!(clean("./a/../b//c/"), "b/c");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("../x"), "../x");
        let i = m("/a/./b\n./c\n");
        assert!(i.excluded("a/b") && i.excluded("c/d"));
        assert!(Matcher::parse("[a-\n").is_err());
        assert!(Matcher::parse("!\n").is_err());
        assert!(source_matches("*.txt", "a.txt") && !source_matches("*.txt", "d/a.txt"));
        assert!(source_matches("d/*", "d/a.txt"));
    }
}
