//! `run`, `create`, `start` and `attach`: docker-cli's `runContainer`,
//! `createContainer`, `RunStart` and `RunAttach`.
//!
//! The order of requests is docker's and the daemon relies on it: for an
//! attached run, `attach` (upgraded to a raw stream) comes first, then
//! `wait?condition=next-exit` (`removed` with `--rm`), and only then `start`,
//! so no output and no exit can be missed. berth waits for the wait
//! response's headers before starting, which makes that ordering certain
//! rather than likely.

use anyhow::Result;
use berth_client::hyper::Method;
use berth_client::Client;
use clap::Args;
use serde_json::{json, Value};

use super::opts::{go_bool, ContainerOpts, CreateArgs, RunArgs};
use super::parse::parse;
use super::pull::{pull, Reference};
use super::stream::{forward_signals, monitor_size, restore_on_signals, stream, Ended, StreamConfig, Waiter};
use super::{client_error_text, error_text, finish, is_not_found, seg, status};
use crate::cmd::Ctx;
use crate::tty;

/// The query of `POST /containers/create` (Go's `url.Values` order).
pub fn create_query(name: Option<&str>, platform: Option<&str>) -> String {
    crate::cmd::query(&[("name", name.unwrap_or("").to_string()), ("platform", platform.unwrap_or("").to_string())])
}

fn validate_pull(p: &str) -> std::result::Result<(), String> {
    match p {
        "always" | "missing" | "never" | "" => Ok(()),
        _ => Err(format!("invalid pull option: '{p}': must be one of \"always\", \"missing\" or \"never\"")),
    }
}

/// docker's `withHelp`.
fn with_help(msg: &str, command: &str) -> String {
    format!("berth: {msg}\n\nRun 'berth {command} --help' for more information")
}

/// docker's `toStatusError`: 127 when the command was not found, 126 when it
/// could not be run, 125 for any other failure before the container ran.
fn to_status_error(e: anyhow::Error) -> anyhow::Error {
    let text = error_text(&e);
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
        || text.contains("system cannot find the file specified")
    {
        127
    } else if text.contains("permission denied") || text.contains("is a directory") {
        126
    } else {
        125
    };
    status(with_help(&text, "run"), code)
}

/// The container ID file of `--cidfile`: created before the container and
/// removed again if no ID was written to it.
struct CidFile {
    path: Option<String>,
    written: bool,
}

impl CidFile {
    fn new(path: Option<&str>) -> Result<CidFile> {
        let Some(p) = path.filter(|p| !p.is_empty()) else {
            return Ok(CidFile { path: None, written: false });
        };
        if std::path::Path::new(p).exists() {
            return Err(status(
                format!("container ID file found, make sure the other container isn't running or delete {p}"),
                1,
            ));
        }
        std::fs::File::create(p).map_err(|e| {
            status(format!("failed to create the container ID file: open {p}: {}", super::values::go_io_error(&e)), 1)
        })?;
        Ok(CidFile { path: Some(p.to_string()), written: false })
    }

