//! `berth build` and `berth builder prune`.
//!
//! The context is sent as a tar, filtered by `.dockerignore` (or
//! `<Dockerfile>.dockerignore`) as the docker CLI does; the Dockerfile and
//! the ignore file always go along. A Dockerfile outside the context (or
//! `-f -`) is added under a generated name. `--secret` files travel in the
//! tar under `.berth-build-secrets/<id>`: the daemon takes them out of the
//! context before anything reads it, and mounts them only into
//! `RUN --mount=type=secret` steps.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use berth_builder::context::SECRETS_DIR;
use berth_builder::ignore::{clean, Matcher};
use berth_client::hyper::Method;
use berth_client::{empty, full};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{confirm, filters_json, query, Ctx};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile")
    #[arg(short = 'f', long = "file")]
    pub file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image (base images
    /// come from the local image store: accepted, no effect yet)
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host")]
    pub add_hosts: Vec<String>,
    /// Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Set type of progress output ("auto", "plain", "tty")
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Remove intermediate containers after a successful build (always)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub rm: bool,
    /// Always remove intermediate containers (always)
    #[arg(long = "force-rm")]
    pub force_rm: bool,
    /// Build context: a directory, or "-" for a tar (or a Dockerfile) on stdin
    pub path: String,
}

#[derive(Debug, Subcommand)]
pub enum BuilderCmd {
    /// Remove build cache
    Prune(PruneArgs),
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Amount of disk space to keep for cache
    #[arg(long = "keep-storage")]
    pub keep_storage: Option<String>,
}

pub async fn builder(ctx: &Ctx, c: BuilderCmd) -> Result<i32> {
    match c {
        BuilderCmd::Build(a) => build(ctx, *a).await,
        BuilderCmd::Prune(a) => prune(ctx, a).await,
    }
}

fn parse_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.trim().parse().with_context(|| format!("invalid size: '{s}'"))?;
    let mul = match unit.to_ascii_lowercase().trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        _ => bail!("invalid size: '{s}'"),
    };
    Ok((n * mul) as u64)
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force {
        let msg = if a.all {
            "WARNING! This will remove all build cache.\nAre you sure you want to continue?"
        } else {
            "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue?"
        };
        if !confirm(msg) {
            return Ok(0);
        }
    }
    let c = ctx.client().await?;
    let keep = match &a.keep_storage {
        Some(k) => parse_size(k)?.to_string(),
        None => String::new(),
    };
    let q = query(&[
        ("all", if a.all { "1".into() } else { String::new() }),
        ("filters", filters_json(&a.filters)?),
        ("keep-storage", keep),
    ]);
    let v: Value = c.post_json(&format!("/build/prune{q}"), None).await?;
    let deleted: Vec<&str> =
        v["CachesDeleted"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted build cache objects:");
        for d in deleted {
            println!("{}", d.strip_prefix("sha256:").unwrap_or(d));
        }
        println!();
    }
    let space = v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", berth_units::human_size(space));
    Ok(0)
}

/// Appends a file from memory.
fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    h.set_cksum();
    b.append_data(&mut h, name, data)?;
    Ok(())
}

/// The context directory as a tar, `.dockerignore` applied.
fn context_tar(dir: &Path, ignore: &Matcher, keep: &[String]) -> Result<tar::Builder<Vec<u8>>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    fn walk(b: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &str, ignore: &Matcher, keep: &[String]) -> Result<()> {
        let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("error checking context: can't stat '{}'", dir.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in names {
            let r = if rel.is_empty() { n.clone() } else { format!("{rel}/{n}") };
            let p = root.join(&r);
            let meta = std::fs::symlink_metadata(&p)?;
            let excluded = ignore.excluded(&r) && !keep.contains(&r);
            if meta.is_dir() {
                if !excluded {
                    b.append_path_with_name(&p, &r)?;
                }
                if !excluded || ignore.has_exclusions() {
                    walk(b, root, &r, ignore, keep)?;
                }
            } else if !excluded && (meta.is_file() || meta.file_type().is_symlink()) {
                b.append_path_with_name(&p, &r)
                    .with_context(|| format!("error checking context: can't read '{}'", p.display()))?;
            }
        }
        Ok(())
    }
    walk(&mut b, dir, "", ignore, keep)?;
    Ok(b)
}

