//! One build: the context, the Dockerfile, the stage DAG, and the stages
//! run (in parallel where independent) through [`crate::steps`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use berth_dockerfile::{EnvGetter, EnvList, Instruction, Stage};
use berth_image::Reference;

use crate::cache;
use crate::context::{extract_context, SECRETS_DIR};
use crate::ignore::{clean, Matcher};
use crate::steps::StageRun;
use crate::{short_id, Builder, Error, Result};

/// What the client asked for (the query of `POST /build`).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `t`: names to tag the result with.
    pub tags: Vec<String>,
    /// `dockerfile`: its path inside the context (`Dockerfile` by default).
    pub dockerfile: String,
    /// `buildargs`: a value of `None` takes the client's environment in
    /// Docker; the daemon only sees what was sent, so it means unset.
    pub build_args: BTreeMap<String, Option<String>>,
    /// `target`: the stage to build (the last one by default).
    pub target: String,
    /// `nocache`.
    pub no_cache: bool,
    /// `pull`: fetch base images from their registry even when present.
    pub pull: bool,
    /// `labels`: added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `networkmode` for `RUN` steps: `default`, `bridge`, `host` or `none`.
    pub network: String,
    /// `extrahosts` (`name:ip`).
    pub extra_hosts: Vec<String>,
    /// `platform`: must be the daemon's own.
    pub platform: String,
    /// `q`: only the final ID is streamed.
    pub quiet: bool,
}

/// A line of the build's progress stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `{"stream": …}`.
    Stream(String),
    /// `{"aux":{"ID": …}}`.
    Aux(String),
}

/// The per-build state shared by stage threads.
pub(crate) struct Shared<'a> {
    pub builder: &'a Builder,
    pub opts: &'a BuildOptions,
    pub sink: &'a (dyn Fn(Event) + Sync),
    pub cancel: &'a (dyn Fn() -> bool + Sync),
    pub context: PathBuf,
    pub ignore: Matcher,
    pub secrets: PathBuf,
    pub work: PathBuf,
    pub escape: char,
    pub stages: Vec<Stage>,
    /// Expanded base name of each stage.
    pub bases: Vec<String>,
    /// Global args (meta ARGs and the automatic platform ones).
    pub meta_env: EnvList,
    /// Build args the Dockerfile consumed.
    pub consumed: Mutex<BTreeSet<String>>,
    /// Results of finished stages, by index.
    results: Mutex<HashMap<usize, std::result::Result<String, String>>>,
    done: Condvar,
    /// Step numbers: index of each stage's first step, and the total.
    pub step_base: Vec<usize>,
    pub step_total: usize,
    /// Output order: stages print in file order, as the legacy builder
    /// did, while they run in parallel (see [`Shared::say`]).
    out: Mutex<Output>,
}

/// Which stage prints live; the others' output waits in buffers.
#[derive(Default)]
struct Output {
    /// The needed stages in file order.
    order: Vec<usize>,
    /// Index into `order` of the stage printing live.
    owner: usize,
    buffers: HashMap<usize, Vec<String>>,
    finished: BTreeSet<usize>,
}

impl Shared<'_> {
    /// Output of stage `stage`. The first unfinished stage (in file order)
    /// prints live; a later stage running beside it is buffered and
    /// printed when every stage before it finished, so the stream reads
    /// `Step 1/N`, `Step 2/N`, … as the legacy builder's did.
    pub fn say(&self, stage: usize, s: impl Into<String>) {
        if self.opts.quiet {
            return;
        }
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if o.order.get(o.owner) == Some(&stage) {
            (self.sink)(Event::Stream(s.into()));
        } else {
            o.buffers.entry(stage).or_default().push(s.into());
        }
    }

    /// Stage `stage` ended: hand the output to the next stages in order.
    pub fn stage_done(&self, stage: usize) {
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        o.finished.insert(stage);
        while let Some(&cur) = o.order.get(o.owner) {
            for line in o.buffers.remove(&cur).unwrap_or_default() {
                if !self.opts.quiet {
                    (self.sink)(Event::Stream(line));
                }
            }
            if !o.finished.contains(&cur) {
                break;
            }
            o.owner += 1;
        }
    }

    /// Build-level lines, after every stage's output.
    fn say_final(&self, s: impl Into<String>) {
        let order = self.out.lock().map(|o| o.order.clone()).unwrap_or_default();
        for i in order {
            self.stage_done(i);
        }
        if !self.opts.quiet {
            (self.sink)(Event::Stream(s.into()));
        }
    }

    /// Waits for stage `i`'s image (a dependency of the caller).
    pub fn stage_result(&self, i: usize) -> Result<String> {
        let mut r = self.results.lock().map_err(|_| Error::Internal("poisoned".into()))?;
        loop {
            if let Some(v) = r.get(&i) {
                return v.clone().map_err(|_| Error::Cancelled("a stage this one depends on failed".into()));
            }
            r = self.done.wait(r).map_err(|_| Error::Internal("poisoned".into()))?;
        }
    }

    /// The stage a `--from`/`FROM` name refers to, if any: a stage name
    /// (case-insensitive) defined before `before`, or an index.
    pub fn stage_ref(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        if let Some(i) = self.stages[..before].iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
            return Some(i);
        }
        match name.parse::<usize>() {
            Ok(i) if i < before => Some(i),
            _ => None,
        }
    }

    pub fn build_arg(&self, key: &str) -> Option<String> {
        self.opts.build_args.get(key).cloned().flatten()
    }
}

