//! Node to typed instruction (BuildKit `instructions/parse.go`).

use std::time::Duration;

use super::flags::BFlags;
use super::mount::{parse_mount, Device, MountSpec};
use super::{
    Add, ArgDef, Command, CommandLine, Copy, Dockerfile, Healthcheck, Instruction, KeyValue, MetaArg, NetworkMode,
    Onbuild, Run, SecurityMode, SourceContent, Stage,
};
use crate::error::{Error, Result};
use crate::goconv::{parse_duration, parse_int32};
use crate::heredoc::{chomp_heredoc_content, parse_heredoc};
use crate::lexer::{is_space, EmptyEnv, Lexer};
use crate::parser::{Node, ParseResult};
use crate::quote::go_quote;
use crate::suggest;

/// What one node parses to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedInstruction {
    /// A `FROM`.
    Stage(Stage),
    /// Any other instruction.
    Command(Command),
}

type Res<T> = std::result::Result<T, String>;

const ALL_INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The request BuildKit builds from a node (`parseRequest`).
struct Request<'a> {
    node: &'a Node,
    args: Vec<String>,
    flags: BFlags,
    escape: char,
}

impl Request<'_> {
    fn json(&self) -> bool {
        self.node.json
    }

    fn original(&self) -> &str {
        &self.node.original
    }
}

/// BuildKit `nodeArgs`: the arguments, with an `ONBUILD` trigger flattened
/// to its keyword followed by its arguments.
fn node_args(node: &Node) -> Vec<String> {
    match &node.sub {
        Some(sub) => {
            let mut v = vec![sub.value.clone()];
            v.extend(node_args(sub));
            v
        }
        None => node.args.clone(),
    }
}

/// Parses one node (BuildKit `ParseInstruction`). `escape` is the file's
/// escape token, used to validate `RUN --mount` values. The error carries the
/// node's start line.
pub fn parse_instruction(node: &Node, escape: char) -> Result<ParsedInstruction> {
    parse_node(node, escape).map_err(|e| Error::instruction(node.start_line, e))
}

fn command(req: &Request<'_>, instruction: Instruction) -> ParsedInstruction {
    ParsedInstruction::Command(Command {
        instruction,
        keyword: req.node.value.clone(),
        source: req.node.original.trim_matches(is_space).to_string(),
        line: req.node.start_line,
        end_line: req.node.end_line,
        comments: req.node.comments.clone(),
    })
}

fn parse_node(node: &Node, escape: char) -> Res<ParsedInstruction> {
    let mut req = Request { node, args: node_args(node), flags: BFlags::new(&node.flags), escape };
    let instruction = match node.value.to_lowercase().as_str() {
        "env" => parse_env(&mut req)?,
        "maintainer" => parse_maintainer(&mut req)?,
        "label" => parse_label(&mut req)?,
        "add" => parse_add(&mut req)?,
        "copy" => parse_copy(&mut req)?,
        "from" => return parse_from(&mut req).map(ParsedInstruction::Stage),
        "onbuild" => parse_onbuild(&mut req)?,
        "workdir" => parse_workdir(&mut req)?,
        "run" => parse_run(&mut req)?,
        "cmd" => {
            req.flags.parse()?;
            Instruction::Cmd(command_line(&req))
        }
        "healthcheck" => parse_healthcheck(&mut req)?,
        "entrypoint" => {
            req.flags.parse()?;
            Instruction::Entrypoint(command_line(&req))
        }
        "expose" => parse_expose(&mut req)?,
        "user" => parse_user(&mut req)?,
        "volume" => parse_volume(&mut req)?,
        "stopsignal" => parse_stopsignal(&req)?,
        "arg" => Instruction::Arg(parse_arg(&req)?),
        "shell" => parse_shell(&mut req)?,
        _ => {
            return Err(suggest::wrap(
                format!("unknown instruction: {}", node.value),
                &node.value,
                &ALL_INSTRUCTIONS,
                false,
            ))
        }
    };
    Ok(command(&req, instruction))
}

