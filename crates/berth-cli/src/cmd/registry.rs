//! `pull`, `push`, `login`, `logout`, `search`: docker-cli 28's flags,
//! output and error texts (cli/command/image/pull.go, push.go,
//! cli/command/registry/*.go).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use berth_client::hyper::Method;
use berth_client::{empty, full};
use clap::Args;
use serde_json::{json, Value};

use super::auth::{self, AuthConfig, INDEX_SERVER};
use super::container::pull::{show_stream, Out, Reference};
use super::{query, Ctx};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image verification
    #[arg(long = "disable-content-trust", default_value_t = true, hide = true)]
    pub disable_content_trust: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub all_tags: bool,
    /// Skip image signing
    #[arg(long = "disable-content-trust", default_value_t = true, hide = true)]
    pub disable_content_trust: bool,
    /// Push a platform-specific manifest as a single-platform image to the registry
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long = "password")]
    pub password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// [SERVER]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// [SERVER]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// TERM
    pub term: String,
}

fn fail(message: impl std::fmt::Display) -> Result<i32> {
    eprintln!("{message}");
    Ok(1)
}

/// The daemon's error as docker prints it.
fn daemon_error(e: anyhow::Error) -> Result<i32> {
    fail(super::container::error_text(&e))
}

/// `docker pull`.
pub async fn pull(ctx: &Ctx, a: PullArgs) -> Result<i32> {
    let Some(r) = Reference::parse(&a.name) else {
        return fail("invalid reference format");
    };
    let name_only = r.tag.is_none() && r.digest.is_none();
    if a.all_tags && !name_only {
        return fail("tag can't be used with --all-tags/-a");
    }
    let tag = if a.all_tags {
        String::new()
    } else {
        match (&r.digest, &r.tag) {
            (Some(d), _) => d.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => {
                if !a.quiet {
                    println!("Using default tag: latest");
                }
                "latest".to_string()
            }
        }
    };
    let c = ctx.client().await?;
    let q = query(&[
        ("fromImage", r.name.clone()),
        ("tag", tag.clone()),
        ("platform", a.platform.clone().unwrap_or_default()),
    ]);
    let header = auth::header_for_image(&a.name);
    let resp =
        match c.request(Method::POST, &format!("/images/create{q}"), empty(), &[("X-Registry-Auth", &header)]).await {
            Ok(r) => r,
            Err(e) => return daemon_error(e.into()),
        };
    if let Some(e) = show_stream(resp, Out::Stdout, a.quiet, |_| {}).await? {
        return fail(e);
    }
    // docker prints the fully qualified reference it pulled.
    let full = match (&r.digest, tag.is_empty()) {
        (Some(d), _) => format!("{}@{d}", r.name),
        (None, true) => r.name.clone(),
        (None, false) => format!("{}:{tag}", r.name),
    };
    println!("{full}");
    Ok(0)
}

/// `docker push`.
pub async fn push(ctx: &Ctx, a: PushArgs) -> Result<i32> {
    let Some(r) = Reference::parse(&a.name) else {
        return fail("invalid reference format");
    };
    if r.digest.is_some() {
        return fail("invalid reference format");
    }
    if a.all_tags && r.tag.is_some() {
        return fail("tag can't be used with --all-tags/-a");
    }
    let tag = match (&r.tag, a.all_tags) {
        (Some(t), _) => t.clone(),
        (None, true) => String::new(),
        (None, false) => {
            if !a.quiet {
                println!("Using default tag: latest");
            }
            "latest".to_string()
        }
    };
    let c = ctx.client().await?;
    let q = query(&[("tag", tag.clone()), ("platform", a.platform.clone().unwrap_or_default())]);
    let header = auth::header_for_image(&a.name);
    let path = format!("/images/{}/push{q}", berth_client::enc_segment(&r.name));
    let resp = match c.request(Method::POST, &path, empty(), &[("X-Registry-Auth", &header)]).await {
        Ok(r) => r,
        Err(e) => return daemon_error(e.into()),
    };
    if let Some(e) = show_stream(resp, Out::Stdout, a.quiet, |_| {}).await? {
        return fail(e);
    }
    if a.quiet {
        let full = if tag.is_empty() { r.name.clone() } else { format!("{}:{tag}", r.name) };
        println!("{full}");
    }
    Ok(0)
}

fn prompt(text: &str) -> Option<String> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_password_no_echo(text: &str) -> Option<String> {
    // Echo off while the password is typed, as docker's term.DisableEcho.
    // SAFETY: termios calls on stdin, restored before returning.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    let have = unsafe { libc::tcgetattr(0, &mut old) } == 0;
    if have {
        let mut new = old;
        new.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &new) };
    }
    let r = prompt(text);
    if have {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &old) };
        eprintln!();
    }
    r
}

