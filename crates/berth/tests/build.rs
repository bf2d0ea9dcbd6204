//! Root integration tests of the builder: `berth build`, the legacy
//! `POST /build` through raw HTTP and the real docker CLI, the build cache,
//! `.dockerignore`, multi-stage builds, `RUN --mount`, and failures.

mod common;

use std::path::{Path, PathBuf};

use common::{fixture, stderr, stdout, Daemon};
use serde_json::Value;

/// A daemon with the busybox and debian/python fixtures loaded, the python
/// one also tagged as the names the Dockerfiles use.
fn daemon() -> Daemon {
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    d.ok(&["load", "-i", fixture("debian-python.tar").to_str().unwrap()]);
    for t in ["python:3.11-slim", "python:3.11"] {
        d.ok(&["tag", "python:3.12-slim", t]);
    }
    d
}

/// Writes files (path → content) into a new context directory.
fn context(d: &Daemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join("ctx").join(name);
    for (p, c) in files {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
    dir
}

fn build(d: &Daemon, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    d.berth(&args)
}

fn build_ok(d: &Daemon, dir: &Path, extra: &[&str]) -> String {
    let o = build(d, dir, extra);
    assert!(o.status.success(), "build failed: {}{}", stdout(&o), stderr(&o));
    stderr(&o)
}

fn inspect(d: &Daemon, name: &str) -> Value {
    let out = d.ok(&["image", "inspect", name]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// Debian's pip (the fixture's python) installs `--prefix=P` under
/// `P/local/lib/python3.X/dist-packages`; official python images use
/// `P/lib/…`. Moving `local/` up makes `COPY --from=builder /install
/// /usr/local` work on both.
const FLATTEN: &str = "if [ -d /install/local ]; then cp -a /install/local/. /install/ && rm -rf /install/local; fi";

/// A local python package pip can install without an index.
const GREET_SETUP: &str =
    "from setuptools import setup\nsetup(name=\"greet\", version=\"1.0\", packages=[\"greet\"])\n";
const GREET_INIT: &str = "def hello(n):\n    return f\"hello {n}\"\n";

fn python_app_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("greet/setup.py", GREET_SETUP),
        ("greet/greet/__init__.py", GREET_INIT),
        ("requirements.txt", "--no-index\n./greet\n"),
        ("app.py", "import greet, os\nprint(greet.hello(os.environ.get('WHO', 'nobody')), flush=True)\n"),
        (
            "Dockerfile",
            "FROM python:3.11-slim\nENV PYTHONUNBUFFERED=1\nWORKDIR /app\nCOPY requirements.txt .\nCOPY greet/ greet/\nRUN pip install --no-cache-dir --no-build-isolation -r requirements.txt\nCOPY app.py .\nEXPOSE 8000\nCMD [\"python\", \"app.py\"]\n",
        ),
    ]
}

/// Builder state a finished build must not leave: writable snapshots,
/// scratch directories, task bundles, mounts, containers.
fn assert_no_leftovers(d: &Daemon) {
    let snaps = d.root.join("snapshots/snapshots");
    for e in std::fs::read_dir(&snaps).unwrap().flatten() {
        let meta = std::fs::read_to_string(e.path().join("meta")).unwrap_or_default();
        assert!(!meta.contains("build-"), "a build snapshot was left: {meta}");
    }
    for dir in ["builder/tmp", "builder/tasks"] {
        let p = d.root.join(dir);
        let n = std::fs::read_dir(&p).map(|r| r.count()).unwrap_or(0);
        assert_eq!(n, 0, "{dir} is not empty");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = d.root.display().to_string();
    assert!(!mounts.lines().any(|l| l.contains(&format!("{root}/builder"))), "a build mount was left");
    assert_eq!(d.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn python_app_with_local_requirements() {
    require_root!();
    let d = daemon();
    let dir = context(&d, "app", &python_app_files());
    let out = build_ok(&d, &dir, &["-t", "pyapp:1"]);
    assert!(out.contains("Successfully installed greet-1.0"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "-e", "WHO=berth", "pyapp:1"]), "hello berth\n");
    let img = inspect(&d, "pyapp:1");
    let cfg = &img["Config"];
    assert!(cfg["Env"].as_array().unwrap().iter().any(|e| e == "PYTHONUNBUFFERED=1"));
    assert_eq!(cfg["ExposedPorts"], serde_json::json!({"8000/tcp": {}}));
    assert_eq!(cfg["Cmd"], serde_json::json!(["python", "app.py"]));
    assert_eq!(cfg["WorkingDir"], "/app");
    // One history entry per instruction, metadata steps marked empty.
    let (_, h) = d.http_json("GET", "/images/pyapp:1/history", None);
    let h = h.as_array().unwrap();
    let ours: Vec<&Value> = h.iter().take(8).collect();
    assert!(ours[0]["CreatedBy"].as_str().unwrap().starts_with("CMD"), "{:?}", ours[0]);
    assert_eq!(ours[0]["Size"], 0);
    assert!(ours[2]["CreatedBy"].as_str().unwrap().starts_with("COPY app.py"));
    assert!(ours[2]["Size"].as_i64().unwrap() > 0);
    // Intermediate images are not listed (but are with -a); the build made
    // no containers.
    let images = d.ok(&["images"]);
    assert!(!images.contains("<none>"), "{images}");
    assert!(d.ok(&["images", "-a"]).contains("<none>"));
    assert_no_leftovers(&d);
}

#[test]
fn cache_hits_and_misses_follow_the_files() {
    require_root!();
    let mut d = daemon();
    let dir = context(&d, "app", &python_app_files());
    build_ok(&d, &dir, &["-t", "pyapp:1"]);
    let id1 = inspect(&d, "pyapp:1")["Id"].as_str().unwrap().to_string();
    // Nothing changed: every step is cached and the image is the same.
    let out = build_ok(&d, &dir, &["-t", "pyapp:2"]);
    assert_eq!(out.matches("CACHED").count(), 8, "{out}");
    assert_eq!(inspect(&d, "pyapp:2")["Id"], id1.as_str());
    // The app changed: the pip step stays cached ("copy requirements first").
    std::fs::write(dir.join("app.py"), "print('v2', flush=True)\n").unwrap();
    let out = build_ok(&d, &dir, &["-t", "pyapp:3"]);
    assert!(out.contains("#6 CACHED"), "pip step re-ran: {out}");
    assert!(!out.contains("Successfully installed"), "{out}");
    assert!(out.contains("#7 DONE"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "pyapp:3"]), "v2\n");
    // The requirements changed: pip runs again.
    std::fs::write(dir.join("requirements.txt"), "--no-index\n./greet\n# pinned\n").unwrap();
    let out = build_ok(&d, &dir, &["-t", "pyapp:4"]);
    assert!(out.contains("Successfully installed greet-1.0"), "{out}");
    // --no-cache runs everything.
    let out = build_ok(&d, &dir, &["--no-cache", "-t", "pyapp:5"]);
    assert!(!out.contains("CACHED"), "{out}");
    // The index survives a daemon restart and is shared across tags.
    d.stop_with(libc::SIGTERM);
    d.spawn();
    let out = build_ok(&d, &dir, &["-t", "other:1"]);
    assert_eq!(out.matches("CACHED").count(), 8, "{out}");
    // builder prune removes the cache; the tagged images stay. An untagged
    // result holds a layer nothing else has: its space is reclaimed.
    let tmp = context(&d, "untagged", &[("Dockerfile", "FROM busybox\nRUN head -c 300000 /dev/urandom > /r\n")]);
    build_ok(&d, &tmp, &[]);
    let (st, v) = d.http_json("POST", "/build/prune?all=1", None);
    assert_eq!(st, 200, "{v}");
    assert!(v["SpaceReclaimed"].as_u64().unwrap() >= 300_000, "{v}");
    assert!(!v["CachesDeleted"].as_array().unwrap().is_empty());
    d.ok(&["run", "--rm", "pyapp:3"]);
    let out = build_ok(&d, &dir, &["-t", "other:2"]);
    assert!(!out.contains("CACHED"), "{out}");
    let pruned = d.ok(&["builder", "prune", "-af"]);
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert_no_leftovers(&d);
}

#[test]
fn two_stage_build_copies_from_the_builder_stage() {
    require_root!();
    let d = daemon();
    let df = "FROM python:3.11-slim AS builder\nWORKDIR /src\nCOPY greet/ greet/\nRUN pip install --no-cache-dir --no-build-isolation --no-index --prefix=/install ./greet && $FLATTEN\n\nFROM busybox AS unused\nRUN exit 7\n\nFROM python:3.11-slim\nCOPY --from=builder /install /usr/local\nCOPY app.py /app/\nCMD [\"python\", \"/app/app.py\"]\n";
    let df = df.replace("$FLATTEN", FLATTEN);
    let df = df.as_str();
    let dir = context(
        &d,
        "ms",
        &[
            ("greet/setup.py", GREET_SETUP),
            ("greet/greet/__init__.py", GREET_INIT),
            ("app.py", "import greet\nprint(greet.hello('stages'))\n"),
            ("Dockerfile", df),
        ],
    );
    let out = build_ok(&d, &dir, &["-t", "ms:1"]);
    // The unused stage is never run.
    assert!(!out.contains("exit 7"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "ms:1"]), "hello stages\n");
    // The final image has the base's layers plus two.
    let base_layers = inspect(&d, "python:3.11-slim")["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(inspect(&d, "ms:1")["RootFS"]["Layers"].as_array().unwrap().len(), base_layers + 2);
    // --target builds only up to that stage (and fails as that stage does).
    let o = build(&d, &dir, &["--target", "unused", "-t", "ms:unused"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("returned a non-zero code: 7"), "{}", stderr(&o));
    let out = build_ok(&d, &dir, &["--target", "builder", "-t", "ms:builder"]);
    assert!(out.contains("CACHED"), "{out}");
    d.ok(&["run", "--rm", "ms:builder", "test", "-d", "/install"]);
    assert_no_leftovers(&d);
}

#[test]
fn heredocs_in_run_and_copy() {
    require_root!();
    let d = daemon();
    let df = r#"FROM python:3.11-slim
ARG NAME=heredoc
RUN python - <<'EOF'
import json
with open("/out.json", "w") as f:
    json.dump({"from": "python"}, f)
EOF
RUN <<EOF
echo "shell $NAME" > /shell.txt
EOF
RUN <<-EOT
<TAB>echo tabs stripped > /tabs.txt
<TAB>EOT
RUN cat <<A > /a.txt && cat <<B > /b.txt
first
A
second
B
COPY <<EOF /etc/greeting
hello ${NAME}
EOF
RUN <<EOF
#!/usr/bin/env python3
open("/shebang.txt", "w").write("shebang")
EOF
"#;
    let df = df.replace("<TAB>", "\t");
    let dir = context(&d, "hd", &[("Dockerfile", &df)]);
    build_ok(&d, &dir, &["-t", "hd:1"]);
    let out = d.ok(&[
        "run",
        "--rm",
        "hd:1",
        "sh",
        "-c",
        "cat /out.json /shell.txt /tabs.txt /a.txt /b.txt /etc/greeting /shebang.txt",
    ]);
    assert_eq!(out, "{\"from\": \"python\"}shell heredoc\ntabs stripped\nfirst\nsecond\nhello heredoc\nshebang");
}

#[test]
fn entrypoint_cmd_args_env_and_config() {
    require_root!();
    let d = daemon();
    let df = r#"ARG BASE=busybox
FROM ${BASE}
ARG VERSION=1.0
ARG TARGETARCH
ENV APP_HOME=/opt/app APP_VERSION=$VERSION
ENV ARCH=$TARGETARCH
WORKDIR $APP_HOME
RUN echo "built $VERSION" > version.txt
LABEL org.example.version=$VERSION maintainer="someone"
USER nobody
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
SHELL ["/bin/sh", "-e", "-c"]
ONBUILD RUN echo triggered > /tmp/onbuild
MAINTAINER test@example.com
ENTRYPOINT ["echo", "entry"]
CMD ["default-arg"]
"#;
    let dir = context(&d, "ep", &[("Dockerfile", df)]);
    let out = build_ok(&d, &dir, &["-t", "ep:1", "--build-arg", "VERSION=2.5", "--build-arg", "UNUSED=1"]);
    assert!(out.contains("[Warning] One or more build-args [UNUSED] were not consumed"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "ep:1"]), "entry default-arg\n");
    assert_eq!(d.ok(&["run", "--rm", "ep:1", "other"]), "entry other\n");
    assert_eq!(d.ok(&["run", "--rm", "--entrypoint", "cat", "ep:1", "version.txt"]), "built 2.5\n");
    let img = inspect(&d, "ep:1");
    let c = &img["Config"];
    let env: Vec<&str> = c["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(env.contains(&"APP_HOME=/opt/app") && env.contains(&"APP_VERSION=2.5"), "{env:?}");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    assert!(env.contains(&format!("ARCH={arch}").as_str()), "{env:?}");
    // Build args do not persist in the image.
    assert!(!env.iter().any(|e| e.starts_with("VERSION=")));
    assert_eq!(c["Labels"]["org.example.version"], "2.5");
    assert_eq!(c["Labels"]["maintainer"], "someone");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGINT");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD-SHELL", "true"]));
    assert_eq!(c["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-e", "-c"]));
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo triggered > /tmp/onbuild"]));
    assert_eq!(img["Author"], "test@example.com");
    // A child build runs the trigger; its image has no triggers left. An
    // ENTRYPOINT there resets the inherited CMD; HEALTHCHECK NONE disables.
    let child =
        context(&d, "child", &[("Dockerfile", "FROM ep:1\nUSER root\nHEALTHCHECK NONE\nENTRYPOINT [\"cat\"]\n")]);
    let out = build_ok(&d, &child, &["-t", "child:1"]);
    assert!(out.contains("Executing 1 build trigger"), "{out}");
    let ci = inspect(&d, "child:1");
    assert!(ci["Config"]["OnBuild"].is_null() || ci["Config"]["OnBuild"] == serde_json::json!([]));
    assert!(ci["Config"]["Cmd"].is_null());
    assert_eq!(ci["Config"]["Healthcheck"]["Test"], serde_json::json!(["NONE"]));
    assert_eq!(d.ok(&["run", "--rm", "child:1", "/tmp/onbuild"]), "triggered\n");
    // --label and --iidfile.
    let iid = d.dir.path().join("iid");
    build_ok(&d, &child, &["-t", "child:2", "--label", "team=build", "--iidfile", iid.to_str().unwrap()]);
    let ci = inspect(&d, "child:2");
    assert_eq!(ci["Config"]["Labels"]["team"], "build");
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), ci["Id"].as_str().unwrap());
    // -q prints only the ID.
    let o = d.berth(&["build", "-q", child.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), inspect(&d, "child:1")["Id"].as_str().unwrap());
    assert_eq!(stderr(&o), "");
}

