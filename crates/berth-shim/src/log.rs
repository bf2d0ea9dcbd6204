//! Container output in Docker's json-file format, with size-based rotation.
//!
//! One entry per line: `{"log":"hi\n","stream":"stdout","time":"…Z"}`. Like
//! Docker's log copier (moby `daemon/logger/copier.go`), output is split at
//! newlines, a line is written with its newline, and a line that grows past
//! 16 KiB without one is written in 16 KiB pieces without a newline (a
//! "partial" entry). Rotation follows the json-file driver: when the next
//! entry would take the file past `max_size`, `log.N-1` → `log.N`, …,
//! `log` → `log.1`, and a fresh `log` is started; `max_files` counts the
//! current file, so 3 means `log`, `log.1` and `log.2`.

use crate::json::write_str;
use crate::protocol::StreamId;
use crate::time::write_rfc3339_nanos;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Default rotation size: bounded, unlike Docker's json-file default (which
/// lets a chatty container fill the disk); the same order as Docker's `local`
/// driver.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Default number of files kept, the current one included.
pub const DEFAULT_MAX_FILES: u32 = 3;
/// Longest line kept in memory before a partial entry is written (Docker's
/// copier buffer size).
const MAX_LINE: usize = 16 * 1024;

pub(crate) struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    /// 0 disables rotation.
    max_size: u64,
    max_files: u32,
    /// Unterminated line tails of stdout and stderr.
    partial: [Vec<u8>; 2],
    /// Entries encoded for the current chunk of output, written with one
    /// write(2) (Docker writes one per entry; a chunk of short lines would
    /// otherwise cost a system call per line).
    batch: Vec<u8>,
    /// The timestamp of the current chunk, encoded once for all its lines.
    stamp: Vec<u8>,
    /// Set after a write error has been reported once, so a full disk does
    /// not flood the shim's own log.
    failed: bool,
}

