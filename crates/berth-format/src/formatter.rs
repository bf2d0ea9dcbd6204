//! Docker-cli's output conventions: `cli/command/formatter/formatter.go`
//! for list commands and `cli/command/inspect/inspector.go` for inspect.

use std::io::Write;

use serde_json::{Map, Value};

use crate::tabwriter::TabWriter;
use crate::{Error, Options, Result, Template};

/// Prefix selecting a table format.
pub const TABLE_FORMAT_KEY: &str = "table";
/// Format name selecting the command's raw format.
pub const RAW_FORMAT_KEY: &str = "raw";
/// Format name selecting one JSON object per line.
pub const JSON_FORMAT_KEY: &str = "json";
/// Template used for the `json` format.
pub const JSON_FORMAT: &str = "{{json .}}";

/// The kind of a `--format` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Starts with `table`: a header row, then rows aligned in columns.
    Table,
    /// Exactly `json`: `{{json .}}` for each row.
    Json,
    /// Exactly `raw`: the command's raw template (see [`resolve_format`]).
    Raw,
    /// Exactly `pretty`: a command specific human readable layout.
    Pretty,
    /// Any other text: a custom template, one rendered line per row.
    Template,
}

impl Kind {
    /// Classifies a format as docker-cli's `Format.IsTable`/`IsJSON` do.
    /// Note that any text starting with `table` is a table format.
    pub fn of(format: &str) -> Kind {
        if format.starts_with(TABLE_FORMAT_KEY) {
            Kind::Table
        } else if format == JSON_FORMAT_KEY {
            Kind::Json
        } else if format == RAW_FORMAT_KEY {
            Kind::Raw
        } else if format == "pretty" {
            Kind::Pretty
        } else {
            Kind::Template
        }
    }
}

/// Resolves a user supplied format the way docker's `NewXxxFormat`
/// functions do: empty or `table` selects the command's default table
/// format, `raw` its raw format (when it has one); anything else is used as
/// given.
pub fn resolve_format(source: &str, default_table: &str, raw: Option<&str>) -> String {
    match source {
        "" | TABLE_FORMAT_KEY => default_table.to_string(),
        RAW_FORMAT_KEY => raw.unwrap_or(source).to_string(),
        other => other.to_string(),
    }
}

/// Builds a header map from `(field, title)` pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string()))).collect()
}

/// docker-cli's `Context.preFormat`: strips the `table` prefix, maps `json`
/// to `{{json .}}`, trims spaces and turns the two-character sequences
/// `\t` and `\n` into a tab and a newline.
fn pre_format(format: &str) -> String {
    let f = match Kind::of(format) {
        Kind::Table => &format[TABLE_FORMAT_KEY.len()..],
        Kind::Json => JSON_FORMAT,
        _ => format,
    };
    f.trim_matches(' ').replace("\\t", "\t").replace("\\n", "\n")
}

/// Renders rows for list commands (`docker ps`, `docker images`, ...).
#[derive(Debug, Clone)]
pub struct Formatter {
    kind: Kind,
    template: Template,
}

impl Formatter {
    /// Parses a format as docker's formatter does. Pass the resolved
    /// format (see [`resolve_format`]); `raw` and `pretty` are not expanded
    /// here.
    pub fn new(format: &str) -> Result<Formatter> {
        let kind = Kind::of(format);
        let template = Template::parse(&pre_format(format))?
            .with_options(Options { escape_html_in_row_json: true, ..Options::default() });
        Ok(Formatter { kind, template })
    }

    /// Sets the execution options (the default has
    /// [`Options::escape_html_in_row_json`] set).
    #[must_use]
    pub fn with_options(mut self, options: Options) -> Formatter {
        self.template = self.template.with_options(options);
        self
    }

    /// Sets [`Options::root_type`], the Go type named in the error for an
    /// unknown field, e.g. `*formatter.ContainerContext`.
    #[must_use]
    pub fn with_root_type(mut self, name: &str) -> Formatter {
        let mut options = self.template.options().clone();
        options.root_type = Some(name.to_string());
        self.template = self.template.with_options(options);
        self
    }

    /// The kind of the format.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Whether a header row is printed and columns aligned.
    pub fn is_table(&self) -> bool {
        self.kind == Kind::Table
    }

    /// The parsed template (after docker's pre-processing).
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// Renders one row, without the trailing newline.
    pub fn render_row(&self, row: &Value) -> Result<String> {
        self.template.execute(row)
    }

