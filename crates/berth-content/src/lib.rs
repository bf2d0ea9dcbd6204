//! Digest-addressed blob storage (containerd's content store, on plain files).
//!
//! Blobs live at `<root>/blobs/sha256/<hex>`. Every write goes to a temporary
//! file under `<root>/ingest/`, is hashed while it is written, verified against
//! the expected digest, fsynced and only then renamed into place, so a crash or
//! a digest mismatch never leaves a partial blob where readers look.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_error::ErrorKind;
use sha2::{Digest as _, Sha256};

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    InvalidDigest(String),
    #[error("content digest {0} not found")]
    NotFound(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("content store I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidDigest(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::DigestMismatch { .. } => ErrorKind::DataLoss,
            Error::Io { .. } => ErrorKind::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Checks that `digest` is `sha256:` followed by 64 lowercase hex digits and
/// returns the hex part. Only sha256 is accepted, as Docker does for image IDs.
pub fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| Error::InvalidDigest(digest.to_string()))?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Error::InvalidDigest(digest.to_string()));
    }
    Ok(hex)
}

/// The sha256 digest of `data`, as `sha256:<hex>`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The content store rooted at one directory.
#[derive(Debug)]
pub struct ContentStore {
    root: PathBuf,
    seq: AtomicU64,
}

impl ContentStore {
    /// Opens (creating if needed) the store and removes ingest files left by a
    /// crash: they were never renamed into place, so nothing refers to them.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
        let ingest = root.join("ingest");
        if ingest.exists() {
            fs::remove_dir_all(&ingest).map_err(io_err(&ingest))?;
        }
        fs::create_dir_all(&ingest).map_err(io_err(&ingest))?;
        Ok(Self { root: root.to_path_buf(), seq: AtomicU64::new(0) })
    }

    /// Where the blob with `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest_hex(digest)?;
        Ok(self.root.join("blobs").join("sha256").join(hex))
    }

    pub fn exists(&self, digest: &str) -> bool {
        self.path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Size in bytes of a stored blob.
    pub fn size(&self, digest: &str) -> Result<u64> {
        let p = self.path(digest)?;
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(digest.into())),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.path(digest)?;
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(digest.into())),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// Reads a whole (small) blob, e.g. a config or a manifest.
    pub fn read(&self, digest: &str) -> Result<Vec<u8>> {
        let mut f = self.open_blob(digest)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(io_err(&self.path(digest)?))?;
        Ok(buf)
    }

    /// Starts writing a new blob.
    pub fn writer(&self) -> Result<Writer> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join("ingest").join(format!("{}-{}", std::process::id(), n));
        let file = File::create(&path).map_err(io_err(&path))?;
        Ok(Writer {
            file: Some(io::BufWriter::with_capacity(256 * 1024, file)),
            path,
            blobs: self.root.join("blobs").join("sha256"),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores `data`, verifying it against `expected` when given. Returns the digest.
    pub fn put(&self, data: &[u8], expected: Option<&str>) -> Result<String> {
        let mut w = self.writer()?;
        w.write_all(data).map_err(io_err(&w.path))?;
        Ok(w.commit(expected)?.0)
    }

    /// Copies a reader into the store. Returns digest and size.
    pub fn ingest(&self, mut r: impl Read, expected: Option<&str>) -> Result<(String, u64)> {
        let mut w = self.writer()?;
        io::copy(&mut r, &mut w).map_err(io_err(&w.path))?;
        w.commit(expected)
    }

    /// Deletes a blob; deleting a missing blob is not an error (idempotent GC).
    pub fn delete(&self, digest: &str) -> Result<()> {
        let p = self.path(digest)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p)(e)),
        }
    }

    /// Every stored digest.
    pub fn list(&self) -> Result<Vec<String>> {
        let dir = self.root.join("blobs").join("sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let e = e.map_err(io_err(&dir))?;
            if let Some(name) = e.file_name().to_str() {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }
}

/// A blob being written. Dropping it without [`Writer::commit`] removes the temp file.
pub struct Writer {
    file: Option<io::BufWriter<File>>,
    path: PathBuf,
    blobs: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Writer {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Verifies, fsyncs and renames the blob into place. Returns (digest, size).
    pub fn commit(mut self, expected: Option<&str>) -> Result<(String, u64)> {
        if let Some(exp) = expected {
            digest_hex(exp)?;
        }
        let actual = format!("sha256:{}", hex::encode(self.hasher.clone().finalize()));
        if let Some(exp) = expected {
            if exp != actual {
                return Err(Error::DigestMismatch { expected: exp.to_string(), actual });
            }
        }
        let Some(buf) = self.file.take() else {
            return Err(Error::Io { path: self.path.clone(), source: io::Error::other("writer already committed") });
        };
        let file = buf.into_inner().map_err(|e| io_err(&self.path)(e.into_error()))?;
        file.sync_all().map_err(io_err(&self.path))?;
        drop(file);
        let dest = self.blobs.join(&actual["sha256:".len()..]);
        // Renaming over an existing identical blob is harmless: same digest, same bytes.
        fs::rename(&self.path, &dest).map_err(io_err(&dest))?;
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = File::open(&self.blobs) {
            let _ = d.sync_all();
        }
        Ok((actual, self.size))
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let f = self.file.as_mut().ok_or_else(|| io::Error::other("writer already committed"))?;
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
        // After a failed commit (mismatch), the temp file is still there.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_roundtrip_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let d = cs.put(b"hello", None).unwrap();
        assert_eq!(d, sha256_digest(b"hello"));
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert_eq!(cs.size(&d).unwrap(), 5);
        assert!(cs.exists(&d));
        assert_eq!(cs.list().unwrap(), vec![d.clone()]);
        cs.delete(&d).unwrap();
        assert!(!cs.exists(&d));
        assert_eq!(cs.read(&d).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let wrong = sha256_digest(b"other");
        let err = cs.put(b"hello", Some(&wrong)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DataLoss);
        assert!(cs.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(dir.path()).unwrap();
        let mut w = cs.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
        assert!(cs.list().unwrap().is_empty());
    }

    #[test]
    fn digest_validation() {
        assert!(digest_hex("sha256:abc").is_err());
        assert!(digest_hex("md5:00").is_err());
        assert!(digest_hex(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(digest_hex(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }
}
