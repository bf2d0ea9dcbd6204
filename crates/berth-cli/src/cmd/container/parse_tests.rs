//! The create request built from flags, compared with what the real docker
//! CLI 28.2.2 sent for the same command lines (recorded in `testdata/` by
//! pointing `docker run`/`docker create` at a socket that logs requests).

use super::*;
use crate::cmd::container::opts::{CreateArgs, RunArgs};
use clap::{Args, FromArgMatches};

fn opts_and_detach(args: &[String]) -> (ContainerOpts, bool) {
    let (verb, rest) = args.split_first().unwrap();
    let argv = std::iter::once(verb.clone()).chain(rest.iter().cloned());
    match verb.as_str() {
        "run" => {
            let m = RunArgs::augment_args(clap::Command::new("run")).try_get_matches_from(argv).unwrap();
            let r = RunArgs::from_arg_matches(&m).unwrap();
            (r.opts, r.detach.unwrap_or(false))
        }
        "create" => {
            let m = CreateArgs::augment_args(clap::Command::new("create")).try_get_matches_from(argv).unwrap();
            (CreateArgs::from_arg_matches(&m).unwrap().opts, false)
        }
        other => panic!("{other}"),
    }
}

fn opts_from(args: &[String]) -> ContainerOpts {
    opts_and_detach(args).0
}

fn sort_binds(v: &mut Value) {
    if let Some(Value::Array(b)) = v.pointer_mut("/HostConfig/Binds") {
        b.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
    }
}

fn check_fixture(name: &str, text: &str) {
    let fixture: Value = serde_json::from_str(text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env_list = dir.path().join("env.list");
    let labels_list = dir.path().join("labels.list");
    std::fs::write(&env_list, "A=1\n# comment\nB_UNSET_XYZ\nBERTH_FIXTURE_FOO\n  C=spaced \nD= x\n").unwrap();
    std::fs::write(&labels_list, "l1=v1\nl2\n").unwrap();
    std::env::set_var("BERTH_FIXTURE_FOO", "fooval");
    let args: Vec<String> = fixture["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            a.as_str()
                .unwrap()
                .replace("/tmp/cap/env.list", &env_list.to_string_lossy())
                .replace("/tmp/cap/labels.list", &labels_list.to_string_lossy())
        })
        .collect();
    let (o, detach) = opts_and_detach(&args);
    let parsed = parse(&o, (0, 0), "1.47").unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let mut got = parsed.body;
    if detach {
        crate::cmd::container::run::detach_body(&mut got);
    }
    let mut want = fixture["body"].clone();
    sort_binds(&mut got);
    sort_binds(&mut want);
    assert_eq!(
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap(),
        "fixture {name}"
    );
    let query = crate::cmd::container::run::create_query(o.name.as_deref(), o.platform.as_deref());
    assert_eq!(query.trim_start_matches('?'), fixture["query"].as_str().unwrap(), "fixture {name}");
}

macro_rules! fixtures {
    ($($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                check_fixture(stringify!($name), include_str!(concat!("testdata/", stringify!($name), ".json")));
            }
        )*
    };
}

fixtures!(
    simple, full, attach, net, entryempty, pub_p, nohealth, hostnet, multinet, stdin, ports, vols, misc, usernet,
    ctrnet
);

fn err(args: &[&str]) -> ParseError {
    let mut v: Vec<String> = vec!["create".into()];
    v.extend(args.iter().map(|s| s.to_string()));
    v.push("busybox".into());
    parse(&opts_from(&v), (0, 0), "1.47").unwrap_err()
}

#[test]
fn errors_render_like_docker() {
    assert_eq!(
        err(&["--ulimit", "nofile"]).render("create"),
        "invalid argument \"nofile\" for \"--ulimit\" flag: invalid ulimit argument: nofile\n\n\
         Usage:  berth create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth create --help' for more information"
    );
    assert_eq!(
        err(&["--restart", "always", "--rm"]).render("run"),
        "berth: conflicting options: cannot specify both --restart and --rm\n\nRun 'berth run --help' for more information"
    );
}

#[test]
fn flag_errors_like_docker() {
    let flag = |args: &[&str]| match err(args) {
        ParseError::Flag { flag, value, msg } => {
            format!("invalid argument {} for {} flag: {msg}", go_quote(&value), go_quote(flag))
        }
        ParseError::Invalid(m) => panic!("{m}"),
    };
    // Recorded from docker 28.2.2.
    assert_eq!(flag(&["--ulimit", "nofile=10:5"]), "invalid argument \"nofile=10:5\" for \"--ulimit\" flag: ulimit soft limit must be less than or equal to hard limit: 10 > 5");
    assert_eq!(
        flag(&["--mount", "dst"]),
        "invalid argument \"dst\" for \"--mount\" flag: invalid field 'dst' must be a key=value pair"
    );
    assert_eq!(flag(&["--mount", ""]), "invalid argument \"\" for \"--mount\" flag: EOF");
    assert_eq!(
        flag(&["--mount", "type=bind"]),
        "invalid argument \"type=bind\" for \"--mount\" flag: target is required"
    );
    assert_eq!(flag(&["-e", "=x"]), "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x");
    assert_eq!(flag(&["-l", "=x"]), "invalid argument \"=x\" for \"-l, --label\" flag: invalid label '=x': empty name");
    assert_eq!(
        flag(&["--add-host", "foo"]),
        "invalid argument \"foo\" for \"--add-host\" flag: bad format for add-host: \"foo\""
    );
    assert_eq!(
        flag(&["--dns", "bad"]),
        "invalid argument \"bad\" for \"--dns\" flag: IP address is not correctly formatted: bad"
    );
    assert_eq!(flag(&["-m", "abc"]), "invalid argument \"abc\" for \"-m, --memory\" flag: invalid size: 'abc'");
    assert_eq!(
        flag(&["--cpus", "abc"]),
        "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number"
    );
    assert_eq!(
        flag(&["--cpus", "0.0000000001"]),
        "invalid argument \"0.0000000001\" for \"--cpus\" flag: value is too precise"
    );
    assert_eq!(flag(&["--shm-size", "x"]), "invalid argument \"x\" for \"--shm-size\" flag: invalid size: 'x'");
    assert_eq!(flag(&["--memory-swap", "x"]), "invalid argument \"x\" for \"--memory-swap\" flag: invalid size: 'x'");
    assert_eq!(
        flag(&["--network", "name=x,foo=bar"]),
        "invalid argument \"name=x,foo=bar\" for \"--network\" flag: invalid field key foo"
    );
    assert_eq!(
        flag(&["--sysctl", "kernel.foo=1"]),
        "invalid argument \"kernel.foo=1\" for \"--sysctl\" flag: sysctl 'kernel.foo=1' is not allowed"
    );
    assert_eq!(
        flag(&["--stop-timeout", "abc"]),
        "invalid argument \"abc\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
    );
    assert_eq!(
        flag(&["--pids-limit", "x"]),
        "invalid argument \"x\" for \"--pids-limit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        flag(&["-a", "foo"]),
        "invalid argument \"foo\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
    );
}

