//! Volume and filesystem figures (`--only volumes`): copy-up of an image's
//! /usr into a new volume, `cp` throughput both ways for about 1 GB of
//! mixed files, `commit` of a 200 MB writable layer, and `system df` with
//! 1,000 containers. The docker CLI drives both daemons.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{docker, median, parallel, row_time, run_quiet, timed, BerthDaemon, Row};

/// Loads the debian/python fixture and returns the name it loaded as.
fn load_python(cmd: &mut Command, archive: &Path) -> Result<String> {
    let out = cmd.args(["load", "-i"]).arg(archive).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Loaded image: ").map(|s| s.trim().to_string()))
        .context("no image name in load output")
}

/// About 1 GB in a mix of sizes: 4 × 128 MiB, 2,000 × 256 KiB, 40,000 × 4 KiB.
fn make_tree(dir: &Path) -> Result<u64> {
    use std::io::Write;
    let _ = std::fs::remove_dir_all(dir);
    let mut total = 0u64;
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::create_dir_all(dir.join("big"))?;
    for i in 0..4 {
        let mut f = std::fs::File::create(dir.join(format!("big/blob{i}")))?;
        for _ in 0..128 {
            f.write_all(&chunk)?;
        }
        total += 128 << 20;
    }
    for i in 0..2000 {
        let sub = dir.join(format!("mid/{}", i / 100));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(format!("m{i}")), &chunk[..256 << 10])?;
        total += 256 << 10;
    }
    for i in 0..40_000 {
        let sub = dir.join(format!("small/{}/{}", i / 1000, (i / 100) % 10));
        std::fs::create_dir_all(&sub)?;
        std::fs::write(sub.join(format!("s{i}")), &chunk[i % 1000..i % 1000 + 4096])?;
        total += 4096;
    }
    Ok(total)
}

fn mbps(bytes: u64, d: Duration) -> String {
    format!("{:.0} MB/s", bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9))
}

