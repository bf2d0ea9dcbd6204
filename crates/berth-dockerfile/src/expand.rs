//! Variable expansion of typed instructions, as BuildKit's
//! `dockerfile2llb` does when it dispatches each instruction.
//!
//! Which fields are expanded (BuildKit: the instructions implementing
//! `SupportsSingleWordExpansion`, plus `EXPOSE`, `ARG` and `FROM`, which
//! the dispatcher expands itself):
//!
//! | instruction | expanded | how |
//! |---|---|---|
//! | `ENV`, `LABEL` | keys and values | one word each |
//! | `ADD` | sources, destination, `--chown`, `--chmod`, `--checksum`; heredoc sources with an unquoted name | one word each; heredoc bodies keep their quotes |
//! | `COPY` | sources, destination, `--chown`, `--chmod`; heredoc sources with an unquoted name | as `ADD`; `--from` must not contain variables |
//! | `WORKDIR`, `USER`, `STOPSIGNAL` | the argument | one word |
//! | `VOLUME` | each path | one word each |
//! | `EXPOSE` | each argument | split into words |
//! | `RUN` | every `--mount` value | one word each, then the mount is validated |
//! | `ARG` | default values (not names) | one word each |
//! | `FROM` | base name and `--platform` | with the meta args only ([`expand_from`]) |
//!
//! Not expanded: `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK`, `MAINTAINER`,
//! `ONBUILD`, `RUN`'s command (the shell expands it), `COPY --exclude`,
//! `ADD --exclude`. `RUN` heredocs are never expanded by the builder.
//!
//! Every field of one instruction is expanded with the environment as it was
//! before the instruction: `ENV a=1 b=$a` sets `b` from the previous `a`.

use crate::error::{Error, Result};
use crate::instructions::mount::parse_mount;
use crate::instructions::{Command, Dockerfile, Instruction, SourceContent, Stage};
use crate::lexer::{EmptyEnv, EnvGetter, EnvList, Lexer};

/// The base and platform of a `FROM` after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedFrom {
    /// The base image or stage name.
    pub base: String,
    /// The platform, if given.
    pub platform: Option<String>,
}

struct Expander<'a> {
    lex: Lexer,
    raw: Lexer,
    env: &'a dyn EnvGetter,
    line: usize,
}

impl Expander<'_> {
    fn word(&self, w: &str) -> Result<String> {
        self.lex.process_word(w, self.env).map_err(|e| Error::expand(self.line, e.to_string()))
    }

    fn opt(&self, w: &Option<String>) -> Result<Option<String>> {
        w.as_deref().map(|w| self.word(w)).transpose()
    }

    fn all(&self, words: &[String]) -> Result<Vec<String>> {
        words.iter().map(|w| self.word(w)).collect()
    }

    /// Heredoc bodies: only `$` expansions, quotes kept (BuildKit
    /// `ExpandRaw` with `SkipProcessQuotes`).
    fn contents(&self, contents: &[SourceContent]) -> Result<Vec<SourceContent>> {
        contents
            .iter()
            .map(|c| {
                if !c.expand {
                    return Ok(c.clone());
                }
                let data =
                    self.raw.process_word(&c.data, self.env).map_err(|e| Error::expand(self.line, e.to_string()))?;
                Ok(SourceContent { data, ..c.clone() })
            })
            .collect()
    }
}

