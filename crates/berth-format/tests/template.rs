//! Go `text/template` semantics over JSON data. Expected values follow Go
//! (most were checked against docker 28.2.2, see `docker_fixtures.rs`).

use berth_format::{go_print, render_one, to_go_json, Error, MissingKey, Options, Template};
use serde_json::{json, Value};

fn data() -> Value {
    json!({
        "Name": "web",
        "Count": 3,
        "Ratio": 0.5,
        "Big": 1000000.0,
        "Huge": 18446744073709551615u64,
        "Neg": -7,
        "On": true,
        "Off": false,
        "Empty": "",
        "None": null,
        "List": ["a", "b", "c"],
        "EmptyList": [],
        "Map": {"b": 2, "a": 1},
        "EmptyMap": {},
        "Labels": {"com.example.tier": "front", "env": "prod"},
        "State": {"Status": "running", "Health": null, "Pid": 42},
        "Nested": [{"N": "x", "Tags": ["t1", "t2"]}, {"N": "y", "Tags": []}]
    })
}

fn run(t: &str) -> String {
    run_with(t, Options::default())
}

fn run_with(t: &str, options: Options) -> String {
    match Template::parse(t).map(|t| t.with_options(options)).and_then(|t| t.execute(&data())) {
        Ok(s) => s,
        Err(e) => format!("ERR {e}"),
    }
}

#[test]
fn text_and_fields() {
    assert_eq!(run("plain"), "plain");
    assert_eq!(run("{{.Name}}/{{.State.Status}}/{{.State.Pid}}"), "web/running/42");
    assert!(run("{{.}}").starts_with("map[Big:1e+06 Count:3"));
    assert_eq!(run("{{$.Name}} {{with .State}}{{$.Name}}:{{.Status}}{{end}}"), "web web:running");
}

#[test]
fn go_value_printing() {
    assert_eq!(run("{{.Count}} {{.Ratio}} {{.Big}} {{.Huge}} {{.Neg}}"), "3 0.5 1e+06 18446744073709551615 -7");
    assert_eq!(run("{{.On}} {{.Off}} [{{.Empty}}]"), "true false []");
    assert_eq!(run("{{.List}} {{.EmptyList}} {{.Map}} {{.EmptyMap}}"), "[a b c] [] map[a:1 b:2] map[]");
    assert_eq!(run("{{.Nested}}"), "[map[N:x Tags:[t1 t2]] map[N:y Tags:[]]]");
    // JSON null: `<nil>`, like a nil pointer in docker's typed structs.
    assert_eq!(run("{{.None}} {{.State.Health}}"), "<nil> <nil>");
    assert_eq!(go_print(&json!([1, null, {"k": null}])), "[1 <nil> map[k:<nil>]]");
    assert_eq!(go_print(&json!(123456789.0)), "1.23456789e+08");
    assert_eq!(go_print(&json!(100000.0)), "100000");
    assert_eq!(go_print(&json!(0.00001)), "1e-05");
}

