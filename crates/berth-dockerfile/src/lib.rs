//! Dockerfile parsing for berth, following BuildKit (moby/buildkit
//! `frontend/dockerfile`) behaviour and messages.
//!
//! Three layers:
//! 1. [`parse`]: text to raw instruction [`Node`]s (BuildKit `parser.Parse`):
//!    directives, comments, continuations, flags, exec/shell forms,
//!    heredocs, line numbers. [`ParseResult::dump`] prints BuildKit's
//!    S-expression form.
//! 2. [`instructions::parse`] (or [`parse_dockerfile`] for both steps):
//!    nodes to typed [`Stage`]s and [`Command`]s with BuildKit's validation.
//! 3. [`Lexer`]: Docker's shell-word lexer for variable expansion, and
//!    [`expand`] / [`expand_from`] to expand instructions the way the builder
//!    does at dispatch time.
//!
//! ```
//! use berth_dockerfile::{parse_dockerfile, Instruction, CommandLine};
//!
//! let df = parse_dockerfile("FROM alpine AS base\nRUN echo hi\nCMD [\"sh\"]\n")?;
//! let stage = &df.stages[0];
//! assert_eq!(stage.name.as_deref(), Some("base"));
//! assert!(matches!(
//!     &stage.commands[1].instruction,
//!     Instruction::Cmd(CommandLine::Exec(args)) if args == &["sh"]
//! ));
//! # Ok::<(), berth_dockerfile::Error>(())
//! ```

mod directives;
mod error;
mod expand;
mod goconv;
mod heredoc;
pub mod instructions;
mod json;
mod lexer;
mod line_parsers;
mod parser;
mod pattern;
mod quote;
mod suggest;

pub use directives::{detect_syntax, parse_directive, DetectedDirective, Directive};
pub use error::{Error, Result};
pub use expand::{expand, expand_from, ExpandedFrom};
pub use heredoc::{chomp_heredoc_content, parse_heredoc, Heredoc};
pub use instructions::{
    Add, ArgDef, Command, CommandLine, Copy, Device, Dockerfile, Healthcheck, Instruction, KeyValue, MetaArg,
    MountSpec, MountType, NetworkMode, Onbuild, Run, RunScript, SecurityMode, ShareMode, SourceContent, Stage,
};
pub use lexer::{EmptyEnv, EnvGetter, EnvList, Lexer, ProcessedWord};
pub use parser::{parse, Node, ParseResult, Warning};

/// Parses Dockerfile text into stages: [`parse`] then
/// [`instructions::parse`].
pub fn parse_dockerfile(text: &str) -> Result<Dockerfile> {
    let ast = parse(text)?;
    instructions::parse(&ast)
}

/// [`parse_dockerfile`] for bytes: a non-UTF-8 file is read lossily.
pub fn parse_dockerfile_bytes(bytes: &[u8]) -> Result<Dockerfile> {
    parse_dockerfile(&String::from_utf8_lossy(bytes))
}
