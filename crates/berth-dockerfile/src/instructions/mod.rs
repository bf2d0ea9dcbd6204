//! Typed instructions (BuildKit `frontend/dockerfile/instructions`).
//!
//! [`parse`] turns the raw nodes of [`crate::parse`] into build stages: the
//! `ARG`s before the first `FROM` become meta arguments, every `FROM` starts a
//! [`Stage`], and the other instructions become [`Command`]s of the current
//! stage. Validation and error messages follow BuildKit's `instructions.Parse`.
//!
//! Words keep their quotes and escapes (`ENV a="b c"` has the value
//! `"b c"`), exactly as BuildKit stores them: they are removed when the
//! builder expands the instruction with [`crate::expand`].

mod flags;
pub(crate) mod mount;
mod parse;

use std::time::Duration;

pub use mount::{Device, MountSpec, MountType, ShareMode};
pub use parse::{parse, parse_instruction, parse_onbuild_trigger, ParsedInstruction};

use crate::directives::Directive;
use crate::heredoc::Heredoc;
use crate::parser::Warning;

/// A parsed Dockerfile: meta arguments and stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub meta_args: Vec<MetaArg>,
    /// The build stages in order.
    pub stages: Vec<Stage>,
    /// The escape token (`\` or `` ` ``) the file uses; expansion needs it.
    pub escape_token: char,
    /// Parser directives (`syntax`, `escape`, `check`).
    pub directives: Vec<Directive>,
    /// Parser warnings.
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The stage named `name` (case-insensitive, as BuildKit `HasStage`), or
    /// with that index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        if let Some(s) =
            self.stages.iter().find(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name_or_index)))
        {
            return Some(s);
        }
        name_or_index.parse::<usize>().ok().and_then(|i| self.stages.get(i))
    }

    /// The value of directive `name` (`syntax`, `escape`, `check`).
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives.iter().find(|d| d.name == name).map(|d| d.value.as_str())
    }
}

/// An `ARG` line before the first `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArg {
    /// The arguments declared on the line.
    pub args: Vec<ArgDef>,
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line.
    pub end_line: usize,
    /// The instruction text.
    pub source: String,
}

/// A build stage: a `FROM` and the commands after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The base image or stage, unexpanded (may use meta `ARG`s).
    pub base: String,
    /// `--platform=`, unexpanded.
    pub platform: Option<String>,
    /// The commands of the stage.
    pub commands: Vec<Command>,
    /// 1-based line of the `FROM`.
    pub line: usize,
    /// 1-based last line of the `FROM`.
    pub end_line: usize,
    /// The `FROM` instruction text.
    pub source: String,
    /// The `FROM` keyword as written.
    pub keyword: String,
    /// Comments above the `FROM`.
    pub comments: Vec<String>,
    /// A comment `# <name> description` above `FROM ... AS <name>`.
    pub doc_comment: Option<String>,
}

/// One instruction of a stage, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// What the instruction does.
    pub instruction: Instruction,
    /// The keyword as written (`RUN`, `run`).
    pub keyword: String,
    /// The instruction text, continuations joined (BuildKit `String()`).
    pub source: String,
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (continuations and heredocs included).
    pub end_line: usize,
    /// Comments directly above the instruction.
    pub comments: Vec<String>,
}

impl Command {
    /// The upper-case instruction name (`RUN`).
    pub fn name(&self) -> &'static str {
        self.instruction.name()
    }
}

/// A typed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `ADD`.
    Add(Add),
    /// `ARG name[=default] ...` inside a stage.
    Arg(Vec<ArgDef>),
    /// `CMD`.
    Cmd(CommandLine),
    /// `COPY`.
    Copy(Copy),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `ENV k=v ...` or `ENV k v`.
    Env(Vec<KeyValue>),
    /// `EXPOSE`: ports, sorted as BuildKit does.
    Expose(Vec<String>),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `LABEL k=v ...`.
    Label(Vec<KeyValue>),
    /// `MAINTAINER` (deprecated).
    Maintainer(String),
    /// `ONBUILD <instruction>`.
    Onbuild(Onbuild),
    /// `RUN`.
    Run(Run),
    /// `SHELL ["exe", "arg"]`.
    Shell(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `USER user[:group]`.
    User(String),
    /// `VOLUME`.
    Volume(Vec<String>),
    /// `WORKDIR`.
    Workdir(String),
}

impl Instruction {
    /// The upper-case instruction name.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::Add(_) => "ADD",
            Instruction::Arg(_) => "ARG",
            Instruction::Cmd(_) => "CMD",
            Instruction::Copy(_) => "COPY",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Env(_) => "ENV",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Run(_) => "RUN",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::User(_) => "USER",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Workdir(_) => "WORKDIR",
        }
    }
}

/// The command of `RUN`, `CMD` and `ENTRYPOINT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Shell form: run through the stage's shell (`SHELL`, default
    /// `/bin/sh -c`). The words are joined with one space.
    Shell(String),
    /// Exec form (JSON array): run as is.
    Exec(Vec<String>),
}

impl CommandLine {
    /// Whether the shell must be prepended (BuildKit `PrependShell`).
    pub fn prepend_shell(&self) -> bool {
        matches!(self, CommandLine::Shell(_))
    }

    /// The final argument vector given the stage's shell (BuildKit
    /// `withShell`): `shell + [command]` for the shell form.
    pub fn with_shell(&self, shell: &[String]) -> Vec<String> {
        match self {
            CommandLine::Shell(cmd) => {
                let mut v = shell.to_vec();
                v.push(cmd.clone());
                v
            }
            CommandLine::Exec(args) => args.clone(),
        }
    }
}

