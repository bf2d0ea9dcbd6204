//! Docker-compatible `--format` handling.
//!
//! This crate implements the subset of Go's `text/template` that docker's
//! CLI exposes, evaluated over `serde_json::Value` data, together with the
//! output conventions of docker-cli's `cli/command/formatter` package
//! (`table` formats aligned with a tab writer, `json`, custom templates)
//! and of `cli/command/inspect` (`docker inspect --format`).
//!
//! ```
//! use serde_json::json;
//! use berth_format::Formatter;
//!
//! # fn main() -> Result<(), berth_format::Error> {
//! let rows = vec![json!({"Repository": "alpine", "Tag": "3.20", "ID": "91ef0af61f39",
//!                        "CreatedSince": "2 weeks ago", "Size": "7.8MB"})];
//! let headers = berth_format::headers(&[("Repository", "REPOSITORY"), ("Tag", "TAG"),
//!     ("ID", "IMAGE ID"), ("CreatedSince", "CREATED"), ("Size", "SIZE")]);
//! let f = Formatter::new("table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}")?;
//! let out = f.render(&rows, &headers)?;
//! assert_eq!(out, "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
//!                  alpine       3.20      91ef0af61f39   2 weeks ago   7.8MB\n");
//!
//! // docker inspect --format
//! let container = json!({"Name": "/web", "State": {"Status": "running"}});
//! assert_eq!(berth_format::render_one("{{.Name}} {{.State.Status}}", &container)?, "/web running");
//! # Ok(())
//! # }
//! ```
//!
//! Semantics worth knowing, all following Go and docker-cli:
//!
//! * `{{.Field}}` looks up a key of a JSON object. JSON `null` prints as
//!   `<nil>` (the behaviour of nil pointers in docker's typed structs), a
//!   missing key prints `<no value>` or is an error depending on
//!   [`MissingKey`].
//! * Numbers print as Go prints them: integers in decimal, floats with
//!   `%v` (`1.5`, `1e+06`); arrays as `[a b]`, objects as `map[k:v]` with
//!   sorted keys.
//! * The `json` function writes compact JSON without HTML escaping (docker
//!   sets `SetEscapeHTML(false)`), keeping the data's key order.

use std::io::Write;

use serde_json::Value;

mod exec;
mod formatter;
mod funcs;
mod json;
mod lex;
mod parse;
mod printf;
mod tabwriter;
mod value;

pub use formatter::{
    headers, render_one, render_table, resolve_format, Formatter, Inspector, Kind, JSON_FORMAT, JSON_FORMAT_KEY,
    RAW_FORMAT_KEY, TABLE_FORMAT_KEY,
};
pub use json::{to_go_json, to_go_json_indent};
pub use tabwriter::{align_docker, TabWriter};

/// Errors of parsing or executing a template.
///
/// The messages are those of Go's `text/template`; docker prints them
/// prefixed with `template parsing error: `, see [`Error::docker_message`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The template does not parse.
    #[error("template: :{line}: {msg}")]
    Parse {
        /// Line of the offending token (1-based).
        line: usize,
        /// Description, e.g. `unclosed action`.
        msg: String,
    },
    /// Execution failed.
    #[error("template: :{line}:{col}: executing \"\" at <{context}>: {msg}")]
    Exec {
        /// Line of the node being executed (1-based).
        line: usize,
        /// Byte offset of the node within its line.
        col: usize,
        /// Source text of the node being executed.
        context: String,
        /// Description, e.g. `can't evaluate field Foo in type string`.
        msg: String,
    },
    /// Writing the output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The message as docker's CLI reports it: template errors prefixed
    /// with `template parsing error: ` (docker uses that prefix for
    /// execution errors too).
    pub fn docker_message(&self) -> String {
        match self {
            Error::Io(e) => e.to_string(),
            other => format!("template parsing error: {other}"),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What `{{.Key}}` does when an object has no such key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// Go's default for maps: the value is missing and prints `<no value>`.
    NoValue,
    /// Go's `missingkey=error`: execution stops with
    /// `map has no entry for key "Key"`.
    Error,
    /// Docker's behaviour over its typed data: an error for the top-level
    /// object and for struct-like objects (every key starts with an ASCII
    /// upper-case letter, as the fields of docker's API types do), and
    /// `<no value>` for other objects such as label maps.
    #[default]
    Auto,
}

/// Execution options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Handling of missing object keys.
    pub missing_key: MissingKey,
    /// Go type name of the top-level data, used in the error for a missing
    /// top-level field (`can't evaluate field X in type T`), e.g.
    /// `*formatter.ContainerContext` for `docker ps`. Without it the error
    /// is `map has no entry for key "X"`, as docker reports for inspect.
    pub root_type: Option<String>,
    /// Encode the top-level object passed to `json` as docker's list rows
    /// encode themselves: keys sorted and HTML-escaped (`\u003c`,
    /// `\u003e`, `\u0026`), since they marshal a Go map of their fields
    /// with `json.Marshal`. So `docker ps --format json` escapes while
    /// `{{json .Names}}` does not. [`Formatter`] sets this.
    pub escape_html_in_row_json: bool,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    tree: parse::Tree,
    options: Options,
}

impl Template {
    /// Parses a Go template with docker's function set.
    pub fn parse(text: &str) -> Result<Template> {
        let tree = parse::parse(text, &|name| funcs::Func::lookup(name).is_some())?;
        Ok(Template { tree, options: Options::default() })
    }

    /// Replaces the execution options.
    #[must_use]
    pub fn with_options(mut self, options: Options) -> Template {
        self.options = options;
        self
    }

    /// The execution options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Executes the template with `data` as dot.
    pub fn execute(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        self.execute_into(data, &mut out)?;
        Ok(out)
    }

    /// Executes the template, appending to `out`. On error, the output
    /// produced before the failure is left in `out` (Go writes partial
    /// output too).
    pub fn execute_into(&self, data: &Value, out: &mut String) -> Result<()> {
        exec::execute(&self.tree, data, &self.options, false, out)
    }

    /// Executes the template against a table header map, with docker's
    /// `HeaderFunctions` (`json`, `split`, `join`, `title`, `lower`,
    /// `upper` and `truncate` return their first argument unchanged).
    pub fn execute_header_into(&self, headers: &Value, out: &mut String) -> Result<()> {
        exec::execute(&self.tree, headers, &self.options, true, out)
    }

    /// Executes the template and writes the result.
    pub fn write_to(&self, data: &Value, w: &mut impl Write) -> Result<()> {
        let s = self.execute(data)?;
        w.write_all(s.as_bytes())?;
        Ok(())
    }
}

/// Prints a value as Go's `fmt.Print` would print the corresponding
/// `interface{}` value decoded from JSON (`map[a:1]`, `[x y]`, `1e+06`).
pub fn go_print(v: &Value) -> String {
    let mut s = String::new();
    value::write_json_go(v, &mut s);
    s
}
