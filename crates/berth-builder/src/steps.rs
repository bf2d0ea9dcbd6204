//! One stage: its base, `ONBUILD` triggers of the base, then each
//! instruction as a cached step that produces an image.

use std::io::{BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use berth_container::{TaskNetwork, TaskSpec};
use berth_dockerfile::{
    Command, CommandLine, EnvGetter, EnvList, Instruction, MountSpec, MountType, NetworkMode, RunScript, SourceContent,
};
use berth_image::commit::{commit, CommitOptions, LayerSource};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::build::{Shared, PLATFORM_ARGS};
use crate::cache::{self, Record};
use crate::context::{data_item, hash_items, write_tar, Item, Ownership, SourceRoot};
use crate::ignore::{clean, Matcher};
use crate::{random_hex, short_id, Error, Result};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) struct StageRun<'s, 'a> {
    sh: &'s Shared<'a>,
    idx: usize,
    image: Option<String>,
    config: Map<String, Value>,
    args: EnvList,
    author: String,
    /// `CMD` was set in this stage (an `ENTRYPOINT` then keeps it).
    cmd_set: bool,
    step: usize,
}

/// A mounted snapshot or view, unmounted and removed on drop.
struct Mounted<'b> {
    builder: &'b crate::Builder,
    key: String,
    dir: PathBuf,
    mounted: bool,
}