    fn write(&mut self, id: &str) -> Result<()> {
        if let Some(p) = &self.path {
            std::fs::write(p, id)
                .map_err(|e| status(format!("failed to write the container ID ({id}) to file: {e}"), 1))?;
            self.written = true;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if let (Some(p), false) = (&self.path, self.written) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// docker's `createContainer`: `--pull always` first; on "no such image"
/// with `--pull missing`, say so, pull, and create again.
async fn create_container(client: &Client, o: &ContainerOpts, body: &Value, image: &str) -> Result<String> {
    let mut cid = CidFile::new(o.cidfile.as_deref())?;
    let quiet = ContainerOpts::flag(o.quiet);
    if o.pull == "always" {
        pull(client, image, o.platform.as_deref(), quiet).await?;
    }
    let path = format!("/containers/create{}", create_query(o.name.as_deref(), o.platform.as_deref()));
    let resp: Value = match client.post_json(&path, Some(body)).await {
        Ok(v) => v,
        Err(e) if is_not_found(&e) && o.pull == "missing" && Reference::parse(image).is_some() => {
            if !quiet {
                if let Some(r) = Reference::parse(image) {
                    eprintln!("Unable to find image '{}' locally", r.familiar_with_tag());
                }
            }
            pull(client, image, o.platform.as_deref(), quiet).await?;
            client.post_json(&path, Some(body)).await?
        }
        Err(e) => return Err(e.into()),
    };
    for w in resp.get("Warnings").and_then(Value::as_array).into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    let id = resp.get("Id").and_then(Value::as_str).unwrap_or("").to_string();
    cid.write(&id)?;
    Ok(id)
}

fn parse_or_status(o: &ContainerOpts, console: (u16, u16), api: &str, command: &str) -> Result<super::parse::Parsed> {
    validate_pull(&o.pull).map_err(|e| status(with_help(&e, command), 125))?;
    parse(o, console, api).map_err(|e| status(e.render(command), 125))
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    finish(create_inner(ctx, a).await)
}

async fn create_inner(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let o = &a.opts;
    validate_pull(&o.pull).map_err(|e| status(with_help(&e, "create"), 125))?;
    let client = ctx.client().await?;
    let api = client.api_version().await;
    let parsed = parse_or_status(o, tty::size(tty::STDOUT), &api, "create")?;
    let id = create_container(&client, o, &parsed.body, &parsed.image).await?;
    println!("{id}");
    Ok(0)
}

fn detach_keys_or_default(keys: Option<&str>) -> Vec<u8> {
    match keys.filter(|k| !k.is_empty()) {
        None => tty::DEFAULT_DETACH_KEYS.to_vec(),
        Some(k) => tty::detach_keys(k).unwrap_or_else(|e| {
            eprintln!("WARNING: invalid detach escape keys, using default: {e}");
            tty::DEFAULT_DETACH_KEYS.to_vec()
        }),
    }
}

fn attach_path(id: &str, stdin: bool, stdout: bool, stderr: bool, detach_keys: Option<&str>) -> String {
    let mut q = Vec::new();
    if let Some(k) = detach_keys.filter(|k| !k.is_empty()) {
        q.push(format!("detachKeys={}", berth_client::enc(k)));
    }
    for (on, k) in [(stderr, "stderr"), (stdin, "stdin"), (stdout, "stdout")] {
        if on {
            q.push(format!("{k}=1"));
        }
    }
    q.push("stream=1".into());
    format!("/containers/{}/attach?{}", seg(id), q.join("&"))
}

/// `run -d` attaches nothing (docker's `runContainer`).
pub fn detach_body(body: &mut Value) {
    for k in ["AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"] {
        body[k] = json!(false);
    }
}

pub async fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    finish(run_inner(ctx, a).await)
}

async fn run_inner(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    let o = &a.opts;
    validate_pull(&o.pull).map_err(|e| status(with_help(&e, "run"), 125))?;
    let client = ctx.client().await?;
    let api = client.api_version().await;
    let parsed = parse_or_status(o, tty::size(tty::STDOUT), &api, "run")?;
    let mut body = parsed.body;
    let detach = ContainerOpts::flag(a.detach);
    let (mut attach_stdin, mut attach_stdout, mut attach_stderr) =
        (parsed.attach_stdin, parsed.attach_stdout, parsed.attach_stderr);
    if !detach {
        if parsed.tty && attach_stdin && !tty::is_terminal(tty::STDIN) {
            return Err(status("the input device is not a TTY", 1));
        }
    } else {
        if parsed.attach_flags != 0 {
            return Err(status("conflicting options: cannot specify both --attach and --detach", 1));
        }
        (attach_stdin, attach_stdout, attach_stderr) = (false, false, false);
        detach_body(&mut body);
    }

    let id = create_container(&client, o, &body, &parsed.image).await.map_err(to_status_error)?;

    if a.sig_proxy {
        forward_signals(client.clone(), id.clone());
    } else if parsed.tty && attach_stdin {
        restore_on_signals();
    }

    let attach = attach_stdin || attach_stdout || attach_stderr;
    if !attach {
        println!("{id}");
    }
    let mut streaming = None;
    if attach {
        let h = client
            .hijack(&attach_path(&id, attach_stdin, attach_stdout, attach_stderr, a.detach_keys.as_deref()), None)
            .await
            .map_err(|e| status(client_error_text(&e), 1))?;
        let cfg = StreamConfig {
            tty: parsed.tty,
            stdin: attach_stdin,
            stdout: attach_stdout,
            stderr: attach_stderr,
            detach_keys: detach_keys_or_default(a.detach_keys.as_deref()),
        };
        streaming = Some(tokio::spawn(stream(h, cfg)));
    }

    let condition = if parsed.auto_remove { "removed" } else { "next-exit" };
    let waiter = Waiter::new(&client, &id, condition).await.map_err(|e| to_status_error(e.into()));

    let start = super::call(&client, Method::POST, &format!("/containers/{}/start", seg(&id))).await;
    if let Err(e) = start {
        if let Some(s) = streaming.take() {
            s.abort();
            let _ = s.await;
            tty::restore();
        }
        if parsed.auto_remove {
            if let Ok(w) = waiter {
                let _ = w.status().await;
            }
        }
        return Err(to_status_error(e.into()));
    }
    let waiter = waiter?;
    let Some(mut streaming) = streaming else {
        return Ok(0);
    };
    if parsed.tty && tty::is_terminal(tty::STDOUT) {
        monitor_size(client.clone(), format!("/containers/{}", seg(&id)), false);
    }
    let status_fut = waiter.status();
    tokio::pin!(status_fut);
    tokio::select! {
        r = &mut streaming => {
            match r {
                Ok(Ok(Ended::Detached)) => Ok(0),
                Ok(Ok(Ended::Done)) => Ok(status_fut.await),
                // With signals caught (sig-proxy) docker survives a closed
                // output pipe and reports the failed write; without, SIGPIPE
                // ends it silently (see `finish`).
                Ok(Err(e)) if a.sig_proxy => Err(status(error_text(&e), 1)),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(status(e.to_string(), 1)),
            }
        }
        code = &mut status_fut => {
            // Output may still be in flight: keep streaming until it ends,
            // unless no output is attached.
            if !attach_stdout && !attach_stderr {
                streaming.abort();
                tty::restore();
            } else {
                let _ = streaming.await;
            }
            Ok(code)
        }
    }
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long = "attach", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub attach: Option<bool>,
    /// Attach container's STDIN
    #[arg(short = 'i', long = "interactive", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub interactive: Option<bool>,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub async fn start(ctx: &Ctx, a: StartArgs) -> Result<i32> {
    finish(start_inner(ctx, a).await)
}

async fn start_inner(ctx: &Ctx, a: StartArgs) -> Result<i32> {
    let client = ctx.client().await?;
    let attach = a.attach.unwrap_or(false);
    let interactive = a.interactive.unwrap_or(false);
    if !(attach || interactive) {
        let mut failed = Vec::new();
        for c in &a.containers {
            match super::call(&client, Method::POST, &format!("/containers/{}/start", seg(c))).await {
                Ok(()) => println!("{c}"),
                Err(e) => {
                    eprintln!("{}", client_error_text(&e));
                    failed.push(c.clone());
                }
            }
        }
        if !failed.is_empty() {
            return Err(status(format!("Error: failed to start containers: {}", failed.join(", ")), 1));
        }
        return Ok(0);
    }
    if a.containers.len() > 1 {
        return Err(status("you cannot start and attach multiple containers at once", 1));
    }
    let info: Value = client.get_json(&format!("/containers/{}/json", seg(&a.containers[0]))).await?;
    let id = info.get("Id").and_then(Value::as_str).unwrap_or(&a.containers[0]).to_string();
    let tty_mode = info.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false);
    let open_stdin = info.pointer("/Config/OpenStdin").and_then(Value::as_bool).unwrap_or(false);
    let auto_remove = info.pointer("/HostConfig/AutoRemove").and_then(Value::as_bool).unwrap_or(false);
    if !tty_mode {
        forward_signals(client.clone(), id.clone());
    } else if interactive && open_stdin {
        restore_on_signals();
    }
    let stdin = interactive && open_stdin;
    let h = client.hijack(&attach_path(&id, stdin, true, true, a.detach_keys.as_deref()), None).await?;
    let cfg = StreamConfig {
        tty: tty_mode,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: detach_keys_or_default(a.detach_keys.as_deref()),
    };
    let streaming = tokio::spawn(stream(h, cfg));
    let waiter = Waiter::new(&client, &id, if auto_remove { "removed" } else { "next-exit" }).await;
    if let Err(e) = super::call(&client, Method::POST, &format!("/containers/{}/start", seg(&id))).await {
        streaming.abort();
        let _ = streaming.await;
        tty::restore();
        if auto_remove {
            if let Ok(w) = waiter {
                let _ = w.status().await;
            }
        }
        return Err(e.into());
    }
    if tty_mode && tty::is_terminal(tty::STDOUT) {
        monitor_size(client.clone(), format!("/containers/{}", seg(&id)), false);
    }
    match streaming.await {
        Ok(Ok(Ended::Detached)) => return Ok(0),
        Ok(Ok(Ended::Done)) => {}
        Ok(Err(e)) => return Err(status(error_text(&e), 1)),
        Err(e) => return Err(status(e.to_string(), 1)),
    }
    Ok(waiter?.status().await)
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub no_stdin: Option<bool>,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true", value_parser = go_bool)]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    pub container: String,
}

async fn inspect_and_check_state(client: &Client, name: &str) -> Result<Value> {
    let c: Value = client.get_json(&format!("/containers/{}/json", seg(name))).await?;
    let state = |k: &str| c.pointer(&format!("/State/{k}")).and_then(Value::as_bool).unwrap_or(false);
    if !state("Running") {
        return Err(status("You cannot attach to a stopped container, start it first", 1));
    }
    if state("Paused") {
        return Err(status("You cannot attach to a paused container, unpause it first", 1));
    }
    if state("Restarting") {
        return Err(status("You cannot attach to a restarting container, wait until it is running", 1));
    }
    Ok(c)
}

pub async fn attach(ctx: &Ctx, a: AttachArgs) -> Result<i32> {
    finish(attach_inner(ctx, a).await)
}

async fn attach_inner(ctx: &Ctx, a: AttachArgs) -> Result<i32> {
    let client = ctx.client().await?;
    // docker asks for the exit status before anything else.
    let waiter = Waiter::new(&client, &a.container, "").await;
    let c = inspect_and_check_state(&client, &a.container).await?;
    let tty_mode = c.pointer("/Config/Tty").and_then(Value::as_bool).unwrap_or(false);
    let open_stdin = c.pointer("/Config/OpenStdin").and_then(Value::as_bool).unwrap_or(false);
    let no_stdin = a.no_stdin.unwrap_or(false);
    if tty_mode && !no_stdin && !tty::is_terminal(tty::STDIN) {
        return Err(status("the input device is not a TTY", 1));
    }
    let stdin = !no_stdin && open_stdin;
    if a.sig_proxy && !tty_mode {
        forward_signals(client.clone(), a.container.clone());
    } else if tty_mode && stdin {
        restore_on_signals();
    }
    let h = client.hijack(&attach_path(&a.container, stdin, true, true, a.detach_keys.as_deref()), None).await?;
    inspect_and_check_state(&client, &a.container).await?;
    if tty_mode && tty::is_terminal(tty::STDOUT) {
        monitor_size(client.clone(), format!("/containers/{}", seg(&a.container)), true);
    }
    let cfg = StreamConfig {
        tty: tty_mode,
        stdin,
        stdout: true,
        stderr: true,
        detach_keys: detach_keys_or_default(a.detach_keys.as_deref()),
    };
    // Detaching ends `docker attach` with moby/term's EscapeError.
    if stream(h, cfg).await? == Ended::Detached {
        return Err(status("read escape sequence", 1));
    }
    match waiter?.result().await {
        Ok(0) => Ok(0),
        Ok(code) => Ok(code as i32),
        Err(msg) => Err(status(msg, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_like_docker() {
        assert_eq!(create_query(Some("web"), None), "?name=web");
        assert_eq!(create_query(None, Some("linux/amd64")), "?platform=linux%2Famd64");
        assert_eq!(create_query(None, None), "");
        assert_eq!(
            attach_path("abc", true, true, true, None),
            "/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1"
        );
        assert_eq!(
            attach_path("abc", false, true, false, Some("ctrl-a")),
            "/containers/abc/attach?detachKeys=ctrl%2Da&stdout=1&stream=1"
        );
    }

    #[test]
    fn start_errors_map_to_docker_exit_codes() {
        let e = |m: &str| {
            let err = to_status_error(anyhow::Error::from(berth_client::Error::Api {
                status: berth_client::hyper::StatusCode::BAD_REQUEST,
                message: m.into(),
            }));
            let s = err.downcast_ref::<super::super::StatusError>().unwrap();
            (s.code, s.message.clone())
        };
        let (code, msg) = e("failed to create task: exec: \"foo\": executable file not found in $PATH: unknown");
        assert_eq!(code, 127);
        assert_eq!(
            msg,
            "berth: Error response from daemon: failed to create task: exec: \"foo\": executable file not found in $PATH: unknown\n\nRun 'berth run --help' for more information"
        );
        assert_eq!(e("exec: \"/etc\": permission denied").0, 126);
        assert_eq!(e("No such image: x").0, 125);
    }

    #[test]
    fn pull_option_validation() {
        assert!(validate_pull("missing").is_ok());
        assert_eq!(
            validate_pull("foo").unwrap_err(),
            "invalid pull option: 'foo': must be one of \"always\", \"missing\" or \"never\""
        );
    }
}
