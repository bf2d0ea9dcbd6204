//! The build context and the sources of `COPY`/`ADD`: receiving the context
//! tar, resolving source paths and wildcards inside a root (the context, or
//! another stage or image for `--from`), hashing what a step would copy (its
//! cache key), and writing it as a tar for extraction into the step's root.

use std::fs;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ignore::{clean, has_wildcards, source_matches, Matcher};
use crate::{Error, Result};

/// Where berth's own CLI puts `--secret` files inside the context tar: the
/// legacy `POST /build` has no side channel for them. The daemon moves this
/// directory out of the context before anything reads it, so it is never
/// seen by `COPY` and never written into a layer.
pub const SECRETS_DIR: &str = ".berth-build-secrets";

/// Unpacks a context tar (plain or gzip) into `dest`. Entries may not escape
/// `dest` (the tar crate refuses `..` and writes through no symlink that
/// points outside).
pub fn extract_context(input: impl Read, dest: &Path) -> Result<()> {
    let mut r = BufReader::with_capacity(1 << 20, input);
    let head = {
        use std::io::BufRead;
        r.fill_buf().map_err(Error::io("reading the build context"))?.to_vec()
    };
    let reader: Box<dyn Read> =
        if head.starts_with(&[0x1f, 0x8b]) { Box::new(flate2::read::GzDecoder::new(r)) } else { Box::new(r) };
    let mut ar = tar::Archive::new(Padded { inner: reader, count: 0, zeros: None });
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    // Owners in the context do not matter: COPY from it makes files
    // owned by root (or --chown).
    ar.set_preserve_ownerships(false);
    ar.set_overwrite(true);
    ar.unpack(dest).map_err(|e| {
        let mut msg = format!("failed to read the build context: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        Error::InvalidArgument(msg)
    })
}

/// A tar stream that may stop right after an entry's data, without the
/// padding to a 512-byte block and the end-of-archive blocks: the docker
/// CLI sends such a stream when it appends a Dockerfile from outside the
/// context, and Go's tar reader takes EOF there as the end. The missing
/// zeros are supplied.
struct Padded<R> {
    inner: R,
    count: u64,
    zeros: Option<u64>,
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(left) = &mut self.zeros {
            let n = (*left).min(buf.len() as u64) as usize;
            buf[..n].fill(0);
            *left -= n as u64;
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let pad = (512 - self.count % 512) % 512;
            self.zeros = Some(pad + 1024);
            return self.read(buf);
        }
        self.count += n as u64;
        Ok(n)
    }
}

/// One filesystem entry a `COPY` would write.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where it is on the host.
    pub host: PathBuf,
    /// Its name in the tar (relative to the extraction directory).
    pub name: String,
    pub meta: fs::Metadata,
}

/// A root that sources are resolved in.
pub struct SourceRoot<'a> {
    pub root: &'a Path,
    /// The context's `.dockerignore` (none for `--from` roots).
    pub ignore: Option<&'a Matcher>,
}

fn not_found(src: &str) -> Error {
    // BuildKit's wording (the "ref" names its internal snapshot).
    Error::NotFound(format!(
        "failed to compute cache key: failed to calculate checksum of ref {}: \"{}\": not found",
        crate::random_hex(12),
        clean(&format!("/{src}"))
    ))
}

