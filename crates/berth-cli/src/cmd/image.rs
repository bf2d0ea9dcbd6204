//! Image commands: `images`, `image …`, `tag`, `rmi`, `history`, `load`,
//! `save`, `import`, `inspect`.

use std::io::{IsTerminal, Write};

use anyhow::{bail, Context, Result};
use berth_client::hyper::Method;
use berth_client::{empty, enc, from_reader, read_bytes, Client};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{confirm, filters_json, query, short_id, Ctx};
use crate::output;
use crate::units::{ellipsis, go_time_string, human_size, since};

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// List images
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Download an image from a registry
    Pull(super::registry::PullArgs),
    /// Upload an image to a registry
    Push(super::registry::PushArgs),
}

pub async fn image(ctx: &Ctx, c: ImageCmd) -> Result<i32> {
    match c {
        ImageCmd::Ls(a) => list(ctx, a).await,
        ImageCmd::Inspect(a) => image_inspect(ctx, &a.names, a.format.as_deref()).await,
        ImageCmd::Rm(a) => rm(ctx, a).await,
        ImageCmd::Tag(a) => tag(ctx, a).await,
        ImageCmd::History(a) => history(ctx, a).await,
        ImageCmd::Prune(a) => prune(ctx, a).await,
        ImageCmd::Load(a) => load(ctx, a).await,
        ImageCmd::Save(a) => save(ctx, a).await,
        ImageCmd::Import(a) => import(ctx, a).await,
        ImageCmd::Pull(a) => super::registry::pull(ctx, a).await,
        ImageCmd::Push(a) => super::registry::push(ctx, a).await,
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

fn split_repo_tag(r: &str) -> (String, String) {
    if let Some((name, digest)) = r.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (r[..slash + i].to_string(), r[slash + i + 1..].to_string()),
        None => (r.to_string(), String::new()),
    }
}

pub async fn list(ctx: &Ctx, a: ListArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let q = query(&[("all", if a.all { "1".into() } else { String::new() }), ("filters", filters_json(&filters)?)]);
    let images: Vec<Value> = c.get_json(&format!("/images/json{q}")).await?;
    let id_of = |img: &Value| {
        let id = img.get("Id").and_then(Value::as_str).unwrap_or("").to_string();
        if a.no_trunc {
            id
        } else {
            short_id(&id)
        }
    };
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for img in &images {
            let id = id_of(img);
            if seen.insert(id.clone()) {
                println!("{id}");
            }
        }
        return Ok(0);
    }
    // One row per repository:tag, as docker-cli's image formatter does;
    // digests pair up with tags of the same repository.
    let mut rows = Vec::new();
    for img in &images {
        let tags: Vec<String> = strings(img.get("RepoTags"));
        let digests: Vec<String> = strings(img.get("RepoDigests"));
        let created = img.get("Created").and_then(Value::as_i64).unwrap_or(0);
        let size = img.get("Size").and_then(Value::as_f64).unwrap_or(0.0);
        let mut pairs: Vec<(String, String, String)> = Vec::new();
        for t in &tags {
            let (repo, tag) = split_repo_tag(t);
            let digest = digests
                .iter()
                .find(|d| split_repo_tag(d).0 == repo)
                .map(|d| split_repo_tag(d).1)
                .unwrap_or_else(|| "<none>".into());
            pairs.push((repo, tag, digest));
        }
        if tags.is_empty() {
            if digests.is_empty() {
                pairs.push(("<none>".into(), "<none>".into(), "<none>".into()));
            }
            for d in &digests {
                let (repo, digest) = split_repo_tag(d);
                pairs.push((repo, "<none>".into(), digest));
            }
        }
        for (repo, tag, digest) in pairs {
            rows.push(json!({
                "Containers": "N/A",
                "CreatedAt": go_time_string(created),
                "CreatedSince": since(created),
                "Digest": digest,
                "ID": id_of(img),
                "Repository": repo,
                "SharedSize": "N/A",
                "Size": human_size(size),
                "Tag": tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(size),
            }));
        }
    }
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let headers = [
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "VIRTUAL SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ];
    output::print_list(a.format.as_deref(), default, &headers, &rows)?;
    Ok(0)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

#[derive(Debug, Args)]
pub struct ImageInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long = "format")]
    pub format: Option<String>,
    /// Return JSON for specified type
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long = "size")]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<i32> {
    // Containers first, then images, as docker's generic inspect does.
    super::container::inspect_any(ctx, &a.names, a.kind.as_deref(), a.size, a.format.as_deref()).await
}

