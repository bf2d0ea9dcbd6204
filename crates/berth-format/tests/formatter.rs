//! List and inspect output conventions of docker-cli's formatter package.
//! Expected tables are written from Go's tabwriter rules with docker's
//! settings: a column is as wide as its widest cell plus 3, at least 10;
//! the text after the last tab of a line is not padded.

use berth_format::{
    align_docker, headers, render_one, render_table, resolve_format, Formatter, Inspector, Kind, TabWriter,
};
use serde_json::{json, Map, Value};

const IMAGES_FORMAT: &str = "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}";
const PS_FORMAT: &str =
    "table {{.ID}}\\t{{.Image}}\\t{{.Command}}\\t{{.RunningFor}}\\t{{.Status}}\\t{{.Ports}}\\t{{.Names}}";

fn image_headers() -> Map<String, Value> {
    headers(&[
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("Size", "SIZE"),
    ])
}

fn ps_headers() -> Map<String, Value> {
    headers(&[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
    ])
}

fn render(format: &str, rows: &[Value], headers: &Map<String, Value>) -> String {
    match Formatter::new(format).and_then(|f| f.render(rows, headers)) {
        Ok(s) => s,
        Err(e) => panic!("render {format:?}: {e}"),
    }
}

#[test]
fn images_default_table() {
    let rows = vec![
        json!({"Repository": "alpine", "Tag": "3.20", "ID": "91ef0af61f39", "CreatedSince": "2 weeks ago", "Size": "7.8MB"}),
        json!({"Repository": "registry.example.com/team/app", "Tag": "v1.2.3", "ID": "0123456789ab", "CreatedSince": "3 months ago", "Size": "125MB"}),
    ];
    let want = "\
REPOSITORY                      TAG       IMAGE ID       CREATED        SIZE
alpine                          3.20      91ef0af61f39   2 weeks ago    7.8MB
registry.example.com/team/app   v1.2.3    0123456789ab   3 months ago   125MB
";
    assert_eq!(render(IMAGES_FORMAT, &rows, &image_headers()), want);
}

#[test]
fn ps_default_table_with_empty_cell() {
    let rows = vec![
        json!({"ID": "4c01db0b339c", "Image": "nginx:latest", "Command": "\"/docker-entrypoint.…\"",
               "RunningFor": "2 hours ago", "Status": "Up 2 hours", "Ports": "0.0.0.0:8080->80/tcp", "Names": "web"}),
        json!({"ID": "d7886598dbe2", "Image": "redis", "Command": "\"docker-entrypoint.s…\"",
               "RunningFor": "3 days ago", "Status": "Exited (0) 2 days ago", "Ports": "", "Names": "cache"}),
    ];
    let want = "\
CONTAINER ID   IMAGE          COMMAND                  CREATED       STATUS                  PORTS                  NAMES
4c01db0b339c   nginx:latest   \"/docker-entrypoint.…\"   2 hours ago   Up 2 hours              0.0.0.0:8080->80/tcp   web
d7886598dbe2   redis          \"docker-entrypoint.s…\"   3 days ago    Exited (0) 2 days ago                          cache
";
    assert_eq!(render(PS_FORMAT, &rows, &ps_headers()), want);
}

#[test]
fn header_is_printed_without_rows() {
    assert_eq!(render(IMAGES_FORMAT, &[], &image_headers()), "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n");
}

#[test]
fn header_fields_missing_from_the_map_print_no_value() {
    // docker's header context is a map[string]string: a missing key prints
    // "<no value>" (the column still gets its width from the rows).
    let rows = vec![json!({"Name": "web", "Extra": "x"})];
    let h = headers(&[("Name", "NAME")]);
    assert_eq!(render("table {{.Name}}\\t{{.Extra}}", &rows, &h), "NAME      <no value>\nweb       x\n");
}

#[test]
fn header_functions_keep_titles_intact() {
    let rows = vec![json!({"Name": "web-1", "ID": "abcdef123456"})];
    let h = headers(&[("Name", "NAME"), ("ID", "CONTAINER ID")]);
    let out = render(
        "table {{upper .Name}}\\t{{lower .ID}}\\t{{json .Name}}\\t{{truncate .ID 4}}\\t{{split .Name \"-\"}}\\t{{join (split .Name \"-\") \"+\"}}",
        &rows,
        &h,
    );
    assert_eq!(
        out,
        "NAME      CONTAINER ID   NAME      CONTAINER ID   NAME      NAME\n\
         WEB-1     abcdef123456   \"web-1\"   abcd           [web 1]   web+1\n"
    );
}

