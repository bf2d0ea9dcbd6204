//! Typed instructions and their validation (cases follow BuildKit's
//! `instructions` tests), plus the seed Dockerfiles.

use std::time::Duration;

use berth_dockerfile::{
    instructions, parse, parse_dockerfile, ArgDef, CommandLine, Dockerfile, Instruction, KeyValue, MountType,
    NetworkMode, RunScript, SecurityMode, ShareMode, SourceContent,
};

fn df(text: &str) -> Dockerfile {
    parse_dockerfile(text).unwrap_or_else(|e| panic!("{e}"))
}

fn first_error(text: &str) -> String {
    let ast = parse(text).unwrap_or_else(|e| panic!("parse: {e}"));
    match instructions::parse_instruction(&ast.children[0], ast.escape_token) {
        Ok(p) => panic!("{text:?} accepted: {p:?}"),
        Err(e) => e.message(),
    }
}

#[test]
fn seed_single_stage() {
    let d = df(concat!(
        "FROM python:3.12-slim\n",
        "WORKDIR /app\n",
        "COPY requirements.txt .\n",
        "RUN pip install --no-cache-dir -r requirements.txt\n",
        "COPY . .\n",
        "ENV PYTHONUNBUFFERED=1\n",
        "EXPOSE 8000\n",
        "CMD [\"python\", \"app.py\"]\n",
    ));
    assert!(d.meta_args.is_empty());
    assert_eq!(d.stages.len(), 1);
    let s = &d.stages[0];
    assert_eq!(s.base, "python:3.12-slim");
    assert_eq!(s.name, None);
    assert_eq!(s.platform, None);
    assert_eq!(s.line, 1);
    let c = &s.commands;
    assert_eq!(c.len(), 7);
    assert_eq!(c[0].instruction, Instruction::Workdir("/app".into()));
    assert_eq!(c[0].line, 2);
    match &c[1].instruction {
        Instruction::Copy(copy) => {
            assert_eq!(copy.sources, ["requirements.txt"]);
            assert_eq!(copy.dest, ".");
            assert_eq!(copy.from, None);
            assert!(copy.heredocs.is_empty());
        }
        other => panic!("{other:?}"),
    }
    match &c[2].instruction {
        Instruction::Run(run) => {
            assert_eq!(run.cmd, CommandLine::Shell("pip install --no-cache-dir -r requirements.txt".into()));
            assert!(run.mounts.is_empty());
            assert_eq!(run.network, NetworkMode::Default);
            assert_eq!(run.security, SecurityMode::Sandbox);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c[4].instruction,
        Instruction::Env(vec![KeyValue { key: "PYTHONUNBUFFERED".into(), value: "1".into(), legacy: false }])
    );
    assert_eq!(c[5].instruction, Instruction::Expose(vec!["8000".into()]));
    assert_eq!(c[6].instruction, Instruction::Cmd(CommandLine::Exec(vec!["python".into(), "app.py".into()])));
    assert_eq!(c[6].line, 8);
    assert_eq!(c[6].name(), "CMD");
    assert_eq!(c[6].source, "CMD [\"python\", \"app.py\"]");
}

#[test]
fn seed_two_stages() {
    let d = df(concat!(
        "FROM python:3.12-slim AS builder\n",
        "WORKDIR /build\n",
        "COPY requirements.txt .\n",
        "RUN pip install --prefix=/install -r requirements.txt\n",
        "\n",
        "FROM python:3.12-slim\n",
        "COPY --from=builder /install /usr/local\n",
        "COPY . /app\n",
        "CMD [\"python\", \"/app/app.py\"]\n",
    ));
    assert_eq!(d.stages.len(), 2);
    assert_eq!(d.stages[0].name.as_deref(), Some("builder"));
    assert_eq!(d.stages[1].name, None);
    assert_eq!(d.stages[1].line, 6);
    assert_eq!(d.stage("builder").map(|s| s.line), Some(1));
    assert_eq!(d.stage("BUILDER").map(|s| s.line), Some(1));
    assert_eq!(d.stage("1").map(|s| s.line), Some(6));
    match &d.stages[1].commands[0].instruction {
        Instruction::Copy(copy) => {
            assert_eq!(copy.from.as_deref(), Some("builder"));
            assert_eq!(copy.sources, ["/install"]);
            assert_eq!(copy.dest, "/usr/local");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn seed_run_python_heredoc() {
    let d = df(concat!(
        "FROM python:3.12-slim\n",
        "RUN python - <<'EOF'\n",
        "import sys\n",
        "print(\"hello $USER\", sys.version)\n",
        "EOF\n",
        "RUN echo done\n",
    ));
    let cmds = &d.stages[0].commands;
    let Instruction::Run(run) = &cmds[0].instruction else {
        panic!("{:?}", cmds[0]);
    };
    assert_eq!(run.cmd, CommandLine::Shell("python - <<'EOF'".into()));
    assert_eq!(run.heredocs.len(), 1);
    let h = &run.heredocs[0];
    assert_eq!(h.name, "EOF");
    assert!(!h.expand);
    assert!(!h.chomp);
    assert_eq!(h.content, "import sys\nprint(\"hello $USER\", sys.version)\n");
    assert_eq!((cmds[0].line, cmds[0].end_line), (2, 5));
    assert_eq!(cmds[1].line, 6);
    assert_eq!(
        run.script(false),
        Ok(RunScript::Shell("python - <<'EOF'\nimport sys\nprint(\"hello $USER\", sys.version)\nEOF".into()))
    );
}

#[test]
fn run_heredoc_scripts() {
    let d = df("FROM a\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN <<-EOF\n\techo hi\n\tEOF\n");
    let script = |i: usize| match &d.stages[0].commands[i].instruction {
        Instruction::Run(run) => run.script(false),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        script(0),
        Ok(RunScript::Shebang { name: "EOF".into(), data: "#!/usr/bin/env python3\nprint(1)\n".into() })
    );
    assert_eq!(script(1), Ok(RunScript::Inline("echo hi\n".into())));
}

#[test]
fn copy_heredocs() {
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str, bool)]);
    let cases: [Case<'_>; 8] = [
        ("COPY /foo /bar", &["/foo"], &[]),
        ("COPY <<EOF /bar\nEOF", &[], &[("EOF", "", true)]),
        ("COPY <<EOF /bar\nTESTING\nEOF", &[], &[("EOF", "TESTING\n", true)]),
        ("COPY <<-EOF /bar\n\tTESTING\nEOF", &[], &[("EOF", "TESTING\n", true)]),
        ("COPY <<'EOF' /bar\nTESTING\nEOF", &[], &[("EOF", "TESTING\n", false)]),
        (
            "COPY <<EOF1 <<EOF2 /bar\nthis is the first file\nEOF1\nthis is the second file\nEOF2",
            &[],
            &[("EOF1", "this is the first file\n", true), ("EOF2", "this is the second file\n", true)],
        ),
        ("COPY <<EOF foo.txt /bar\nthis is inline\nEOF", &["foo.txt"], &[("EOF", "this is inline\n", true)]),
        ("COPY <<EOF /quotes\n\"quotes\"\nEOF", &[], &[("EOF", "\"quotes\"\n", true)]),
    ];
    for (text, paths, contents) in cases {
        let d = df(&format!("FROM a\n{text}"));
        let Instruction::Copy(copy) = &d.stages[0].commands[0].instruction else {
            panic!("{text}");
        };
        assert_eq!(copy.dest, if text.contains("/quotes") { "/quotes" } else { "/bar" });
        assert_eq!(copy.sources, paths, "{text}");
        let want: Vec<SourceContent> = contents
            .iter()
            .map(|(p, d, e)| SourceContent { path: (*p).into(), data: (*d).into(), expand: *e })
            .collect();
        assert_eq!(copy.heredocs, want, "{text}");
    }
    assert_eq!(first_error("COPY /foo <<EOF\nEOF"), "COPY cannot accept a heredoc as a destination");
}

#[test]
fn argument_count_errors() {
    for cmd in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
        assert_eq!(first_error(cmd), format!("{cmd} requires exactly one argument"));
    }
    for cmd in ["ENV", "LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME"] {
        assert_eq!(first_error(cmd), format!("{cmd} requires at least one argument"));
    }
    for cmd in ["ADD", "COPY"] {
        assert_eq!(
            first_error(&format!("{cmd} arg1")),
            format!(
                "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
            )
        );
    }
}

