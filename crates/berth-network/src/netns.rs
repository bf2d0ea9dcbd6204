//! Network namespaces made by the daemon before the runtime runs, so the
//! container's interfaces are in place when its process starts (Docker's
//! sandbox, netavark's netns): a namespace is created by a throwaway thread
//! (`unshare(CLONE_NEWNET)` only affects the calling thread), its `lo` is
//! brought up, and it is kept alive by bind-mounting `/proc/thread-self/ns/net`
//! onto a file under `<exec-root>/netns/`, whose path goes into the OCI spec.
//!
//! Creating one costs a few milliseconds of kernel work, so a small pool of
//! ready namespaces is refilled in the background and `take` rarely waits.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use crate::netlink::Netlink;

/// How many ready namespaces the pool keeps.
const POOL_SIZE: usize = 3;

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    let s: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    s[..n].to_string()
}

/// Creates a namespace pinned at `path` (a new empty file), with `lo` up.
pub fn create(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    let target = path.to_path_buf();
    let res = std::thread::Builder::new()
        .name("netns-new".into())
        .spawn(move || -> io::Result<()> {
            // SAFETY: unshare affects only this thread, which ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // Docker's sandbox brings lo up; `--network none` relies on 127.0.0.1.
            Netlink::open()?.set_up("lo")?;
            let src = std::ffi::CString::new(format!("/proc/self/task/{}/ns/net", unsafe { libc::gettid() }))
                .map_err(io::Error::other)?;
            let dst = std::ffi::CString::new(target.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
            // SAFETY: bind mount between two valid C strings.
            let r =
                unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?;
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Unpins and removes a namespace file; the namespace itself goes away with
/// its last process. A missing file is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: umount2 on a valid C string.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens a namespace file for `setns`/`IFLA_NET_NS_FD`.
pub fn open(path: &Path) -> io::Result<std::fs::File> {
    let f = std::fs::File::open(path)?;
    // A file that is not a namespace (the bind mount is gone) would make
    // netlink calls act on the host: check the filesystem magic (NSFS).
    // SAFETY: fstatfs into a zeroed struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    if st.f_type as i64 != NSFS_MAGIC {
        return Err(io::Error::other(format!("{} is not a network namespace", path.display())));
    }
    Ok(f)
}

struct PoolState {
    ready: Vec<PathBuf>,
    filling: bool,
}

/// Ready namespaces under `dir`, named like Docker's sandbox keys (12 hex).
pub struct Pool {
    dir: PathBuf,
    state: Mutex<PoolState>,
    cv: Condvar,
}

impl Pool {
    /// Creates the directory and removes namespaces a previous daemon left
    /// that no container uses (`in_use`).
    pub fn new(dir: PathBuf, in_use: &[PathBuf]) -> io::Result<Arc<Pool>> {
        std::fs::create_dir_all(&dir)?;
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let p = e.path();
                if !in_use.contains(&p) {
                    let _ = remove(&p);
                }
            }
        }
        Ok(Arc::new(Pool {
            dir,
            state: Mutex::new(PoolState { ready: Vec::new(), filling: false }),
            cv: Condvar::new(),
        }))
    }

    fn fresh(&self) -> io::Result<PathBuf> {
        let p = self.dir.join(random_hex(12));
        create(&p)?;
        Ok(p)
    }

    /// A namespace for a container: from the pool when one is ready, else a
    /// new one. The pool is refilled in the background.
    pub fn take(self: &Arc<Self>) -> io::Result<PathBuf> {
        let got = self.state.lock().unwrap_or_else(|e| e.into_inner()).ready.pop();
        self.refill();
        match got {
            Some(p) => Ok(p),
            None => self.fresh(),
        }
    }

    /// Starts a background refill unless one is running.
    pub fn refill(self: &Arc<Self>) {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.filling || st.ready.len() >= POOL_SIZE {
                return;
            }
            st.filling = true;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("netns-pool".into()).spawn(move || {
            loop {
                let need = me.state.lock().unwrap_or_else(|e| e.into_inner()).ready.len() < POOL_SIZE;
                if !need {
                    break;
                }
                match me.fresh() {
                    Ok(p) => me.state.lock().unwrap_or_else(|e| e.into_inner()).ready.push(p),
                    Err(e) => {
                        tracing::warn!("pre-creating a network namespace: {e}");
                        break;
                    }
                }
            }
            me.state.lock().unwrap_or_else(|e| e.into_inner()).filling = false;
            me.cv.notify_all();
        });
        if spawned.is_err() {
            self.state.lock().unwrap_or_else(|e| e.into_inner()).filling = false;
        }
    }

    /// Removes the ready namespaces (daemon shutdown).
    pub fn drain(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.filling {
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        for p in st.ready.drain(..) {
            let _ = remove(&p);
        }
        // Gone when no container namespace is left in it.
        let _ = std::fs::remove_dir(&self.dir);
    }
}