/// The platform of this daemon, as BuildKit's automatic platform args.
fn platform_args() -> EnvList {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    let p = format!("linux/{arch}");
    let mut env = EnvList::default();
    for (k, v) in [
        ("BUILDPLATFORM", p.as_str()),
        ("BUILDOS", "linux"),
        ("BUILDARCH", arch),
        ("BUILDVARIANT", ""),
        ("TARGETPLATFORM", p.as_str()),
        ("TARGETOS", "linux"),
        ("TARGETARCH", arch),
        ("TARGETVARIANT", ""),
    ] {
        env.set(k, v);
    }
    env
}

pub(crate) const PLATFORM_ARGS: &[&str] = &[
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// Build args Docker accepts without a declaring `ARG` (moby
/// `builtinAllowedBuildArgs`): proxies.
pub(crate) const BUILTIN_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

struct BuildArgs<'a>(&'a BuildOptions);

impl EnvGetter for BuildArgs<'_> {
    fn get_env(&self, key: &str) -> Option<&str> {
        self.0.build_args.get(key).and_then(|v| v.as_deref())
    }
}

impl Builder {
    /// Runs a build from a context tar; returns the image ID. `sink` gets
    /// the progress stream; `cancel` is polled (a client that went away).
    /// On failure no image is tagged and every container, mount and
    /// writable snapshot the build made is gone.
    pub fn build(
        &self,
        context: impl Read,
        opts: &BuildOptions,
        sink: &(dyn Fn(Event) + Sync),
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<String> {
        let work = self.root.join("tmp").join(crate::random_hex(16));
        std::fs::create_dir_all(&work).map_err(Error::io("creating the build directory"))?;
        let res = self.build_in(&work, context, opts, sink, cancel);
        let _ = berth_snapshot::unmount(&work.join("mnt"));
        let _ = std::fs::remove_dir_all(&work);
        res
    }

    fn build_in(
        &self,
        work: &Path,
        context: impl Read,
        opts: &BuildOptions,
        sink: &(dyn Fn(Event) + Sync),
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<String> {
        // Names are checked before any work, as Docker does.
        let mut tags = Vec::new();
        for t in &opts.tags {
            let r = Reference::parse_with_default_tag(t)
                .map_err(|e| Error::InvalidArgument(format!("invalid reference format: {e}")))?;
            if r.digest.is_some() {
                return Err(Error::InvalidArgument(format!("invalid reference format: {t}")));
            }
            tags.push(r);
        }
        if !opts.platform.is_empty() {
            let own = platform_args().get_env("TARGETPLATFORM").unwrap_or_default().to_string();
            let p = opts.platform.to_ascii_lowercase();
            if p != own && p != "linux" && !own.starts_with(&format!("{p}/")) && p.trim_end_matches("/v8") != own {
                return Err(Error::InvalidArgument(format!(
                    "\"{}\": this daemon builds for {own} only",
                    opts.platform
                )));
            }
        }
        let ctx = work.join("context");
        std::fs::create_dir_all(&ctx).map_err(Error::io("creating the context directory"))?;
        extract_context(context, &ctx)?;
        // Secrets sent by berth's CLI leave the context before anything reads it.
        let secrets = work.join("secrets");
        if ctx.join(SECRETS_DIR).is_dir() {
            std::fs::rename(ctx.join(SECRETS_DIR), &secrets).map_err(Error::io("moving build secrets"))?;
        } else {
            std::fs::create_dir_all(&secrets).map_err(Error::io("creating the secrets directory"))?;
        }
        let df_name = if opts.dockerfile.is_empty() { "Dockerfile".to_string() } else { opts.dockerfile.clone() };
        let df_rel = clean(&format!("/{df_name}")).trim_start_matches('/').to_string();
        let df_path = ctx.join(&df_rel);
        let text = match std::fs::read(&df_path) {
            Ok(t) => t,
            Err(_) => {
                // The legacy builder also accepts a lower-case `dockerfile`.
                let alt = (opts.dockerfile.is_empty()).then(|| ctx.join("dockerfile"));
                match alt.and_then(|p| std::fs::read(p).ok()) {
                    Some(t) => t,
                    None => {
                        return Err(Error::InvalidArgument(format!("Cannot locate specified Dockerfile: {df_name}")))
                    }
                }
            }
        };
        // `<Dockerfile>.dockerignore` beside the Dockerfile wins over the
        // context's `.dockerignore` (BuildKit).
        let own_ignore = ctx.join(format!("{df_rel}.dockerignore"));
        let ignore_text = std::fs::read_to_string(&own_ignore)
            .or_else(|_| std::fs::read_to_string(ctx.join(".dockerignore")))
            .unwrap_or_default();
        let ignore = Matcher::parse(&ignore_text)
            .map_err(|e| Error::InvalidArgument(format!("failed to parse dockerignore: {e}")))?;
        if text.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(Error::InvalidArgument(format!("the Dockerfile ({df_name}) cannot be empty")));
        }
        let df = berth_dockerfile::parse_dockerfile_bytes(&text)?;
        if df.stages.is_empty() {
            return Err(Error::InvalidArgument("dockerfile contains no stages to build".into()));
        }
        let mut meta_env = df.meta_env(&platform_args(), &BuildArgs(opts))?;
        let mut consumed = BTreeSet::new();
        for m in &df.meta_args {
            for a in &m.args {
                consumed.insert(a.key.clone());
            }
        }
        for k in PLATFORM_ARGS {
            if meta_env.get_env(k).is_none() {
                if let Some(v) = platform_args().get_env(k) {
                    meta_env.set(*k, v);
                }
            }
        }
        let mut bases = Vec::new();
        for s in &df.stages {
            let f = berth_dockerfile::expand_from(s, df.escape_token, &meta_env)?;
            bases.push(f.base);
        }
        // The target and what it needs.
        let target = if opts.target.is_empty() {
            df.stages.len() - 1
        } else {
            let t = opts.target.to_ascii_lowercase();
            df.stages.iter().position(|s| s.name.as_deref() == Some(t.as_str())).ok_or_else(|| {
                Error::InvalidArgument(format!("failed to reach build target {} in Dockerfile", opts.target))
            })?
        };
        let mut shared = Shared {
            builder: self,
            opts,
            sink,
            cancel,
            context: ctx.clone(),
            ignore,
            secrets,
            work: work.to_path_buf(),
            escape: df.escape_token,
            stages: df.stages.clone(),
            bases,
            meta_env,
            consumed: Mutex::new(consumed),
            results: Mutex::new(HashMap::new()),
            done: Condvar::new(),
            step_base: Vec::new(),
            step_total: 0,
            out: Mutex::new(Output::default()),
        };
        let deps = shared.dependencies()?;
        let mut needed = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if needed.insert(i) {
                todo.extend(deps[i].iter().copied());
            }
        }
        let mut n = 0;
        for i in 0..shared.stages.len() {
            shared.step_base.push(n);
            if needed.contains(&i) {
                n += 1 + shared.stages[i].commands.len();
            }
        }
        if let Ok(mut o) = shared.out.lock() {
            o.order = needed.iter().copied().collect();
        }
        let mut total = n;
        if !opts.labels.is_empty() {
            total += 1;
        }
        shared.step_total = total;

        // Every needed stage runs on its own thread and waits for the
        // stages it depends on: independent stages run side by side.
        let shared = &shared;
        let final_id = std::thread::scope(|scope| -> Result<String> {
            let mut handles = Vec::new();
            for &i in &needed {
                let h = scope.spawn(move || {
                    // Whatever happens, the stage's result is recorded: the
                    // stages waiting for it must not wait forever.
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        StageRun::run(shared, i, i == target)
                    }))
                    .unwrap_or_else(|_| Err(Error::Internal(format!("build stage {i} failed unexpectedly"))));
                    shared.stage_done(i);
                    let mut res = shared.results.lock().unwrap_or_else(|e| e.into_inner());
                    res.insert(i, r.as_ref().map(Clone::clone).map_err(|e| e.to_string()));
                    shared.done.notify_all();
                    (i, r)
                });
                handles.push(h);
            }
            let mut out: Option<Result<String>> = None;
            let mut first_err: Option<Error> = None;
            for h in handles {
                let (i, r) = h.join().map_err(|_| Error::Internal("a build stage panicked".into()))?;
                match r {
                    Ok(id) if i == target => out = Some(Ok(id)),
                    Ok(_) => {}
                    // The first real error, not a "dependency failed" echo.
                    Err(Error::Cancelled(m)) if m.starts_with("a stage") => {
                        if first_err.is_none() {
                            first_err = Some(Error::Cancelled(m));
                        }
                    }
                    Err(e) => {
                        if first_err.as_ref().is_none_or(|f| matches!(f, Error::Cancelled(_))) {
                            first_err = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
            out.unwrap_or_else(|| Err(Error::Internal("the target stage produced no image".into())))
        })?;

        let consumed = shared.consumed.lock().map(|c| c.clone()).unwrap_or_default();
        let unused: Vec<&String> =
            opts.build_args.keys().filter(|k| !consumed.contains(*k) && !BUILTIN_ARGS.contains(&k.as_str())).collect();
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            shared.say_final(format!("[Warning] One or more build-args [{}] were not consumed\n", list.join(" ")));
        }
        cache::mark_final(self.images.db(), &final_id)?;
        (sink)(Event::Aux(final_id.clone()));
        shared.say_final(format!("Successfully built {}\n", short_id(&final_id)));
        for t in &tags {
            self.images.tag(&final_id, t)?;
            shared.say_final(format!("Successfully tagged {}\n", t.familiar()));
        }
        Ok(final_id)
    }
}

