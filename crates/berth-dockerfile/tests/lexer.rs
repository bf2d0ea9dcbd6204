//! Lexer cases from BuildKit's `TestProcessWithMatches`: modifiers, patterns,
//! replacements, and which variables were (not) found.

use std::collections::HashMap;

use berth_dockerfile::Lexer;

type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
    &'static [&'static str],
    &'static [&'static str],
);

const FB: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];

const CASES: &[Case] = &[
    ("x", &[("DUMMY", "dummy")], Some("x"), &[], &[]),
    ("x ${UNUSED}", &[("DUMMY", "dummy")], Some("x "), &[], &["UNUSED"]),
    ("x ${FOO}", &[("FOO", "y")], Some("x y"), &["FOO"], &[]),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", FB, Some("xxx  ccc"), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", FB, Some("xxx bbb ccc"), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO:-}", FB, Some("xxx"), &["FOO"], &[]),
    ("${FOO:-}", &[], Some(""), &[], &["FOO"]),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", FB, Some("aaa bbb "), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", FB, Some("aaa  "), &["FOO", "BAR"], &["BAZ"]),
    ("${FOO?aaa}", FB, Some("xxx"), &["FOO"], &[]),
    ("${BAR?bbb}", FB, Some(""), &["BAR"], &[]),
    ("${BAZ?ccc}", FB, None, &[], &[]),
    ("${FOO:?aaa}", FB, Some("xxx"), &["FOO"], &[]),
    ("${BAR:?bbb}", FB, None, &[], &[]),
    ("${BAZ:?ccc}", FB, None, &[], &[]),
    ("${BAZ:?}", FB, None, &[], &[]),
    ("${FOO=aaa}", FB, None, &[], &[]),
    ("${FOO=:aaa}", FB, None, &[], &[]),
    ("${FOO=}", &[], None, &[], &[]),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", &[("FOO", "()[]{}^$.*?|\\x")], Some("x"), &["FOO"], &[]),
    ("${FOO%%\\**}", &[("FOO", "xx**")], Some("xx"), &["FOO"], &[]),
    ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y"), &["FOO"], &[]),
    ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy"), &["FOO", "BAR"], &[]),
    ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy"), &["FOO", "BAR"], &[]),
    ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy"), &["FOO"], &[]),
    ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO#?\\?}", &[("FOO", "???y")], Some("?y"), &["FOO"], &[]),
    ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], Some(".xxyy."), &["FOO"], &["ABC"]),
    ("${FOO%%\\**\\*}", &[("FOO", "a***yy*")], Some("a"), &["FOO"], &[]),
    ("${FOO%}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy"), &["FOO", "BAR"], &[]),
    ("${FOO:#}", &[], None, &[], &[]),
    ("${FOO:##}", &[], None, &[], &[]),
    ("${FOO:%}", &[], None, &[], &[]),
    ("${FOO:%%}", &[], None, &[], &[]),
    (
        "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
        &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", "\\*/")],
        Some("/foo.*/*.txt - /foo..*.txt"),
        &["FOO", "NEEDLE"],
        &[],
    ),
    (
        "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
        &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")],
        Some("/tmp/bar.txt - /bar.txt"),
        &["FOO", "NEEDLE"],
        &[],
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
        &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("REPLACEMENT", "/")],
        Some("/foo/b/c.txt - /foo/c.txt"),
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    ),
    (
        "${FOO/$NEEDLE/$REPLACEMENT}",
        &[("FOO", "http://google.de"), ("NEEDLE", "http://"), ("REPLACEMENT", "https://")],
        Some("https://google.de"),
        &["FOO", "NEEDLE", "REPLACEMENT"],
        &[],
    ),
    ("${FOO//\\//\\/}", &[("FOO", "/tmp/foo.txt")], Some("\\/tmp\\/foo.txt"), &["FOO"], &[]),
    ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], Some("wwxxyy"), &["FOO", "BAR"], &[]),
    ("${FOO//ww}", &[("FOO", "xxyy")], None, &[], &[]),
    ("${FOO//}", &[("FOO", "xxyy")], None, &[], &[]),
    ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy"), &["FOO"], &[]),
    ("${FOO///}", &[], Some(""), &[], &["FOO"]),
];

#[test]
fn process_with_matches() {
    let lex = Lexer::new('\\');
    let mut failures = Vec::new();
    for (input, envs, expected, matched, unmatched) in CASES {
        let env: HashMap<String, String> = envs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        let got = lex.process_word_with_matches(input, &env);
        match (expected, got) {
            (None, Err(_)) => {}
            (Some(want), Ok(r)) => {
                let m: Vec<&str> = r.matched.iter().map(String::as_str).collect();
                let u: Vec<&str> = r.unmatched.iter().map(String::as_str).collect();
                let mut wm = matched.to_vec();
                wm.sort_unstable();
                let mut wu = unmatched.to_vec();
                wu.sort_unstable();
                if r.result != *want || m != wm || u != wu {
                    failures.push(format!("{input:?}: got {:?} {m:?} {u:?}, want {want:?} {wm:?} {wu:?}", r.result));
                }
            }
            (want, got) => failures.push(format!("{input:?}: got {got:?}, want {want:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn platform_release_names() {
    let lex = Lexer::new('\\');
    let release = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
    let env = |variant: Option<&str>| {
        let mut m: HashMap<String, String> = [("VERSION", "v1.2.3"), ("TARGETOS", "linux")]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        m.insert("TARGETARCH".into(), if variant.is_some_and(|v| !v.is_empty()) { "arm" } else { "arm64" }.into());
        if let Some(v) = variant {
            m.insert("TARGETVARIANT".into(), v.into());
        }
        m
    };
    assert_eq!(lex.process_word(release, &env(Some("v7"))).as_deref(), Ok("something-v1.2.3.linux-arm-v7.tar.gz"));
    assert_eq!(lex.process_word(release, &env(Some(""))).as_deref(), Ok("something-v1.2.3.linux-arm64.tar.gz"));
    assert_eq!(lex.process_word(release, &env(None)).as_deref(), Ok("something-v1.2.3.linux-arm64.tar.gz"));
}