#[test]
fn header_stops_at_the_first_error() {
    // The header execution fails at `.Name.Foo`; docker ignores the error
    // and prints what was rendered before it.
    let rows = vec![json!({"Name": {"Foo": "x"}, "ID": "1"})];
    let h = headers(&[("Name", "NAME"), ("ID", "ID")]);
    let out = render("table {{.ID}}\\t{{.Name.Foo}}\\t{{.ID}}", &rows, &h);
    assert_eq!(out, "ID        \n1         x         1\n");
}

#[test]
fn label_method_with_argument() {
    let rows =
        vec![json!({"Names": "web", "Label": {"com.example.tier": "front"}}), json!({"Names": "db", "Label": {}})];
    let out = render("{{.Names}}={{.Label \"com.example.tier\"}}", &rows, &Map::new());
    assert_eq!(out, "web=front\ndb=\n");
}

#[test]
fn custom_format_has_no_header_and_escapes_are_expanded() {
    let rows = vec![json!({"A": "1", "B": "2"}), json!({"A": "3", "B": "4"})];
    let out = render("  {{.A}}\\t{{.B}}\\n--  ", &rows, &Map::new());
    assert_eq!(out, "1\t2\n--\n3\t4\n--\n");
}

#[test]
fn json_format_is_one_object_per_line_html_escaped() {
    let rows = vec![json!({"Size": 3, "Name": "a<b>"}), json!({"Name": "c&d", "Size": 1.5})];
    let f = Formatter::new("json").expect("parse");
    assert_eq!(f.kind(), Kind::Json);
    let out = f.render(&rows, &Map::new()).expect("render");
    assert_eq!(out, "{\"Name\":\"a\\u003cb\\u003e\",\"Size\":3}\n{\"Name\":\"c\\u0026d\",\"Size\":1.5}\n");
    // A field passed to json is not escaped: docker's json function turns
    // HTML escaping off.
    let out = render("{{json .Name}}", &rows, &Map::new());
    assert_eq!(out, "\"a<b>\"\n\"c&d\"\n");
}

#[test]
fn unknown_field_errors_like_docker() {
    let rows = vec![json!({"Name": "x"})];
    let f = Formatter::new("table {{.Name}}\\t{{.Nope}}").expect("parse");
    let err = f.render(&rows, &Map::new()).expect_err("must fail");
    assert_eq!(
        err.docker_message(),
        "template parsing error: template: :1:12: executing \"\" at <.Nope>: map has no entry for key \"Nope\""
    );
    let f = f.with_root_type("*formatter.ContainerContext");
    let err = f.render(&rows, &Map::new()).expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "template: :1:12: executing \"\" at <.Nope>: can't evaluate field Nope in type *formatter.ContainerContext"
    );
}

#[test]
fn render_table_writes_to_io() {
    let mut out = Vec::new();
    render_table("table {{.A}}", &[json!({"A": "x"})], &headers(&[("A", "A")]), &mut out).expect("render");
    assert_eq!(String::from_utf8_lossy(&out), "A\nx\n");
}

#[test]
fn parse_error_reports_the_line() {
    let err = Formatter::new("table {{.A}}\\n{{.B").expect_err("must fail");
    assert_eq!(err.to_string(), "template: :2: unclosed action");
    assert_eq!(err.docker_message(), "template parsing error: template: :2: unclosed action");
}

#[test]
fn kinds_and_format_resolution() {
    assert_eq!(Kind::of("table"), Kind::Table);
    assert_eq!(Kind::of("table {{.ID}}"), Kind::Table);
    assert_eq!(Kind::of("tablefoo"), Kind::Table);
    assert_eq!(Kind::of("json"), Kind::Json);
    assert_eq!(Kind::of("{{json .}}"), Kind::Template);
    assert_eq!(Kind::of("raw"), Kind::Raw);
    assert_eq!(Kind::of("pretty"), Kind::Pretty);
    assert_eq!(Kind::of("{{.ID}}"), Kind::Template);
    assert_eq!(resolve_format("", IMAGES_FORMAT, None), IMAGES_FORMAT);
    assert_eq!(resolve_format("table", IMAGES_FORMAT, None), IMAGES_FORMAT);
    assert_eq!(resolve_format("raw", IMAGES_FORMAT, Some("id: {{.ID}}")), "id: {{.ID}}");
    assert_eq!(resolve_format("{{.ID}}", IMAGES_FORMAT, None), "{{.ID}}");
}

#[test]
fn tabwriter_last_cell_is_not_padded_and_empty_trailing_cells_are() {
    assert_eq!(align_docker("a\tb\n"), "a         b\n");
    assert_eq!(align_docker("a\tb\t\n"), "a         b         \n");
    assert_eq!(align_docker("a\t\tc\n"), "a                   c\n");
}