#[test]
fn parse_errors_like_docker() {
    let inv = |args: &[&str]| match err(args) {
        ParseError::Invalid(m) => m,
        ParseError::Flag { msg, .. } => panic!("{msg}"),
    };
    // Recorded from docker 28.2.2 (after its "docker: " prefix).
    assert_eq!(inv(&["-p", "80:abc"]), "invalid containerPort: abc");
    assert_eq!(
        inv(&["--expose", "abc"]),
        "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax"
    );
    assert_eq!(
        inv(&["--restart", "on-failure:x"]),
        "invalid restart policy format: maximum retry count must be an integer"
    );
    assert_eq!(inv(&["--restart", ":3"]), "invalid restart policy format: no policy provided before colon");
    assert_eq!(inv(&["--restart", "always", "--rm"]), "conflicting options: cannot specify both --restart and --rm");
    assert_eq!(inv(&["-v", ""]), "invalid empty volume spec");
    assert_eq!(inv(&["-v", "/a::/b"]), "invalid spec: /a::/b: empty section between colons");
    assert_eq!(inv(&["--mac-address", "bad"]), "bad is not a valid mac address");
    assert_eq!(inv(&["--network-alias", "a"]), "network-scoped aliases are only supported for user-defined networks");
    assert_eq!(inv(&["--device", ""]), "bad format for path: ");
    assert_eq!(inv(&["--pid", "bad"]), "--pid: invalid PID mode");
    assert_eq!(inv(&["--uts", "bad"]), "--uts: invalid UTS mode");
    assert_eq!(inv(&["--userns", "bad"]), "--userns: invalid USER mode");
    assert_eq!(inv(&["--cgroupns", "bad"]), "--cgroupns: invalid CGROUP mode");
    assert_eq!(inv(&["--health-interval", "-1s"]), "--health-interval cannot be negative");
    assert_eq!(inv(&["--no-healthcheck", "--health-cmd", "x"]), "--no-healthcheck conflicts with --health-* options");
    assert_eq!(inv(&["--security-opt", "foo"]), "Invalid --security-opt: \"foo\"");
    assert_eq!(inv(&["--log-driver", "none", "--log-opt", "a=b"]), "invalid logging opts for driver none");
    assert_eq!(inv(&["--env-file", "/nonexist"]), "open /nonexist: no such file or directory");
    assert_eq!(inv(&["--storage-opt", "x"]), "invalid storage option");
    assert_eq!(inv(&["--health-retries", "-1"]), "--health-retries cannot be negative");
}

#[test]
fn flags_parse_like_pflag() {
    // Non-interspersed: everything after IMAGE is the command, even flags.
    let o = opts_from(&[
        "run".into(),
        "-it".into(),
        "--rm=false".into(),
        "busybox".into(),
        "ls".into(),
        "-l".into(),
        "--rm".into(),
    ]);
    assert_eq!(o.interactive, Some(true));
    assert_eq!(o.tty, Some(true));
    assert_eq!(o.rm, Some(false));
    assert_eq!(o.args, vec!["busybox", "ls", "-l", "--rm"]);
    // A bool flag never takes the next argument as its value.
    let o = opts_from(&["create".into(), "--init".into(), "false".into()]);
    assert_eq!(o.init, Some(true));
    assert_eq!(o.args, vec!["false"]);
    // -h is the hostname, not help.
    let o = opts_from(&["create".into(), "-h".into(), "box".into(), "img".into()]);
    assert_eq!(o.hostname.as_deref(), Some("box"));
}

#[test]
fn console_size_and_old_api_mac() {
    let o = opts_from(&["run".into(), "-t".into(), "--mac-address".into(), "02:42:ac:11:00:02".into(), "img".into()]);
    let p = parse(&o, (30, 100), "1.41").unwrap();
    assert_eq!(p.body["HostConfig"]["ConsoleSize"], json!([30, 100]));
    assert_eq!(p.body["MacAddress"], json!("02:42:ac:11:00:02"));
    assert_eq!(p.body["NetworkingConfig"]["EndpointsConfig"]["default"]["MacAddress"], json!(""));
    let p = parse(&o, (0, 0), "1.47").unwrap();
    assert!(p.body.get("MacAddress").is_none());
}
