//! "did you mean ...?" hints (BuildKit `util/suggest`).

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest option within distance 2 of `val` (BuildKit `suggest.Search`);
/// `None` when nothing is close or `val` is itself an option.
pub(crate) fn search(val: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let needle = if case_sensitive { val.to_string() } else { val.to_lowercase() };
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let opt = if case_sensitive { (*opt).to_string() } else { opt.to_lowercase() };
        if needle == opt {
            return None;
        }
        let d = distance(&needle, &opt);
        if d < min {
            min = d;
            best = Some(if case_sensitive { opt } else { match_case(&opt, val) });
        }
    }
    best
}

fn match_case(val: &str, orig: &str) -> String {
    if orig == orig.to_lowercase() {
        val.to_lowercase()
    } else if orig == orig.to_uppercase() {
        val.to_uppercase()
    } else {
        val.to_string()
    }
}

/// Appends ` (did you mean X?)` to `message` when an option is close to `val`
/// (BuildKit `suggest.WrapError`).
pub(crate) fn wrap(message: String, val: &str, options: &[&str], case_sensitive: bool) -> String {
    match search(val, options, case_sensitive) {
        Some(m) => format!("{message} (did you mean {m}?)"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(search("COPPY", &["COPY", "RUN"], false), Some("COPY".into()));
        assert_eq!(search("coppy", &["COPY", "RUN"], false), Some("copy".into()));
        assert_eq!(search("xyzzy", &["COPY", "RUN"], false), None);
        assert_eq!(search("run", &["COPY", "RUN"], false), None);
        assert_eq!(
            wrap("unknown flag: --chmode".into(), "chmode", &["chmod", "chown"], true),
            "unknown flag: --chmode (did you mean chmod?)"
        );
    }
}
