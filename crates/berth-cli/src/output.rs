//! Printing lists and inspect results through `--format` (Go templates,
//! `table`, `json`), the way docker-cli's formatter does.

use std::io::Write;

use anyhow::Result;
use serde_json::{Map, Value};

/// Prints `rows` with the user's format, or `default` (a `table …` template).
/// `headers` maps each field to its column title.
pub fn print_list(format: Option<&str>, default: &str, headers: &[(&str, &str)], rows: &[Value]) -> Result<()> {
    let format = match format {
        None | Some("") | Some("table") => default,
        Some(f) => f,
    };
    let headers: Map<String, Value> =
        headers.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
    let mut out = std::io::stdout().lock();
    berth_format::render_table(format, rows, &headers, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Prints inspect results: indented JSON like docker, or one template per object.
pub fn print_inspect(format: Option<&str>, values: &[Value]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        None | Some("") => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&Value::Array(values.to_vec()), &mut ser)?;
            out.write_all(&buf)?;
            out.write_all(b"\n")?;
        }
        Some(f) => {
            let f = if f == "json" { "{{json .}}" } else { f };
            for v in values {
                let s = berth_format::render_one(f, v)?;
                writeln!(out, "{s}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Renders one object (`version --format`, `info --format`).
pub fn print_one(format: &str, v: &Value) -> Result<()> {
    let f = if format == "json" { "{{json .}}" } else { format };
    println!("{}", berth_format::render_one(f, v)?);
    Ok(())
}