impl Mounted<'_> {
    fn release(&mut self) {
        if self.mounted {
            let _ = berth_snapshot::unmount(&self.dir);
            self.mounted = false;
        }
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        self.release();
        let _ = std::fs::remove_dir(&self.dir);
        let _ = self.builder.images.snapshots().remove(&self.key);
    }
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn env_strings(cfg: &Map<String, Value>) -> Vec<String> {
    match cfg.get("Env") {
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn set_env(cfg: &mut Map<String, Value>, key: &str, value: &str) {
    let mut env = env_strings(cfg);
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
    cfg.insert("Env".into(), json!(env));
}

/// The object `cfg[key]`, taken out (empty when missing or not an object);
/// the caller puts it back.
fn take_object(cfg: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
    match cfg.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn parse_octal(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Error::InvalidArgument(format!("invalid chmod parameter: {s}")))
}

fn nanos(d: std::time::Duration) -> i64 {
    d.as_nanos() as i64
}

impl<'s, 'a> StageRun<'s, 'a> {
    /// Runs stage `idx`; returns its image.
    pub(crate) fn run(sh: &'s Shared<'a>, idx: usize, is_target: bool) -> Result<String> {
        let stage = &sh.stages[idx];
        let mut me = StageRun {
            sh,
            idx,
            image: None,
            config: berth_image::config::default_container_config(),
            args: EnvList::default(),
            author: String::new(),
            cmd_set: false,
            step: sh.step_base[idx] + 1,
        };
        sh.say(idx, format!("Step {}/{} : {}\n", me.step, sh.step_total, stage.source));
        let base = sh.bases[idx].clone();
        if base.eq_ignore_ascii_case("scratch") {
            // BuildKit gives a scratch image the default PATH.
            me.config.insert("Env".into(), json!([DEFAULT_PATH]));
            sh.say(idx, " ---> \n");
        } else {
            let id = match sh.stage_ref(&base, idx) {
                Some(j) => sh.stage_result(j)?,
                None => {
                    let local = sh.builder.images.resolve(&base);
                    match local {
                        Ok(id) if !sh.opts.pull => id,
                        // Missing (or `--pull`): from the registry, as Docker's builder does.
                        local => match sh.builder.pull(&base, &mut |l| sh.say(idx, format!("{l}\n"))) {
                            Some(Ok(id)) => id,
                            Some(Err(e)) => return Err(Error::NotFound(e)),
                            None => local.map_err(|_| {
                                Error::NotFound(format!(
                                    "pull access denied for {}, repository does not exist or may require 'docker login'",
                                    base.split([':', '@']).next().unwrap_or(&base)
                                ))
                            })?,
                        },
                    }
                }
            };
            let img = sh.builder.images.get_by_id(&id)?;
            if let Value::Object(c) = &img.config.raw["config"] {
                me.config = c.clone();
            }
            if env_strings(&me.config).is_empty() {
                me.config.insert("Env".into(), json!([DEFAULT_PATH]));
            }
            me.author = img.config.str_field("author").to_string();
            me.image = Some(id.clone());
            sh.say(idx, format!(" ---> {}\n", short_id(&id)));
        }
        // ONBUILD triggers of the base run first, then are dropped.
        let triggers: Vec<String> = match me.config.get("OnBuild") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        };
        if !triggers.is_empty() {
            me.config.insert("OnBuild".into(), Value::Null);
            sh.say(
                idx,
                format!("# Executing {} build trigger{}\n", triggers.len(), if triggers.len() == 1 { "" } else { "s" }),
            );
            for t in &triggers {
                let cmd = berth_dockerfile::instructions::parse_onbuild_trigger(t, stage.line)?;
                me.dispatch(&cmd)?;
            }
        }
        for cmd in &stage.commands {
            me.step += 1;
            if (sh.cancel)() {
                return Err(Error::Cancelled("the build was cancelled".into()));
            }
            sh.say(idx, format!("Step {}/{} : {}\n", me.step, sh.step_total, cmd.source));
            me.dispatch(cmd)?;
        }
        if is_target && !sh.opts.labels.is_empty() {
            me.step += 1;
            let pairs: Vec<String> = sh.opts.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            let desc = format!("LABEL {}", pairs.join(" "));
            sh.say(idx, format!("Step {}/{} : {desc}\n", me.step, sh.step_total));
            let labels = sh.opts.labels.clone();
            me.meta(&desc, &desc, |cfg| {
                let mut l = take_object(cfg, "Labels");
                for (k, v) in labels {
                    l.insert(k, json!(v));
                }
                cfg.insert("Labels".into(), Value::Object(l));
            })?;
        }
        if me.image.is_none()
            || (triggers.is_empty() && stage.commands.is_empty() && base.eq_ignore_ascii_case("scratch"))
        {
            // `FROM scratch` alone: an image with no layer, as BuildKit makes.
            let cfg = me.config.clone();
            me.meta("FROM scratch", "scratch", |_| {})?;
            me.config = cfg;
        }
        me.image.clone().ok_or_else(|| Error::Internal("no image".into()))
    }

    /// The environment instructions are expanded with: the stage's
    /// arguments, then its `ENV` (which wins, as Docker documents).
    fn expand_env(&self) -> EnvList {
        let mut env = self.args.clone();
        for e in env_strings(&self.config) {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            env.set(k, v);
        }
        env
    }

    fn cache_key(&self, kind: &str, canonical: &str) -> String {
        sha(&[self.image.as_deref().unwrap_or("scratch"), kind, canonical, &self.author, &self.cmd_set.to_string()])
    }

    /// A cached result for `key`, if the image is still there.
    fn cached(&self, key: &str) -> Result<Option<String>> {
        if self.sh.opts.no_cache {
            return Ok(None);
        }
        let db = self.sh.builder.images.db();
        match cache::lookup(db, key)? {
            Some(id) if self.sh.builder.images.get_by_id(&id).is_ok() => Ok(Some(id)),
            Some(_) => {
                cache::remove(db, key)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn use_cached(&mut self, id: String) -> Result<()> {
        let img = self.sh.builder.images.get_by_id(&id)?;
        if let Value::Object(c) = &img.config.raw["config"] {
            self.config = c.clone();
        }
        self.sh.say(self.idx, format!(" ---> Using cache\n ---> {}\n", short_id(&id)));
        self.image = Some(id);
        Ok(())
    }

    fn record(
        &mut self,
        key: String,
        desc: &str,
        layer: LayerSource<'_>,
        created_by: &str,
        cfg: Map<String, Value>,
    ) -> Result<()> {
        let before = match &self.image {
            Some(id) => self.sh.builder.images.get_by_id(id)?.layers.len(),
            None => 0,
        };
        let id = commit(
            &self.sh.builder.images,
            layer,
            &CommitOptions {
                parent: self.image.clone(),
                config: cfg.clone(),
                created_by: created_by.to_string(),
                author: self.author.clone(),
                ..Default::default()
            },
        )?;
        let img = self.sh.builder.images.get_by_id(&id)?;
        let size = if img.layers.len() > before { img.layers.last().map(|l| l.size).unwrap_or(0) } else { 0 };
        let now = cache::now();
        cache::insert(
            self.sh.builder.images.db(),
            &Record {
                key,
                image_id: id.clone(),
                parent_image: self.image.clone().unwrap_or_default(),
                description: desc.to_string(),
                size,
                created_at: now,
                last_used: now,
                usage_count: 0,
            },
        )?;
        self.config = cfg;
        self.image = Some(id.clone());
        self.sh.say(self.idx, format!(" ---> {}\n", short_id(&id)));
        Ok(())
    }

    /// A step that changes the config only.
    fn meta(&mut self, desc: &str, canonical: &str, f: impl FnOnce(&mut Map<String, Value>)) -> Result<()> {
        let key = self.cache_key("meta", canonical);
        if let Some(id) = self.cached(&key)? {
            return self.use_cached(id);
        }
        let mut cfg = self.config.clone();
        f(&mut cfg);
        self.record(key, desc, LayerSource::Empty, desc, cfg)
    }

    fn top_chain(&self) -> Result<Option<String>> {
        match &self.image {
            Some(id) => Ok(self.sh.builder.images.get_by_id(id)?.top_chain_id().map(str::to_string)),
            None => Ok(None),
        }
    }

    /// A writable snapshot on the current image, mounted in the build's
    /// scratch directory.
    fn mount_writable(&self) -> Result<Mounted<'a>> {
        let key = format!("build-{}", random_hex(24));
        let parent = self.top_chain()?;
        let mounts = self.sh.builder.images.snapshots().prepare(&key, parent.as_deref())?;
        let dir = self.sh.work.join(format!("mnt-{}", random_hex(8)));
        let mut m = Mounted { builder: self.sh.builder, key, dir: dir.clone(), mounted: false };
        std::fs::create_dir_all(&dir).map_err(Error::io("creating a mount point"))?;
        berth_snapshot::mount_all(&mounts, &dir)?;
        m.mounted = true;
        Ok(m)
    }

    /// A read-only view of an image's filesystem.
    fn mount_view(&self, image: &str) -> Result<Mounted<'a>> {
        let key = format!("build-{}", random_hex(24));
        let parent = self.sh.builder.images.get_by_id(image)?.top_chain_id().map(str::to_string);
        let mounts = self.sh.builder.images.snapshots().view(&key, parent.as_deref())?;
        let dir = self.sh.work.join(format!("mnt-{}", random_hex(8)));
        let mut m = Mounted { builder: self.sh.builder, key, dir: dir.clone(), mounted: false };
        std::fs::create_dir_all(&dir).map_err(Error::io("creating a mount point"))?;
        berth_snapshot::mount_all(&mounts, &dir)?;
        m.mounted = true;
        Ok(m)
    }

    /// Commits a writable snapshot's changes as the step's layer.
    fn commit_snapshot(
        &mut self,
        m: &mut Mounted<'_>,
        key: String,
        desc: &str,
        created_by: &str,
        empty: bool,
    ) -> Result<()> {
        m.release();
        let cfg = self.config.clone();
        if empty {
            return self.record(key, desc, LayerSource::Empty, created_by, cfg);
        }
        let snaps = self.sh.builder.images.snapshots();
        let skey = m.key.clone();
        let mut write = |w: &mut dyn Write| -> berth_image::Result<()> { Ok(snaps.diff(&skey, w)?) };
        self.record(key, desc, LayerSource::Tar(&mut write), created_by, cfg)
    }

    fn dispatch(&mut self, cmd: &Command) -> Result<()> {
        let env = self.expand_env();
        let x = berth_dockerfile::expand(cmd, self.sh.escape, &env)?;
        let canonical = format!("{:?}", x.instruction);
        match &x.instruction {
            Instruction::Env(kvs) => {
                let desc = format!(
                    "ENV {}",
                    kvs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect::<Vec<_>>().join(" ")
                );
                let kvs = kvs.clone();
                self.meta(&desc, &canonical, |cfg| {
                    for kv in kvs {
                        set_env(cfg, &kv.key, &kv.value);
                    }
                })
            }
            Instruction::Label(kvs) => {
                let desc = format!(
                    "LABEL {}",
                    kvs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect::<Vec<_>>().join(" ")
                );
                let kvs = kvs.clone();
                self.meta(&desc, &canonical, |cfg| {
                    let mut l = take_object(cfg, "Labels");
                    for kv in kvs {
                        l.insert(kv.key, json!(kv.value));
                    }
                    cfg.insert("Labels".into(), Value::Object(l));
                })
            }
            Instruction::Arg(defs) => {
                let mut shown = Vec::new();
                for d in defs {
                    if let Ok(mut c) = self.sh.consumed.lock() {
                        c.insert(d.key.clone());
                    }
                    let value = match (self.sh.build_arg(&d.key), &d.value) {
                        (Some(v), _) => Some(v),
                        (None, Some(v)) => Some(v.clone()),
                        // `ARG X` inherits a global `ARG X=…` or an
                        // automatic platform argument.
                        (None, None) => self.sh.meta_env.get_env(&d.key).map(str::to_string).filter(|_| {
                            PLATFORM_ARGS.contains(&d.key.as_str()) || self.sh.meta_env.get_env(&d.key).is_some()
                        }),
                    };
                    if let Some(v) = value {
                        self.args.set(d.key.clone(), v);
                    }
                    shown.push(match &d.value {
                        Some(v) => format!("{}={v}", d.key),
                        None => d.key.clone(),
                    });
                }
                let desc = format!("ARG {}", shown.join(" "));
                let canonical = format!("{canonical}{:?}", self.args);
                self.meta(&desc, &canonical, |_| {})
            }
            Instruction::Workdir(p) => self.workdir(p, &canonical),
            Instruction::User(u) => {
                let u = u.clone();
                self.meta(&format!("USER {u}"), &canonical, |cfg| {
                    cfg.insert("User".into(), json!(u));
                })
            }
            Instruction::Expose(ports) => {
                let mut norm = Vec::new();
                for p in ports {
                    let p = if p.contains('/') { p.to_ascii_lowercase() } else { format!("{p}/tcp") };
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let ok =
                        num.split('-').all(|n| n.parse::<u16>().is_ok()) && matches!(proto, "tcp" | "udp" | "sctp");
                    if !ok {
                        return Err(Error::InvalidArgument(format!("invalid containerPort: {num}")));
                    }
                    norm.push(p);
                }
                let desc = format!("EXPOSE {}", norm.join(" "));
                self.meta(&desc, &canonical, |cfg| {
                    let mut m = take_object(cfg, "ExposedPorts");
                    for p in norm {
                        m.insert(p, json!({}));
                    }
                    cfg.insert("ExposedPorts".into(), Value::Object(m));
                })
            }
            Instruction::Volume(v) => {
                if v.iter().any(|p| p.trim().is_empty()) {
                    return Err(Error::InvalidArgument("VOLUME specified can not be an empty string".into()));
                }
                let v = v.clone();
                self.meta(&format!("VOLUME {v:?}"), &canonical, |cfg| {
                    let mut m = take_object(cfg, "Volumes");
                    for p in v {
                        m.insert(p, json!({}));
                    }
                    cfg.insert("Volumes".into(), Value::Object(m));
                })
            }
            Instruction::StopSignal(s) => {
                berth_container::parse_signal(s).map_err(|e| Error::InvalidArgument(e.to_string()))?;
                let s = s.clone();
                self.meta(&format!("STOPSIGNAL {s}"), &canonical, |cfg| {
                    cfg.insert("StopSignal".into(), json!(s));
                })
            }
            Instruction::Healthcheck(h) => {
                let mut hc = Map::new();
                hc.insert("Test".into(), json!(h.test));
                if !h.is_none() {
                    for (k, d) in [
                        ("Interval", h.interval),
                        ("Timeout", h.timeout),
                        ("StartPeriod", h.start_period),
                        ("StartInterval", h.start_interval),
                    ] {
                        if !d.is_zero() {
                            hc.insert(k.into(), json!(nanos(d)));
                        }
                    }
                    if h.retries != 0 {
                        hc.insert("Retries".into(), json!(h.retries));
                    }
                }
                let desc = format!("HEALTHCHECK {}", serde_json::to_string(&hc).unwrap_or_default());
                self.meta(&desc, &canonical, |cfg| {
                    cfg.insert("Healthcheck".into(), Value::Object(hc));
                })
            }
            Instruction::Cmd(c) => {
                let argv = c.with_shell(&self.shell());
                self.cmd_set = true;
                let desc = format!("CMD {}", serde_json::to_string(&argv).unwrap_or_default());
                self.meta(&desc, &canonical, |cfg| {
                    cfg.insert("Cmd".into(), json!(argv));
                })
            }
            Instruction::Entrypoint(c) => {
                let argv = c.with_shell(&self.shell());
                let keep_cmd = self.cmd_set;
                let desc = format!("ENTRYPOINT {}", serde_json::to_string(&argv).unwrap_or_default());
                self.meta(&desc, &canonical, |cfg| {
                    cfg.insert("Entrypoint".into(), json!(argv));
                    // Docker: an ENTRYPOINT resets a CMD inherited from the
                    // base image.
                    if !keep_cmd {
                        cfg.insert("Cmd".into(), Value::Null);
                    }
                })
            }
            Instruction::Shell(s) => {
                let s = s.clone();
                self.meta(&format!("SHELL {s:?}"), &canonical, |cfg| {
                    cfg.insert("Shell".into(), json!(s));
                })
            }
            Instruction::Maintainer(m) => {
                self.author = m.clone();
                self.meta(&format!("MAINTAINER {m}"), &canonical, |_| {})
            }
            Instruction::Onbuild(o) => {
                let e = o.expression.clone();
                self.meta(&format!("ONBUILD {e}"), &canonical, |cfg| {
                    let mut list = match cfg.get("OnBuild") {
                        Some(Value::Array(a)) => a.clone(),
                        _ => Vec::new(),
                    };
                    list.push(json!(e));
                    cfg.insert("OnBuild".into(), Value::Array(list));
                })
            }
            Instruction::Run(r) => self.run_step(r, &canonical),
            Instruction::Copy(c) => self.copy_step(
                "COPY",
                &c.sources,
                &c.heredocs,
                &c.dest,
                c.from.as_deref(),
                c.chown.as_deref(),
                c.chmod.as_deref(),
                &c.exclude,
                false,
                None,
                &x.source,
            ),
            Instruction::Add(a) => self.copy_step(
                "ADD",
                &a.sources,
                &a.heredocs,
                &a.dest,
                None,
                a.chown.as_deref(),
                a.chmod.as_deref(),
                &a.exclude,
                a.unpack.unwrap_or(true),
                a.checksum.as_deref(),
                &x.source,
            ),
        }
    }

    fn shell(&self) -> Vec<String> {
        match self.config.get("Shell") {
            Some(Value::Array(a)) if !a.is_empty() => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => vec!["/bin/sh".into(), "-c".into()],
        }
    }

    fn workdir_of(&self) -> String {
        match self.config.get("WorkingDir").and_then(Value::as_str) {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => "/".to_string(),
        }
    }

    fn workdir(&mut self, p: &str, canonical: &str) -> Result<()> {
        let path = if p.starts_with('/') { clean(p) } else { clean(&format!("{}/{p}", self.workdir_of())) };
        let key = self.cache_key("workdir", &format!("{canonical}{path}"));
        if let Some(id) = self.cached(&key)? {
            return self.use_cached(id);
        }
        self.config.insert("WorkingDir".into(), json!(path));
        let desc = format!("WORKDIR {path}");
        let user = self.config.get("User").and_then(Value::as_str).unwrap_or("").to_string();
        // BuildKit makes the directory (owned by the current USER) when it
        // is missing; an existing one adds no layer.
        let mut m = self.mount_writable()?;
        let host = berth_fsops::resolve_in_root(&m.dir, &path, true)
            .map_err(|e| Error::InvalidArgument(format!("WORKDIR {path}: {e}")))?;
        let exists = host.is_dir();
        if !exists {
            let ids = if user.is_empty() {
                None
            } else {
                berth_container::spec::resolve_user(&m.dir, &user).ok().map(|u| (u.uid, u.gid))
            };
            mkdir_in_root(&m.dir, &path, ids)?;
        }
        self.commit_snapshot(&mut m, key, &desc, &desc, exists)
    }

    fn run_step(&mut self, r: &berth_dockerfile::Run, canonical: &str) -> Result<()> {
        let shell = self.shell();
        let mut files = Vec::new();
        let argv: Vec<String> = match r.script(false).map_err(Error::InvalidArgument)? {
            RunScript::Command(c) => c.with_shell(&shell),
            RunScript::Shebang { name, data } => {
                let p = format!("/dev/pipes/{name}");
                files.push((p.clone(), data.into_bytes(), 0o755));
                vec![p]
            }
            RunScript::Inline(s) | RunScript::Shell(s) => {
                let mut v = shell.clone();
                v.push(s);
                v
            }
        };
        if let CommandLine::Exec(a) = &r.cmd {
            if a.is_empty() {
                return Err(Error::InvalidArgument("RUN requires at least one argument".into()));
            }
        }
        // Build arguments are in the step's environment (ENV wins) and in
        // its cache key, as in Docker.
        let mut cfg = self.config.clone();
        let env_keys: Vec<String> =
            env_strings(&cfg).iter().map(|e| e.split('=').next().unwrap_or("").to_string()).collect();
        let mut run_env = env_strings(&cfg);
        let mut arg_pairs = Vec::new();
        for (k, v) in self.args.pairs() {
            arg_pairs.push(format!("{k}={v}"));
            if !env_keys.contains(k) {
                run_env.push(format!("{k}={v}"));
            }
        }
        cfg.insert("Env".into(), json!(run_env));
        let network = match r.network {
            NetworkMode::Host => TaskNetwork::Host,
            NetworkMode::None => TaskNetwork::Isolated,
            NetworkMode::Default if self.sh.opts.network == "host" => TaskNetwork::Host,
            NetworkMode::Default if self.sh.opts.network == "none" => TaskNetwork::Isolated,
            // Docker's builder runs steps on the default bridge network
            // (outbound NAT: `pip install`, `apt-get` work in a step).
            NetworkMode::Default => TaskNetwork::Bridge,
        };
        let net_key = match network {
            TaskNetwork::Host => "host",
            TaskNetwork::Bridge => "bridge",
            _ => "isolated",
        };
        let created_by = if arg_pairs.is_empty() {
            format!("RUN {} # buildkit", argv.join(" "))
        } else {
            format!("RUN |{} {} {} # buildkit", arg_pairs.len(), arg_pairs.join(" "), argv.join(" "))
        };
        let key = self.cache_key(
            "run",
            &format!("{canonical}\n{argv:?}\n{arg_pairs:?}\n{net_key}\n{:?}", self.sh.opts.extra_hosts),
        );
        if let Some(id) = self.cached(&key)? {
            return self.use_cached(id);
        }
        let task_id = random_hex(64);
        self.sh.say(self.idx, format!(" ---> Running in {}\n", &task_id[..12]));

        let skey = format!("build-{}", random_hex(24));
        let parent = self.top_chain()?;
        let snaps = self.sh.builder.images.snapshots();
        let rootfs = snaps.prepare(&skey, parent.as_deref())?;
        let mut guard = Mounted {
            builder: self.sh.builder,
            key: skey.clone(),
            dir: self.sh.work.join(format!("unused-{}", random_hex(8))),
            mounted: false,
        };
        let (upper, lowers) = overlay_dirs(&rootfs);
        let mut views = Vec::new();
        let mut oci_mounts = Vec::new();
        let mut stubs = Vec::new();
        for m in &r.mounts {
            let (mount, view) = self.run_mount(m)?;
            if let Some(v) = view {
                views.push(v);
            }
            if let Some(target) = mount.get("destination").and_then(Value::as_str) {
                if let Some(s) = first_missing(&lowers, target) {
                    stubs.push(s);
                }
            }
            oci_mounts.push(mount);
        }
        for (p, _, _) in &files {
            if let Some(s) = first_missing(&lowers, p) {
                stubs.push(s);
            }
        }
        let sh = self.sh;
        let idx = self.idx;
        let mut out = |_stream: u8, b: &[u8]| sh.say(idx, String::from_utf8_lossy(b).into_owned());
        let task = TaskSpec {
            id: task_id.clone(),
            rootfs: &rootfs,
            config: &cfg,
            args: &argv,
            mounts: oci_mounts,
            network,
            extra_hosts: &self.sh.opts.extra_hosts,
            files,
        };
        let res = self.sh.builder.containers.run_task(&task, &mut out, &|| (sh.cancel)());
        drop(views);
        let code = match res {
            Ok((_, code)) => code,
            Err(e) => return Err(Error::Container(e)),
        };
        self.sh.say(self.idx, format!("Removing intermediate container {}\n", &task_id[..12]));
        if code != 0 {
            return Err(Error::RunFailed { command: argv.join(" "), code });
        }
        // Mount points the runtime had to create are not part of the
        // step's result (a secret's file, a cache directory), as BuildKit
        // removes them.
        if let Some(u) = &upper {
            for s in stubs {
                remove_stub(&u.join(s.trim_start_matches('/')));
            }
        }
        let desc = created_by.trim_end_matches(" # buildkit").to_string();
        self.commit_snapshot(&mut guard, key, &desc, &created_by, false)
    }

    /// The OCI mount for a `RUN --mount`, and the view it reads from.
    fn run_mount(&self, m: &MountSpec) -> Result<(Value, Option<Mounted<'a>>)> {
        let target = match (&m.target, m.kind) {
            (Some(t), _) => t.clone(),
            // A secret goes to /run/secrets/<id> by default.
            (None, MountType::Secret) => String::new(),
            (None, _) => return Err(Error::InvalidArgument("mount target must be specified".into())),
        };
        let target =
            if target.starts_with('/') { clean(&target) } else { clean(&format!("{}/{target}", self.workdir_of())) };
        let ro = |rw: bool| if rw { "rw" } else { "ro" };
        match m.kind {
            MountType::Cache => {
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let dir = self.sh.builder.root.join("cache-mounts").join(&sha(&[&id])[7..31]);
                if !dir.exists() {
                    std::fs::create_dir_all(&dir).map_err(Error::io("creating a cache mount"))?;
                    use std::os::unix::fs::PermissionsExt;
                    let mode = m.mode.unwrap_or(0o755);
                    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode));
                    let _ = std::os::unix::fs::chown(&dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)));
                }
                let _ = filetime_now(&dir);
                Ok((
                    json!({"destination": target, "type": "bind", "source": dir, "options": ["rbind", ro(!m.read_only)]}),
                    None,
                ))
            }
            MountType::Tmpfs => {
                let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
                if m.size_limit > 0 {
                    opts.push(format!("size={}", m.size_limit));
                }
                Ok((json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts}), None))
            }
            MountType::Secret => {
                let id = m.id.clone().unwrap_or_else(|| {
                    Path::new(&target).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                });
                let target = match &m.target {
                    Some(_) => target,
                    None => format!("/run/secrets/{id}"),
                };
                let src = self.sh.secrets.join(&id);
                if !src.is_file() {
                    if m.required {
                        return Err(Error::InvalidArgument(format!("secret {id} not found")));
                    }
                    return Ok((
                        json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": ["ro", "size=0"]}),
                        None,
                    ));
                }
                Ok((json!({"destination": target, "type": "bind", "source": src, "options": ["rbind", "ro"]}), None))
            }
            MountType::Bind => {
                let source = clean(&format!("/{}", m.source.clone().unwrap_or_default()));
                let (root, view) = match &m.from {
                    None => (self.sh.context.clone(), None),
                    Some(f) => {
                        let id = self.resolve_from(f)?;
                        let v = self.mount_view(&id)?;
                        (v.dir.clone(), Some(v))
                    }
                };
                let host = berth_fsops::resolve_in_root(&root, &source, true)
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                if !host.exists() {
                    return Err(Error::NotFound(format!("failed to compute cache key: \"{source}\": not found")));
                }
                // Writes to a bind mount are discarded in BuildKit; read-only
                // is the default.
                Ok((
                    json!({"destination": target, "type": "bind", "source": host, "options": ["rbind", ro(!m.read_only && m.raw.contains("rw"))]}),
                    view,
                ))
            }
            MountType::Ssh => {
                Err(Error::InvalidArgument("RUN --mount=type=ssh is not supported by this builder".into()))
            }
        }
    }

    /// The image a `--from` names: an earlier stage, or a local image.
    fn resolve_from(&self, f: &str) -> Result<String> {
        if let Some(j) = self.sh.stage_ref(f, self.idx) {
            return self.sh.stage_result(j);
        }
        self.sh.builder.images.resolve(f).map_err(|_| {
            Error::NotFound(format!(
                "invalid from flag value {f}: pull access denied for {f}, repository does not exist or may require 'docker login'"
            ))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &mut self,
        kw: &str,
        sources: &[String],
        heredocs: &[SourceContent],
        dest: &str,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
        exclude: &[String],
        unpack: bool,
        checksum: Option<&str>,
        source_text: &str,
    ) -> Result<()> {
        let is_add = kw == "ADD";
        let mode = chmod.map(parse_octal).transpose()?;
        let excl = Matcher::parse(&exclude.join("\n")).map_err(Error::InvalidArgument)?;
        let mut view = None;
        let (root, ignore, keep_owner) = match from {
            None => (self.sh.context.clone(), Some(&self.sh.ignore), false),
            Some(f) => {
                let id = self.resolve_from(f)?;
                let v = self.mount_view(&id)?;
                let d = v.dir.clone();
                view = Some(v);
                (d, None, true)
            }
        };
        let src_root = SourceRoot { root: &root, ignore };
        // What each source contributes: (items with names relative to the
        // destination directory, whether it is one plain file, whether to
        // unpack it as an archive).
        let mut groups: Vec<(Vec<Item>, bool, bool)> = Vec::new();
        let dl = self.sh.work.join("downloads");
        std::fs::create_dir_all(&dl).map_err(Error::io("creating a download directory"))?;
        for src in sources {
            if is_add && (src.starts_with("http://") || src.starts_with("https://")) {
                let (name, data, mtime) = download(src)?;
                if let Some(want) = checksum {
                    // BuildKit's `ADD --checksum`: the download must match.
                    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
                    if !want.starts_with("sha256:") {
                        return Err(Error::InvalidArgument(format!("unsupported digest algorithm in {want}")));
                    }
                    if digest != want {
                        return Err(Error::InvalidArgument(format!("digest mismatch {want}: {digest}")));
                    }
                }
                let mut it = data_item(&dl, &name, &data, 0o600)?;
                if let Some(t) = mtime {
                    let _ = set_mtime(&it.host, t);
                    it.meta = std::fs::metadata(&it.host).map_err(Error::io("stat download"))?;
                }
                groups.push((vec![it], true, false));
                continue;
            }
            if src.starts_with("git@") || src.ends_with(".git") {
                return Err(Error::InvalidArgument(format!("{kw} from a git repository is not supported: {src}")));
            }
            for rel in src_root.resolve(src)? {
                let host = src_root.host_path(&rel)?;
                let is_dir = host.is_dir();
                let mut items = Vec::new();
                let name = if is_dir {
                    ".".to_string()
                } else {
                    Path::new(&rel).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
                };
                src_root.items(&rel, &name, &mut items)?;
                if !excl.is_empty() {
                    items.retain(|i| !excl.excluded(&i.name));
                }
                let archive = is_add && unpack && !is_dir && is_archive(&host);
                groups.push((items, !is_dir, archive));
            }
        }
        for h in heredocs {
            let it = data_item(&dl, &h.path, h.data.as_bytes(), 0o644)?;
            groups.push((vec![it], true, false));
        }
        let count = sources.len() + heredocs.len();
        let dest_abs = if dest.starts_with('/') { dest.to_string() } else { format!("{}/{dest}", self.workdir_of()) };
        let dest_is_dir_hint = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
        if count > 1 && !dest_is_dir_hint {
            return Err(Error::InvalidArgument(format!(
                "When using {kw} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let ids_spec = chown.map(|c| if c.contains(':') { c.to_string() } else { format!("{c}:{c}") });
        let own_for_hash = Ownership { ids: if keep_owner { None } else { Some((0, 0)) }, mode };
        let mut h = String::new();
        for (items, single, archive) in &groups {
            h.push_str(&hash_items(items, &own_for_hash)?);
            h.push_str(&format!("{single}{archive};"));
        }
        let canonical = format!("{kw}\n{source_text}\n{dest_abs}\n{ids_spec:?}\n{mode:?}\n{h}");
        let key = self.cache_key("copy", &canonical);
        let created_by = format!("{} # buildkit", source_text);
        if let Some(id) = self.cached(&key)? {
            return self.use_cached(id);
        }
        let mut m = self.mount_writable()?;
        let ids = match &ids_spec {
            Some(s) => {
                let u = berth_container::spec::resolve_user(&m.dir, s).map_err(|e| {
                    Error::InvalidArgument(format!("unable to convert uid/gid chown string to host mapping: {e}"))
                })?;
                Some((u.uid, u.gid))
            }
            None if keep_owner => None,
            None => Some((0, 0)),
        };
        let own = Ownership { ids, mode };
        let dest_clean = clean(&dest_abs);
        let dest_host = berth_fsops::resolve_in_root(&m.dir, &dest_clean, true)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let single_file = groups.len() == 1 && groups[0].1 && !groups[0].2 && !dest_is_dir_hint && !dest_host.is_dir();
        let tmp = self.sh.work.join(format!("copy-{}.tar", random_hex(8)));
        let res = (|| -> Result<()> {
            if single_file {
                let parent =
                    Path::new(&dest_clean).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or("/".into());
                let name =
                    Path::new(&dest_clean).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                mkdir_in_root(&m.dir, &parent, ids)?;
                let mut it = groups[0].0[0].clone();
                it.name = name;
                extract_items(&m.dir, &parent, &[it], &own, &tmp)?;
            } else {
                mkdir_in_root(&m.dir, &dest_clean, ids)?;
                for (items, _, archive) in &groups {
                    if *archive {
                        let f = std::fs::File::open(&items[0].host).map_err(Error::io("opening an archive"))?;
                        let opts = berth_fsops::ExtractOptions { no_overwrite_dir_non_dir: false, chown: ids };
                        berth_fsops::extract_to_with(&m.dir, &dest_clean, BufReader::new(f), &opts)
                            .map_err(|e| Error::InvalidArgument(format!("failed to extract archive: {e}")))?;
                    } else {
                        extract_items(&m.dir, &dest_clean, items, &own, &tmp)?;
                    }
                }
            }
            Ok(())
        })();
        let _ = std::fs::remove_file(&tmp);
        drop(view);
        res?;
        let desc = source_text.to_string();
        self.commit_snapshot(&mut m, key, &desc, &created_by, false)
    }
}

fn extract_items(root: &Path, dest: &str, items: &[Item], own: &Ownership, tmp: &Path) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(tmp)
        .map_err(Error::io("writing a copy archive"))?;
    write_tar(items, own, &mut f)?;
    f.rewind().map_err(Error::io("reading a copy archive"))?;
    let opts = berth_fsops::ExtractOptions { no_overwrite_dir_non_dir: false, chown: None };
    berth_fsops::extract_to_with(root, dest, BufReader::new(f), &opts)
        .map_err(|e| Error::InvalidArgument(format!("failed to copy files: {e}")))
}

/// `mkdir -p` inside a root; directories made get `ids` as owner.
fn mkdir_in_root(root: &Path, path: &str, ids: Option<(u32, u32)>) -> Result<()> {
    let mut cur = String::new();
    for seg in clean(path).split('/').filter(|s| !s.is_empty()) {
        cur.push('/');
        cur.push_str(seg);
        let host = berth_fsops::resolve_in_root(root, &cur, true).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Error::InvalidArgument(format!("mkdir {cur}: not a directory"))),
            Err(_) => {
                std::fs::create_dir(&host).map_err(Error::io(format!("mkdir {cur}")))?;
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o755));
                if let Some((u, g)) = ids {
                    let _ = std::os::unix::fs::lchown(&host, Some(u), Some(g));
                }
            }
        }
    }
    Ok(())
}

