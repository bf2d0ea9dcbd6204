//! Images move between berth and a real dockerd (Debian's docker.io, run side
//! by side on its own data root and socket by scripts/dockerd-ref.sh) with
//! their IDs unchanged, in both directions.

mod common;

use std::process::Command;

use common::{archive_image_id, fixture, repo_root, stderr, stdout, which, Daemon};

const REF_SOCK: &str = "/run/berth-ref/docker.sock";

struct RefDockerd {
    started_here: bool,
}

impl RefDockerd {
    fn start() -> Option<RefDockerd> {
        which("dockerd")?;
        if std::os::unix::net::UnixStream::connect(REF_SOCK).is_ok() {
            return Some(RefDockerd { started_here: false });
        }
        let st = Command::new("bash").arg(repo_root().join("scripts/dockerd-ref.sh")).arg("start").status().ok()?;
        st.success().then_some(RefDockerd { started_here: true })
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker").args(args).env("DOCKER_HOST", format!("unix://{REF_SOCK}")).output().expect("docker")
    }
}

impl Drop for RefDockerd {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new("bash").arg(repo_root().join("scripts/dockerd-ref.sh")).arg("stop").status();
        }
    }
}

#[test]
fn images_move_between_dockerd_and_berth_with_the_same_id() {
    require_root!();
    let Some(r) = RefDockerd::start() else {
        eprintln!("skipped: dockerd (Debian docker.io) not installed");
        return;
    };
    let d = Daemon::start();
    let bb = fixture("busybox.tar");
    let want = archive_image_id(&bb);
    let tag = "berth-interop/busybox:1";

    // dockerd → berth: dockerd 20.10 writes the legacy docker-archive layout.
    let o = r.docker(&["load", "-i", bb.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.docker(&["tag", "busybox:latest", tag]);
    assert!(o.status.success(), "{}", stderr(&o));
    let from_dockerd = d.dir.path().join("from-dockerd.tar");
    let o = r.docker(&["save", "-o", from_dockerd.to_str().unwrap(), tag]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.ok(&["load", "-i", from_dockerd.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("Loaded image: {tag}"));
    assert_eq!(d.ok(&["image", "inspect", "-f", "{{.Id}}", tag]).trim(), want);

    // berth → dockerd: berth writes both layouts in one archive.
    d.ok(&["tag", tag, "berth-interop/from-berth:2"]);
    let from_berth = d.dir.path().join("from-berth.tar");
    d.ok(&["save", "-o", from_berth.to_str().unwrap(), "berth-interop/from-berth:2"]);
    let o = r.docker(&["load", "-i", from_berth.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Loaded image: berth-interop/from-berth:2"), "{}", stdout(&o));
    let o = r.docker(&["image", "inspect", "-f", "{{.Id}}", "berth-interop/from-berth:2"]);
    assert_eq!(stdout(&o).trim(), want);

    // The python image (one ~150 MB layer) too.
    let py = fixture("debian-python.tar");
    let py_id = archive_image_id(&py);
    d.ok(&["load", "-i", py.to_str().unwrap()]);
    let py_out = d.dir.path().join("py.tar");
    d.ok(&["save", "-o", py_out.to_str().unwrap(), "python:3.12-slim"]);
    let o = r.docker(&["load", "-i", py_out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.docker(&["image", "inspect", "-f", "{{.Id}}", "python:3.12-slim"]);
    assert_eq!(stdout(&o).trim(), py_id);

    for t in [tag, "berth-interop/from-berth:2"] {
        let _ = r.docker(&["rmi", t]);
    }
}
