//! The local terminal: raw mode for `run -t`/`exec -t`/`attach`, its size for
//! `resize`, and whether the standard streams are terminals at all.
//!
//! Raw mode follows moby/term's `MakeRaw` (the same flags as `cfmakeraw`). The
//! saved state lives in a process-wide slot so that every way out — normal
//! return, error, a terminating signal — can put the terminal back exactly
//! once.

use std::sync::Mutex;

static SAVED: Mutex<Vec<(i32, libc::termios)>> = Mutex::new(Vec::new());

pub const STDIN: i32 = 0;
pub const STDOUT: i32 = 1;

pub fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The terminal's `(height, width)`, or `(0, 0)` when `fd` is not a terminal
/// (docker's `GetTtySize`).
pub fn size(fd: i32) -> (u16, u16) {
    let mut ws: libc::winsize = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the pointed-to struct.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) };
    if r != 0 {
        return (0, 0);
    }
    (ws.ws_row, ws.ws_col)
}

/// Puts the given descriptors (those that are terminals) in raw mode until
/// the guard is dropped or [`restore`] is called.
#[must_use = "the terminal is restored when the guard drops"]
pub struct RawMode(());

impl RawMode {
    pub fn enable(fds: &[i32]) -> std::io::Result<RawMode> {
        let mut saved = SAVED.lock().unwrap_or_else(|p| p.into_inner());
        for &fd in fds {
            if !is_terminal(fd) || saved.iter().any(|(f, _)| *f == fd) {
                continue;
            }
            // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: fd is an open terminal; t is a valid termios.
            if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let original = t;
            t.c_iflag &= !(libc::IGNBRK
                | libc::BRKINT
                | libc::PARMRK
                | libc::ISTRIP
                | libc::INLCR
                | libc::IGNCR
                | libc::ICRNL
                | libc::IXON);
            t.c_oflag &= !libc::OPOST;
            t.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::ISIG | libc::IEXTEN);
            t.c_cflag &= !(libc::CSIZE | libc::PARENB);
            t.c_cflag |= libc::CS8;
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            // SAFETY: as above.
            if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            saved.push((fd, original));
        }
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts every terminal changed by [`RawMode::enable`] back as it was.
pub fn restore() {
    let mut saved = SAVED.lock().unwrap_or_else(|p| p.into_inner());
    while let Some((fd, t)) = saved.pop() {
        // SAFETY: restoring a termios obtained from tcgetattr on the same fd.
        unsafe {
            libc::tcsetattr(fd, libc::TCSANOW, &t);
        }
    }
}

/// Parses docker's `--detach-keys` (moby/term `ToBytes`): comma-separated
/// single characters, `ctrl-@`…`ctrl-_` and `DEL`.
pub fn detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    const CTRL: &str = "@abcdefghijklmnopqrstuvwxyz[\\]^_";
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        if key == "DEL" {
            out.push(127);
            continue;
        }
        let code = key
            .strip_prefix("ctrl-")
            .filter(|k| k.len() == 1)
            .and_then(|k| CTRL.find(k))
            .ok_or_else(|| format!("Unknown character: '{key}'"))?;
        out.push(code as u8);
    }
    Ok(out)
}

/// docker's default escape sequence, ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_sequences() {
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(detach_keys("ctrl-a").unwrap(), vec![1]);
        assert_eq!(detach_keys("a,b,ctrl-@,ctrl-_,DEL").unwrap(), vec![b'a', b'b', 0, 31, 127]);
        assert_eq!(detach_keys("ctrl-\\").unwrap(), vec![28]);
        assert_eq!(detach_keys("ctrl-P").unwrap_err(), "Unknown character: 'ctrl-P'");
        assert_eq!(detach_keys("ab").unwrap_err(), "Unknown character: 'ab'");
        assert_eq!(detach_keys("").unwrap_err(), "Unknown character: ''");
    }

    #[test]
    fn not_a_terminal() {
        let f = tempfile::tempfile().unwrap();
        use std::os::fd::AsRawFd;
        assert!(!is_terminal(f.as_raw_fd()));
        assert_eq!(size(f.as_raw_fd()), (0, 0));
    }
}