#[test]
fn instruction_errors() {
    let cases = [
        ("COPY\t\n\t\tquux \\\n      bar", "COPY requires at least two arguments"),
        ("ONBUILD FROM scratch", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("MAINTAINER --boo joe@example.com", "unknown flag: --boo"),
        ("ONBUILD ONBUILD RUN touch foobar", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FOO bar", "unknown instruction: FOO"),
        ("foo bar", "unknown instruction: foo"),
        ("COPPY a b", "unknown instruction: COPPY (did you mean COPY?)"),
        ("FROM a b", "FROM requires either one or three arguments"),
        ("FROM a AS 1st", "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"),
        ("FROM --platfrom=x a", "unknown flag: --platfrom (did you mean platform?)"),
        ("FROM --plat=x a", "unknown flag: --plat"),
        ("COPY --chmode=644 a b", "unknown flag: --chmode (did you mean chmod?)"),
        ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
        ("COPY --from a b", "missing a value on flag: --from"),
        ("COPY --from=a --from=b a b", "duplicate flag specified: --from"),
        ("ADD --from=x a b", "unknown flag: --from"),
        ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
        ("SHELL []", "SHELL requires at least one argument"),
        ("VOLUME [\"\"]", "VOLUME specified can not be an empty string"),
        ("ARG =x", "ARG names can not be blank"),
        ("ENV =x", "ENV names can not be blank"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK CONNECT TCP 7000", "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)"),
        ("HEALTHCHECK --interval=50ns CMD x", "Interval \"interval\" cannot be less than 1ms"),
        ("HEALTHCHECK --timeout=5 CMD x", "time: missing unit in duration \"5\""),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD x", "strconv.ParseInt: parsing \"x\": invalid syntax"),
        ("RUN --network=bridge x", "invalid network mode \"bridge\""),
        ("RUN --security=root x", "security \"root\" is not valid"),
        ("RUN --mount=type=cache,from=$X x", "'from' doesn't support variable expansion, define alias stage instead"),
        ("RUN --mount=type=nope x", "unsupported mount type \"nope\""),
        ("RUN --mount=type=secret x", "invalid secret mount. one of source, target required"),
        (
            "RUN --mount='target=a\"b' x",
            "failed to parse csv mounts: parse error on line 1, column 9: bare \" in non-quoted-field",
        ),
        ("RUN --device=a,b x", "invalid field 'b' must be a key=value pair"),
        ("RUN --foo x", "unknown flag: --foo"),
        ("WORKDIR --x=1 /a", "unknown flag: --x"),
    ];
    for (text, want) in cases {
        let got = first_error(text);
        assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
    }
}

#[test]
fn error_wording_with_lines() {
    let err = parse_dockerfile("FROM a\nRUN x\nBOGUS bar\n").unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 3: unknown instruction: BOGUS");
    assert_eq!(err.line(), Some(3));
    // BuildKit appends a suggestion when an instruction name is close.
    let err = parse_dockerfile("FROM a\n\nFOO bar\n").unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 3: unknown instruction: FOO (did you mean FROM?)");
    let err = parse_dockerfile("FROM a\nworkdri /x\n").unwrap_err();
    assert_eq!(err.message(), "unknown instruction: workdri (did you mean workdir?)");
    let err = parse_dockerfile("FROM a\nFROM a b\n").unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 2: FROM requires either one or three arguments");
    assert_eq!(err.legacy_message(), "Dockerfile parse error line 2: FROM requires either one or three arguments");
    let err = parse_dockerfile("ARG a\nRUN x\n").unwrap_err();
    assert_eq!(err.to_string(), "dockerfile parse error on line 2: no build stage in current context");
    assert_eq!(err.kind(), berth_error::ErrorKind::InvalidArgument);
}

#[test]
fn ignored_flags_like_buildkit() {
    // BuildKit parses no flags for STOPSIGNAL, ARG and HEALTHCHECK NONE.
    let d = df("FROM a\nSTOPSIGNAL --x SIGTERM\nARG --y z\nHEALTHCHECK --z NONE\n");
    let c = &d.stages[0].commands;
    assert_eq!(c[0].instruction, Instruction::StopSignal("SIGTERM".into()));
    assert!(matches!(&c[1].instruction, Instruction::Arg(a) if a[0].key == "z"));
    assert!(matches!(&c[2].instruction, Instruction::Healthcheck(h) if h.is_none()));
}

#[test]
fn stages_meta_args_and_comments() {
    let d = df(concat!(
        "# foo sets foo\n",
        "ARG foo=bar\n",
        "ARG BASE=alpine VERSION\n",
        "\n",
        "# base defines first stage\n",
        "FROM --platform=$BUILDPLATFORM ${BASE}:3 AS Base\n",
        "# this is irrelevant\n",
        "ARG foo\n",
        "# bar defines bar\n",
        "# baz is something else\n",
        "ARG bar baz=123\n",
    ));
    assert_eq!(d.meta_args.len(), 2);
    assert_eq!(
        d.meta_args[0].args,
        [ArgDef { key: "foo".into(), value: Some("bar".into()), doc_comment: Some("sets foo".into()) }]
    );
    assert_eq!(d.meta_args[1].args[1].key, "VERSION");
    assert_eq!(d.meta_args[1].args[1].value, None);
    let s = &d.stages[0];
    assert_eq!(s.name.as_deref(), Some("base"));
    assert_eq!(s.base, "${BASE}:3");
    assert_eq!(s.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s.doc_comment.as_deref(), Some("defines first stage"));
    let Instruction::Arg(a0) = &s.commands[0].instruction else { panic!() };
    assert_eq!(a0[0].doc_comment, None);
    let Instruction::Arg(a1) = &s.commands[1].instruction else { panic!() };
    assert_eq!(a1[0].doc_comment.as_deref(), Some("defines bar"));
    assert_eq!(a1[1].doc_comment.as_deref(), Some("is something else"));
    assert_eq!(a1[1].value.as_deref(), Some("123"));
}

#[test]
fn typed_flags_and_forms() {
    let d = df(concat!(
        "FROM a\n",
        "RUN --mount=type=cache,target=/root/.cache,sharing=locked --mount=type=secret,id=tok,env=TOKEN --network=none --security=insecure make\n",
        "COPY --chown=1:2 --chmod=0755 --link --parents --exclude=*.md --exclude=.git src/ /dst/\n",
        "ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y.git /y\n",
        "HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=500ms --retries=3 CMD curl -f http://localhost/\n",
        "HEALTHCHECK CMD [\"curl\", \"-f\", \"x\"]\n",
        "ENV a b c\n",
        "LABEL \"com.x\"=\"y z\" k=v\n",
        "ENTRYPOINT [\"/init\"]\n",
        "ENTRYPOINT\n",
        "SHELL [\"pwsh\", \"-c\"]\n",
        "VOLUME /a /b\n",
        "EXPOSE 8080/udp 80 443\n",
        "USER app:app\n",
        "ONBUILD RUN echo hi\n",
        "MAINTAINER me <me@x>\n",
    ));
    let c = &d.stages[0].commands;
    let Instruction::Run(run) = &c[0].instruction else { panic!() };
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(run.mounts[0].kind, MountType::Cache);
    assert_eq!(run.mounts[0].target.as_deref(), Some("/root/.cache"));
    assert_eq!(run.mounts[0].sharing, Some(ShareMode::Locked));
    assert!(!run.mounts[0].read_only);
    assert_eq!(run.mounts[1].kind, MountType::Secret);
    assert_eq!(run.mounts[1].id.as_deref(), Some("tok"));
    assert_eq!(run.mounts[1].env.as_deref(), Some("TOKEN"));
    assert_eq!(run.network, NetworkMode::None);
    assert_eq!(run.security, SecurityMode::Insecure);
    assert_eq!(run.flags_used, ["mount", "network", "security"]);

    let Instruction::Copy(copy) = &c[1].instruction else { panic!() };
    assert_eq!(copy.chown.as_deref(), Some("1:2"));
    assert_eq!(copy.chmod.as_deref(), Some("0755"));
    assert!(copy.link && copy.parents);
    assert_eq!(copy.exclude, ["*.md", ".git"]);

    let Instruction::Add(add) = &c[2].instruction else { panic!() };
    assert_eq!(add.checksum.as_deref(), Some("sha256:abc"));
    assert_eq!(add.keep_git_dir, Some(true));
    assert_eq!(add.unpack, Some(false));
    assert!(!add.link);

    let Instruction::Healthcheck(h) = &c[3].instruction else { panic!() };
    assert_eq!(h.test, ["CMD-SHELL", "curl -f http://localhost/"]);
    assert_eq!(h.interval, Duration::from_secs(5));
    assert_eq!(h.timeout, Duration::from_secs(3));
    assert_eq!(h.start_period, Duration::from_secs(60));
    assert_eq!(h.start_interval, Duration::from_millis(500));
    assert_eq!(h.retries, 3);
    let Instruction::Healthcheck(h) = &c[4].instruction else { panic!() };
    assert_eq!(h.test, ["CMD", "curl", "-f", "x"]);

    assert_eq!(
        c[5].instruction,
        Instruction::Env(vec![KeyValue { key: "a".into(), value: "b c".into(), legacy: true }])
    );
    let Instruction::Label(labels) = &c[6].instruction else { panic!() };
    assert_eq!(labels[0].key, "\"com.x\"");
    assert_eq!(labels[0].value, "\"y z\"");
    assert_eq!(c[7].instruction, Instruction::Entrypoint(CommandLine::Exec(vec!["/init".into()])));
    assert_eq!(c[8].instruction, Instruction::Entrypoint(CommandLine::Shell(String::new())));
    assert_eq!(c[9].instruction, Instruction::Shell(vec!["pwsh".into(), "-c".into()]));
    assert_eq!(c[10].instruction, Instruction::Volume(vec!["/a".into(), "/b".into()]));
    assert_eq!(c[11].instruction, Instruction::Expose(vec!["443".into(), "80".into(), "8080/udp".into()]));
    assert_eq!(c[12].instruction, Instruction::User("app:app".into()));
    let Instruction::Onbuild(ob) = &c[13].instruction else { panic!() };
    assert_eq!(ob.expression, "RUN echo hi");
    assert_eq!(c[14].instruction, Instruction::Maintainer("me <me@x>".into()));
}

#[test]
fn onbuild_triggers_parse_back() {
    let d = df("FROM a\nONBUILD COPY --chown=1 . /app\nONBUILD RUN <<EOF\necho hi\nEOF\n");
    let exprs: Vec<String> = d.stages[0]
        .commands
        .iter()
        .map(|c| match &c.instruction {
            Instruction::Onbuild(ob) => ob.expression.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let copy = instructions::parse_onbuild_trigger(&exprs[0], 7).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(copy.line, 7);
    assert!(matches!(&copy.instruction, Instruction::Copy(c) if c.chown.as_deref() == Some("1")));
    let run = instructions::parse_onbuild_trigger(&exprs[1], 7).unwrap_or_else(|e| panic!("{e}"));
    let Instruction::Run(run) = &run.instruction else { panic!() };
    assert_eq!(run.heredocs[0].content, "echo hi\n");
    let err = instructions::parse_onbuild_trigger("RUN a\nRUN b", 3).unwrap_err();
    assert_eq!(err.message(), "onbuild trigger should be a single expression");
    assert!(instructions::parse_onbuild_trigger("FROM x", 3).is_err());
}

#[test]
fn onbuild_heredoc_expression() {
    let d = df("FROM a\nonbuild RUN <<EOF\necho hi\nEOF\n");
    let Instruction::Onbuild(ob) = &d.stages[0].commands[0].instruction else { panic!() };
    assert_eq!(ob.expression, "RUN <<EOF\necho hi\nEOF");
    assert_eq!(d.stages[0].commands[0].keyword, "onbuild");
}

#[test]
fn mounts_with_variables_wait_for_expansion() {
    let d = df("FROM a\nRUN --mount=type=$T,target=/x make\n");
    let Instruction::Run(run) = &d.stages[0].commands[0].instruction else { panic!() };
    assert_eq!(run.mounts[0].raw, "type=$T,target=/x");
}

#[test]
fn escape_directive_reaches_instructions() {
    let d = df("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir c:\\ `\n  /b\nCOPY a `\n  c:\\b\n");
    assert_eq!(d.escape_token, '`');
    assert_eq!(d.directive("escape"), Some("`"));
    let c = &d.stages[0].commands;
    assert_eq!(
        c[0].instruction,
        Instruction::Run(berth_dockerfile::Run {
            cmd: CommandLine::Shell("dir c:\\   /b".into()),
            heredocs: vec![],
            mounts: vec![],
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
            devices: vec![],
            flags_used: vec![],
        })
    );
    let Instruction::Copy(copy) = &c[1].instruction else { panic!() };
    assert_eq!(copy.dest, "c:\\b");
}