/// `docker login`.
pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<i32> {
    let server = match a.server.as_deref() {
        None | Some("") | Some("docker.io") => INDEX_SERVER.to_string(),
        Some(s) => s.to_string(),
    };
    let mut password = a.password.clone();
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        if a.password_stdin {
            return fail("--password and --password-stdin are mutually exclusive");
        }
    }
    if a.password_stdin {
        if a.username.as_deref().unwrap_or("").is_empty() {
            return fail("Must provide --username with --password-stdin");
        }
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        password = Some(s.trim_end_matches(['\n', '\r']).to_string());
    }
    let stored =
        auth::lookup(&auth::hostname(&server)).filter(|s| !s.username.is_empty() || !s.identity_token.is_empty());
    let mut username = a.username.clone().unwrap_or_default();
    let interactive = std::io::stdin().is_terminal();
    if username.is_empty() && password.is_none() {
        // docker reuses stored credentials when none are given.
        if let Some(s) = &stored {
            // docker-cli 28's loginWithStoredCredentials, on stderr.
            let who = if s.username.is_empty() { String::new() } else { format!(" [Username: {}]", s.username) };
            eprintln!("Authenticating with existing credentials...{who}");
            match auth_request(ctx, s).await? {
                Ok(v) => {
                    println!("{}", v.get("Status").and_then(Value::as_str).unwrap_or("Login Succeeded"));
                    return Ok(0);
                }
                Err(e) => eprintln!("Login did not succeed, error: {e}"),
            }
        }
        if !interactive {
            return fail("Error: Cannot perform an interactive login from a non TTY device");
        }
        username = prompt("Username: ").unwrap_or_default();
    }
    if username.trim().is_empty() {
        return fail("Error: Non-null Username Required");
    }
    let password = match password {
        Some(p) => p,
        None if interactive => read_password_no_echo("Password: ").unwrap_or_default(),
        None => return fail("Error: Cannot perform an interactive login from a non TTY device"),
    };
    if password.is_empty() {
        return fail("Error: Password Required");
    }
    let creds = AuthConfig { username: username.trim().to_string(), password, server, identity_token: String::new() };
    do_login(ctx, creds).await
}

/// `POST /auth`: the daemon's answer, or its error as docker prints it.
async fn auth_request(ctx: &Ctx, creds: &AuthConfig) -> Result<std::result::Result<Value, String>> {
    let c = ctx.client().await?;
    let mut body = json!({"username": creds.username, "password": creds.password, "serveraddress": creds.server});
    if !creds.identity_token.is_empty() {
        body["identitytoken"] = json!(creds.identity_token);
    }
    match c.request(Method::POST, "/auth", full(body.to_string()), &[("Content-Type", "application/json")]).await {
        Ok(r) => Ok(Ok(berth_client::read_json(r).await?)),
        Err(e) => Ok(Err(super::container::error_text(&e.into()))),
    }
}

async fn do_login(ctx: &Ctx, mut creds: AuthConfig) -> Result<i32> {
    let v = match auth_request(ctx, &creds).await? {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if let Some(t) = v.get("IdentityToken").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        creds.password.clear();
        creds.identity_token = t.to_string();
    }
    match auth::store(&creds) {
        Ok(Some(path)) => {
            eprintln!(
                "WARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
                path.display()
            );
        }
        Ok(None) => {}
        Err(e) => return fail(format!("Error saving credentials: {e}")),
    }
    println!("{}", v.get("Status").and_then(Value::as_str).unwrap_or("Login Succeeded"));
    Ok(0)
}

/// `docker logout`.
pub async fn logout(_ctx: &Ctx, a: LogoutArgs) -> Result<i32> {
    let (server, default) = match a.server.as_deref() {
        None | Some("") => (INDEX_SERVER.to_string(), true),
        Some(s) => (s.to_string(), false),
    };
    let shown = if default { server.clone() } else { auth::hostname(&server) };
    println!("Removing login credentials for {shown}");
    let mut tries = vec![server.clone()];
    if !default {
        // Keys docker-cli may have saved for the same registry.
        for k in [shown.clone(), format!("http://{shown}"), format!("https://{shown}")] {
            if !tries.contains(&k) {
                tries.push(k);
            }
        }
    }
    for k in &tries {
        if let Err(e) = auth::erase(k) {
            eprintln!("WARNING: could not erase credentials: {k}: {e}");
        }
    }
    Ok(0)
}

/// `docker search`.
pub async fn search(ctx: &Ctx, a: SearchArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let filters = super::filters_json(&a.filter)?;
    let limit = if a.limit == 0 { String::new() } else { a.limit.to_string() };
    let q = query(&[("term", a.term.clone()), ("limit", limit), ("filters", filters)]);
    let server =
        a.term.split_once('/').map(|(h, _)| h).filter(|h| h.contains('.') || h.contains(':') || *h == "localhost");
    let header =
        match server.and_then(auth::lookup).or_else(|| if server.is_none() { auth::lookup("docker.io") } else { None })
        {
            Some(a) => a.header(),
            None => String::new(),
        };
    let headers: Vec<(&str, &str)> =
        if header.is_empty() { vec![] } else { vec![("X-Registry-Auth", header.as_str())] };
    let results: Vec<Value> = match c.request(Method::GET, &format!("/images/search{q}"), empty(), &headers).await {
        Ok(r) => berth_client::read_json(r).await?,
        Err(e) => return daemon_error(e.into()),
    };
    let rows: Vec<Value> = results
        .iter()
        .map(|r| {
            let desc = r.get("description").and_then(Value::as_str).unwrap_or("").replace('\n', " ");
            let desc = if a.no_trunc { desc } else { crate::units::ellipsis(&desc, 45) };
            let official = r.get("is_official").and_then(Value::as_bool).unwrap_or(false);
            let automated = r.get("is_automated").and_then(Value::as_bool).unwrap_or(false);
            json!({
                "Name": r.get("name").and_then(Value::as_str).unwrap_or(""),
                "Description": desc,
                "StarCount": r.get("star_count").and_then(Value::as_u64).unwrap_or(0).to_string(),
                "IsOfficial": if official { "[OK]" } else { "" },
                "IsAutomated": if automated { "[OK]" } else { "" },
            })
        })
        .collect();
    crate::output::print_list(
        a.format.as_deref(),
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
        &[
            ("Name", "NAME"),
            ("Description", "DESCRIPTION"),
            ("StarCount", "STARS"),
            ("IsOfficial", "OFFICIAL"),
            ("IsAutomated", "AUTOMATED"),
        ],
        &rows,
    )?;
    Ok(0)
}
