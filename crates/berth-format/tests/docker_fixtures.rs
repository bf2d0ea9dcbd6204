//! Outputs recorded from docker 28.2.2.
//!
//! `data/docker_templates.json` holds templates executed by docker over a
//! JSON object (decoded by Go into `interface{}` values, so every number is
//! a float64 there; the test converts numbers the same way) together with
//! docker's output or error. `data/docker_tables.json` holds the output of
//! `docker context ls --format FORMAT` for rows and headers of that command.

use berth_format::{Formatter, MissingKey, Options, Template};
use serde_json::Value;

/// Go decodes JSON numbers into float64 when the target is `interface{}`.
fn floatify(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *v = Value::Number(f);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(floatify),
        Value::Object(o) => o.values_mut().for_each(floatify),
        _ => {}
    }
}

#[test]
fn templates_match_docker() {
    let fixture: Value = serde_json::from_str(include_str!("data/docker_templates.json")).expect("fixture parses");
    let options = Options {
        // Go's default for maps, which is what docker used for this data.
        missing_key: MissingKey::NoValue,
        ..Options::default()
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for group in fixture["groups"].as_array().expect("groups") {
        let mut data = group["data"].clone();
        floatify(&mut data);
        for case in group["cases"].as_array().expect("cases") {
            let text = case["t"].as_str().expect("template");
            let got = Template::parse(text).map(|t| t.with_options(options.clone())).and_then(|t| t.execute(&data));
            let ok = match (&got, case.get("ok"), case.get("err")) {
                (Ok(s), Some(want), _) => want.as_str() == Some(s.as_str()),
                (Err(e), _, Some(want)) => want.as_str() == Some(e.to_string().as_str()),
                _ => false,
            };
            if !ok {
                failures.push(format!("{text:?}: got {got:?}, want {case}"));
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "fixture too small: {checked}");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn tables_match_docker() {
    let fixture: Value = serde_json::from_str(include_str!("data/docker_tables.json")).expect("fixture parses");
    let rows = fixture["rows"].as_array().expect("rows").clone();
    let headers = fixture["headers"].as_object().expect("headers").clone();
    let root_type = fixture["root_type"].as_str().expect("root type");
    let mut failures = Vec::new();
    for case in fixture["cases"].as_array().expect("cases") {
        let format = case["format"].as_str().expect("format");
        let got = Formatter::new(format).map(|f| f.with_root_type(root_type)).and_then(|f| f.render(&rows, &headers));
        let ok = match (&got, case.get("ok"), case.get("err")) {
            (Ok(s), Some(want), _) => want.as_str() == Some(s.as_str()),
            (Err(e), _, Some(want)) => want.as_str() == Some(e.docker_message().as_str()),
            _ => false,
        };
        if !ok {
            failures.push(format!("{format:?}: got {got:?}, want {case}"));
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