impl SourceRoot<'_> {
    fn ignored(&self, rel: &str) -> bool {
        if rel == SECRETS_DIR || rel.starts_with(&format!("{SECRETS_DIR}/")) {
            return self.ignore.is_some();
        }
        self.ignore.is_some_and(|m| m.excluded(rel))
    }

    /// Resolves one source: the cleaned relative paths it names (several for
    /// a wildcard). Paths are taken inside the root: `../x` is `/x`.
    pub fn resolve(&self, src: &str) -> Result<Vec<String>> {
        let rel = clean(&format!("/{src}")).trim_start_matches('/').to_string();
        if has_wildcards(&rel) {
            let mut out = Vec::new();
            let mut all = Vec::new();
            self.walk_names("", &mut all)?;
            for p in all {
                if source_matches(&rel, &p) {
                    out.push(p);
                }
            }
            if out.is_empty() {
                return Err(not_found(src));
            }
            return Ok(out);
        }
        let rel = if rel.is_empty() { ".".to_string() } else { rel };
        if rel != "." && self.ignored(&rel) {
            return Err(not_found(src));
        }
        let host = self.host_path(&rel)?;
        if fs::symlink_metadata(&host).is_err() {
            return Err(not_found(src));
        }
        Ok(vec![rel])
    }

    /// The host path of a relative path, symlinks resolved inside the root.
    pub fn host_path(&self, rel: &str) -> Result<PathBuf> {
        if rel == "." {
            return Ok(self.root.to_path_buf());
        }
        berth_fsops::resolve_in_root(self.root, &format!("/{rel}"), true)
            .map_err(|e| Error::Internal(format!("resolving {rel}: {e}")))
    }

    fn walk_names(&self, dir: &str, out: &mut Vec<String>) -> Result<()> {
        let host = if dir.is_empty() { self.root.to_path_buf() } else { self.root.join(dir) };
        let mut names: Vec<String> = match fs::read_dir(&host) {
            Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => return Ok(()),
        };
        names.sort();
        for n in names {
            let rel = if dir.is_empty() { n } else { format!("{dir}/{n}") };
            let ignored = self.ignored(&rel);
            let is_dir = fs::symlink_metadata(self.root.join(&rel)).map(|m| m.is_dir()).unwrap_or(false);
            if !ignored {
                out.push(rel.clone());
            }
            if is_dir && (!ignored || self.ignore.is_some_and(Matcher::has_exclusions)) {
                self.walk_names(&rel, out)?;
            }
        }
        Ok(())
    }

    /// The entries copying `rel` produces: a file or symlink as `name`, a
    /// directory's contents under `name` (`.` for the extraction directory
    /// itself). Ignored paths are skipped.
    pub fn items(&self, rel: &str, name: &str, out: &mut Vec<Item>) -> Result<()> {
        let host = self.host_path(rel)?;
        let meta = fs::metadata(&host).or_else(|_| fs::symlink_metadata(&host)).map_err(Error::io("stat source"))?;
        if meta.is_dir() {
            if name != "." {
                out.push(Item { host: host.clone(), name: name.to_string(), meta });
            }
            self.dir_items(&host, rel, name, out)
        } else {
            out.push(Item { host, name: name.to_string(), meta });
            Ok(())
        }
    }

    fn dir_items(&self, host: &Path, rel: &str, name: &str, out: &mut Vec<Item>) -> Result<()> {
        let mut entries: Vec<(String, PathBuf)> = fs::read_dir(host)
            .map_err(Error::io("reading source directory"))?
            .filter_map(|e| e.ok())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        entries.sort();
        for (n, p) in entries {
            let crel = if rel == "." { n.clone() } else { format!("{rel}/{n}") };
            let cname = if name == "." { n.clone() } else { format!("{name}/{n}") };
            let ignored = self.ignored(&crel);
            let meta = fs::symlink_metadata(&p).map_err(Error::io("stat source"))?;
            if meta.is_dir() {
                if !ignored {
                    out.push(Item { host: p.clone(), name: cname.clone(), meta });
                }
                if !ignored || self.ignore.is_some_and(Matcher::has_exclusions) {
                    self.dir_items(&p, &crel, &cname, out)?;
                }
            } else if !ignored {
                out.push(Item { host: p, name: cname, meta });
            }
        }
        Ok(())
    }
}

/// How copied entries are owned and moded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ownership {
    /// `--chown` (or 0:0 for context sources); `None` keeps the source's.
    pub ids: Option<(u32, u32)>,
    /// `--chmod`.
    pub mode: Option<u32>,
}

