//! Times `apply_layer` on a real tree: builds an uncompressed layer tar of up
//! to `MAX_MB` megabytes of file data from `DIR`, then unpacks it into a
//! scratch snapshotter.
//!
//! ```text
//! cargo run --release -p berth-snapshot --example apply_bench -- /usr 100
//! cargo run --release -p berth-snapshot --example apply_bench -- layer.tar
//! ```

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Instant;

use berth_snapshot::Snapshotter;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let src = PathBuf::from(args.next().unwrap_or_else(|| "/usr".to_string()));
    let max_mb: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let scratch = tempfile::tempdir()?;

    // An existing tar file is used as is.
    let tar_path = if src.is_file() {
        src.clone()
    } else {
        let tar_path = scratch.path().join("layer.tar");
        let started = Instant::now();
        let (files, bytes) = build_tar(&src, &tar_path, max_mb << 20)?;
        println!(
            "built layer: {files} entries, {:.1} MB of file data, in {:.2?}",
            bytes as f64 / 1e6,
            started.elapsed()
        );
        tar_path
    };
    let tar_len = fs::metadata(&tar_path)?.len();
    println!("layer tar: {:.1} MB", tar_len as f64 / 1e6);

    let snap = Snapshotter::new(&scratch.path().join("snap"))?;
    for (i, key) in ["sha256:bench-cold", "sha256:bench-warm"].iter().enumerate() {
        let layer = BufReader::with_capacity(1 << 20, File::open(&tar_path)?);
        let started = Instant::now();
        let r = snap.apply_layer(key, None, layer, None)?;
        let took = started.elapsed();
        println!(
            "apply #{}: {} ({:.1} MB unpacked) in {:.2?} = {:.0} MB/s",
            i + 1,
            r.diff_id,
            r.size as f64 / 1e6,
            took,
            tar_len as f64 / 1e6 / took.as_secs_f64()
        );
    }
    let started = Instant::now();
    let again = snap.apply_layer("sha256:bench-cold", None, BufReader::new(File::open(&tar_path)?), None)?;
    println!("re-apply of existing key (hash only): {:.2?} ({})", started.elapsed(), again.diff_id);
    for key in ["sha256:bench-cold", "sha256:bench-warm"] {
        snap.remove(key)?;
    }
    Ok(())
}

/// Tars regular files, dirs and symlinks of `src` (not following symlinks,
/// not crossing into other filesystems' special files) until `limit` bytes
/// of file data.
fn build_tar(src: &Path, out: &Path, limit: u64) -> Result<(u64, u64), BoxError> {
    let mut file = File::create(out)?;
    let mut b = tar::Builder::new(BufWriter::new(&mut file));
    b.follow_symlinks(false);
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut stack = vec![src.to_path_buf()];
    'walk: while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let rel = path.strip_prefix(src)?;
            if meta.is_dir() {
                b.append_dir(rel, &path)?;
                stack.push(path);
            } else if meta.is_file() || meta.file_type().is_symlink() {
                if meta.is_file() && (File::open(&path).is_err() || bytes + meta.len() > limit) {
                    continue;
                }
                b.append_path_with_name(&path, rel)?;
                files += 1;
                if meta.is_file() {
                    bytes += meta.len();
                }
                if bytes + (64 << 10) >= limit {
                    break 'walk;
                }
            }
        }
    }
    b.into_inner()?;
    file.seek(SeekFrom::End(0))?;
    Ok((files, bytes))
}