#[test]
fn docker_cli_legacy_build() {
    require_root!();
    let d = daemon();
    let dir = context(&d, "app", &python_app_files());
    let Some(o) = d.docker(&["build", "-t", "dk:1", dir.to_str().unwrap()]) else {
        eprintln!("docker CLI not installed; skipped");
        return;
    };
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("Step 1/9 : FROM python:3.11-slim"), "{out}");
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged dk:1"), "{out}");
    let run = d.docker(&["run", "--rm", "-e", "WHO=docker", "dk:1"]).unwrap();
    assert_eq!(stdout(&run), "hello docker\n");
    // The second build is all cache hits.
    let o = d.docker(&["build", "-t", "dk:2", dir.to_str().unwrap()]).unwrap();
    assert_eq!(stdout(&o).matches("Using cache").count(), 8, "{}", stdout(&o));
    // -f outside the context, build args and a failing step.
    let df = d.dir.path().join("Other.Dockerfile");
    std::fs::write(&df, "FROM busybox\nARG CODE=0\nRUN echo out; exit $CODE\n").unwrap();
    let o = d
        .docker(&["build", "-f", df.to_str().unwrap(), "--build-arg", "CODE=4", "-t", "dk:fail", dir.to_str().unwrap()])
        .unwrap();
    assert!(!o.status.success());
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("The command '/bin/sh -c echo out; exit $CODE' returned a non-zero code: 4"), "{all}");
    assert!(d.berth(&["image", "inspect", "dk:fail"]).status.code() != Some(0));
    // Plain `docker build`: with `Builder-Version: 1` and no buildx the CLI
    // uses the legacy endpoint.
    let o = std::process::Command::new("docker")
        .args(["build", "-t", "dk:plain", dir.to_str().unwrap()])
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .env_remove("DOCKER_BUILDKIT")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("Successfully tagged dk:plain"), "{}", stdout(&o));
    assert_no_leftovers(&d);
}

