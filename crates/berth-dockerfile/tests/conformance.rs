//! BuildKit's Dockerfile conformance corpus (shared/conformance/dockerfile):
//! parser dumps, rejected inputs, and the shell lexer tables. Each test reports
//! every failing case at once and is skipped when the corpus is absent.

use std::fs;
use std::path::PathBuf;

use berth_dockerfile::{instructions, parse, EnvList, Lexer};

fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/dockerfile");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: conformance corpus not found at {}", dir.display());
        None
    }
}

fn case_dirs(dir: PathBuf) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read(path: PathBuf) -> String {
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

fn report(table: &str, total: usize, failures: Vec<String>) {
    println!("{table}: {} of {total} cases pass", total - failures.len());
    assert!(failures.is_empty(), "{table}: {} of {total} cases fail:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn parse_cases_dump_exactly() {
    let Some(root) = corpus() else { return };
    let dirs = case_dirs(root.join("testfiles"));
    assert!(!dirs.is_empty());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = read(dir.join("Dockerfile"));
        let want = read(dir.join("result"));
        match parse(&text) {
            Ok(result) => {
                let got = result.dump() + "\n";
                if got != want {
                    failures.push(format!("--- {name}\nwant:\n{want}got:\n{got}"));
                }
            }
            Err(e) => failures.push(format!("--- {name}: {e}")),
        }
    }
    report("testfiles", dirs.len(), failures);
}

#[test]
fn negative_cases_are_rejected() {
    let Some(root) = corpus() else { return };
    let dirs = case_dirs(root.join("testfiles-negative"));
    assert!(!dirs.is_empty());
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = read(dir.join("Dockerfile"));
        match parse(&text).and_then(|ast| instructions::parse(&ast)) {
            Ok(df) => failures.push(format!("--- {name}: accepted: {df:?}")),
            Err(e) => println!("{name}: {e}"),
        }
    }
    report("testfiles-negative", dirs.len(), failures);
}

#[test]
fn env_var_table() {
    let Some(root) = corpus() else { return };
    let text = read(root.join("envVarTest"));
    let lex = Lexer::new('\\');
    let env = EnvList::from_strings(["PWD=/home", "SHELL=bash", "KOREAN=한국어", "NULL="]);
    let mut total = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(parts.len(), 3, "line {}: {line}", n + 1);
        let (platform, source, expected) = (parts[0].trim(), parts[1].trim(), parts[2].trim());
        if platform == "W" {
            // Windows-only expectation (case-insensitive variables).
            continue;
        }
        assert!(platform == "A" || platform == "U", "line {}: bad tag {platform}", n + 1);
        total += 1;
        let got = lex.process_word(source, &env);
        match (expected, got) {
            ("error", Err(_)) => {}
            ("error", Ok(w)) => failures.push(format!("line {}: {source:?}: want error, got {w:?}", n + 1)),
            (want, Ok(w)) if w == want => {}
            (want, got) => failures.push(format!("line {}: {source:?}: want {want:?}, got {got:?}", n + 1)),
        }
    }
    report("envVarTest", total, failures);
}

#[test]
fn words_table() {
    let Some(root) = corpus() else { return };
    let text = read(root.join("wordsTest"));
    let lex = Lexer::new('\\');
    let mut envs: Vec<String> = Vec::new();
    let mut total = 0;
    let mut failures = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            envs.push(rest.trim_start_matches(' ').to_string());
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        assert_eq!(parts.len(), 2, "line {}: {line}", n + 1);
        total += 1;
        let test = parts[0].trim();
        let expected: Vec<String> = parts[1].trim_start_matches(' ').split(',').map(str::to_string).collect();
        let got = lex.process_words(test, &EnvList::from_strings(&envs)).unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!("line {}: {test:?}: want {expected:?}, got {got:?}", n + 1));
        }
    }
    report("wordsTest", total, failures);
}