/// Parses an `ONBUILD` trigger of a base image (the text of
/// [`Onbuild::expression`](super::Onbuild)) into the command to run at the
/// start of a stage using that image, as BuildKit's `initOnBuildTriggers`:
/// the text must hold exactly one instruction, which must not be `FROM`.
/// `line` is the line of the stage's `FROM`, where errors are reported.
pub fn parse_onbuild_trigger(trigger: &str, line: usize) -> Result<Command> {
    let ast = crate::parser::parse(trigger).map_err(|e| Error::instruction(line, e.message()))?;
    let [node] = ast.children.as_slice() else {
        return Err(Error::instruction(line, "onbuild trigger should be a single expression"));
    };
    let node = Node { start_line: line, end_line: line, ..node.clone() };
    match parse_instruction(&node, ast.escape_token)? {
        ParsedInstruction::Command(cmd) => Ok(cmd),
        ParsedInstruction::Stage(_) => Err(Error::instruction(line, "*instructions.Stage is not a command type")),
    }
}

/// Parses the nodes of a [`ParseResult`] into stages (BuildKit
/// `instructions.Parse`). Errors read `dockerfile parse error on line N: ...`.
pub fn parse(ast: &ParseResult) -> Result<Dockerfile> {
    let escape = ast.escape_token;
    let mut stages: Vec<Stage> = Vec::new();
    let mut meta_args = Vec::new();
    for node in &ast.children {
        match parse_instruction(node, escape)? {
            ParsedInstruction::Stage(stage) => stages.push(stage),
            ParsedInstruction::Command(cmd) => {
                let Some(stage) = stages.last_mut() else {
                    if let Instruction::Arg(args) = cmd.instruction {
                        meta_args.push(MetaArg { args, line: cmd.line, end_line: cmd.end_line, source: cmd.source });
                        continue;
                    }
                    return Err(Error::instruction(node.start_line, "no build stage in current context"));
                };
                stage.commands.push(cmd);
            }
        }
    }
    Ok(Dockerfile {
        meta_args,
        stages,
        escape_token: escape,
        directives: ast.directives.clone(),
        warnings: ast.warnings.clone(),
    })
}

fn err_at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn err_exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn err_no_destination(cmd: &str) -> String {
    format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
}

fn parse_kvps(args: &[String], cmd: &str) -> Res<Vec<KeyValue>> {
    if args.is_empty() {
        return Err(err_at_least_one(cmd));
    }
    if args.len() % 3 != 0 {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::with_capacity(args.len() / 3);
    for triple in args.chunks(3) {
        if triple[0].is_empty() {
            return Err(format!("{cmd} names can not be blank"));
        }
        out.push(KeyValue { key: triple[0].clone(), value: triple[1].clone(), legacy: triple[2].is_empty() });
    }
    Ok(out)
}

fn parse_env(req: &mut Request<'_>) -> Res<Instruction> {
    req.flags.parse()?;
    Ok(Instruction::Env(parse_kvps(&req.args, "ENV")?))
}

fn parse_maintainer(req: &mut Request<'_>) -> Res<Instruction> {
    if req.args.len() != 1 {
        return Err(err_exactly_one("MAINTAINER"));
    }
    req.flags.parse()?;
    Ok(Instruction::Maintainer(req.args[0].clone()))
}

fn parse_label(req: &mut Request<'_>) -> Res<Instruction> {
    req.flags.parse()?;
    Ok(Instruction::Label(parse_kvps(&req.args, "LABEL")?))
}

/// BuildKit `parseSourcesAndDest`: the last argument is the destination,
/// heredoc words among the others become inline sources.
fn sources_and_dest(req: &Request<'_>, cmd: &str) -> Res<(Vec<String>, Vec<SourceContent>, String)> {
    let (dest, srcs) = match req.args.split_last() {
        Some((d, s)) => (d.clone(), s),
        None => (String::new(), &[][..]),
    };
    if let Ok(Some(_)) = parse_heredoc(&dest) {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                let content = req
                    .node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                let data = if h.chomp { chomp_heredoc_content(&content) } else { content };
                contents.push(SourceContent { path: h.name, data, expand: h.expand });
            }
            _ => paths.push(src.clone()),
        }
    }
    Ok((paths, contents, dest))
}

