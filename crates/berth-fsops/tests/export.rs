mod common;

use std::fs;
use std::path::PathBuf;

use berth_fsops::export;
use common::is_root;

struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn export_does_not_cross_into_other_mounts() {
    if !is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::create_dir_all(r.join("proc")).unwrap();
    fs::write(r.join("hello"), "hi").unwrap();
    nix::mount::mount(Some("tmpfs"), &r.join("proc"), Some("tmpfs"), nix::mount::MsFlags::empty(), None::<&str>)
        .unwrap();
    let _g = MountGuard(r.join("proc"));
    fs::write(r.join("proc/inside"), "x").unwrap();
    let mut out = Vec::new();
    export(r, &mut out).unwrap();
    let mut a = tar::Archive::new(out.as_slice());
    let names: Vec<String> =
        a.entries().unwrap().map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned()).collect();
    assert_eq!(names, ["hello", "proc/"]);
}
