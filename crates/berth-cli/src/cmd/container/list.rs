//! `ps` / `container ls`: docker-cli's `runPs` and its container formatter
//! (cli/command/formatter/container.go): the same columns, truncation,
//! quoting, port rendering and sizes.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use super::ports::displayable_ports;
use super::pull::{familiar_name, Reference};
use super::{finish, status};
use crate::cmd::{filters_json, query, short_id, Ctx};
use crate::output;
use crate::units::{ellipsis, go_time_string, human_size, since};

pub const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

const RAW: &str = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\n\
state: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n";

pub const HEADERS: [(&str, &str); 15] = [
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Networks", "NETWORKS"),
    ("Platform", "PLATFORM"),
];

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long = "format")]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long = "latest")]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long = "size", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = super::opts::go_bool)]
    pub size: Option<bool>,
}

/// Go's `strconv.Quote`.
pub fn go_strconv_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The IMAGE column: an image ID shortened, a reference in its familiar form
/// with the tag (digests dropped), anything else as the daemon gave it.
fn image_column(image: &str, image_id: &str, trunc: bool) -> String {
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    let t = short_id(image_id);
    if !t.is_empty() && t == short_id(image) {
        return t;
    }
    match Reference::parse(image) {
        Some(r) => match r.tag {
            Some(tag) => format!("{}:{tag}", familiar_name(&r.name)),
            None => familiar_name(&r.name),
        },
        None => image.to_string(),
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One formatter row (the fields of docker's `ContainerContext`).
pub fn row(c: &Value, trunc: bool, with_label_map: bool) -> Value {
    let id = s(c, "Id");
    let names: Vec<String> = c
        .get("Names")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(|n| n.strip_prefix('/').unwrap_or(n).to_string()).collect())
        .unwrap_or_default();
    // Truncated, show the container's own name rather than link aliases.
    let names = match (trunc, names.iter().find(|n| !n.contains('/'))) {
        (true, Some(n)) => n.clone(),
        _ => names.join(","),
    };
    let command = s(c, "Command");
    let command = go_strconv_quote(&if trunc { ellipsis(command, 20) } else { command.to_string() });
    let created = c.get("Created").and_then(Value::as_i64).unwrap_or(0);
    let size_rw = c.get("SizeRw").and_then(Value::as_f64).unwrap_or(0.0);
    let size_root = c.get("SizeRootFs").and_then(Value::as_f64).unwrap_or(0.0);
    let size = if size_root > 0.0 {
        format!("{} (virtual {})", human_size(size_rw), human_size(size_root))
    } else {
        human_size(size_rw)
    };
    let labels_map = c.get("Labels").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut labels: Vec<String> = labels_map.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    labels.sort();
    let mounts_list = c.get("Mounts").and_then(Value::as_array).cloned().unwrap_or_default();
    let mounts: Vec<String> = mounts_list
        .iter()
        .map(|m| {
            let name = match s(m, "Name") {
                "" => s(m, "Source"),
                n => n,
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local = mounts_list.iter().filter(|m| s(m, "Driver") == "local").count();
    let networks: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    let platform = c.pointer("/ImageManifestDescriptor/platform").cloned().unwrap_or(Value::Null);
    let mut row = json!({
        "Command": command,
        "CreatedAt": go_time_string(created),
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Image": image_column(s(c, "Image"), s(c, "ImageID"), trunc),
        "Labels": labels.join(","),
        "LocalVolumes": local.to_string(),
        "Mounts": mounts.join(","),
        "Names": names,
        "Networks": networks.join(","),
        "Platform": platform,
        "Ports": displayable_ports(c.get("Ports").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])),
        "RunningFor": since(created),
        "Size": size,
        "State": s(c, "State"),
        "Status": s(c, "Status"),
    });
    // `{{.Label "key"}}` is a method in docker; the template engine resolves
    // it against an object field, which must not show up in `json` output.
    if with_label_map {
        row["Label"] = Value::Object(labels_map);
    }
    row
}

pub async fn ps(ctx: &Ctx, a: PsArgs) -> Result<i32> {
    finish(ps_inner(ctx, a).await)
}

async fn ps_inner(ctx: &Ctx, a: PsArgs) -> Result<i32> {
    let format = a.format.clone().unwrap_or_default();
    if !format.is_empty() && a.quiet {
        eprintln!("WARNING: Ignoring custom format, because both --format and --quiet are set.");
    }
    let mut size = a.size.unwrap_or(false);
    // docker asks for sizes when a custom format uses .Size and -s was not given.
    if !format.is_empty() && !a.quiet && a.size.is_none() && format.contains(".Size") {
        size = true;
    }
    let mut limit = a.last;
    if a.latest && limit == -1 {
        limit = 1;
    }
    let filters = filters_json(&a.filter).map_err(|e| status(e.to_string(), 1))?;
    let q = query(&[
        ("all", if a.all { "1".into() } else { String::new() }),
        ("limit", if limit > 0 { limit.to_string() } else { String::new() }),
        ("size", if size { "1".into() } else { String::new() }),
        ("filters", filters),
    ]);
    let c = ctx.client().await?;
    let containers: Vec<Value> = c.get_json(&format!("/containers/json{q}")).await?;
    let trunc = !a.no_trunc;
    if a.quiet {
        for ct in &containers {
            let id = s(ct, "Id");
            println!("{}", if trunc { short_id(id) } else { id.to_string() });
        }
        return Ok(0);
    }
    let rows: Vec<Value> = containers.iter().map(|ct| row(ct, trunc, format.contains(".Label"))).collect();
    let default = if size { format!("{DEFAULT_TABLE}\t{{{{.Size}}}}") } else { DEFAULT_TABLE.to_string() };
    let f = match format.as_str() {
        "raw" => {
            if size {
                format!("{RAW}size: {{{{.Size}}}}\n")
            } else {
                RAW.to_string()
            }
        }
        "" | "table" => default.clone(),
        other => other.to_string(),
    };
    output::print_list(Some(&f), &default, &HEADERS, &rows)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: &str, rows: &[Value]) -> String {
        let f = berth_format::Formatter::new(format).unwrap();
        f.render(rows, &berth_format::headers(&HEADERS)).unwrap()
    }

    fn sample() -> Value {
        let now = crate::units::now_unix() as i64;
        json!({
            "Id": "5da3a3060f1a77f3a9f2831768e536e88021f1923df06159d241cabaa87e5660",
            "Names": ["/web"],
            "Image": "busybox",
            "ImageID": "sha256:ee5e69655d1f0000000000000000000000000000000000000000000000000000",
            "Command": "echo 'a very long command line that is long'",
            "Created": now - 150,
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}
            ],
            "SizeRw": 0,
            "SizeRootFs": 4261000,
            "Labels": {"b": "2", "a": "1"},
            "State": "running",
            "Status": "Up 2 minutes",
            "NetworkSettings": {"Networks": {"bridge": {}}},
            "Mounts": [{"Type": "volume", "Name": "0123456789abcdef0123", "Source": "/var/lib/x", "Driver": "local"}]
        })
    }

    #[test]
    fn default_table_like_docker() {
        let out = render(DEFAULT_TABLE, &[row(&sample(), true, false)]);
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         PORTS                                     NAMES\n\
             5da3a3060f1a   busybox   \"echo 'a very long c…\"   2 minutes ago   Up 2 minutes   0.0.0.0:8080->80/tcp, [::]:8080->80/tcp   web\n"
        );
    }

    #[test]
    fn sizes_and_fields() {
        let r = row(&sample(), true, false);
        assert_eq!(r["Size"], "0B (virtual 4.26MB)");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Mounts"], "0123456789abcd…");
        assert_eq!(r["LocalVolumes"], "1");
        assert_eq!(r["Networks"], "bridge");
        assert!(r.get("Label").is_none());
        let r = row(&sample(), true, true);
        assert_eq!(render("{{.Label \"a\"}}|{{.Label \"zz\"}}", &[r]), "1|\n");
        let r = row(&sample(), false, false);
        assert_eq!(r["Command"], "\"echo 'a very long command line that is long'\"");
        assert_eq!(r["ID"].as_str().unwrap().len(), 64);
    }

    #[test]
    fn image_column_like_docker() {
        let id = "sha256:ee5e69655d1f1111111111111111111111111111111111111111111111111111";
        assert_eq!(image_column("busybox", id, true), "busybox");
        assert_eq!(image_column("docker.io/library/busybox:latest", id, true), "busybox:latest");
        assert_eq!(image_column("busybox@sha256:abcd", id, true), "busybox");
        assert_eq!(image_column(id, id, true), "ee5e69655d1f");
        assert_eq!(image_column("", id, true), "<no image>");
        assert_eq!(image_column("docker.io/library/busybox:latest", id, false), "docker.io/library/busybox:latest");
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_strconv_quote("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
    }
}
