//! Reading the json-file logs the shim writes (Docker's format: one
//! `{"log":…,"stream":…,"time":…}` object per line, rotated to `.1`, `.2`, …),
//! with Docker's `logs` options.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub since: Option<f64>,
    pub until: Option<f64>,
    /// `None` = all lines.
    pub tail: Option<usize>,
    pub timestamps: bool,
    pub follow: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

impl Entry {
    pub fn unix(&self) -> f64 {
        chrono::DateTime::parse_from_rfc3339(&self.time)
            .map(|t| t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9)
            .unwrap_or(0.0)
    }

    pub fn is_stderr(&self) -> bool {
        self.stream == "stderr"
    }

    /// The bytes Docker writes for this entry: optional timestamp prefix.
    pub fn payload(&self, timestamps: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.log.len() + 32);
        if timestamps {
            // Docker prints RFC3339Nano with a fixed 9-digit fraction.
            let ts = chrono::DateTime::parse_from_rfc3339(&self.time)
                .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
                .unwrap_or_else(|_| self.time.clone());
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(self.log.as_bytes());
        out
    }
}

/// The log files oldest first: `log.N` … `log.1`, `log`.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let f = e.file_name();
                let f = f.to_string_lossy();
                if let Some(n) = f.strip_prefix(&format!("{name}.")).and_then(|n| n.parse::<u32>().ok()) {
                    rotated.push((n, e.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        out.push(path.to_path_buf());
    }
    out
}

fn wanted(o: &LogOptions, e: &Entry) -> bool {
    let stream_ok = (o.stdout && !e.is_stderr()) || (o.stderr && e.is_stderr());
    if !stream_ok {
        return false;
    }
    let t = e.unix();
    o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t <= u)
}

/// Every entry currently on disk that matches, honouring `tail`; also returns
/// the size of the live file read so far (where `follow` continues).
pub fn read_existing(path: &Path, o: &LogOptions) -> (Vec<Entry>, u64) {
    let mut entries = Vec::new();
    let mut offset = 0;
    for f in files(path) {
        let Ok(file) = std::fs::File::open(&f) else { continue };
        let mut r = BufReader::new(file);
        let mut line = String::new();
        let mut pos = 0u64;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !line.ends_with('\n') {
                        // A line being written right now: leave it for follow.
                        break;
                    }
                    pos += n as u64;
                    if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                        if wanted(o, &e) {
                            entries.push(e);
                        }
                    }
                }
            }
        }
        if f == path {
            offset = pos;
        }
    }
    if let Some(n) = o.tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    (entries, offset)
}

/// Reads complete new lines from `path` starting at `offset`. Handles
/// rotation: if the file is now shorter than `offset`, it starts over.
pub fn read_new(path: &Path, offset: &mut u64, o: &LogOptions) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(mut file) = std::fs::File::open(path) else { return out };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len < *offset {
        *offset = 0;
    }
    if file.seek(SeekFrom::Start(*offset)).is_err() {
        return out;
    }
    let mut r = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break;
                }
                *offset += n as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                    if wanted(o, &e) {
                        out.push(e);
                    }
                }
            }
        }
    }
    out
}

/// Docker's multiplexed frame for one entry (non-TTY containers).
pub fn frame(e: &Entry, timestamps: bool) -> Vec<u8> {
    let payload = e.payload(timestamps);
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(if e.is_stderr() { 2 } else { 1 });
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rotated_files_in_order_with_tail_and_streams() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c-json.log");
        let line = |l: &str, s: &str, t: &str| format!("{{\"log\":\"{l}\\n\",\"stream\":\"{s}\",\"time\":\"{t}\"}}\n");
        std::fs::write(d.path().join("c-json.log.2"), line("one", "stdout", "2024-01-01T00:00:01Z")).unwrap();
        std::fs::write(d.path().join("c-json.log.1"), line("two", "stderr", "2024-01-01T00:00:02Z")).unwrap();
        std::fs::write(&p, line("three", "stdout", "2024-01-01T00:00:03Z") + "{\"log\":\"partial").unwrap();
        let all = LogOptions { stdout: true, stderr: true, ..Default::default() };
        let (e, off) = read_existing(&p, &all);
        assert_eq!(e.iter().map(|e| e.log.trim()).collect::<Vec<_>>(), vec!["one", "two", "three"]);
        assert!(off > 0);
        let (e, _) = read_existing(&p, &LogOptions { tail: Some(1), ..all.clone() });
        assert_eq!(e.len(), 1);
        let (e, _) = read_existing(&p, &LogOptions { stderr: false, ..all.clone() });
        assert_eq!(e.len(), 2);
        let (e, _) = read_existing(&p, &LogOptions { since: Some(1704067202.0), ..all.clone() });
        assert_eq!(e.len(), 2);
        let f = frame(&e[0], false);
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 4]);
        let ts = String::from_utf8(e[0].payload(true)).unwrap();
        assert_eq!(ts, "2024-01-01T00:00:02.000000000Z two\n");
    }
}