/// `RUN [flags] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command (for heredocs, the text of the instruction line).
    pub cmd: CommandLine,
    /// Heredocs of the command (`RUN <<EOF`, `RUN python - <<'EOF'`).
    pub heredocs: Vec<Heredoc>,
    /// `--mount=` values. Mounts without variables are fully validated at
    /// parse time; mounts using variables are validated by
    /// [`crate::expand`] once the variables are known (until then they are
    /// parsed leniently, or left at their defaults with only `raw` set).
    pub mounts: Vec<MountSpec>,
    /// `--network=`.
    pub network: NetworkMode,
    /// `--security=`.
    pub security: SecurityMode,
    /// `--device=`.
    pub devices: Vec<Device>,
    /// Names of the flags given.
    pub flags_used: Vec<String>,
}

/// What the builder should execute for a `RUN` with heredocs (BuildKit
/// `dispatchRun`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    /// No heredoc: run [`Run::cmd`].
    Command(CommandLine),
    /// `RUN <<EOF` whose body starts with `#!` (not on Windows): write `data`
    /// to an executable file named `name` (BuildKit mounts it under
    /// `/dev/pipes/`) and run that file.
    Shebang {
        /// The heredoc name, used as file name.
        name: String,
        /// The script.
        data: String,
    },
    /// `RUN <<EOF` without shebang: the body is the shell command.
    Inline(String),
    /// Anything else (`RUN python - <<EOF`, several heredocs): the line and
    /// the heredocs re-assembled, given to the shell as one command.
    Shell(String),
}

impl Run {
    /// How to execute this `RUN` (BuildKit `dispatchRun`): a single heredoc
    /// as the whole command becomes the script, other heredocs are handed to
    /// the shell as written. Errors with BuildKit's message when heredocs are
    /// combined with the exec form.
    pub fn script(&self, windows: bool) -> Result<RunScript, String> {
        let Some(first) = self.heredocs.first() else {
            return Ok(RunScript::Command(self.cmd.clone()));
        };
        let line = match &self.cmd {
            CommandLine::Shell(line) => line,
            CommandLine::Exec(args) => {
                return Err(format!("parsing produced an invalid run command: [{}]", args.join(" ")))
            }
        };
        if let Ok(Some(_)) = crate::heredoc::parse_heredoc(line) {
            let data = first.data();
            if !windows && data.starts_with("#!") {
                return Ok(RunScript::Shebang { name: first.name.clone(), data });
            }
            return Ok(RunScript::Inline(data));
        }
        let mut b = line.clone();
        for doc in &self.heredocs {
            b.push('\n');
            b.push_str(&doc.content);
            b.push_str(&doc.name);
        }
        Ok(RunScript::Shell(b))
    }
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// The builder's default network.
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// `RUN --security=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SecurityMode {
    /// The default, confined sandbox.
    #[default]
    Sandbox,
    /// Privileged (needs the builder's entitlement).
    Insecure,
}

/// A source given inline by a heredoc (`COPY <<EOF /file`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceContent {
    /// The heredoc name, used as the file name.
    pub path: String,
    /// The content (leading tabs already stripped for `<<-`).
    pub data: String,
    /// Whether variables in `data` are expanded (unquoted heredoc name).
    pub expand: bool,
}

/// `COPY [flags] src... dest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Copy {
    /// Source paths (not heredocs).
    pub sources: Vec<String>,
    /// Sources given as heredocs.
    pub heredocs: Vec<SourceContent>,
    /// Destination.
    pub dest: String,
    /// `--from=`: stage name or index, image, or named context.
    pub from: Option<String>,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// `--parents`.
    pub parents: bool,
}

/// `ADD [flags] src... dest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Add {
    /// Source paths or URLs (not heredocs).
    pub sources: Vec<String>,
    /// Sources given as heredocs.
    pub heredocs: Vec<SourceContent>,
    /// Destination.
    pub dest: String,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// `--keep-git-dir`, when given.
    pub keep_git_dir: Option<bool>,
    /// `--checksum=`.
    pub checksum: Option<String>,
    /// `--unpack`, when given.
    pub unpack: Option<bool>,
}

/// A `key=value` of `ENV` or `LABEL`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (raw word).
    pub key: String,
    /// The value (raw word: quotes and escapes not yet removed).
    pub value: String,
    /// Legacy `ENV key value` form (BuildKit `NoDelim`).
    pub legacy: bool,
}

/// One name of an `ARG`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgDef {
    /// The name.
    pub key: String,
    /// The default value, if any (raw word).
    pub value: Option<String>,
    /// A comment `# <key> description` above the `ARG`.
    pub doc_comment: Option<String>,
}

/// `HEALTHCHECK` (Docker's `HealthcheckConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args...]` (exec form) or `["CMD-SHELL", cmd]`.
    pub test: Vec<String>,
    /// `--interval` (zero: default).
    pub interval: Duration,
    /// `--timeout` (zero: default).
    pub timeout: Duration,
    /// `--start-period` (zero: default).
    pub start_period: Duration,
    /// `--start-interval` (zero: default).
    pub start_interval: Duration,
    /// `--retries` (zero: default).
    pub retries: i32,
}

impl Healthcheck {
    /// `HEALTHCHECK NONE`: disables a health check inherited from the base.
    pub fn is_none(&self) -> bool {
        self.test.first().is_some_and(|t| t == "NONE")
    }
}

/// `ONBUILD <instruction>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as text (`RUN echo hi`), heredocs appended, as stored in
    /// the image config and parsed again when a build uses the image.
    pub expression: String,
}