async fn image_inspect(ctx: &Ctx, names: &[String], format: Option<&str>) -> Result<i32> {
    let c = ctx.client().await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match c.get_json::<Value>(&format!("/images/{}/json", path_escape(n))).await {
            Ok(v) => found.push(v),
            Err(berth_client::Error::Api { status, .. }) if status.as_u16() == 404 => {
                errors.push(format!("No such image: {n}"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    output::print_inspect(format, &found)?;
    for e in &errors {
        eprintln!("Error: {e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// Escapes a name for a path segment but keeps `/` (names contain it).
fn path_escape(n: &str) -> String {
    n.split('/').map(enc).collect::<Vec<_>>().join("/")
}

#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

pub async fn tag(ctx: &Ctx, a: TagArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let (repo, tag) = split_repo_tag(&a.target);
    if a.target.contains('@') {
        bail!("refusing to create a tag with a digest reference");
    }
    let q = query(&[("repo", repo), ("tag", tag)]);
    let r = c.request(Method::POST, &format!("/images/{}/tag{q}", path_escape(&a.source)), empty(), &[]).await?;
    let _ = read_bytes(r).await?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force removal of the image
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

fn print_delete_items(items: &[Value], lower: bool) {
    for it in items {
        if let Some(u) = it.get("Untagged").and_then(Value::as_str) {
            println!("{}: {u}", if lower { "untagged" } else { "Untagged" });
        }
        if let Some(d) = it.get("Deleted").and_then(Value::as_str) {
            println!("{}: {d}", if lower { "deleted" } else { "Deleted" });
        }
    }
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let mut code = 0;
    for img in &a.images {
        let q = query(&[
            ("force", if a.force { "1".into() } else { String::new() }),
            ("noprune", if a.no_prune { "1".into() } else { String::new() }),
        ]);
        match c.request(Method::DELETE, &format!("/images/{}{q}", path_escape(img)), empty(), &[]).await {
            Ok(r) => {
                let items: Vec<Value> = berth_client::read_json(r).await?;
                print_delete_items(&items, false);
            }
            Err(e) => {
                crate::report(&e.into());
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force {
        println!("{warning}");
        if !confirm("Are you sure you want to continue?") {
            return Ok(0);
        }
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let q = query(&[("filters", filters_json(&filters)?)]);
    let v: Value = c.post_json(&format!("/images/prune{q}"), None).await?;
    let items = v.get("ImagesDeleted").and_then(Value::as_array).cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        print_delete_items(&items, true);
        println!();
    }
    let reclaimed = v.get("SpaceReclaimed").and_then(Value::as_f64).unwrap_or(0.0);
    println!("Total reclaimed space: {}", crate::units::human_size_4(reclaimed));
    Ok(0)
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long = "human", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    pub image: String,
}

pub async fn history(ctx: &Ctx, a: HistoryArgs) -> Result<i32> {
    let c = ctx.client().await?;
    let rows: Vec<Value> = c.get_json(&format!("/images/{}/history", path_escape(&a.image))).await?;
    let mut out = Vec::new();
    for h in &rows {
        let id = h.get("Id").and_then(Value::as_str).unwrap_or("");
        let id = if id == "<missing>" || a.no_trunc { id.to_string() } else { short_id(id) };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let created = h.get("Created").and_then(Value::as_i64).unwrap_or(0);
        let size = h.get("Size").and_then(Value::as_f64).unwrap_or(0.0);
        let created_by = h.get("CreatedBy").and_then(Value::as_str).unwrap_or("").replace('\t', " ");
        let created_by = if a.no_trunc { created_by } else { ellipsis(&created_by, 45) };
        let created_at = chrono::DateTime::from_timestamp(created, 0)
            .map(|t| t.with_timezone(&chrono::Local).to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        out.push(json!({
            "ID": id,
            "CreatedSince": if a.human { since(created) } else { created_at.clone() },
            "CreatedAt": created_at,
            "CreatedBy": created_by,
            "Size": if a.human { human_size(size) } else { format!("{}", size as u64) },
            "Comment": h.get("Comment").and_then(Value::as_str).unwrap_or(""),
        }));
    }
    if a.quiet {
        return Ok(0);
    }
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    output::print_list(
        a.format.as_deref(),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &headers,
        &out,
    )?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

async fn print_stream(r: berth_client::hyper::Response<berth_client::hyper::body::Incoming>) -> Result<()> {
    let mut failure: Option<String> = None;
    berth_client::for_each_json_line(r, |v| {
        if let Some(s) = v.get("stream").and_then(Value::as_str) {
            print!("{s}");
        } else if let Some(s) = v.get("status").and_then(Value::as_str) {
            println!("{s}");
        }
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            failure = Some(e.to_string());
            return Ok(false);
        }
        Ok(true)
    })
    .await?;
    let _ = std::io::stdout().flush();
    if let Some(e) = failure {
        bail!("{e}");
    }
    Ok(())
}

pub async fn load(ctx: &Ctx, a: LoadArgs) -> Result<i32> {
    let body = match &a.input {
        Some(p) => {
            let f = tokio::fs::File::open(p).await.with_context(|| format!("open {p}"))?;
            from_reader(f)
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            from_reader(tokio::io::stdin())
        }
    };
    let c = ctx.client().await?;
    let q = query(&[("quiet", if a.quiet { "1".into() } else { String::new() })]);
    let r =
        c.request(Method::POST, &format!("/images/load{q}"), body, &[("Content-Type", "application/x-tar")]).await?;
    print_stream(r).await?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output")]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub async fn save(ctx: &Ctx, a: SaveArgs) -> Result<i32> {
    use tokio::io::AsyncWriteExt;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let c = ctx.client().await?;
    let names: Vec<String> = a.images.iter().map(|n| format!("names={}", enc(n))).collect();
    let r = c.request(Method::GET, &format!("/images/get?{}", names.join("&")), empty(), &[]).await?;
    // Write to a temporary file beside the target and rename, so a failed
    // save never leaves a truncated archive under the requested name.
    let (mut out, tmp): (Box<dyn tokio::io::AsyncWrite + Unpin>, Option<(std::path::PathBuf, std::path::PathBuf)>) =
        match &a.output {
            Some(p) => {
                let dest = std::path::PathBuf::from(p);
                let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                let tmp = dir.join(format!(
                    ".{}.tmp{}",
                    dest.file_name().and_then(|s| s.to_str()).unwrap_or("save"),
                    std::process::id()
                ));
                let f = tokio::fs::File::create(&tmp).await.with_context(|| format!("failed to save image: {p}"))?;
                (Box::new(f), Some((tmp, dest)))
            }
            None => (Box::new(tokio::io::stdout()), None),
        };
    let mut body = r.into_body();
    let res: Result<()> = async {
        while let Some(bytes) = http_body_frame(&mut body).await? {
            out.write_all(&bytes).await?;
        }
        out.flush().await?;
        Ok(())
    }
    .await;
    drop(out);
    match (res, tmp) {
        (Ok(()), Some((tmp, dest))) => {
            std::fs::rename(&tmp, &dest).with_context(|| format!("failed to save image: {}", dest.display()))?;
        }
        (Err(e), Some((tmp, _))) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        (r, None) => r?,
    }
    Ok(0)
}

async fn http_body_frame(
    body: &mut berth_client::hyper::body::Incoming,
) -> Result<Option<berth_client::hyper::body::Bytes>> {
    use std::future::poll_fn;
    use std::pin::Pin;
    loop {
        let frame = poll_fn(|cx| berth_client::hyper::body::Body::poll_frame(Pin::new(&mut *body), cx)).await;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => bail!("error reading from daemon: {e}"),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Ok(Some(d));
                }
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|-
    pub source: String,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

pub async fn import(ctx: &Ctx, a: ImportArgs) -> Result<i32> {
    let body = if a.source == "-" {
        from_reader(tokio::io::stdin())
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        bail!("importing from a URL is not supported; download the archive and import the file");
    } else {
        let f = tokio::fs::File::open(&a.source).await.with_context(|| format!("open {}", a.source))?;
        from_reader(f)
    };
    let (repo, tag) = a.reference.as_deref().map(split_repo_tag).unwrap_or_default();
    let mut pairs = vec![
        ("fromSrc", "-".to_string()),
        ("repo", repo),
        ("tag", tag),
        ("message", a.message.clone().unwrap_or_default()),
    ];
    for ch in &a.change {
        pairs.push(("changes", ch.clone()));
    }
    let c: Client = ctx.client().await?;
    let r = c.request(Method::POST, &format!("/images/create{}", query(&pairs)), body, &[]).await?;
    print_stream(r).await?;
    Ok(0)
}