fn parse_add(req: &mut Request<'_>) -> Res<Instruction> {
    if req.args.len() < 2 {
        return Err(err_no_destination("ADD"));
    }
    let f = &mut req.flags;
    f.add_string("chown", "");
    f.add_string("chmod", "");
    f.add_bool("link");
    f.add_bool("keep-git-dir");
    f.add_string("checksum", "");
    f.add_bool("unpack");
    f.add_strings("exclude");
    f.parse()?;
    let (sources, heredocs, dest) = sources_and_dest(req, "ADD")?;
    let f = &req.flags;
    Ok(Instruction::Add(Add {
        sources,
        heredocs,
        dest,
        chown: f.opt_string("chown"),
        chmod: f.opt_string("chmod"),
        link: f.bool("link"),
        exclude: f.strings("exclude"),
        keep_git_dir: f.opt_bool("keep-git-dir"),
        checksum: f.opt_string("checksum"),
        unpack: f.opt_bool("unpack"),
    }))
}

fn parse_copy(req: &mut Request<'_>) -> Res<Instruction> {
    if req.args.len() < 2 {
        return Err(err_no_destination("COPY"));
    }
    let f = &mut req.flags;
    f.add_string("chown", "");
    f.add_string("from", "");
    f.add_string("chmod", "");
    f.add_bool("link");
    f.add_strings("exclude");
    f.add_bool("parents");
    f.parse()?;
    let (sources, heredocs, dest) = sources_and_dest(req, "COPY")?;
    let f = &req.flags;
    Ok(Instruction::Copy(Copy {
        sources,
        heredocs,
        dest,
        from: f.opt_string("from"),
        chown: f.opt_string("chown"),
        chmod: f.opt_string("chmod"),
        link: f.bool("link"),
        exclude: f.strings("exclude"),
        parents: f.bool("parents"),
    }))
}

/// `^[a-z][a-z0-9-_.]*$`
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn doc_comment(comments: &[String], name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let prefix = format!("{name} ");
    comments.iter().find_map(|line| line.strip_prefix(&prefix).map(str::to_string))
}

fn parse_from(req: &mut Request<'_>) -> Res<Stage> {
    let args = &req.args;
    let name = if args.len() == 3 && args[1].eq_ignore_ascii_case("as") {
        let name = args[2].to_lowercase();
        if !valid_stage_name(&name) {
            return Err(format!(
                "invalid name for build stage: {}, name can't start with a number or contain symbols",
                go_quote(&args[2])
            ));
        }
        Some(name)
    } else if args.len() != 1 {
        return Err("FROM requires either one or three arguments".to_string());
    } else {
        None
    };
    req.flags.add_string("platform", "");
    req.flags.parse()?;
    let node = req.node;
    Ok(Stage {
        doc_comment: name.as_deref().and_then(|n| doc_comment(&node.comments, n)),
        name,
        base: req.args[0].clone(),
        platform: req.flags.opt_string("platform"),
        commands: Vec::new(),
        line: node.start_line,
        end_line: node.end_line,
        source: node.original.trim_matches(is_space).to_string(),
        keyword: node.value.clone(),
        comments: node.comments.clone(),
    })
}

/// `(?i)^\s*ONBUILD\s*` removed from the original line.
fn strip_onbuild(original: &str) -> &str {
    let re_space = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let s = original.trim_start_matches(re_space);
    match s.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => s[7..].trim_start_matches(re_space),
        _ => original,
    }
}

fn parse_onbuild(req: &mut Request<'_>) -> Res<Instruction> {
    let Some(first) = req.args.first() else {
        return Err(err_at_least_one("ONBUILD"));
    };
    let trigger = first.trim_matches(is_space).to_uppercase();
    req.flags.parse()?;
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".to_string()),
        "MAINTAINER" | "FROM" => return Err(format!("{trigger} isn't allowed as an ONBUILD trigger")),
        _ => {}
    }
    let mut expression = strip_onbuild(req.original()).to_string();
    for heredoc in &req.node.heredocs {
        expression.push('\n');
        expression.push_str(&heredoc.content);
        expression.push_str(&heredoc.name);
    }
    Ok(Instruction::Onbuild(Onbuild { expression }))
}

