//! Thin wrappers over the few raw system calls the event loop needs.

use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Outcome of a non-blocking read or write.
pub(crate) enum IoResult {
    Done(usize),
    /// EAGAIN / EWOULDBLOCK.
    WouldBlock,
    /// End of file (read returned 0) or, for a pseudo-terminal master, EIO
    /// once every slave descriptor is closed.
    Eof,
    Failed(Errno),
}

pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> IoResult {
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return IoResult::Done(n as usize);
        }
        if n == 0 {
            return IoResult::Eof;
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::EAGAIN => return IoResult::WouldBlock,
            Errno::EIO => return IoResult::Eof,
            e => return IoResult::Failed(e),
        }
    }
}

/// write(2) to a pipe or terminal.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> IoResult {
    loop {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n >= 0 {
            return IoResult::Done(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::EAGAIN => return IoResult::WouldBlock,
            e => return IoResult::Failed(e),
        }
    }
}

/// send(2) on a socket without raising SIGPIPE when the peer is gone.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> IoResult {
    loop {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
        if n >= 0 {
            return IoResult::Done(n as usize);
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::EAGAIN => return IoResult::WouldBlock,
            e => return IoResult::Failed(e),
        }
    }
}

pub(crate) fn set_nonblocking(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(Errno::last());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

pub(crate) fn set_cloexec(fd: RawFd, on: bool) -> Result<(), Errno> {
    // SAFETY: fcntl with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(Errno::last());
    }
    let flags = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// Takes ownership of an inherited descriptor number if it is open.
pub(crate) fn adopt_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the descriptor is open and was handed to this process for it
    // to own (the ready pipe); nothing else in the process uses the number.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// poll(2) over a prepared array; EINTR counts as "nothing ready".
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, Errno> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = Errno::last();
        return if e == Errno::EINTR { Ok(0) } else { Err(e) };
    }
    Ok(n as usize)
}

pub(crate) fn raw<T: AsRawFd>(fd: &Option<T>) -> Option<RawFd> {
    fd.as_ref().map(AsRawFd::as_raw_fd)
}

/// Drops the resident pages of this process's executable file mappings
/// (`r-xp`: program and library text).
///
/// Per-container memory is the shim's resident size, and most of it is
/// text that only startup touched (argument parsing, fork, spawning the
/// runtime, JSON). With fault-around and large page-cache folios the kernel
/// maps text in 64 KiB or larger runs, so that code stays resident for the
/// container's whole life unless it is released. Text mappings are private,
/// read-only and never written, so MADV_DONTNEED only removes page-table
/// entries; the code is faulted back in from the page cache if it runs
/// again. Writable or relocated (RELRO) mappings are never touched: their
/// pages are private copies that would be lost.
pub(crate) fn release_text() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        let path = f.nth(3).unwrap_or("");
        if perms != "r-xp" || !path.starts_with('/') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: the range is a whole, file-backed, read-only executable
        // mapping of this process (see above), so discarding its page-table
        // entries cannot lose data; the call itself only touches the VMA.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
    }
}

/// For `pre_exec`: gives the child an empty signal mask and default
/// dispositions. Both survive exec(2), and `Command` resets neither the mask
/// nor ignored signals other than SIGPIPE; without this the runtime and, through
/// it, the container would inherit the shim's blocked SIGTERM/SIGCHLD (a
/// container that cannot be stopped) or an ignored SIGINT from whoever
/// started the daemon. Only async-signal-safe calls.
pub(crate) fn reset_signals_for_exec() -> std::io::Result<()> {
    // SAFETY: sigemptyset, sigprocmask and signal are async-signal-safe and
    // only touch this (child) process's signal state; the set is a local.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
        libc::sigemptyset(set.as_mut_ptr());
        if libc::sigprocmask(libc::SIG_SETMASK, set.as_ptr(), std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        for sig in 1..=31 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
    Ok(())
}