/// A digest of everything a copy depends on: names, types, modes, owners,
/// sizes, link targets and file contents (not times, as BuildKit's content
/// checksums).
pub fn hash_items(items: &[Item], own: &Ownership) -> Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    for it in items {
        let (uid, gid) = own.ids.unwrap_or((it.meta.uid(), it.meta.gid()));
        let mode = own.mode.unwrap_or(it.meta.permissions().mode() & 0o7777);
        h.update(format!("{}\0{:o}\0{}\0{}:{}\0", it.name, it.meta.mode() & 0o170000, mode, uid, gid).as_bytes());
        if it.meta.file_type().is_symlink() {
            let t = fs::read_link(&it.host).map_err(Error::io("reading a link"))?;
            h.update(t.as_os_str().as_encoded_bytes());
        } else if it.meta.is_file() {
            h.update(it.meta.len().to_le_bytes());
            let mut f = fs::File::open(&it.host).map_err(Error::io("reading a source file"))?;
            loop {
                let n = f.read(&mut buf).map_err(Error::io("reading a source file"))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        h.update(b"\n");
    }
    Ok(hex::encode(h.finalize()))
}

/// Writes the items as a tar with the given ownership and mode.
pub fn write_tar(items: &[Item], own: &Ownership, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    for it in items {
        let mut hd = tar::Header::new_gnu();
        hd.set_metadata_in_mode(&it.meta, tar::HeaderMode::Complete);
        let (uid, gid) = own.ids.unwrap_or((it.meta.uid(), it.meta.gid()));
        hd.set_uid(uid as u64);
        hd.set_gid(gid as u64);
        hd.set_username("").ok();
        hd.set_groupname("").ok();
        if let Some(m) = own.mode {
            hd.set_mode(m);
        }
        let res = if it.meta.file_type().is_symlink() {
            let t = fs::read_link(&it.host).map_err(Error::io("reading a link"))?;
            hd.set_size(0);
            hd.set_entry_type(tar::EntryType::Symlink);
            b.append_link(&mut hd, &it.name, &t)
        } else if it.meta.is_dir() {
            hd.set_size(0);
            b.append_data(&mut hd, &it.name, std::io::empty())
        } else if it.meta.is_file() {
            let f = fs::File::open(&it.host).map_err(Error::io("reading a source file"))?;
            b.append_data(&mut hd, &it.name, f)
        } else {
            // Devices, fifos and sockets in a context are skipped, as Docker's
            // archiver does for sockets.
            continue;
        };
        res.map_err(Error::io("writing the copy archive"))?;
    }
    b.finish().map_err(Error::io("writing the copy archive"))
}

/// One file given inline (a `COPY <<EOF` heredoc, or an `ADD` download).
pub fn data_item(dir: &Path, name: &str, data: &[u8], mode: u32) -> Result<Item> {
    let p = dir.join(format!("inline-{}", crate::random_hex(8)));
    fs::write(&p, data).map_err(Error::io("writing an inline file"))?;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).map_err(Error::io("writing an inline file"))?;
    let meta = fs::metadata(&p).map_err(Error::io("writing an inline file"))?;
    Ok(Item { host: p, name: name.to_string(), meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_cut_after_the_last_entry_still_unpacks() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "a.txt", &b"abc"[..]).unwrap();
        let full = b.into_inner().unwrap();
        let cut = &full[..512 + 3];
        let d = tempfile::tempdir().unwrap();
        extract_context(cut, d.path()).unwrap();
        assert_eq!(fs::read(d.path().join("a.txt")).unwrap(), b"abc");
    }

    #[test]
    fn sources_resolve_inside_the_root_and_respect_ignore() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("app/sub")).unwrap();
        fs::write(d.path().join("app/a.py"), "a").unwrap();
        fs::write(d.path().join("app/b.pyc"), "b").unwrap();
        fs::write(d.path().join("app/sub/c.txt"), "c").unwrap();
        fs::write(d.path().join("req.txt"), "r").unwrap();
        let ig = Matcher::parse("**/*.pyc\n").unwrap();
        let r = SourceRoot { root: d.path(), ignore: Some(&ig) };
        assert_eq!(r.resolve("../../req.txt").unwrap(), vec!["req.txt"]);
        assert_eq!(r.resolve("app/*.py*").unwrap(), vec!["app/a.py"]);
        let e = r.resolve("missing").unwrap_err().to_string();
        assert!(e.starts_with("failed to compute cache key: failed to calculate checksum of ref "), "{e}");
        assert!(e.ends_with(": \"/missing\": not found"), "{e}");
        assert!(r.resolve("app/b.pyc").is_err());
        let mut items = Vec::new();
        r.items("app", ".", &mut items).unwrap();
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a.py", "sub", "sub/c.txt"]);
        let own = Ownership { ids: Some((0, 0)), mode: None };
        let h1 = hash_items(&items, &own).unwrap();
        fs::write(d.path().join("app/sub/c.txt"), "changed").unwrap();
        let mut items2 = Vec::new();
        r.items("app", ".", &mut items2).unwrap();
        assert_ne!(h1, hash_items(&items2, &own).unwrap());
        let mut t = Vec::new();
        write_tar(&items2, &own, &mut t).unwrap();
        let mut ar = tar::Archive::new(&t[..]);
        let n: Vec<String> =
            ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(n, ["a.py", "sub", "sub/c.txt"]);
    }
}