fn is_tar(data: &[u8]) -> bool {
    (data.len() >= 262 && &data[257..262] == b"ustar") || data.starts_with(&[0x1f, 0x8b])
}

pub async fn build(ctx: &Ctx, a: BuildArgs) -> Result<i32> {
    let random = {
        let mut b = [0u8; 8];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = f.read_exact(&mut b);
        }
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let mut dockerfile_param = String::new();
    let mut extra_files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    let stdin_dockerfile = a.file.as_deref() == Some("-");
    let body: Vec<u8> = if a.path == "-" {
        if stdin_dockerfile {
            bail!("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        if is_tar(&data) {
            if let Some(f) = &a.file {
                dockerfile_param = f.clone();
            }
            data
        } else {
            // A Dockerfile on stdin and no context.
            let mut b = tar::Builder::new(Vec::new());
            append(&mut b, "Dockerfile", &data, 0o644)?;
            b.into_inner()?
        }
    } else {
        let dir = PathBuf::from(&a.path);
        if !dir.is_dir() {
            bail!("unable to prepare context: path \"{}\" not found", a.path);
        }
        // The Dockerfile: inside the context it is sent as part of it; from
        // elsewhere (or stdin) under a generated name.
        let (df_rel, df_outside) = match &a.file {
            Some(f) if f == "-" => {
                let mut data = Vec::new();
                std::io::stdin().read_to_end(&mut data)?;
                (None, Some(data))
            }
            Some(f) => {
                let p = PathBuf::from(f);
                let abs = if p.is_absolute() { p } else { std::env::current_dir()?.join(p) };
                let ctx_abs = std::fs::canonicalize(&dir)?;
                let abs_c = std::fs::canonicalize(&abs)
                    .with_context(|| format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory", abs.display()))?;
                match abs_c.strip_prefix(&ctx_abs) {
                    Ok(rel) => (Some(rel.to_string_lossy().into_owned()), None),
                    Err(_) => (None, Some(std::fs::read(&abs_c)?)),
                }
            }
            None => {
                if !dir.join("Dockerfile").exists() && !dir.join("dockerfile").exists() {
                    bail!(
                        "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory",
                        std::fs::canonicalize(&dir).unwrap_or(dir.clone()).join("Dockerfile").display()
                    );
                }
                (Some("Dockerfile".to_string()), None)
            }
        };
        let ignore_text = df_rel
            .as_ref()
            .and_then(|r| std::fs::read_to_string(dir.join(format!("{r}.dockerignore"))).ok())
            .or_else(|| std::fs::read_to_string(dir.join(".dockerignore")).ok())
            .unwrap_or_default();
        let ignore = Matcher::parse(&ignore_text).map_err(|e| anyhow::anyhow!("failed to parse dockerignore: {e}"))?;
        let mut keep = vec![".dockerignore".to_string()];
        if let Some(r) = &df_rel {
            keep.push(clean(r));
            keep.push(format!("{}.dockerignore", clean(r)));
            dockerfile_param = clean(r);
        }
        if let Some(data) = df_outside {
            let name = format!(".dockerfile.{random}");
            dockerfile_param = name.clone();
            extra_files.push((name, data, 0o644));
        }
        let mut b = context_tar(&dir, &ignore, &keep)?;
        for (n, d, m) in &extra_files {
            append(&mut b, n, d, *m)?;
        }
        for s in &a.secrets {
            let (id, src) = parse_secret(s)?;
            let data = std::fs::read(&src).with_context(|| format!("failed to read secret {id} from {src}"))?;
            append(&mut b, &format!("{SECRETS_DIR}/{id}"), &data, 0o400)?;
        }
        b.into_inner()?
    };
    if a.path == "-" && !a.secrets.is_empty() {
        bail!("--secret needs a context directory");
    }
    let mut build_args = serde_json::Map::new();
    for ba in &a.build_args {
        match ba.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), Value::String(v.to_string())),
            // `--build-arg NAME` takes the value from the environment.
            None => build_args.insert(ba.clone(), std::env::var(ba).map(Value::String).unwrap_or(Value::Null)),
        };
    }
    let mut labels = serde_json::Map::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for t in &a.tags {
        pairs.push(("t", t.clone()));
    }
    pairs.push(("dockerfile", dockerfile_param));
    if !build_args.is_empty() {
        pairs.push(("buildargs", Value::Object(build_args).to_string()));
    }
    if !labels.is_empty() {
        pairs.push(("labels", Value::Object(labels).to_string()));
    }
    pairs.push(("target", a.target.clone().unwrap_or_default()));
    if a.no_cache {
        pairs.push(("nocache", "1".into()));
    }
    if a.pull {
        pairs.push(("pull", "1".into()));
    }
    if a.quiet {
        pairs.push(("q", "1".into()));
    }
    pairs.push(("rm", if a.rm { "1".into() } else { "0".into() }));
    if a.force_rm {
        pairs.push(("forcerm", "1".into()));
    }
    if a.network != "default" {
        pairs.push(("networkmode", a.network.clone()));
    }
    if !a.add_hosts.is_empty() {
        pairs.push(("extrahosts", serde_json::to_string(&a.add_hosts)?));
    }
    pairs.push(("platform", a.platform.clone().unwrap_or_default()));
    let q = query(&pairs);
    let tty = match a.progress.as_str() {
        "auto" => std::io::stderr().is_terminal(),
        "tty" => true,
        "plain" => false,
        other => bail!("invalid progress mode {other:?}: use auto, plain or tty"),
    };
    let c = ctx.client().await?;
    let r =
        c.request(Method::POST, &format!("/build{q}"), full(body), &[("Content-Type", "application/x-tar")]).await?;
    let _ = empty;
    let mut p = Progress::new(tty, a.quiet);
    let mut id = String::new();
    let mut failure: Option<String> = None;
    berth_client::for_each_json_line(r, |v| {
        if let Some(s) = v.get("stream").and_then(Value::as_str) {
            p.text(s);
        }
        if let Some(i) = v.pointer("/aux/ID").and_then(Value::as_str) {
            id = i.to_string();
        }
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            failure = Some(e.to_string());
            return Ok(false);
        }
        Ok(true)
    })
    .await?;
    p.finish(failure.is_some());
    if let Some(e) = failure {
        eprintln!("ERROR: {e}");
        return Ok(1);
    }
    if id.is_empty() {
        bail!("the daemon ended the build without an image ID");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("failed to write image ID to {f}"))?;
    }
    if a.quiet {
        println!("{id}");
    }
    Ok(0)
}