fn parse_workdir(req: &mut Request<'_>) -> Res<Instruction> {
    if req.args.len() != 1 {
        return Err(err_exactly_one("WORKDIR"));
    }
    req.flags.parse()?;
    Ok(Instruction::Workdir(req.args[0].clone()))
}

/// BuildKit `handleJSONArgs` + `PrependShell`: the exec form as is, the
/// shell form joined into one string.
fn command_line(req: &Request<'_>) -> CommandLine {
    if req.json() {
        CommandLine::Exec(req.args.clone())
    } else {
        CommandLine::Shell(req.args.join(" "))
    }
}

fn parse_run(req: &mut Request<'_>) -> Res<Instruction> {
    let f = &mut req.flags;
    f.add_strings("device");
    f.add_strings("mount");
    f.add_string("network", "default");
    f.add_string("security", "sandbox");
    f.parse()?;
    let flags_used = req.flags.used();
    let cmd = command_line(req);

    let devices = req.flags.strings("device").iter().map(|d| Device::parse(d)).collect::<Res<Vec<_>>>()?;
    let mounts =
        req.flags.strings("mount").iter().map(|m| parse_mount_at_parse_time(m, req.escape)).collect::<Res<Vec<_>>>()?;
    let network = match req.flags.string("network").as_str() {
        "default" => NetworkMode::Default,
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        other => return Err(format!("invalid network mode {}", go_quote(other))),
    };
    let security = match req.flags.string("security").as_str() {
        "sandbox" => SecurityMode::Sandbox,
        "insecure" => SecurityMode::Insecure,
        other => return Err(format!("security {} is not valid", go_quote(other))),
    };
    Ok(Instruction::Run(Run {
        cmd,
        heredocs: req.node.heredocs.clone(),
        mounts,
        network,
        security,
        devices,
        flags_used,
    }))
}

/// BuildKit checks a mount at parse time only for CSV syntax and `from=`
/// variables, and validates the rest after expansion. A mount without `$`
/// expands to the same thing whatever the variables, so it is validated now
/// (same messages, reported earlier); one with `$` is checked like BuildKit
/// and parsed leniently until [`crate::expand`] runs.
fn parse_mount_at_parse_time(raw: &str, escape: char) -> Res<MountSpec> {
    parse_mount(raw, None)?;
    if raw.contains('$') {
        let mut lex = Lexer::new(escape);
        lex.skip_unset_env = true;
        let mut keep = |v: &str| lex.process_word(v, &EmptyEnv).map_err(|e| e.to_string());
        return Ok(parse_mount(raw, Some(&mut keep))
            .unwrap_or_else(|_| MountSpec { raw: raw.to_string(), ..MountSpec::default() }));
    }
    let lex = Lexer::new(escape);
    let mut expand = |v: &str| lex.process_word(v, &EmptyEnv).map_err(|e| e.to_string());
    parse_mount(raw, Some(&mut expand))
}

/// BuildKit `parseOptInterval`: empty is zero, below 1ms is an error.
fn parse_opt_interval(flags: &BFlags, name: &str) -> Res<Duration> {
    let s = flags.string(name);
    if s.is_empty() {
        return Ok(Duration::ZERO);
    }
    let d = parse_duration(&s)?;
    if d == 0 {
        return Ok(Duration::ZERO);
    }
    if d < 1_000_000 {
        return Err(format!("Interval {} cannot be less than 1ms", go_quote(name)));
    }
    Ok(Duration::from_nanos(u64::try_from(d).unwrap_or(u64::MAX)))
}