/// The upper and lower directories of a writable snapshot's mounts.
fn overlay_dirs(mounts: &[berth_snapshot::Mount]) -> (Option<PathBuf>, Vec<PathBuf>) {
    let Some(m) = mounts.first() else { return (None, Vec::new()) };
    if m.kind == "bind" {
        return (Some(PathBuf::from(&m.source)), Vec::new());
    }
    let mut upper = None;
    let mut lowers = Vec::new();
    for o in &m.options {
        if let Some(u) = o.strip_prefix("upperdir=") {
            upper = Some(PathBuf::from(u));
        }
        if let Some(l) = o.strip_prefix("lowerdir=") {
            lowers = l.split(':').map(PathBuf::from).collect();
        }
    }
    (upper, lowers)
}

/// The first component of `target` no lower layer has (what the runtime
/// will create as a mount point).
fn first_missing(lowers: &[PathBuf], target: &str) -> Option<String> {
    let mut cur = String::new();
    for seg in clean(target).split('/').filter(|s| !s.is_empty()) {
        cur.push('/');
        cur.push_str(seg);
        let rel = cur.trim_start_matches('/');
        if !lowers.iter().any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok()) {
            return Some(cur);
        }
    }
    None
}

/// Removes a mount-point stub: only empty directories and empty files.
fn remove_stub(p: &Path) {
    fn only_stubs(p: &Path) -> bool {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                std::fs::read_dir(p).map(|rd| rd.flatten().all(|e| only_stubs(&e.path()))).unwrap_or(false)
            }
            Ok(m) => m.is_file() && m.len() == 0,
            Err(_) => true,
        }
    }
    if only_stubs(p) {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn is_archive(p: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(p) else { return false };
    let n = f.read(&mut head).unwrap_or(0);
    if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        let Ok(f) = std::fs::File::open(p) else { return false };
        let mut d = flate2::read::GzDecoder::new(BufReader::new(f));
        let mut h = [0u8; 512];
        return d.read_exact(&mut h).is_ok() && &h[257..262] == b"ustar";
    }
    n == 512 && &head[257..262] == b"ustar"
}

