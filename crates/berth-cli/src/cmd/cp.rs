//! `cp`: copies between a container and the local filesystem through the
//! archive endpoints, following docker-cli's `cp` (`CopyInfoDestinationPath`
//! / `PrepareArchiveCopy` rules: a directory is copied into an existing
//! directory or becomes the new name; `src/.` copies the contents; `-`
//! streams a tar on stdin/stdout).

use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use base64::Engine;
use berth_client::hyper::Method;
use berth_client::Client;
use clap::Args;
use http_body_util::BodyExt;
use serde_json::Value;

use super::container::{finish, seg, status};
use super::{query, Ctx};
use crate::units::human_size;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    pub src: String,
    pub dest: String,
}

/// docker-cli's `splitCpArg`: a path starting with `/` or `.` is local;
/// otherwise `container:path`.
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

pub async fn cp(ctx: &Ctx, a: CpArgs) -> Result<i32> {
    finish(
        async {
            let (sc, sp) = split(&a.src);
            let (dc, dp) = split(&a.dest);
            match (sc, dc) {
                (Some(_), Some(_)) => Err(status("copying between containers is not supported", 1)),
                (None, None) => Err(status("must specify at least one container source", 1)),
                (Some(c), None) => {
                    if sp.is_empty() {
                        return Err(status("source can not be empty", 1));
                    }
                    from_container(ctx, &a, c, sp, dp).await
                }
                (None, Some(c)) => {
                    if dp.is_empty() {
                        return Err(status("destination can not be empty", 1));
                    }
                    to_container(ctx, &a, sp, c, dp).await
                }
            }
        }
        .await,
    )
}

/// The decoded `X-Docker-Container-Path-Stat` header.
#[derive(Debug, Clone, Default)]
struct PathStat {
    name: String,
    mode: u32,
    link_target: String,
}

const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & GO_MODE_DIR != 0
    }
    fn is_symlink(&self) -> bool {
        self.mode & GO_MODE_SYMLINK != 0
    }
}

fn decode_stat(headers: &berth_client::hyper::HeaderMap) -> Option<PathStat> {
    let h = headers.get("X-Docker-Container-Path-Stat")?.to_str().ok()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(h).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some(PathStat {
        name: v.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
        mode: v.get("mode").and_then(Value::as_u64).unwrap_or(0) as u32,
        link_target: v.get("linkTarget").and_then(Value::as_str).unwrap_or("").to_string(),
    })
}

/// `HEAD /containers/{id}/archive`: `Ok(None)` when the path does not exist.
async fn stat_path(c: &Client, ctr: &str, path: &str) -> Result<Option<PathStat>> {
    let q = query(&[("path", path.to_string())]);
    let r = c.raw(Method::HEAD, &format!("/containers/{}/archive{q}", seg(ctr)), berth_client::empty(), &[]).await?;
    if r.status().as_u16() == 404 {
        // No body on HEAD: a missing container and a missing path look
        // alike; ask the container itself to tell them apart.
        c.get_json::<Value>(&format!("/containers/{}/json", seg(ctr))).await?;
        return Ok(None);
    }
    if !r.status().is_success() {
        return Err(anyhow::anyhow!("Error response from daemon: {}", r.status()));
    }
    Ok(decode_stat(r.headers()))
}

/// Go's `filepath.Base` of a path as the user wrote it.
fn base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// docker's `HasTrailingPathSeparator` / `SpecifiesCurrentDir`.
fn trailing_sep(p: &str) -> bool {
    p.ends_with('/')
}
fn current_dir(p: &str) -> bool {
    p == "." || p.ends_with("/.")
}

