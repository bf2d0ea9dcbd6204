//! Network namespace chores done from the daemon. The daemon is threaded, so
//! it never switches namespaces on a shared thread: a short-lived thread
//! enters the namespace, does its work and ends with the thread (setns only
//! affects the calling thread).

use std::os::fd::AsRawFd;

/// Brings `lo` up in the network namespace of `pid` (a new namespace starts
/// with it down; Docker's sandbox setup brings it up, and `--network none`
/// containers rely on 127.0.0.1).
pub fn loopback_up(pid: i32) -> std::io::Result<()> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&path)?;
    let handle = std::thread::Builder::new().name("netns".into()).spawn(move || -> std::io::Result<()> {
        // SAFETY: setns on an fd we own; only this thread changes namespace
        // and it exits right after.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: plain socket/ioctl calls on a socket we own and close.
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo\0".iter().enumerate() {
                req.ifr_name[i] = *b as libc::c_char;
            }
            let r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req);
            if r == 0 {
                req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                let r2 = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
                let err = if r2 != 0 { Some(std::io::Error::last_os_error()) } else { None };
                libc::close(s);
                return match err {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
            let e = std::io::Error::last_os_error();
            libc::close(s);
            Err(e)
        }
    })?;
    handle.join().map_err(|_| std::io::Error::other("netns thread panicked"))?
}