    /// Renders all rows, each followed by a newline. For table formats the
    /// header row comes first, rendered from `headers` with docker's header
    /// functions, and the result is aligned with docker's tab writer
    /// (`minwidth` 10, `tabwidth` 1, `padding` 3). As in docker, a header
    /// template that fails part way contributes what it produced before the
    /// failure, fields absent from `headers` print `<no value>`, and the
    /// header is printed even when there are no rows.
    ///
    /// A row that fails to render makes the whole call fail; nothing is
    /// produced then, as docker buffers rows before printing.
    pub fn render(&self, rows: &[Value], headers: &Map<String, Value>) -> Result<String> {
        let mut body = String::new();
        for row in rows {
            self.template.execute_into(row, &mut body)?;
            body.push('\n');
        }
        if !self.is_table() {
            return Ok(body);
        }
        let mut header = String::new();
        let header_data = Value::Object(headers.clone());
        // docker-cli ignores errors while rendering the header.
        let _ = self.template.execute_header_into(&header_data, &mut header);
        let mut tw = TabWriter::docker();
        tw.write(&header);
        tw.write("\n");
        tw.write(&body);
        Ok(tw.flush())
    }

    /// Like [`Formatter::render`], writing to `out`.
    pub fn write_rows<W: Write + ?Sized>(
        &self,
        rows: &[Value],
        headers: &Map<String, Value>,
        out: &mut W,
    ) -> Result<()> {
        let s = self.render(rows, headers)?;
        out.write_all(s.as_bytes())?;
        Ok(())
    }
}

/// Parses `format` and writes `rows` as docker's list commands do.
pub fn render_table<W: Write + ?Sized>(
    format: &str,
    rows: &[Value],
    headers: &Map<String, Value>,
    out: &mut W,
) -> Result<()> {
    Formatter::new(format)?.write_rows(rows, headers, out)
}

/// Renders one value with an inspect template (`docker inspect --format`),
/// without docker's pre-processing (`\t` stays two characters) and without
/// the trailing newline docker adds after each element.
pub fn render_one(format: &str, value: &Value) -> Result<String> {
    Template::parse(format)?.execute(value)
}

#[derive(Debug)]
enum InspectMode {
    Indented,
    Json,
    Template(Box<Template>),
}

/// Collects inspect output like docker-cli's inspectors.
///
/// * format `""`: the elements as an indented JSON array (4 spaces,
///   HTML-escaped like the daemon's JSON);
/// * format `"json"`: the elements as a compact JSON array;
/// * otherwise a template executed for each element, each result followed
///   by a newline. An element whose template fails contributes nothing and
///   [`Inspector::inspect`] returns the error; docker reports these errors
///   after printing the others and exits with status 1.
#[derive(Debug)]
pub struct Inspector {
    mode: InspectMode,
    elements: Vec<Value>,
    buffer: String,
}

impl Inspector {
    /// Creates an inspector; a template that does not parse is an error
    /// (docker exits with status 64 then).
    pub fn new(format: &str) -> Result<Inspector> {
        let mode = match format {
            "" => InspectMode::Indented,
            JSON_FORMAT_KEY => InspectMode::Json,
            f => InspectMode::Template(Box::new(Template::parse(f)?)),
        };
        Ok(Inspector { mode, elements: Vec::new(), buffer: String::new() })
    }

    /// Sets the execution options of a template inspector.
    #[must_use]
    pub fn with_options(mut self, options: Options) -> Inspector {
        if let InspectMode::Template(t) = self.mode {
            self.mode = InspectMode::Template(Box::new(t.with_options(options)));
        }
        self
    }

    /// Adds one element.
    pub fn inspect(&mut self, value: &Value) -> Result<()> {
        match &self.mode {
            InspectMode::Template(t) => {
                let s = t.execute(value)?;
                self.buffer.push_str(&s);
                self.buffer.push('\n');
            }
            _ => self.elements.push(value.clone()),
        }
        Ok(())
    }

    /// The output for everything inspected so far, as docker's `Flush`:
    /// an empty template output becomes a single newline, no JSON elements
    /// give `[]`.
    pub fn finish(&mut self) -> String {
        match &self.mode {
            InspectMode::Template(_) => {
                let s = std::mem::take(&mut self.buffer);
                if s.is_empty() {
                    "\n".into()
                } else {
                    s
                }
            }
            mode => {
                let elements = std::mem::take(&mut self.elements);
                if elements.is_empty() {
                    return "[]\n".into();
                }
                let array = Value::Array(elements);
                let mut s = match mode {
                    InspectMode::Indented => crate::json::to_go_json_indent(&array, "    "),
                    _ => crate::json::to_go_json(&array, true),
                };
                s.push('\n');
                s
            }
        }
    }

    /// Writes [`Inspector::finish`] to `out`.
    pub fn flush<W: Write + ?Sized>(&mut self, out: &mut W) -> Result<()> {
        let s = self.finish();
        out.write_all(s.as_bytes()).map_err(Error::from)
    }
}
