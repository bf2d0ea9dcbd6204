//! `exec`: docker-cli's `RunExec` — inspect the container, `POST
//! /containers/{id}/exec`, then `POST /exec/{id}/start` upgraded to a raw
//! stream (or plain with `-d`), resize via `/exec/{id}/resize`, and the exit
//! code from `GET /exec/{id}/json`.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Map, Value};

use super::opts::go_bool;
use super::stream::{monitor_size, restore_on_signals, stream, Ended, StreamConfig};
use super::values::{read_kv_file, validate_env};
use super::{client_error_text, error_text, finish, seg, status};
use crate::cmd::Ctx;
use crate::tty;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long = "detach", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub detach: Option<bool>,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long = "interactive", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub interactive: Option<bool>,
    /// Give extended privileges to the command
    #[arg(long = "privileged", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub privileged: Option<bool>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub tty: Option<bool>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER")]
    pub args: Vec<String>,
}

/// docker's `parseExec`: the `POST /containers/{id}/exec` body.
fn exec_body(a: &ExecArgs, console: Option<(u16, u16)>) -> std::result::Result<Value, String> {
    let detach = a.detach.unwrap_or(false);
    let tty_mode = a.tty.unwrap_or(false);
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(read_kv_file(f, true)?);
    }
    for e in &a.env {
        env.push(validate_env(e).map_err(|msg| format!("invalid argument \"{e}\" for \"-e, --env\" flag: {msg}"))?);
    }
    let mut b = Map::new();
    b.insert("User".into(), json!(a.user.clone().unwrap_or_default()));
    b.insert("Privileged".into(), json!(a.privileged.unwrap_or(false)));
    b.insert("Tty".into(), json!(tty_mode));
    if let (true, Some((h, w))) = (tty_mode, console) {
        b.insert("ConsoleSize".into(), json!([h, w]));
    }
    b.insert("AttachStdin".into(), json!(!detach && a.interactive.unwrap_or(false)));
    b.insert("AttachStderr".into(), json!(!detach));
    b.insert("AttachStdout".into(), json!(!detach));
    b.insert("Detach".into(), json!(detach));
    b.insert("DetachKeys".into(), json!(a.detach_keys.clone().unwrap_or_default()));
    b.insert("Env".into(), if env.is_empty() { Value::Null } else { json!(env) });
    b.insert("WorkingDir".into(), json!(a.workdir.clone().unwrap_or_default()));
    b.insert("Cmd".into(), json!(a.args[1..]));
    Ok(Value::Object(b))
}

pub async fn exec(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    finish(exec_inner(ctx, a).await)
}

async fn exec_inner(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    let container = a.args[0].clone();
    let tty_mode = a.tty.unwrap_or(false);
    let detach = a.detach.unwrap_or(false);
    let console = tty_mode.then(|| tty::size(tty::STDOUT));
    let body = exec_body(&a, console).map_err(|e| status(e, 1))?;
    let stdin = body["AttachStdin"].as_bool().unwrap_or(false);
    let c = ctx.client().await?;
    let _: Value = c.get_json(&format!("/containers/{}/json", seg(&container))).await?;
    if !detach && tty_mode && stdin && !tty::is_terminal(tty::STDIN) {
        return Err(status("the input device is not a TTY", 1));
    }
    let created: Value = c.post_json(&format!("/containers/{}/exec", seg(&container)), Some(&body)).await?;
    let id = created.get("Id").and_then(Value::as_str).unwrap_or("").to_string();
    if id.is_empty() {
        return Err(status("exec ID empty", 1));
    }
    let mut start = json!({"Detach": detach, "Tty": tty_mode});
    if let Some((h, w)) = console {
        start["ConsoleSize"] = json!([h, w]);
    }
    if detach {
        c.post_json::<Value>(&format!("/exec/{}/start", seg(&id)), Some(&start)).await.or_else(|e| match e {
            // An empty 200 body is success.
            berth_client::Error::Decode(_) => Ok(Value::Null),
            other => Err(other),
        })?;
        return Ok(0);
    }
    if tty_mode && stdin {
        restore_on_signals();
    }
    let h = c
        .hijack(&format!("/exec/{}/start", seg(&id)), Some(&start))
        .await
        .map_err(|e| status(client_error_text(&e), 1))?;
    let keys = match a.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        None => tty::DEFAULT_DETACH_KEYS.to_vec(),
        Some(k) => tty::detach_keys(k).unwrap_or_else(|_| tty::DEFAULT_DETACH_KEYS.to_vec()),
    };
    let cfg = StreamConfig { tty: tty_mode, stdin, stdout: true, stderr: true, detach_keys: keys };
    let streaming = tokio::spawn(stream(h, cfg));
    if tty_mode && tty::is_terminal(tty::STDIN) {
        monitor_size(c.clone(), format!("/exec/{}", seg(&id)), false);
    }
    match streaming.await {
        Ok(Ok(Ended::Done)) => {}
        Ok(Ok(Ended::Detached)) => return Err(status("read escape sequence", 1)),
        Ok(Err(e)) => return Err(status(error_text(&e), 1)),
        Err(e) => return Err(status(e.to_string(), 1)),
    }
    let info: Value = match c.get_json(&format!("/exec/{}/json", seg(&id))).await {
        Ok(v) => v,
        // docker exits with status -1 (255) when the daemon is gone.
        Err(berth_client::Error::Connect { .. }) => return Ok(255),
        Err(e) => return Err(e.into()),
    };
    Ok(info.get("ExitCode").and_then(Value::as_i64).unwrap_or(0) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    fn parse(args: &[&str]) -> ExecArgs {
        let m = ExecArgs::augment_args(clap::Command::new("exec")).try_get_matches_from(args).unwrap();
        ExecArgs::from_arg_matches(&m).unwrap()
    }

    #[test]
    fn exec_bodies_like_docker() {
        // Recorded from docker 28.2.2: `docker exec -i -e A=1 -u 1 -w /tmp web cat`.
        let a = parse(&["exec", "-i", "-e", "A=1", "-u", "1", "-w", "/tmp", "web", "cat"]);
        assert_eq!(
            exec_body(&a, None).unwrap().to_string(),
            r#"{"User":"1","Privileged":false,"Tty":false,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["A=1"],"WorkingDir":"/tmp","Cmd":["cat"]}"#
        );
        let a = parse(&["exec", "-it", "web", "sh", "-c", "ls -l"]);
        let b = exec_body(&a, Some((30, 100))).unwrap();
        assert_eq!(b["ConsoleSize"], json!([30, 100]));
        assert_eq!(b["Cmd"], json!(["sh", "-c", "ls -l"]));
        assert_eq!(b["Env"], Value::Null);
        let a = parse(&["exec", "-d", "web", "true"]);
        let b = exec_body(&a, None).unwrap();
        assert_eq!((b["AttachStdout"].clone(), b["Detach"].clone()), (json!(false), json!(true)));
    }
}