/// Splits `p` into directory and base name as docker's `SplitPathDirEntry`.
fn split_dir_entry(p: &str) -> (String, String) {
    let cleaned = Path::new(p);
    let b = if current_dir(p) { ".".to_string() } else { base(p) };
    let d = cleaned.parent().map(|d| d.display().to_string()).filter(|d| !d.is_empty()).unwrap_or_else(|| ".".into());
    if current_dir(p) {
        let d = p.strip_suffix('.').unwrap_or(p).trim_end_matches('/');
        return (if d.is_empty() { ".".into() } else { d.to_string() }, b);
    }
    (d, b)
}

/// Rewrites the first component `from` of `name` into `to`.
fn rebase(name: &str, from: &str, to: &str) -> String {
    if from.is_empty() || from == to {
        return name.to_string();
    }
    let n = name.trim_start_matches("./");
    let f = from.trim_start_matches("./");
    if n == f || n == format!("{f}/") {
        return format!("{to}{}", &n[f.len()..]);
    }
    if let Some(rest) = n.strip_prefix(&format!("{f}/")) {
        return format!("{to}/{rest}");
    }
    if f == "." {
        return format!("{to}/{n}");
    }
    name.to_string()
}

/// A `Read` over body chunks sent from the async side.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    cur: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.cur = b,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

async fn from_container(ctx: &Ctx, a: &CpArgs, ctr: &str, src: &str, dst: &str) -> Result<i32> {
    let c = ctx.client().await?;
    let mut src_path = src.to_string();
    let mut rebase_name = String::new();
    if a.follow_link {
        if let Some(st) = stat_path(&c, ctr, src).await? {
            if st.is_symlink() && !st.link_target.is_empty() {
                // Copy what the link points at, under the link's name.
                src_path = st.link_target.clone();
                rebase_name = base(src);
            }
        }
    }
    let q = query(&[("path", src_path.clone())]);
    let r = c.request(Method::GET, &format!("/containers/{}/archive{q}", seg(ctr)), berth_client::empty(), &[]).await?;
    let stat = decode_stat(r.headers()).unwrap_or_default();
    let mut body = r.into_body();
    if dst == "-" {
        let mut out = std::io::stdout().lock();
        while let Some(f) = body.frame().await {
            let f = f.map_err(|e| anyhow::anyhow!("error reading from daemon: {e}"))?;
            if let Some(d) = f.data_ref() {
                out.write_all(d)?;
            }
        }
        out.flush()?;
        return Ok(0);
    }
    // Where the archive goes (docker's CopyInfoDestinationPath + PrepareArchiveCopy).
    let dst_meta = std::fs::metadata(dst).ok();
    let src_base = if current_dir(&src_path) { ".".to_string() } else { base(&src_path) };
    let src_base = if stat.name.is_empty() {
        src_base
    } else if current_dir(&src_path) {
        ".".into()
    } else {
        stat.name.clone()
    };
    let (dst_dir, from, to) = match &dst_meta {
        Some(m) if m.is_dir() => {
            let to = if rebase_name.is_empty() { src_base.clone() } else { rebase_name.clone() };
            (dst.to_string(), src_base.clone(), to)
        }
        Some(_) if stat.is_dir() => return Err(status("cannot copy directory to file", 1)),
        _ => {
            if dst_meta.is_none() && trailing_sep(dst) {
                return Err(status(format!("destination directory {dst} does not exist"), 1));
            }
            let (d, b) = split_dir_entry(dst);
            if !Path::new(&d).is_dir() {
                return Err(status(format!("lstat {d}: no such file or directory"), 1));
            }
            (d, src_base.clone(), b)
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let dst_dir2 = PathBuf::from(&dst_dir);
    let worker = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader { rx, cur: bytes::Bytes::new() };
        untar_rebased(reader, &dst_dir2, &from, &to)
    });
    let mut total = 0u64;
    while let Some(f) = body.frame().await {
        let f = match f {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string())));
                break;
            }
        };
        if let Ok(d) = f.into_data() {
            total += d.len() as u64;
            if tx.send(Ok(d)).is_err() {
                break;
            }
        }
    }
    drop(tx);
    worker.await.map_err(|e| anyhow::anyhow!("{e}"))??;
    // docker prints this only to a terminal.
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!("Successfully copied {} to {dst}", human_size(total as f64));
    }
    Ok(0)
}