#[test]
fn docker_py_images_build() {
    require_root!();
    let ok = std::process::Command::new("python3").args(["-c", "import docker"]).output();
    if !ok.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("docker-py not installed; skipped");
        return;
    }
    let d = daemon();
    let dir = context(
        &d,
        "py",
        &[
            ("Dockerfile", "FROM busybox\nARG V=0\nRUN echo v=$V > /v\nCMD [\"cat\", \"/v\"]\n"),
            ("Fail.Dockerfile", "FROM busybox\nRUN exit 5\n"),
        ],
    );
    let script = r#"
import docker, os, sys
c = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
img, logs = c.images.build(path=sys.argv[1], tag="dockerpy:1", buildargs={"V": "7"}, rm=True)
print("ID", img.id)
print("TAGS", img.tags)
print("LOG", "".join(l.get("stream", "") for l in logs).count("Step "))
try:
    c.images.build(path=sys.argv[1], dockerfile="Fail.Dockerfile")
except docker.errors.BuildError as e:
    print("ERR", e.msg)
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap()])
        .env("DOCKER_HOST", d.host())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("TAGS ['dockerpy:1']"), "{out}");
    assert!(out.contains("LOG 4"), "{out}");
    assert!(out.contains("ERR The command '/bin/sh -c exit 5' returned a non-zero code: 5"), "{out}");
    assert_eq!(d.ok(&["run", "--rm", "dockerpy:1"]), "v=7\n");
    assert_no_leftovers(&d);
}