fn download(url: &str) -> Result<(String, Vec<u8>, Option<i64>)> {
    let resp = ureq::get(url).call().map_err(|e| Error::InvalidArgument(format!("failed to GET {url}: {e}")))?;
    let mtime = resp.headers().get("Last-Modified").and_then(|v| v.to_str().ok()).and_then(parse_http_date);
    let mut data = Vec::new();
    resp.into_body()
        .into_reader()
        .read_to_end(&mut data)
        .map_err(|e| Error::InvalidArgument(format!("failed to GET {url}: {e}")))?;
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().filter(|s| !s.is_empty() && !path.ends_with("//")).unwrap_or("__unnamed__");
    let name = if path.matches('/').count() <= 2 { "__unnamed__" } else { name };
    Ok((name.to_string(), data, mtime))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` to unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let day: i64 = parts[1].parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == parts[2])? as i64
        + 1;
    let year: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').filter_map(|p| p.parse().ok()).collect();
    if hms.len() != 3 {
        return None;
    }
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

fn set_mtime(p: &Path, secs: i64) -> std::io::Result<()> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let ts = [libc::timespec { tv_sec: secs, tv_nsec: 0 }, libc::timespec { tv_sec: secs, tv_nsec: 0 }];
    // SAFETY: a valid NUL-terminated path and two timespecs.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Marks a cache mount as used now (its age decides pruning).
fn filetime_now(p: &Path) -> std::io::Result<()> {
    let now = cache::now();
    set_mtime(p, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_and_env() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        let mut cfg = Map::new();
        set_env(&mut cfg, "A", "1");
        set_env(&mut cfg, "B", "2");
        set_env(&mut cfg, "A", "3");
        assert_eq!(env_strings(&cfg), ["A=3", "B=2"]);
        assert!(parse_octal("755").is_ok() && parse_octal("9").is_err());
    }

    #[test]
    fn stubs_and_missing_components() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        std::fs::create_dir_all(lower.join("run")).unwrap();
        assert_eq!(first_missing(std::slice::from_ref(&lower), "/run/secrets/x").as_deref(), Some("/run/secrets"));
        assert_eq!(first_missing(&[lower], "/run"), None);
        let up = d.path().join("upper");
        std::fs::create_dir_all(up.join("run/secrets")).unwrap();
        std::fs::write(up.join("run/secrets/x"), "").unwrap();
        remove_stub(&up.join("run/secrets"));
        assert!(!up.join("run/secrets").exists());
        std::fs::create_dir_all(up.join("keep")).unwrap();
        std::fs::write(up.join("keep/data"), "x").unwrap();
        remove_stub(&up.join("keep"));
        assert!(up.join("keep/data").exists());
    }
}