/// Extracts a tar into `dir`, renaming top-level `from` into `to`; refuses
/// names escaping `dir` and writing through symlinks (a hostile container
/// must not make the client write outside the destination).
fn untar_rebased(r: impl Read, dir: &Path, from: &str, to: &str) -> Result<()> {
    let mut ar = tar::Archive::new(r);
    let root = nix_is_root();
    for e in ar.entries()? {
        let mut e = e?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let new = rebase(&name, from, to);
        let rel = Path::new(new.trim_start_matches('/'));
        if rel.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(anyhow::anyhow!("invalid archive entry {name:?}: outside of the destination"));
        }
        let target = dir.join(rel);
        // No component below `dir` may be a symlink we would write through.
        let mut cur = dir.to_path_buf();
        let comps: Vec<_> = rel.components().filter(|c| matches!(c, Component::Normal(_))).collect();
        for (i, c) in comps.iter().enumerate() {
            cur.push(c);
            if i + 1 == comps.len() {
                break;
            }
            if std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(anyhow::anyhow!("invalid archive entry {name:?}: path through a symlink"));
            }
        }
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p)?;
        }
        e.set_preserve_permissions(true);
        e.set_preserve_mtime(true);
        e.set_unpack_xattrs(false);
        if e.header().entry_type().is_dir() && target.is_dir() {
            // Existing directory: keep it, take the archive's mode.
            if let Ok(m) = e.header().mode() {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(m));
            }
            continue;
        }
        if e.header().entry_type().is_hard_link() {
            let link = e.link_name_bytes().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let lrel = rebase(&link, from, to);
            let lrel = Path::new(lrel.trim_start_matches('/'));
            if lrel.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(anyhow::anyhow!("invalid hardlink {link:?}: outside of the destination"));
            }
            let _ = std::fs::remove_file(&target);
            std::fs::hard_link(dir.join(lrel), &target)?;
            continue;
        }
        if std::fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(&target)?;
        }
        e.unpack(&target).map_err(|err| anyhow::anyhow!("extracting {name}: {err}"))?;
        if root {
            // As root, owners come from the archive (docker's Untar).
            let (uid, gid) = (e.header().uid().unwrap_or(0) as u32, e.header().gid().unwrap_or(0) as u32);
            let _ = std::os::unix::fs::lchown(&target, Some(uid), Some(gid));
        }
    }
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Tars local `src` with its top-level entry named `name` (docker's
/// `TarResourceRebase`); symlinks are archived as links.
fn tar_local(src: &Path, name: &str, follow: bool, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let meta = if follow { std::fs::metadata(src)? } else { std::fs::symlink_metadata(src)? };
    if meta.is_dir() {
        b.append_dir_all(name, src)?;
    } else if follow {
        let mut f = std::fs::File::open(src)?;
        b.append_file(name, &mut f)?;
    } else {
        b.append_path_with_name(src, name)?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}

async fn to_container(ctx: &Ctx, a: &CpArgs, src: &str, ctr: &str, dst: &str) -> Result<i32> {
    let c = ctx.client().await?;
    let put = |dir: String, body: berth_client::Body| {
        let c = c.clone();
        let q = query(&[
            ("path", dir),
            ("noOverwriteDirNonDir", "true".into()),
            ("copyUIDGID", if a.archive { "true".into() } else { String::new() }),
        ]);
        let path = format!("/containers/{}/archive{q}", seg(ctr));
        async move {
            let r = c.request(Method::PUT, &path, body, &[]).await?;
            berth_client::read_bytes(r).await?;
            Ok::<_, anyhow::Error>(())
        }
    };
    if src == "-" {
        put(dst.to_string(), berth_client::from_reader(tokio::io::stdin())).await?;
        return Ok(0);
    }
    // The destination as the container sees it (following a final link).
    let mut dst_path = dst.to_string();
    let mut dst_stat = stat_path(&c, ctr, dst).await?;
    if let Some(st) = dst_stat.as_ref().filter(|s| s.is_symlink()) {
        let lt = if st.link_target.starts_with('/') {
            st.link_target.clone()
        } else {
            format!("{}/{}", split_dir_entry(dst).0, st.link_target)
        };
        dst_path = lt;
        dst_stat = stat_path(&c, ctr, &dst_path).await?;
    }
    let src_p = Path::new(src);
    let src_meta = if a.follow_link { std::fs::metadata(src_p) } else { std::fs::symlink_metadata(src_p) };
    let src_meta = src_meta.map_err(|_| status(format!("lstat {src}: no such file or directory"), 1))?;
    let src_is_dir = src_meta.is_dir();
    let src_base = if current_dir(src) { ".".to_string() } else { base(src) };
    let (dir, name) = match &dst_stat {
        Some(st) if st.is_dir() => (dst_path.clone(), src_base.clone()),
        Some(_) if src_is_dir => return Err(status("cannot copy directory to file", 1)),
        _ => {
            if dst_stat.is_none() && trailing_sep(dst) && !src_is_dir {
                return Err(status(format!("destination directory {ctr}:{dst} does not exist"), 1));
            }
            let (d, b) = split_dir_entry(&dst_path);
            (d, b)
        }
    };
    let (reader, writer) = pipe()?;
    let src_owned = src_p.to_path_buf();
    let follow = a.follow_link;
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted2 = counted.clone();
    let tarrer = tokio::task::spawn_blocking(move || {
        let w = CountingWriter { inner: writer, n: counted2 };
        if src_is_dir && name == "." {
            // `src/.`: the directory's entries at the top level.
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Complete);
            b.append_dir_all(".", &src_owned)?;
            b.into_inner()?.flush()?;
            Ok::<_, anyhow::Error>(())
        } else {
            tar_local(&src_owned, &name, follow, w)
        }
    });
    let file = tokio::fs::File::from_std(reader);
    let res = put(dir, berth_client::from_reader(file)).await;
    let tres = tarrer.await.map_err(|e| anyhow::anyhow!("{e}"))?;
    res?;
    tres?;
    if !a.quiet && std::io::stderr().is_terminal() {
        let n = counted.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("Successfully copied {} to {ctr}:{dst}", human_size(n as f64));
    }
    let _ = src_meta.uid();
    Ok(0)
}

/// A pipe: the tar is written on one end by a blocking thread while the
/// request streams the other.
fn pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1])) })
}