#[test]
fn failing_run_stops_the_build_and_leaves_nothing() {
    require_root!();
    let d = daemon();
    let dir = context(
        &d,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before > /f\nRUN echo some output; echo err >&2; exit 3\nRUN echo never\n",
        )],
    );
    let o = build(&d, &dir, &["-t", "failing:1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("some output") && err.contains("err"), "{err}");
    assert!(
        err.contains(
            "ERROR: The command '/bin/sh -c echo some output; echo err >&2; exit 3' returned a non-zero code: 3"
        ),
        "{err}"
    );
    assert!(!err.contains("never"), "{err}");
    assert!(!d.berth(&["image", "inspect", "failing:1"]).status.success());
    // The API reports it in the stream with the exit code.
    let tar = tar_of(&dir);
    let (st, _, body) = d.http("POST", "/build?t=failing:2", Some(&tar));
    assert_eq!(st, 200);
    let last: Value = serde_json::from_slice(body.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap()).unwrap();
    assert_eq!(last["errorDetail"]["code"], 3, "{last}");
    assert!(last["error"].as_str().unwrap().contains("returned a non-zero code: 3"));
    assert_no_leftovers(&d);
}

fn tar_of(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn dockerignore_rules_apply() {
    require_root!();
    let d = daemon();
    let dir = context(
        &d,
        "ig",
        &[
            (".dockerignore", "# comment\n**/*.pyc\n/secret.txt\nlogs\n!logs/keep.log\ndocs/**/*.md\n"),
            ("app.py", "a"),
            ("cache/x.pyc", "x"),
            ("secret.txt", "s"),
            ("sub/secret.txt", "kept: only the top one is ignored"),
            ("logs/a.log", "a"),
            ("logs/keep.log", "k"),
            ("docs/a/b/readme.md", "md"),
            ("docs/readme.txt", "txt"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort > /list\nCMD [\"cat\", \"/list\"]\n",
            ),
        ],
    );
    build_ok(&d, &dir, &["-t", "ig:1"]);
    let list = d.ok(&["run", "--rm", "ig:1"]);
    assert_eq!(list, "./.dockerignore\n./Dockerfile\n./app.py\n./docs/readme.txt\n./logs/keep.log\n./sub/secret.txt\n");
    // The daemon applies the rules too (a client that sent everything).
    let o = d.http("POST", "/build?t=ig:2", Some(&tar_of(&dir)));
    assert_eq!(o.0, 200);
    assert_eq!(d.ok(&["run", "--rm", "ig:2"]), list);
    // COPY of an ignored file is "not found"; a Dockerfile's own ignore file wins.
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY secret.txt /\n").unwrap();
    let o = build(&d, &dir, &[]);
    assert!(stderr(&o).contains("\"/secret.txt\": not found"), "{}", stderr(&o));
    std::fs::write(dir.join("Dockerfile.dockerignore"), "app.py\n").unwrap();
    build_ok(&d, &dir, &["-t", "ig:3"]);
}

#[test]
fn bad_input_gets_dockers_errors() {
    require_root!();
    let d = daemon();
    let cases: &[(&str, &str)] = &[
        ("FROM busybox\nRUN true\nBOGUS x\n", "dockerfile parse error on line 3: unknown instruction: BOGUS"),
        ("FROM busybox\nCOPY missing.txt /\n", "failed to compute cache key: failed to calculate checksum of ref "),
        ("FROM busybox\nCOPY ../../etc/passwd /\n", "\"/etc/passwd\": not found"),
        ("FROM busybox\nCOPY --from=nostage /x /\n", "invalid from flag value nostage"),
        // A base the store lacks is pulled; from a registry that is not there
        // the build fails with the pull's error (no Docker Hub in tests).
        ("FROM 127.0.0.1:9/nosuchimage:1\n", "127.0.0.1:9/v2/nosuchimage/manifests/1"),
        ("FROM busybox\nCOPY a b /dest\n", "the destination must be a directory and end with a /"),
        ("", "the Dockerfile (Dockerfile) cannot be empty"),
    ];
    for (i, (df, want)) in cases.iter().enumerate() {
        let dir = context(&d, &format!("bad{i}"), &[("Dockerfile", df), ("a", "a"), ("b", "b")]);
        let o = build(&d, &dir, &["-t", "bad:1"]);
        assert!(!o.status.success(), "{df} built");
        let e = stderr(&o);
        assert!(e.contains(want), "{df}: {e}");
    }
    let dir = context(&d, "nodf", &[("x", "x")]);
    let e = stderr(&build(&d, &dir, &[]));
    assert!(e.contains("unable to prepare context: unable to evaluate symlinks in Dockerfile path"), "{e}");
    let dir = context(&d, "tag", &[("Dockerfile", "FROM busybox\n")]);
    let e = stderr(&build(&d, &dir, &["-t", "Bad:Tag:x"]));
    assert!(e.contains("invalid reference format"), "{e}");
    let e = stderr(&build(&d, &dir, &["--target", "nope"]));
    assert!(e.contains("failed to reach build target nope in Dockerfile"), "{e}");
    assert!(!d.berth(&["image", "inspect", "bad:1"]).status.success());
    assert_no_leftovers(&d);
}

/// A one-request-at-a-time HTTP server on 127.0.0.1 serving `body`.
fn serve_once(body: &'static [u8], requests: usize) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..requests {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    (format!("http://127.0.0.1:{port}/files/remote.txt"), h)
}

#[test]
fn add_fetches_urls_and_extracts_tars_copy_flags() {
    require_root!();
    let d = daemon();
    let (url, server) = serve_once(b"remote content\n", 2);
    // A local tar.gz for ADD to extract.
    let dir = d.dir.path().join("ctx/add");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let f = std::fs::File::create(dir.join("bundle.tar.gz")).unwrap();
        let gz = flate2_like_gzip(f);
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "inner/file.txt", &b"inside"[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    std::fs::write(dir.join("script.sh"), "echo script").unwrap();
    std::fs::create_dir_all(dir.join("tree/skip")).unwrap();
    std::fs::write(dir.join("tree/a.txt"), "a").unwrap();
    std::fs::write(dir.join("tree/skip/b.txt"), "b").unwrap();
    let df = format!(
        "FROM busybox\nADD {url} /dl/\nADD bundle.tar.gz /x/\nCOPY --chown=nobody:nogroup --chmod=750 script.sh /bin/s.sh\nCOPY --exclude=skip tree /tree\nCOPY --link tree/a.txt /linked.txt\nCOPY --from=busybox /bin/busybox /copied-busybox\n"
    );
    std::fs::write(dir.join("Dockerfile"), df).unwrap();
    build_ok(&d, &dir, &["-t", "add:1"]);
    // ADD --checksum verifies the download.
    let bad = context(
        &d,
        "add-sum",
        &[("Dockerfile", &format!("FROM busybox\nADD --checksum=sha256:{} {url} /r\n", "0".repeat(64)))],
    );
    let e = stderr(&build(&d, &bad, &[]));
    assert!(e.contains("digest mismatch sha256:000"), "{e}");
    server.join().unwrap();
    let out = d.ok(&[
        "run",
        "--rm",
        "add:1",
        "sh",
        "-c",
        "cat /dl/remote.txt; stat -c '%a' /dl/remote.txt; cat /x/inner/file.txt; echo; stat -c '%U:%G %a' /bin/s.sh; find /tree | sort; cat /linked.txt; echo; test -x /copied-busybox && echo ok",
    ]);
    assert_eq!(out, "remote content\n600\ninside\nnobody:nogroup 750\n/tree\n/tree/a.txt\na\nok\n");
}

/// gzip through the tar crate's dependency-free path: a stored deflate
/// stream is enough for the test (gzip readers accept it).
fn flate2_like_gzip(f: std::fs::File) -> GzStored {
    GzStored { f, data: Vec::new() }
}

struct GzStored {
    f: std::fs::File,
    data: Vec<u8>,
}

impl std::io::Write for GzStored {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.data.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl GzStored {
    fn finish(mut self) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        for (i, chunk) in self.data.chunks(65_535).enumerate() {
            let last = (i + 1) * 65_535 >= self.data.len();
            out.push(u8::from(last));
            out.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
            out.extend_from_slice(&(!(chunk.len() as u16)).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        out.extend_from_slice(&crc32(&self.data).to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        self.f.write_all(&out)
    }
}

fn crc32(d: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for b in d {
        c ^= *b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn run_mounts_cache_secret_tmpfs_bind_and_network() {
    require_root!();
    let d = daemon();
    let secret = d.dir.path().join("token");
    std::fs::write(&secret, "s3cr3t").unwrap();
    let df = r#"FROM busybox AS files
RUN mkdir /payload && echo from-stage > /payload/x
FROM busybox
ARG N=1
RUN --mount=type=cache,target=/cache echo run$N >> /cache/log && cat /cache/log > /seen
RUN --mount=type=secret,id=token cat /run/secrets/token > /used-secret-len && wc -c < /run/secrets/token > /used-secret-len
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && mount | grep -q ' /scratch ' && echo tmpfs > /tmpfs-ok
RUN --mount=type=bind,from=files,source=/payload,target=/mnt cat /mnt/x > /bound
RUN --mount=type=bind,source=ctx.txt,target=/ctx.txt cat /ctx.txt > /ctx-copy
RUN --network=none sh -c 'ip link 2>/dev/null | grep -c "^[0-9]" > /links || cat /proc/net/dev | tail -n +3 | wc -l > /links'
"#;
    let dir = context(&d, "mnt", &[("Dockerfile", df), ("ctx.txt", "context file")]);
    let sec = format!("id=token,src={}", secret.display());
    build_ok(&d, &dir, &["-t", "mnt:1", "--secret", &sec]);
    let out = d.ok(&[
        "run",
        "--rm",
        "mnt:1",
        "sh",
        "-c",
        "cat /seen /used-secret-len /tmpfs-ok /bound /ctx-copy; echo; cat /links; ls /run/secrets 2>&1 | head -1; test -e /cache && echo has-cache || echo no-cache; test -e /scratch && echo has-scratch || echo no-scratch",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "run1", "{out}");
    assert_eq!(lines[1].trim(), "6", "{out}");
    assert_eq!(lines[2], "tmpfs");
    assert_eq!(lines[3], "from-stage");
    assert_eq!(lines[4], "context file");
    assert_eq!(lines[5].trim(), "1", "only lo with --network=none: {out}");
    assert!(lines[6].contains("No such file"), "the secret's mount point stayed: {out}");
    assert_eq!(lines[7], "no-cache");
    assert_eq!(lines[8], "no-scratch");
    // The secret is in no layer.
    let saved = d.dir.path().join("mnt.tar");
    d.ok(&["save", "-o", saved.to_str().unwrap(), "mnt:1"]);
    let bytes = std::fs::read(&saved).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"s3cr3t"), "secret leaked into the image");
    // The cache mount persists between builds.
    build_ok(&d, &dir, &["-t", "mnt:2", "--secret", &sec, "--build-arg", "N=2"]);
    assert_eq!(d.ok(&["run", "--rm", "mnt:2", "cat", "/seen"]), "run1\nrun2\n");
    // system df's build cache list includes the cache mount.
    assert_no_leftovers(&d);
}

#[test]
fn api_build_stream_and_parallel_stages() {
    require_root!();
    let d = daemon();
    // Stages a and b each wait (up to 30 s) for the other to show up in a
    // shared cache mount: they only succeed if they run at the same time.
    let wait = |me: &str, other: &str| {
        format!("RUN --mount=type=cache,id=rendezvous,target=/rv touch /rv/{me}; i=0; while [ ! -e /rv/{other} ]; do i=$((i+1)); [ $i -gt 300 ] && exit 9; [ $((i % 10)) = 0 ] && echo {me} waiting; sleep 0.1; done; echo {me} > /{me}\n")
    };
    let df = format!(
        "FROM busybox AS a\n{}FROM busybox AS b\n{}FROM busybox\nCOPY --from=a /a /\nCOPY --from=b /b /\nCOPY Dockerfile.custom /\n",
        wait("a", "b"),
        wait("b", "a")
    );
    let df = df.as_str();
    let dir = context(&d, "api", &[("Dockerfile.custom", df)]);
    let tar = tar_of(&dir);
    let labels = berth_enc(r#"{"k":"v"}"#);
    let path = format!("/v1.41/build?t=api:1&t=api:2&dockerfile=Dockerfile.custom&labels={labels}");
    let Some((st, head, body)) = d.try_http("POST", &path, Some(&tar)) else {
        panic!("no answer to the build: {}", d.log());
    };
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"));
    let lines: Vec<Value> =
        body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    let text: String = lines.iter().filter_map(|l| l["stream"].as_str()).collect();
    assert!(text.contains("Step 1/9 : FROM busybox AS a"), "{text}");
    // The stages ran side by side, but the stream reads in step order.
    let steps: Vec<usize> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Step ").and_then(|r| r.split('/').next()).and_then(|n| n.parse().ok()))
        .collect();
    assert_eq!(steps, (1..=9).collect::<Vec<_>>(), "{text}");
    assert!(text.contains(" ---> Running in "), "{text}");
    assert!(text.contains("Successfully tagged api:1\n") && text.contains("Successfully tagged api:2\n"), "{text}");
    let aux = lines.iter().find_map(|l| l["aux"]["ID"].as_str()).unwrap();
    assert!(aux.starts_with("sha256:"));
    assert!(text.contains(&format!("Successfully built {}\n", &aux[7..19])));
    assert_eq!(inspect(&d, "api:2")["Config"]["Labels"]["k"], "v");
    assert_eq!(d.ok(&["run", "--rm", "api:1", "cat", "/a", "/b"]), "a\nb\n");
    // q=1: only the ID.
    let (_, _, body) = d.http("POST", "/build?q=1&dockerfile=Dockerfile.custom", Some(&tar));
    let s = String::from_utf8_lossy(&body);
    assert!(!s.contains("Step "), "{s}");
    let lines: Vec<Value> = s.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let id = lines[0]["aux"]["ID"].as_str().unwrap();
    assert_eq!(lines[1]["stream"].as_str().unwrap(), format!("{id}\n"), "{s}");
    assert_eq!(lines.len(), 2, "{s}");
    // Bad parameters are refused before the build.
    let (st, v) = d.http_json("POST", "/build?buildargs=notjson", Some(&tar));
    assert_eq!(st, 400, "{v}");
}

fn berth_enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The seeds' PyPI builds: they need outbound networking in RUN steps,
/// which the default (bridge) network gives; `--network host` gives it now.
fn pypi_app(d: &Daemon, network: &[&str]) {
    let dir = context(
        d,
        "pypi",
        &[
            ("requirements.txt", "six==1.16.0\n"),
            ("app.py", "import six\nprint('six', six.__version__, flush=True)\n"),
            (
                "Dockerfile",
                "FROM python:3.11-slim\nENV PYTHONUNBUFFERED=1\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\nEXPOSE 8000\nCMD [\"python\", \"app.py\"]\n",
            ),
        ],
    );
    let mut args = vec!["-t", "pypi:1"];
    args.extend_from_slice(network);
    build_ok(d, &dir, &args);
    assert_eq!(d.ok(&["run", "--rm", "pypi:1"]), "six 1.16.0\n");
    let ms = context(
        d,
        "pypi-ms",
        &[
            ("requirements.txt", "six==1.16.0\n"),
            (
                "Dockerfile",
                "FROM python:3.11-slim AS builder\nCOPY requirements.txt .\nRUN pip install --no-cache-dir --prefix=/install -r requirements.txt && $FLATTEN\nFROM python:3.11-slim\nCOPY --from=builder /install /usr/local\nCMD [\"python\", \"-c\", \"import six; print(six.__version__)\"]\n",
            ),
        ],
    );
    std::fs::write(
        ms.join("Dockerfile"),
        std::fs::read_to_string(ms.join("Dockerfile")).unwrap().replace("$FLATTEN", FLATTEN),
    )
    .unwrap();
    let mut args = vec!["-t", "pypi:ms"];
    args.extend_from_slice(network);
    build_ok(d, &ms, &args);
    assert_eq!(d.ok(&["run", "--rm", "pypi:ms"]), "1.16.0\n");
}

#[test]
fn pypi_app_host_network() {
    require_root!();
    let d = daemon();
    pypi_app(&d, &["--network", "host"]);
}

#[test]
fn pypi_app_default_network() {
    require_root!();
    let d = daemon();
    pypi_app(&d, &[]);
}

#[test]
fn dockerfile_and_context_from_stdin() {
    require_root!();
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    // `berth build - < Dockerfile`: no context.
    let df = d.dir.path().join("Stdin.Dockerfile");
    std::fs::write(&df, "FROM busybox\nRUN echo from-stdin > /s\n").unwrap();
    let o = d.berth_stdin(&["build", "-t", "stdin:1", "-"], Some(&df));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.ok(&["run", "--rm", "stdin:1", "cat", "/s"]), "from-stdin\n");
    // `berth build -f - DIR`: the Dockerfile from stdin, the context from DIR.
    let dir = context(&d, "ctx", &[("file.txt", "in context\n")]);
    std::fs::write(&df, "FROM busybox\nCOPY file.txt /\n").unwrap();
    let o = d.berth_stdin(&["build", "-t", "stdin:2", "-f", "-", dir.to_str().unwrap()], Some(&df));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.ok(&["run", "--rm", "stdin:2", "cat", "/file.txt"]), "in context\n");
    // `berth build - < context.tar`.
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nCOPY file.txt /copied\n").unwrap();
    let tar = d.dir.path().join("ctx.tar");
    std::fs::write(&tar, tar_of(&dir)).unwrap();
    let o = d.berth_stdin(&["build", "-t", "stdin:3", "-"], Some(&tar));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(d.ok(&["run", "--rm", "stdin:3", "cat", "/copied"]), "in context\n");
    // `FROM scratch` with a COPY: an image of one layer.
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY file.txt /\n").unwrap();
    build_ok(&d, &dir, &["-t", "scratch:1"]);
    let img = inspect(&d, "scratch:1");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // An untagged build result is listed as <none>, as Docker lists it;
    // `image prune` removes it.
    std::fs::write(dir.join("Dockerfile"), "FROM busybox\nRUN echo untagged > /u\n").unwrap();
    build_ok(&d, &dir, &[]);
    assert!(d.ok(&["images"]).contains("<none>"));
    d.ok(&["image", "prune", "-f"]);
    assert!(!d.ok(&["images"]).contains("<none>"));
    assert_no_leftovers(&d);
}