#[test]
fn tabwriter_lines_without_tabs_break_columns() {
    // The second line has no tab: the columns above and below it are
    // aligned independently.
    let out = align_docker("a-long-cell\tx\nplain line\nb\ty\n");
    assert_eq!(out, "a-long-cell   x\nplain line\nb         y\n");
}

#[test]
fn tabwriter_column_blocks_are_contiguous() {
    // Go's doc example: b and c are distinct columns because the third
    // line has no cell in the second column.
    let mut w = TabWriter::new(0, 8, 1, ' ');
    w.write("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n");
    assert_eq!(w.flush(), "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n");
}

#[test]
fn tabwriter_counts_display_width() {
    // docker's tabwriter uses go-runewidth: CJK characters are two columns
    // wide, combining marks none.
    assert_eq!(align_docker("日本語の説明\tx\nab\ty\n"), "日本語の説明   x\nab             y\n");
    assert_eq!(align_docker("e\u{301}\tx\nab\ty\n"), "e\u{301}         x\nab        y\n");
    assert_eq!(align_docker("👍\tx\n"), "👍        x\n");
}

#[test]
fn tabwriter_form_feed_flushes() {
    let out = align_docker("long-long-long\tx\n\x0cb\ty\n");
    assert_eq!(out, "long-long-long   x\n\nb         y\n");
}

#[test]
fn inspect_template_output() {
    let mut ins = Inspector::new("{{.Name}}\\t{{.State.Status}}").expect("parse");
    ins.inspect(&json!({"Name": "/web", "State": {"Status": "running"}})).expect("inspect");
    let err = ins.inspect(&json!({"Name": "/db"})).expect_err("missing State");
    assert_eq!(
        err.docker_message(),
        "template parsing error: template: :1:19: executing \"\" at <.State.Status>: map has no entry for key \"State\""
    );
    // Inspect templates are not pre-processed: `\t` stays as typed.
    assert_eq!(ins.finish(), "/web\\trunning\n");
    // Nothing rendered: a single newline.
    assert_eq!(ins.finish(), "\n");
}

#[test]
fn inspect_json_outputs() {
    let v = json!({"Id": "abc", "Args": [], "Config": {"Labels": {}, "Env": ["A=<1>"]}, "Size": 1.0});
    let mut ins = Inspector::new("").expect("indented");
    ins.inspect(&v).expect("inspect");
    assert_eq!(
        ins.finish(),
        "[\n    {\n        \"Id\": \"abc\",\n        \"Args\": [],\n        \"Config\": {\n            \"Labels\": {},\n            \"Env\": [\n                \"A=\\u003c1\\u003e\"\n            ]\n        },\n        \"Size\": 1\n    }\n]\n"
    );
    let mut ins = Inspector::new("json").expect("json");
    ins.inspect(&v).expect("inspect");
    assert_eq!(
        ins.finish(),
        "[{\"Id\":\"abc\",\"Args\":[],\"Config\":{\"Labels\":{},\"Env\":[\"A=\\u003c1\\u003e\"]},\"Size\":1}]\n"
    );
    let mut empty = Inspector::new("").expect("indented");
    assert_eq!(empty.finish(), "[]\n");
}

#[test]
fn render_one_for_inspect() {
    let v = json!({
        "Id": "4c01db0b339c",
        "State": {"Status": "running", "Pid": 4242, "Health": null},
        "Config": {"Labels": {"com.example.tier": "front"}, "Env": ["A=1", "B=2"]},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}}
    });
    let one = |f: &str| render_one(f, &v).unwrap_or_else(|e| e.to_string());
    assert_eq!(one("{{.State.Pid}} {{.State.Health}}"), "4242 <nil>");
    assert_eq!(one("{{index .Config.Labels \"com.example.tier\"}}|{{index .Config.Labels \"nope\"}}|"), "front||");
    assert_eq!(one("{{.Config.Labels.nope}}"), "<no value>");
    assert_eq!(one("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"), "172.17.0.2");
    assert_eq!(one("{{join .Config.Env \",\"}}"), "A=1,B=2");
    assert_eq!(one("{{json .Config.Labels}}"), "{\"com.example.tier\":\"front\"}");
    assert_eq!(
        one("{{.State.Nope}}"),
        "template: :1:8: executing \"\" at <.State.Nope>: map has no entry for key \"Nope\""
    );
    assert_eq!(one("{{.Id | printf \"%.6s\"}}"), "4c01db");
}