struct CountingWriter<W: Write> {
    inner: W,
    n: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_like_docker() {
        assert_eq!(split("c1:/etc"), (Some("c1"), "/etc"));
        assert_eq!(split("/abs:x"), (None, "/abs:x"));
        assert_eq!(split("./rel"), (None, "./rel"));
        assert_eq!(split("file"), (None, "file"));
        assert_eq!(split("-"), (None, "-"));
    }

    #[test]
    fn names_rebase() {
        assert_eq!(rebase("etc/passwd", "etc", "x"), "x/passwd");
        assert_eq!(rebase("etc/", "etc", "x"), "x/");
        assert_eq!(rebase("etc", "etc", "x"), "x");
        assert_eq!(rebase("./a", ".", "x"), "x/a");
        assert_eq!(rebase("other", "etc", "x"), "other");
        assert_eq!(split_dir_entry("/tmp/out"), ("/tmp".into(), "out".into()));
        assert_eq!(split_dir_entry("out"), (".".into(), "out".into()));
    }

    #[test]
    fn untar_refuses_escapes() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", d.path().join("evil")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "evil/tmp/pwned", &b"x"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        assert!(untar_rebased(bytes.as_slice(), d.path(), "", "").is_err());
        assert!(!Path::new("/tmp/pwned").exists());
    }
}
