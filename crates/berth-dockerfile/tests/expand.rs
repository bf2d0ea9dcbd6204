//! Expansion of typed instructions with build variables.

use berth_dockerfile::{
    expand, expand_from, parse_dockerfile, CommandLine, Dockerfile, EmptyEnv, EnvList, Instruction, MountType,
};

fn df(text: &str) -> Dockerfile {
    parse_dockerfile(text).unwrap_or_else(|e| panic!("{e}"))
}

fn expanded(text: &str, env: &[&str]) -> Vec<Instruction> {
    let d = df(text);
    let env = EnvList::from_strings(env);
    d.stages[0]
        .commands
        .iter()
        .map(|c| expand(c, d.escape_token, &env).unwrap_or_else(|e| panic!("{e}")).instruction)
        .collect()
}

#[test]
fn expands_the_fields_buildkit_expands() {
    let got = expanded(
        concat!(
            "FROM a\n",
            "ENV APP=/srv/\"my app\" COPY=$DIR\n",
            "LABEL \"org.$NS\"=\"${VER:-dev}\"\n",
            "WORKDIR ${DIR}/x\n",
            "USER ${UID}:$GID\n",
            "STOPSIGNAL $SIG\n",
            "VOLUME $DIR /data\n",
            "EXPOSE $PORTS 9000\n",
            "COPY --chown=$UID --chmod=$MODE $DIR/*.py '$DIR' $DIR/\n",
            "ADD --checksum=$SUM $URL /dl/\n",
            "ARG X=$DIR Y\n",
            "RUN echo $DIR\n",
            "CMD echo $DIR\n",
        ),
        &[
            "DIR=/app",
            "NS=acme",
            "UID=1000",
            "GID=1000",
            "SIG=SIGINT",
            "PORTS=80 443",
            "MODE=0644",
            "SUM=sha256:x",
            "URL=https://e/f",
        ],
    );
    let Instruction::Env(env) = &got[0] else { panic!() };
    assert_eq!((env[0].key.as_str(), env[0].value.as_str()), ("APP", "/srv/my app"));
    assert_eq!(env[1].value, "/app");
    let Instruction::Label(labels) = &got[1] else { panic!() };
    assert_eq!((labels[0].key.as_str(), labels[0].value.as_str()), ("org.acme", "dev"));
    assert_eq!(got[2], Instruction::Workdir("/app/x".into()));
    assert_eq!(got[3], Instruction::User("1000:1000".into()));
    assert_eq!(got[4], Instruction::StopSignal("SIGINT".into()));
    assert_eq!(got[5], Instruction::Volume(vec!["/app".into(), "/data".into()]));
    // EXPOSE arguments are sorted at parse time, then split after expansion.
    assert_eq!(got[6], Instruction::Expose(vec!["80".into(), "443".into(), "9000".into()]));
    let Instruction::Copy(copy) = &got[7] else { panic!() };
    assert_eq!(copy.chown.as_deref(), Some("1000"));
    assert_eq!(copy.chmod.as_deref(), Some("0644"));
    assert_eq!(copy.sources, ["/app/*.py", "$DIR"]);
    assert_eq!(copy.dest, "/app/");
    let Instruction::Add(add) = &got[8] else { panic!() };
    assert_eq!(add.checksum.as_deref(), Some("sha256:x"));
    assert_eq!(add.sources, ["https://e/f"]);
    let Instruction::Arg(args) = &got[9] else { panic!() };
    assert_eq!(args[0].key, "X");
    assert_eq!(args[0].value.as_deref(), Some("/app"));
    assert_eq!(args[1].value, None);
    let Instruction::Run(run) = &got[10] else { panic!() };
    assert_eq!(run.cmd, CommandLine::Shell("echo $DIR".into()));
    assert_eq!(got[11], Instruction::Cmd(CommandLine::Shell("echo $DIR".into())));
}

#[test]
fn expands_heredoc_sources_unless_quoted() {
    let got =
        expanded("FROM a\nCOPY <<EOF <<'RAW' /etc/\nname=\"$NAME\" \\$x\nEOF\nname=$NAME\nRAW\n", &["NAME=berth"]);
    let Instruction::Copy(copy) = &got[0] else { panic!() };
    assert_eq!(copy.heredocs[0].data, "name=\"berth\" $x\n");
    assert_eq!(copy.heredocs[1].data, "name=$NAME\n");
}

#[test]
fn expands_and_validates_mounts() {
    let d = df("FROM a\nRUN --mount=type=$T,target=$CACHE,id=${ID:-pip} make\n");
    let cmd = &d.stages[0].commands[0];
    let env = EnvList::from_strings(["T=cache", "CACHE=/root/.cache"]);
    let out = expand(cmd, d.escape_token, &env).unwrap_or_else(|e| panic!("{e}"));
    let Instruction::Run(run) = &out.instruction else { panic!() };
    assert_eq!(run.mounts[0].kind, MountType::Cache);
    assert_eq!(run.mounts[0].target.as_deref(), Some("/root/.cache"));
    assert_eq!(run.mounts[0].id.as_deref(), Some("pip"));
    assert!(!run.mounts[0].read_only);

    let env = EnvList::from_strings(["T=cahce"]);
    let err = expand(cmd, d.escape_token, &env).unwrap_err();
    assert_eq!(err.to_string(), "unsupported mount type \"cahce\" (did you mean cache?)");
    assert_eq!(err.line(), Some(2));
}

#[test]
fn expansion_errors() {
    let d = df("FROM a\nWORKDIR ${DIR:?must be set}\nCOPY --from=$STAGE a b\n");
    let c = &d.stages[0].commands;
    let err = expand(&c[0], d.escape_token, &EmptyEnv).unwrap_err();
    assert_eq!(err.to_string(), "failed to process \"${DIR:?must be set}\": DIR: must be set");
    assert_eq!(err.line(), Some(2));
    let err = expand(&c[1], d.escape_token, &EnvList::from_strings(["STAGE=x"])).unwrap_err();
    assert!(err.to_string().starts_with("variable expansion is not supported for --from"));
}

#[test]
fn from_uses_meta_args() {
    let d = df(concat!(
        "ARG REGISTRY=docker.io\n",
        "ARG IMAGE=$REGISTRY/library/alpine\n",
        "ARG TAG\n",
        "FROM --platform=$BUILDPLATFORM ${IMAGE}:${TAG:-latest} AS base\n",
        "FROM $EMPTY\n",
    ));
    let predefined = EnvList::from_strings(["BUILDPLATFORM=linux/amd64"]);
    let meta = d.meta_env(&predefined, &EnvList::from_strings(["TAG=3.20"])).unwrap_or_else(|e| panic!("{e}"));
    let from = expand_from(&d.stages[0], d.escape_token, &meta).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from.base, "docker.io/library/alpine:3.20");
    assert_eq!(from.platform.as_deref(), Some("linux/amd64"));

    let meta = d.meta_env(&EnvList::default(), &EmptyEnv).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(meta.pairs().len(), 2);
    let err = expand_from(&d.stages[0], d.escape_token, &meta).unwrap_err();
    assert_eq!(err.message(), "empty platform value from expression $BUILDPLATFORM");
    let err = expand_from(&d.stages[1], d.escape_token, &meta).unwrap_err();
    assert_eq!(err.message(), "base name ($EMPTY) should not be blank");
}

#[test]
fn backtick_escape_in_expansion() {
    let got = expanded("# escape=`\nFROM a\nWORKDIR C:\\`$APP\\$APP\n", &["APP=x"]);
    assert_eq!(got[0], Instruction::Workdir("C:\\$APP\\x".into()));
}
