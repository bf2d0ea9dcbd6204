//! The error type of the crate.
//!
//! Messages keep BuildKit's wording (moby/buildkit `frontend/dockerfile`), so a
//! user sees the same text `docker build` prints. Every error carries the line
//! it was raised on where BuildKit records a location.

use berth_error::ErrorKind;

use crate::quote::go_quote;

/// A failure to parse, validate or expand a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text could not be split into instructions (BuildKit `parser.Parse`):
    /// bad directives, unterminated heredocs, non-string JSON arrays, a file with
    /// no instructions, `ENV`/`LABEL` without a value.
    #[error("dockerfile parse error on line {line}: {message}")]
    Parse {
        /// 1-based line the offending instruction starts on.
        line: usize,
        /// BuildKit's message, without the location prefix.
        message: String,
    },
    /// An instruction is malformed (BuildKit `instructions.Parse`): wrong
    /// argument count, unknown flag or instruction, invalid stage name, ...
    #[error("dockerfile parse error on line {line}: {message}")]
    Instruction {
        /// 1-based line the offending instruction starts on.
        line: usize,
        /// BuildKit's message, without the location prefix.
        message: String,
    },
    /// Shell-word processing failed (BuildKit `shell.Lex`), e.g. `${V:?unset}`
    /// or an unterminated quote.
    #[error("failed to process {}: {message}", go_quote(word))]
    Lex {
        /// The word being processed.
        word: String,
        /// The lexer's message.
        message: String,
    },
    /// Expanding an instruction for a build failed (BuildKit's dispatch-time
    /// checks: variable expansion, `--mount` validation, `--from` variables).
    #[error("{message}")]
    Expand {
        /// 1-based line of the instruction being expanded (0 when unknown).
        line: usize,
        /// The full message.
        message: String,
    },
}

impl Error {
    /// The class of this error: every Dockerfile error is the caller's input
    /// being malformed.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }

    /// The 1-based line the error was raised on, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Parse { line, .. } | Error::Instruction { line, .. } => Some(*line),
            Error::Expand { line, .. } if *line > 0 => Some(*line),
            Error::Expand { .. } | Error::Lex { .. } => None,
        }
    }

    /// The message without the `dockerfile parse error on line N:` prefix.
    pub fn message(&self) -> String {
        match self {
            Error::Parse { message, .. } | Error::Instruction { message, .. } | Error::Expand { message, .. } => {
                message.clone()
            }
            Error::Lex { .. } => self.to_string(),
        }
    }

    /// The wording of Docker's classic (non-BuildKit) builder:
    /// `Dockerfile parse error line 2: FROM requires either one or three arguments`.
    pub fn legacy_message(&self) -> String {
        match self.line() {
            Some(line) => format!("Dockerfile parse error line {line}: {}", self.message()),
            None => self.message(),
        }
    }

    pub(crate) fn parse(line: usize, message: impl Into<String>) -> Self {
        Error::Parse { line, message: message.into() }
    }

    pub(crate) fn instruction(line: usize, message: impl Into<String>) -> Self {
        Error::Instruction { line, message: message.into() }
    }

    pub(crate) fn expand(line: usize, message: impl Into<String>) -> Self {
        Error::Expand { line, message: message.into() }
    }
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