impl LogWriter {
    pub(crate) fn open(path: &Path, max_size: u64, max_files: u32) -> std::io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
            batch: Vec::new(),
            stamp: Vec::new(),
            failed: false,
        })
    }

    /// Logs a chunk of output read at `now`.
    pub(crate) fn write(&mut self, stream: StreamId, data: &[u8], now: SystemTime) {
        self.set_stamp(now);
        let idx = usize::from(stream == StreamId::Stderr);
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(nl + 1);
            if self.partial[idx].is_empty() {
                self.emit(stream, line);
            } else {
                let mut joined = std::mem::take(&mut self.partial[idx]);
                joined.extend_from_slice(line);
                self.emit(stream, &joined);
                joined.clear();
                // Keep small buffers for the next tail; give large ones back.
                if joined.capacity() <= 4096 {
                    self.partial[idx] = joined;
                }
            }
            rest = tail;
        }
        if !rest.is_empty() {
            let mut pending = std::mem::take(&mut self.partial[idx]);
            pending.extend_from_slice(rest);
            while pending.len() >= MAX_LINE {
                self.emit(stream, &pending[..MAX_LINE]);
                pending.drain(..MAX_LINE);
            }
            self.partial[idx] = pending;
        }
        self.flush_batch();
    }

    fn set_stamp(&mut self, now: SystemTime) {
        self.stamp.clear();
        write_rfc3339_nanos(&mut self.stamp, now);
    }

    /// Writes out unterminated tails, at the end of the output.
    pub(crate) fn flush_partial(&mut self, now: SystemTime) {
        self.set_stamp(now);
        for (idx, stream) in [(0, StreamId::Stdout), (1, StreamId::Stderr)] {
            let pending = std::mem::take(&mut self.partial[idx]);
            if !pending.is_empty() {
                self.emit(stream, &pending);
            }
        }
        self.flush_batch();
    }

    fn emit(&mut self, stream: StreamId, line: &[u8]) {
        let mut entry = std::mem::take(&mut self.batch);
        let start = entry.len();
        entry.extend_from_slice(b"{\"log\":");
        write_str(&mut entry, line);
        entry.extend_from_slice(b",\"stream\":\"");
        entry.extend_from_slice(stream.as_str().as_bytes());
        entry.extend_from_slice(b"\",\"time\":\"");
        entry.extend_from_slice(&self.stamp);
        entry.extend_from_slice(b"\"}\n");
        let len = (entry.len() - start) as u64;
        let before = self.size + start as u64;
        if self.max_size > 0 && before > 0 && before + len > self.max_size {
            // Entries already batched belong to the current file.
            let this: Vec<u8> = entry.drain(start..).collect();
            self.batch = entry;
            self.flush_batch();
            if let Err(e) = self.rotate() {
                self.report(&format!("rotate {}: {e}", self.path.display()));
            }
            entry = std::mem::take(&mut self.batch);
            entry.extend_from_slice(&this);
        }
        self.batch = entry;
    }

    fn flush_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        // Whole entries per write(2) on an O_APPEND file, so a concurrent
        // reader (`docker logs -f`) only ever waits for the rest of a line.
        match self.file.write_all(&self.batch) {
            Ok(()) => {
                self.size += self.batch.len() as u64;
                self.failed = false;
            }
            Err(e) => self.report(&format!("write {}: {e}", self.path.display())),
        }
        self.batch.clear();
        if self.batch.capacity() > 64 * 1024 {
            self.batch = Vec::new();
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.max_files > 1 {
            for i in (1..self.max_files - 1).rev() {
                let from = numbered(&self.path, i);
                if from.exists() {
                    std::fs::rename(&from, numbered(&self.path, i + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(&self.path, 1))?;
            self.file = open_append(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }

    fn report(&mut self, msg: &str) {
        // Never stop draining the container because the log cannot be
        // written: losing log lines beats blocking the workload (conmon
        // makes the same choice).
        if !self.failed {
            eprintln!("berth-shim: log: {msg}");
            self.failed = true;
        }
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).mode(0o640).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn entries(path: &Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v = json::parse(l.as_bytes()).unwrap();
                assert!(v.get("time").unwrap().as_str().unwrap().ends_with('Z'));
                (
                    v.get("log").unwrap().as_str().unwrap().to_string(),
                    v.get("stream").unwrap().as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn splits_lines_and_keeps_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, 0, 1).unwrap();
        let now = SystemTime::now();
        w.write(StreamId::Stdout, b"a\nb", now);
        w.write(StreamId::Stderr, b"e\n", now);
        w.write(StreamId::Stdout, b"c\nd", now);
        w.flush_partial(now);
        assert_eq!(
            entries(&p),
            [("a\n", "stdout"), ("e\n", "stderr"), ("bc\n", "stdout"), ("d", "stdout")]
                .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(StreamId::Stdout, &long, now);
        w.flush_partial(now);
        let e = entries(&p);
        assert_eq!(e[4].0.len(), MAX_LINE);
        assert_eq!(e[5].0.len(), 10);
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, 500, 3).unwrap();
        let now = SystemTime::now();
        for i in 0..100 {
            w.write(StreamId::Stdout, format!("line {i}\n").as_bytes(), now);
        }
        let sizes: Vec<u64> = ["c.log", "c.log.1", "c.log.2"]
            .iter()
            .map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len())
            .collect();
        assert!(sizes.iter().all(|&s| s > 0 && s <= 500), "{sizes:?}");
        assert!(!dir.path().join("c.log.3").exists());
        let last = entries(&p);
        assert_eq!(last.last().unwrap().0, "line 99\n");
        let older = entries(&dir.path().join("c.log.1"));
        let first_current: usize = last[0].0[5..].trim().parse().unwrap();
        let last_older: usize = older.last().unwrap().0[5..].trim().parse().unwrap();
        assert_eq!(last_older + 1, first_current);
    }

    #[test]
    fn single_file_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, 300, 1).unwrap();
        for i in 0..50 {
            w.write(StreamId::Stdout, format!("line {i}\n").as_bytes(), SystemTime::now());
        }
        assert!(std::fs::metadata(&p).unwrap().len() <= 300);
        assert!(!dir.path().join("c.log.1").exists());
    }
}