fn parse_secret(s: &str) -> Result<(String, String)> {
    let mut id = None;
    let mut src = None;
    for part in s.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "type" if v == "file" => {}
            "env" => {
                bail!("secret from an environment variable: not supported, use src=<file>")
            }
            _ => bail!("unexpected key '{k}' in '{part}'"),
        }
    }
    let src = src.or_else(|| id.clone()).ok_or_else(|| anyhow::anyhow!("secret ID missing from '{s}'"))?;
    let id =
        id.unwrap_or_else(|| Path::new(&src).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default());
    if id.is_empty() || id.contains('/') {
        bail!("invalid secret id {id:?}");
    }
    Ok((id, src))
}

/// Renders the legacy stream as step lines with timings and CACHED marks.
/// Plain mode prints every step's output prefixed with its number; tty mode
/// prints one line per finished step and a failed step's output.
struct Progress {
    tty: bool,
    quiet: bool,
    step: Option<(String, Instant, bool)>,
    output: String,
    partial: String,
    started: Instant,
}

impl Progress {
    fn new(tty: bool, quiet: bool) -> Self {
        Progress { tty, quiet, step: None, output: String::new(), partial: String::new(), started: Instant::now() }
    }

    fn text(&mut self, s: &str) {
        self.partial.push_str(s);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches('\n'));
        }
    }

    fn num(&self) -> String {
        self.step.as_ref().map(|s| s.0.split([' ', '/']).next().unwrap_or("").to_string()).unwrap_or_default()
    }

    fn end_step(&mut self, failed: bool) {
        if let Some((title, at, cached)) = self.step.take() {
            let secs = at.elapsed().as_secs_f64();
            let n = title.split(' ').next().unwrap_or("").to_string();
            let short = n.split('/').next().unwrap_or("").to_string();
            let mut err = std::io::stderr().lock();
            if self.tty {
                let mark = if cached { "CACHED " } else { "" };
                let _ = writeln!(
                    err,
                    " => {mark}[{n}] {}{}",
                    &title[n.len()..].trim_start(),
                    if cached { String::new() } else { format!("  {secs:.1}s") }
                );
                if failed && !self.output.is_empty() {
                    let _ = write!(err, "{}", self.output);
                }
            } else if cached {
                let _ = writeln!(err, "#{short} CACHED");
            } else if failed {
                let _ = writeln!(err, "#{short} ERROR after {secs:.1}s");
            } else {
                let _ = writeln!(err, "#{short} DONE {secs:.1}s");
            }
            self.output.clear();
        }
    }

    fn line(&mut self, l: &str) {
        if self.quiet {
            return;
        }
        if let Some(rest) = l.strip_prefix("Step ") {
            self.end_step(false);
            let (n, title) = rest.split_once(" : ").unwrap_or((rest, ""));
            if !self.tty {
                eprintln!("\n#{} [{n}] {title}", n.split('/').next().unwrap_or(""));
            }
            self.step = Some((format!("{n} {title}"), Instant::now(), false));
            return;
        }
        if l == " ---> Using cache" {
            if let Some(s) = &mut self.step {
                s.2 = true;
            }
            return;
        }
        if l.starts_with(" ---> ") || l.starts_with("Removing intermediate container ") {
            return;
        }
        // A step's own output may say "Successfully built …" (pip does):
        // only the builder's line names a 12-digit ID.
        if let Some(id) = l
            .strip_prefix("Successfully built ")
            .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            self.end_step(false);
            let n = self.started.elapsed().as_secs_f64();
            eprintln!("{}writing image {id} done ({n:.1}s)", if self.tty { " => " } else { "\n#- " });
            return;
        }
        if let Some(t) = l.strip_prefix("Successfully tagged ") {
            eprintln!("{}naming to {t} done", if self.tty { " => " } else { "#- " });
            return;
        }
        if self.tty {
            self.output.push_str(l);
            self.output.push('\n');
        } else {
            let n = self.num();
            eprintln!("#{n} {l}");
        }
    }

    fn finish(&mut self, failed: bool) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(&rest);
        }
        self.end_step(failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_sizes() {
        assert_eq!(parse_secret("id=a,src=/x").unwrap(), ("a".into(), "/x".into()));
        assert_eq!(parse_secret("src=/tmp/tok").unwrap(), ("tok".into(), "/tmp/tok".into()));
        assert!(parse_secret("id=a,bogus=1").is_err());
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("2MB").unwrap(), 2 << 20);
        assert_eq!(parse_size("10").unwrap(), 10);
    }

    #[test]
    fn context_respects_ignore_but_keeps_build_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.path().join(".dockerignore"), "*\n!keep\n").unwrap();
        std::fs::write(d.path().join("keep"), "k").unwrap();
        std::fs::write(d.path().join("drop"), "d").unwrap();
        let ig = Matcher::parse("*\n!keep\n").unwrap();
        let b = context_tar(d.path(), &ig, &[".dockerignore".into(), "Dockerfile".into()]).unwrap();
        let data = b.into_inner().unwrap();
        let mut ar = tar::Archive::new(&data[..]);
        let names: Vec<String> =
            ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "keep"]);
    }
}