fn parse_healthcheck(req: &mut Request<'_>) -> Res<Instruction> {
    let Some(first) = req.args.first() else {
        return Err(err_at_least_one("HEALTHCHECK"));
    };
    let typ = first.to_uppercase();
    let args = &req.args[1..];
    if typ == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".to_string());
        }
        return Ok(Instruction::Healthcheck(Healthcheck { test: vec![typ], ..Healthcheck::default() }));
    }
    let f = &mut req.flags;
    f.add_string("interval", "");
    f.add_string("timeout", "");
    f.add_string("start-period", "");
    f.add_string("start-interval", "");
    f.add_string("retries", "");
    f.parse()?;

    let test = match typ.as_str() {
        "CMD" => {
            let cmd: Vec<String> = if args.is_empty() {
                Vec::new()
            } else if req.node.json {
                args.to_vec()
            } else {
                vec![args.join(" ")]
            };
            if cmd.is_empty() {
                return Err("Missing command after HEALTHCHECK CMD".to_string());
            }
            let kind = if req.node.json { "CMD" } else { "CMD-SHELL" };
            let mut test = vec![kind.to_string()];
            test.extend(cmd);
            test
        }
        _ => return Err(format!("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(&typ))),
    };
    let f = &req.flags;
    let interval = parse_opt_interval(f, "interval")?;
    let timeout = parse_opt_interval(f, "timeout")?;
    let start_period = parse_opt_interval(f, "start-period")?;
    let start_interval = parse_opt_interval(f, "start-interval")?;
    let retries_flag = f.string("retries");
    let retries = if retries_flag.is_empty() {
        0
    } else {
        let r = parse_int32(&retries_flag)?;
        if r < 0 {
            return Err(format!("--retries cannot be negative ({r})"));
        }
        r
    };
    Ok(Instruction::Healthcheck(Healthcheck { test, interval, timeout, start_period, start_interval, retries }))
}

fn parse_expose(req: &mut Request<'_>) -> Res<Instruction> {
    if req.args.is_empty() {
        return Err(err_at_least_one("EXPOSE"));
    }
    req.flags.parse()?;
    let mut ports = req.args.clone();
    ports.sort();
    Ok(Instruction::Expose(ports))
}

fn parse_user(req: &mut Request<'_>) -> Res<Instruction> {
    if req.args.len() != 1 {
        return Err(err_exactly_one("USER"));
    }
    req.flags.parse()?;
    Ok(Instruction::User(req.args[0].clone()))
}

fn parse_volume(req: &mut Request<'_>) -> Res<Instruction> {
    if req.args.is_empty() {
        return Err(err_at_least_one("VOLUME"));
    }
    req.flags.parse()?;
    let mut volumes = Vec::with_capacity(req.args.len());
    for v in &req.args {
        let v = v.trim_matches(is_space);
        if v.is_empty() {
            return Err("VOLUME specified can not be an empty string".to_string());
        }
        volumes.push(v.to_string());
    }
    Ok(Instruction::Volume(volumes))
}

/// BuildKit parses no flags for `STOPSIGNAL`: they are ignored.
fn parse_stopsignal(req: &Request<'_>) -> Res<Instruction> {
    if req.args.len() != 1 {
        return Err(err_exactly_one("STOPSIGNAL"));
    }
    Ok(Instruction::StopSignal(req.args[0].clone()))
}

/// BuildKit parses no flags for `ARG`: they are ignored.
fn parse_arg(req: &Request<'_>) -> Res<Vec<ArgDef>> {
    if req.args.is_empty() {
        return Err(err_at_least_one("ARG"));
    }
    let mut out = Vec::with_capacity(req.args.len());
    for arg in &req.args {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => {
                if k.is_empty() {
                    return Err("ARG names can not be blank".to_string());
                }
                (k.to_string(), Some(v.to_string()))
            }
            None => (arg.clone(), None),
        };
        out.push(ArgDef { doc_comment: doc_comment(&req.node.comments, &key), key, value });
    }
    Ok(out)
}

fn parse_shell(req: &mut Request<'_>) -> Res<Instruction> {
    req.flags.parse()?;
    if req.args.is_empty() {
        return Err(err_at_least_one("SHELL"));
    }
    if !req.json() {
        return Err("SHELL requires the arguments to be in JSON form".to_string());
    }
    Ok(Instruction::Shell(req.args.clone()))
}