pub(super) fn run(d: &BerthDaemon, dockerd: bool, fixtures: &Path, rows: &mut Vec<Row>) -> Result<()> {
    let py = fixtures.join("debian-python.tar");
    let b_img = load_python(&mut d.cli(), &py)?;
    let d_img = if dockerd { Some(load_python(&mut docker(), &py)?) } else { None };

    // Copy-up: the first container on an empty named volume at /usr gets
    // the image's /usr copied in (median of 3, each on a fresh volume).
    let mut bt = Vec::new();
    let mut dt = Vec::new();
    for i in 0..3 {
        let v = format!("copyup{i}");
        bt.push(timed(d.docker().args([
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{v}:/usr"),
            &b_img,
            "true",
        ]))?);
        run_quiet(d.docker().args(["volume", "rm", &v]))?;
        if let Some(img) = &d_img {
            dt.push(timed(docker().args([
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &format!("{v}:/usr"),
                img,
                "true",
            ]))?);
            run_quiet(docker().args(["volume", "rm", &v]))?;
        }
    }
    rows.push(row_time(
        "run with copy-up of debian/python /usr into a new volume (median of 3)",
        median(bt),
        dockerd.then(|| median(dt)),
    ));

    // cp both ways, ~1 GB of mixed files.
    let work = std::path::PathBuf::from(format!("/tmp/berth-bench-cp-{}", std::process::id()));
    let src = work.join("src");
    let bytes = make_tree(&src)?;
    run_quiet(d.docker().args(["run", "-d", "--network", "none", "--name", "cpb", "busybox", "sleep", "3600"]))?;
    if dockerd {
        run_quiet(docker().args(["run", "-d", "--network", "none", "--name", "cpb", "busybox", "sleep", "3600"]))?;
    }
    let into = |c: &mut Command| -> Result<Duration> { timed(c.args(["cp", "-q"]).arg(&src).arg("cpb:/data")) };
    let b_in = into(&mut d.docker())?;
    let d_in = if dockerd { Some(into(&mut docker())?) } else { None };
    let out = work.join("out");
    let from = |c: &mut Command, tag: &str| -> Result<Duration> {
        let dst = out.join(tag);
        std::fs::create_dir_all(&out)?;
        let t = timed(c.args(["cp", "-q", "cpb:/data"]).arg(&dst))?;
        let _ = std::fs::remove_dir_all(&dst);
        Ok(t)
    };
    let b_out = from(&mut d.docker(), "b")?;
    let d_out = if dockerd { Some(from(&mut docker(), "d")?) } else { None };
    let b_cli_out = from(&mut d.cli(), "bc")?;
    let _ = d.docker().args(["rm", "-f", "cpb"]).output();
    if dockerd {
        let _ = docker().args(["rm", "-f", "cpb"]).output();
    }
    let _ = std::fs::remove_dir_all(&work);
    let gb = bytes as f64 / 1e9;
    let mut r = row_time(&format!("cp into a container, {gb:.2} GB mixed files (docker CLI)"), b_in, d_in);
    r.name.push_str(&format!(" [{}]", mbps(bytes, b_in)));
    rows.push(r);
    let mut r = row_time(&format!("cp out of a container, {gb:.2} GB mixed files (docker CLI)"), b_out, d_out);
    r.name.push_str(&format!(" [{}]", mbps(bytes, b_out)));
    rows.push(r);
    rows.push(row_time(&format!("cp out of a container, {gb:.2} GB mixed files (berth CLI)"), b_cli_out, d_out));

    // commit of a 200 MB writable layer.
    let fill = "dd if=/dev/urandom of=/layer bs=1M count=200 2>/dev/null";
    run_quiet(d.docker().args(["run", "--network", "none", "--name", "cmt", "busybox", "sh", "-c", fill]))?;
    let b = timed(d.docker().args(["commit", "cmt", "bench-commit:1"]))?;
    let _ = d.docker().args(["rm", "-f", "cmt"]).output();
    let _ = d.docker().args(["rmi", "bench-commit:1"]).output();
    let dc = if dockerd {
        run_quiet(docker().args(["run", "--network", "none", "--name", "cmt", "busybox", "sh", "-c", fill]))?;
        let t = timed(docker().args(["commit", "cmt", "bench-commit:1"]))?;
        let _ = docker().args(["rm", "-f", "cmt"]).output();
        let _ = docker().args(["rmi", "bench-commit:1"]).output();
        Some(t)
    } else {
        None
    };
    rows.push(row_time("commit of a 200 MB writable layer", b, dc));

    // system df with 1,000 containers.
    let n = 1000;
    parallel(n, 8, |i| {
        run_quiet(d.docker().args(["create", "--network", "none", "--name", &format!("df{i}"), "busybox", "true"]))
    })?;
    if dockerd {
        parallel(n, 8, |i| {
            run_quiet(docker().args(["create", "--network", "none", "--name", &format!("df{i}"), "busybox", "true"]))
        })?;
    }
    let bt: Vec<Duration> = (0..5).map(|_| timed(d.docker().args(["system", "df"]))).collect::<Result<_>>()?;
    let dt: Option<Vec<Duration>> =
        dockerd.then(|| (0..5).map(|_| timed(docker().args(["system", "df"]))).collect::<Result<_>>()).transpose()?;
    rows.push(row_time(
        &format!("`system df` with {n} containers (docker CLI, median of 5)"),
        median(bt),
        dt.map(median),
    ));
    // Only what this bench made: the reference dockerd may be shared.
    let names: Vec<String> = (0..n).map(|i| format!("df{i}")).collect();
    for chunk in names.chunks(100) {
        let _ = d.docker().args(["rm", "-f"]).args(chunk).output();
        if dockerd {
            let _ = docker().args(["rm", "-f"]).args(chunk).output();
        }
    }
    if let Some(img) = &d_img {
        let _ = docker().args(["rmi", img]).output();
    }
    Ok(())
}