/// Expands the variables of one command for a build (see the module
/// documentation for the fields). `escape` is [`Dockerfile::escape_token`];
/// `env` holds the stage's environment and build arguments at that point.
pub fn expand(cmd: &Command, escape: char, env: &dyn EnvGetter) -> Result<Command> {
    let mut raw = Lexer::new('\\');
    raw.skip_process_quotes = true;
    let x = Expander { lex: Lexer::new(escape), raw, env, line: cmd.line };
    let instruction = match &cmd.instruction {
        Instruction::Env(kvs) | Instruction::Label(kvs) => {
            let mut out = kvs.clone();
            for kv in &mut out {
                kv.key = x.word(&kv.key)?;
                kv.value = x.word(&kv.value)?;
            }
            if matches!(cmd.instruction, Instruction::Env(_)) {
                Instruction::Env(out)
            } else {
                Instruction::Label(out)
            }
        }
        Instruction::Add(add) => {
            let mut add = add.clone();
            add.chown = x.opt(&add.chown)?;
            add.chmod = x.opt(&add.chmod)?;
            add.checksum = x.opt(&add.checksum)?;
            add.sources = x.all(&add.sources)?;
            add.dest = x.word(&add.dest)?;
            add.heredocs = x.contents(&add.heredocs)?;
            Instruction::Add(add)
        }
        Instruction::Copy(copy) => {
            if let Some(from) = &copy.from {
                // BuildKit `toCommand`: --from is resolved before any
                // variable is known.
                let same = x.lex.process_word(from, &EmptyEnv).map_err(|e| Error::expand(cmd.line, e.to_string()))?;
                if same != *from {
                    return Err(Error::expand(
                        cmd.line,
                        "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                    ));
                }
            }
            let mut copy = copy.clone();
            copy.chown = x.opt(&copy.chown)?;
            copy.chmod = x.opt(&copy.chmod)?;
            copy.sources = x.all(&copy.sources)?;
            copy.dest = x.word(&copy.dest)?;
            copy.heredocs = x.contents(&copy.heredocs)?;
            Instruction::Copy(copy)
        }
        Instruction::Workdir(p) => Instruction::Workdir(x.word(p)?),
        Instruction::User(u) => Instruction::User(x.word(u)?),
        Instruction::StopSignal(s) => Instruction::StopSignal(x.word(s)?),
        Instruction::Volume(v) => Instruction::Volume(x.all(v)?),
        Instruction::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                let words = x.lex.process_words(p, env).map_err(|e| Error::expand(cmd.line, e.to_string()))?;
                out.extend(words);
            }
            Instruction::Expose(out)
        }
        Instruction::Run(run) => {
            let mut run = run.clone();
            let mut f = |v: &str| x.lex.process_word(v, env).map_err(|e| e.to_string());
            run.mounts = run
                .mounts
                .iter()
                .map(|m| parse_mount(&m.raw, Some(&mut f)))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::expand(cmd.line, e))?;
            Instruction::Run(run)
        }
        Instruction::Arg(args) => {
            let mut args = args.clone();
            for a in &mut args {
                if let Some(v) = &a.value {
                    a.value = Some(x.word(v)?);
                }
            }
            Instruction::Arg(args)
        }
        other => other.clone(),
    };
    Ok(Command { instruction, ..cmd.clone() })
}

/// Expands a stage's base name and platform with the meta arguments
/// (BuildKit `buildDispatchStates`), with BuildKit's errors for a blank
/// result.
pub fn expand_from(stage: &Stage, escape: char, meta_env: &dyn EnvGetter) -> Result<ExpandedFrom> {
    let lex = Lexer::new(escape);
    let base = lex.process_word(&stage.base, meta_env).map_err(|e| Error::expand(stage.line, e.to_string()))?;
    if base.is_empty() {
        return Err(Error::expand(stage.line, format!("base name ({}) should not be blank", stage.base)));
    }
    let platform = match &stage.platform {
        None => None,
        Some(p) => {
            let v = lex
                .process_word(p, meta_env)
                .map_err(|e| Error::expand(stage.line, format!("failed to process arguments for platform {p}: {e}")))?;
            if v.is_empty() {
                return Err(Error::expand(stage.line, format!("empty platform value from expression {p}")));
            }
            Some(v)
        }
    };
    Ok(ExpandedFrom { base, platform })
}

impl Dockerfile {
    /// The values of the meta arguments (BuildKit `buildMetaArgs`): starting
    /// from `predefined` (e.g. `TARGETPLATFORM`, `BUILDPLATFORM`), each meta
    /// `ARG` takes its `--build-arg` value from `build_args` when given, else
    /// its default expanded with the arguments before it; an `ARG` with
    /// neither stays unset.
    pub fn meta_env(&self, predefined: &EnvList, build_args: &dyn EnvGetter) -> Result<EnvList> {
        let lex = Lexer::new(self.escape_token);
        let mut env = predefined.clone();
        for meta in &self.meta_args {
            for arg in &meta.args {
                let value = match (build_args.get_env(&arg.key), &arg.value) {
                    (Some(v), _) => Some(v.to_string()),
                    (None, Some(default)) => {
                        Some(lex.process_word(default, &env).map_err(|e| Error::expand(meta.line, e.to_string()))?)
                    }
                    (None, None) => None,
                };
                if let Some(v) = value {
                    env.set(arg.key.clone(), v);
                }
            }
        }
        Ok(env)
    }
}