#[test]
fn literals() {
    assert_eq!(run(r#"{{"a\tb\u00e9\x41"}}"#), "a\tbéA");
    assert_eq!(run("{{`raw \\t`}}"), "raw \\t");
    assert_eq!(run("{{1}} {{1.0}} {{1e3}} {{0x1F}} {{'a'}} {{-2}} {{1_000}}"), "1 1 1000 31 97 -2 1000");
    assert_eq!(run("{{true}} {{false}}"), "true false");
    assert_eq!(run("{{nil}}"), "ERR template: :1:2: executing \"\" at <nil>: nil is not a command");
}

#[test]
fn trimming_and_comments() {
    assert_eq!(run("a  {{- .Name -}}  b"), "awebb");
    assert_eq!(run("a {{- /* gone */ -}} b{{/* also */}}c"), "abc");
    assert_eq!(run("{{-3}}"), "-3");
    assert_eq!(run("{{range .List -}}\n  {{.}}\n{{- end}}"), "abc");
}

#[test]
fn variables_and_pipelines() {
    assert_eq!(run("{{$x := .Name}}{{$x}}{{$x = \"db\"}}{{$x}}"), "webdb");
    assert_eq!(run("{{$x := 1}}{{if true}}{{$x := 2}}{{$x}}{{end}}{{$x}}"), "21");
    assert_eq!(run("{{$x := 1}}{{range .List}}{{$x = .}}{{end}}{{$x}}"), "c");
    assert_eq!(run("{{.Name | printf \"%s!\" | upper}}"), "WEB!");
    assert_eq!(run("{{(index .Nested 1).N}} {{(len .List) | printf \"%03d\"}}"), "y 003");
    assert_eq!(run("{{printf \"%s-%s\" (index .List 0) (upper .Name)}}"), "a-WEB");
}

#[test]
fn conditionals() {
    assert_eq!(run("{{if .Name}}y{{end}}{{if .Empty}}n{{else}}e{{end}}"), "ye");
    assert_eq!(run("{{if .EmptyList}}1{{else if .EmptyMap}}2{{else if .None}}3{{else}}4{{end}}"), "4");
    assert_eq!(run("{{if .Count}}c{{end}}{{if .Off}}x{{end}}{{if .Labels.nope}}x{{end}}"), "c");
    assert_eq!(run("{{if and .On (eq .Count 3)}}both{{end}}{{if or .Off .Name}}one{{end}}"), "bothone");
    assert_eq!(run("{{with .State}}{{.Status}}{{end}}{{with .Empty}}x{{else}}none{{end}}"), "runningnone");
    assert_eq!(run("{{with .Empty}}a{{else with .Name}}{{.}}{{end}}"), "web");
}

#[test]
fn range_forms() {
    assert_eq!(run("{{range .List}}[{{.}}]{{end}}"), "[a][b][c]");
    assert_eq!(run("{{range $i, $v := .List}}{{$i}}={{$v}} {{end}}"), "0=a 1=b 2=c ");
    // Objects are ranged in sorted key order.
    assert_eq!(run("{{range $k, $v := .Map}}{{$k}}={{$v}} {{end}}"), "a=1 b=2 ");
    assert_eq!(run("{{range .EmptyList}}x{{else}}empty{{end}}{{range .None}}x{{else}}nil{{end}}"), "emptynil");
    assert_eq!(run("{{range .Nested}}{{.N}}:{{range .Tags}}{{.}}{{else}}-{{end}};{{end}}"), "x:t1t2;y:-;");
    assert_eq!(run("{{range 3}}{{.}}{{end}}"), "012");
    assert_eq!(
        run("{{range .List}}{{if eq . \"b\"}}{{continue}}{{end}}{{.}}{{end}}|{{range .List}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}"),
        "ac|a"
    );
    assert_eq!(
        run("{{range .Name}}{{end}}"),
        "ERR template: :1:8: executing \"\" at <.Name>: range can't iterate over web"
    );
}

#[test]
fn templates() {
    assert_eq!(run("{{define \"t\"}}<{{.}}>{{end}}{{template \"t\" .Name}}{{template \"t\" .Count}}"), "<web><3>");
    assert_eq!(run("{{block \"b\" .Name}}[{{.}}]{{end}}"), "[web]");
    assert_eq!(
        run("{{template \"zz\"}}"),
        "ERR template: :1:11: executing \"\" at <{{template \"zz\"}}>: template \"zz\" not defined"
    );
}

#[test]
fn builtin_functions() {
    assert_eq!(run("{{len .List}} {{len .Map}} {{len .Name}}"), "3 2 3");
    assert_eq!(run("{{index .List 1}} {{index .Map \"b\"}} {{index .Nested 0 \"Tags\" 1}}"), "b 2 t2");
    assert_eq!(run("{{slice .Name 1}} {{slice .List 1 2}}"), "eb [b]");
    assert_eq!(run("{{not .On}} {{and 1 0 2}} {{or 0 \"\" 3}}"), "false 0 3");
    assert_eq!(run("{{print 1 2 \"a\" 3}}|{{println .Name 1}}|"), "1 2a3|web 1\n|");
    assert_eq!(
        run("{{printf \"%5.1f|%-4s|%q|%x|%03d|%v\" 3.25 \"ab\" \"q\" 255 7 .List}}"),
        "  3.2|ab  |\"q\"|ff|007|[a b c]"
    );
    assert_eq!(run("{{printf \"%d %s\" 1}}"), "1 %!s(MISSING)");
    assert_eq!(run("{{printf \"%d\" \"x\"}}"), "%!d(string=x)");
    assert_eq!(
        run("{{eq .Name \"web\"}} {{eq .Count 1 2 3}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1 2}}"),
        "true true true true true true false"
    );
    assert_eq!(
        run("{{html \"<a href='x'>\"}} {{js \"it's <b>\"}} {{urlquery \"a b&c\"}}"),
        "&lt;a href=&#39;x&#39;&gt; it\\'s \\u003Cb\\u003E a+b%26c"
    );
    assert_eq!(
        run("{{call .Name}}"),
        "ERR template: :1:2: executing \"\" at <call .Name>: error calling call: non-function .Name of type string"
    );
}

#[test]
fn docker_functions() {
    assert_eq!(
        run("{{json .List}} {{json .Name}} {{json .Map}} {{json .None}} {{json .Ratio}}"),
        "[\"a\",\"b\",\"c\"] \"web\" {\"b\":2,\"a\":1} null 0.5"
    );
    assert_eq!(run("{{json \"<&>\"}}"), "\"<&>\"");
    assert_eq!(
        run("{{split \"a,b,,c\" \",\"}} {{join .List \", \"}} {{join (split \"x:y\" \":\") \"-\"}}"),
        "[a b  c] a, b, c x-y"
    );
    assert_eq!(
        run("{{title \"hello wORLD foo_bar x-y\"}} {{lower \"ÀB\"}} {{upper .Name}}"),
        "Hello WORLD Foo_bar X-Y àb WEB"
    );
    assert_eq!(run("[{{pad .Name 2 1}}][{{pad .Empty 2 1}}]"), "[  web ][]");
    assert_eq!(run("{{truncate .Name 2}} {{truncate .Name 10}}"), "we web");
    assert_eq!(run("{{padWithSpace .Name 1 1}}"), "ERR template: :1: function \"padWithSpace\" not defined");
}

#[test]
fn json_encoding_like_go() {
    let v = json!({"s": "<a>&\u{2028}\n\u{1}", "f": 1e21, "g": 0.000001, "h": 1e-7, "i": 10, "x": 2.0});
    assert_eq!(
        to_go_json(&v, true),
        r#"{"s":"\u003ca\u003e\u0026\u2028\n\u0001","f":1e+21,"g":0.000001,"h":1e-7,"i":10,"x":2}"#
    );
    assert_eq!(to_go_json(&json!("<>&"), false), r#""<>&""#);
}

#[test]
fn missing_keys() {
    // Auto: the top-level object and struct-like objects are strict,
    // other maps (labels) give <no value>.
    assert_eq!(run("{{.Nope}}"), "ERR template: :1:2: executing \"\" at <.Nope>: map has no entry for key \"Nope\"");
    assert_eq!(
        run("{{.State.Nope}}"),
        "ERR template: :1:8: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\""
    );
    assert_eq!(run("{{.Labels.nope}}"), "<no value>");
    // `index` on a missing key of a string map gives "" like Go's
    // map[string]string.
    assert_eq!(run("[{{index .Labels \"nope\"}}]"), "[]");
    let no_value = Options { missing_key: MissingKey::NoValue, ..Options::default() };
    assert_eq!(run_with("{{.Nope}} {{.Nope.Deeper}}", no_value), "<no value> <no value>");
    let strict = Options { missing_key: MissingKey::Error, ..Options::default() };
    assert_eq!(
        run_with("{{.Labels.nope}}", strict.clone()),
        "ERR template: :1:9: executing \"\" at <.Labels.nope>: map has no entry for key \"nope\""
    );
    let typed = Options { root_type: Some("*formatter.ContainerContext".into()), ..strict };
    assert_eq!(
        run_with("{{.Nope}}", typed),
        "ERR template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
    );
}

#[test]
fn execution_errors() {
    assert_eq!(
        run("{{.Name.Foo}}"),
        "ERR template: :1:7: executing \"\" at <.Name.Foo>: can't evaluate field Foo in type string"
    );
    assert_eq!(
        run("{{.State.Health.Status}}"),
        "ERR template: :1:8: executing \"\" at <.State.Health.Status>: nil pointer evaluating interface {}.Status"
    );
    assert_eq!(
        run("{{index .List 5}}"),
        "ERR template: :1:2: executing \"\" at <index .List 5>: error calling index: index out of range: 5"
    );
    assert_eq!(
        run("{{len .Count}}"),
        "ERR template: :1:2: executing \"\" at <len .Count>: error calling len: len of type int"
    );
    assert_eq!(
        run("{{upper .Count}}"),
        "ERR template: :1:8: executing \"\" at <.Count>: wrong type for value; expected string; got int"
    );
    assert_eq!(
        run("{{eq .Count \"3\"}}"),
        "ERR template: :1:2: executing \"\" at <eq .Count \"3\">: error calling eq: incompatible types for comparison"
    );
    assert_eq!(
        run("{{and}}"),
        "ERR template: :1:2: executing \"\" at <and>: wrong number of args for and: want at least 1 got 0"
    );
    assert_eq!(
        run("{{.Name 1}}"),
        "ERR template: :1:2: executing \"\" at <.Name>: Name is not a method but has arguments"
    );
    assert_eq!(
        run("line\n  {{.Name.X}}"),
        "ERR template: :2:9: executing \"\" at <.Name.X>: can't evaluate field X in type string"
    );
}

#[test]
fn parse_errors() {
    let err = |t: &str| match Template::parse(t) {
        Err(Error::Parse { line, msg }) => format!("{line}: {msg}"),
        other => format!("unexpected {other:?}"),
    };
    assert_eq!(err("{{.Name"), "1: unclosed action");
    assert_eq!(err("{{.Name}"), "1: bad character U+007D '}'");
    assert_eq!(err("{{foo .Name}}"), "1: function \"foo\" not defined");
    assert_eq!(err("{{if .A}}x"), "1: unexpected EOF");
    assert_eq!(err("{{end}}"), "1: unexpected {{end}}");
    assert_eq!(err("{{}}"), "1: missing value for command");
    assert_eq!(err("{{(.A}}"), "1: unclosed left paren");
    assert_eq!(err("{{.A)}}"), "1: unexpected right paren");
    assert_eq!(err("{{\"abc}}"), "1: unterminated quoted string");
    assert_eq!(err("{{/* x }}"), "1: unclosed comment");
    assert_eq!(err("{{/* x */ }}"), "1: comment ends before closing delimiter");
    assert_eq!(err("{{ # }}"), "1: unexpected \"#\" in command");
    assert_eq!(err("{{$x}}"), "1: undefined variable \"$x\"");
    assert_eq!(err("{{break}}"), "1: {{break}} outside {{range}}");
    assert_eq!(err("{{if}}{{end}}"), "1: missing value for if");
    assert_eq!(err("{{\"a\" | \"b\"}}"), "1: non executable command in pipeline stage 2");
    assert_eq!(err("{{0x1G}}"), "1: bad number syntax: \"0x1G\"");
    assert_eq!(err("a\nb\n{{.X"), "3: unclosed action");
    assert_eq!(
        Template::parse("{{.A").map(|_| ()).unwrap_or_else(|e| assert_eq!(
            e.docker_message(),
            "template parsing error: template: :1: unclosed action"
        )),
        ()
    );
}

#[test]
fn partial_output_is_kept_on_error() {
    let t = Template::parse("a{{.Name}}b{{.Name.X}}c").expect("parse");
    let mut out = String::new();
    assert!(t.execute_into(&data(), &mut out).is_err());
    assert_eq!(out, "awebb");
}

#[test]
fn render_one_does_not_expand_escapes() {
    assert_eq!(render_one("{{.Name}}\\t{{.Count}}", &data()).expect("render"), "web\\t3");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{{{{}1{}}}}}", "(".repeat(500), ")".repeat(500));
    let err = Template::parse(&deep).expect_err("too deep");
    assert_eq!(err.to_string(), "template: :1: max expression depth exceeded");
    let ok = format!("{{{{{}1{}}}}}", "(".repeat(20), ")".repeat(20));
    assert_eq!(Template::parse(&ok).and_then(|t| t.execute(&data())).expect("runs"), "1");
    let ifs = format!("{}x{}", "{{if true}}".repeat(500), "{{end}}".repeat(500));
    assert!(Template::parse(&ifs).is_err());
    let recursive = Template::parse("{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}").expect("parse");
    let err = recursive.execute(&data()).expect_err("recursion");
    assert!(err.to_string().contains("exceeded maximum template depth"), "{err}");
}