impl Shared<'_> {
    /// For each stage, the stages it needs.
    fn dependencies(&self) -> Result<Vec<BTreeSet<usize>>> {
        let mut deps = Vec::new();
        for (i, s) in self.stages.iter().enumerate() {
            let mut d = BTreeSet::new();
            if let Some(j) = self.stage_ref(&self.bases[i], i) {
                d.insert(j);
            }
            for c in &s.commands {
                let froms: Vec<String> = match &c.instruction {
                    Instruction::Copy(cp) => cp.from.iter().cloned().collect(),
                    Instruction::Run(r) => r.mounts.iter().filter_map(|m| m.from.clone()).collect(),
                    _ => Vec::new(),
                };
                for f in froms {
                    if let Some(j) = self.stage_ref(&f, i) {
                        d.insert(j);
                    } else if f.parse::<usize>().is_ok() {
                        return Err(Error::InvalidArgument(format!(
                            "dockerfile parse error on line {}: invalid stage index {f}",
                            c.line
                        )));
                    } else if self.stages.iter().any(|s| s.name.as_deref() == Some(f.to_ascii_lowercase().as_str())) {
                        // A later stage: BuildKit refuses the forward reference.
                        return Err(Error::InvalidArgument(format!(
                            "dockerfile parse error on line {}: stage {f} must be defined before it is used",
                            c.line
                        )));
                    }
                }
            }
            if self.stage_ref(&self.bases[i], i).is_none()
                && self.stages[i..]
                    .iter()
                    .any(|s| s.name.as_deref() == Some(self.bases[i].to_ascii_lowercase().as_str()))
                && self.stages[i].name.as_deref() == Some(self.bases[i].to_ascii_lowercase().as_str())
            {
                return Err(Error::InvalidArgument(format!(
                    "dockerfile parse error on line {}: circular dependency detected on stage: {}",
                    s.line, self.bases[i]
                )));
            }
            deps.push(d);
        }
        Ok(deps)
    }
}
