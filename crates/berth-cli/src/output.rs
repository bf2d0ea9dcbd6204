//! Printing lists and inspect results through `--format` (Go templates,
//! `table`, `json`), the way docker-cli's formatter does.

use std::io::Write;

use anyhow::{anyhow, Result};
use serde_json::Value;

fn fmt_err(e: berth_format::Error) -> anyhow::Error {
    anyhow!("{}", e.docker_message())
}

/// Prints `rows` with the user's format, or `default` (a `table …` template).
/// `headers` maps each field to its column title.
pub fn print_list(format: Option<&str>, default: &str, headers: &[(&str, &str)], rows: &[Value]) -> Result<()> {
    let format = berth_format::resolve_format(format.unwrap_or(""), default, None);
    let headers = berth_format::headers(headers);
    let f = berth_format::Formatter::new(&format).map_err(fmt_err)?;
    let mut out = std::io::stdout().lock();
    f.write_rows(rows, &headers, &mut out).map_err(fmt_err)?;
    out.flush()?;
    Ok(())
}

/// Prints inspect results: indented JSON like docker, compact JSON, or one
/// template per object.
pub fn print_inspect(format: Option<&str>, values: &[Value]) -> Result<()> {
    let mut ins = berth_format::Inspector::new(format.unwrap_or("")).map_err(fmt_err)?;
    let mut first_err = None;
    for v in values {
        if let Err(e) = ins.inspect(v) {
            first_err.get_or_insert(e);
        }
    }
    let mut out = std::io::stdout().lock();
    ins.flush(&mut out).map_err(fmt_err)?;
    out.flush()?;
    match first_err {
        Some(e) => Err(fmt_err(e)),
        None => Ok(()),
    }
}

/// Renders one object (`version --format`, `info --format`).
pub fn print_one(format: &str, v: &Value) -> Result<()> {
    let f = if format == "json" { "{{json .}}" } else { format };
    let s = berth_format::render_one(f, v).map_err(fmt_err)?;
    println!("{s}");
    Ok(())
}
