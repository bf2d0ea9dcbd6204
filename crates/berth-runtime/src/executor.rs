//! How the container process is exec'd, with runc's error texts, and the
//! channel that carries an exec failure back to `create` or `start`.
//!
//! runc resolves the command with Go's `exec.LookPath` inside the container
//! before it reports the container created, so a missing executable fails
//! `runc create` with `exec: "foo": executable file not found in $PATH`;
//! Docker recognises that text and exits 127 (126 for permission denied).
//! libcontainer's default executor uses its own wording
//! ("executable 'foo' not found in $PATH"), so we replace it.
//!
//! libcontainer carries validation errors back to the creating process only
//! wrapped in several layers of its own text, and says nothing to `start`
//! about the user process. The [`ExecStatus`] FIFO gives both a clean
//! channel: the init process inherits a close-on-exec write end; on failure
//! it writes the message there, on success `execve` closes it. `create`
//! reports the message alone, and `start` reads the FIFO to end-of-file, so
//! it returns only once the user process really runs, like runc's
//! `exec.fifo` handshake. An `execve` failure after the start signal (e.g.
//! "exec format error") is, as in runc, not a `start` error: the container
//! ran and exits 1 with the text on its stderr; `start` logs it.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::Spec;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, Result};

/// runc's default when the process environment has no PATH
/// (libcontainer/init_linux.go).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// File name of the exec-status FIFO inside the container's state directory.
pub const EXEC_STATUS_FILE: &str = "exec-status";

/// The executor handed to libcontainer. It is cloned into the init process,
/// so it only carries plain data.
#[derive(Clone)]
pub struct RuncExecutor {
    /// Write end of the exec-status FIFO, open in the init process
    /// (close-on-exec), or `None` for `exec` where libcontainer already
    /// reports failures itself.
    status_fd: Option<RawFd>,
    /// (device, inode) of the runtime binary, taken on the host.
    self_exe: Option<(u64, u64)>,
}

impl RuncExecutor {
    /// An executor that reports failures on `status_fd` (if any).
    pub fn new(status_fd: Option<RawFd>) -> Self {
        let self_exe = std::fs::metadata("/proc/self/exe").ok().map(|m| (m.dev(), m.ino()));
        RuncExecutor { status_fd, self_exe }
    }

    /// CVE-2019-5736: a container whose command is `/proc/self/exe` (or a
    /// link to it) would run the host's runtime binary inside the container,
    /// where the container's own libraries get loaded into it and it can
    /// keep a handle to rewrite the binary after we exit. runc defends with
    /// a sealed memfd copy of itself on every run (a few ms); refusing to
    /// exec our own inode closes the same hole for one stat(2). The process
    /// is non-dumpable until the exec, so /proc/<pid>/exe is not reachable
    /// from the container either.
    fn check_not_self(&self, name: &str, path: &Path) -> std::result::Result<(), String> {
        match (self.self_exe, std::fs::metadata(path)) {
            (Some(me), Ok(m)) if (m.dev(), m.ino()) == me => {
                let quoted = serde_json::Value::from(name).to_string();
                Err(format!("exec: {quoted}: refusing to execute the runtime binary in the container"))
            }
            _ => Ok(()),
        }
    }

    fn report(&self, msg: &str) {
        if let Some(fd) = self.status_fd {
            // A short write is atomic on a FIFO (< PIPE_BUF); if the reader is
            // gone there is no one to tell anyway.
            let bytes = &msg.as_bytes()[..msg.len().min(4000)];
            // SAFETY: the fd was inherited from `create`, which keeps it open
            // for this process' lifetime (it is only closed by execve).
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let _ = nix::unistd::write(fd, bytes);
        }
    }
}

fn process_args(spec: &Spec) -> Option<&Vec<String>> {
    spec.process().as_ref().and_then(|p| p.args().as_ref()).filter(|a| !a.is_empty())
}

fn spec_path_var(spec: &Spec) -> String {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .and_then(|env| env.iter().rev().find_map(|e| e.strip_prefix("PATH=").map(str::to_owned)))
        .unwrap_or_else(|| DEFAULT_PATH.to_owned())
}

impl Executor for RuncExecutor {
    fn validate(&self, spec: &Spec) -> std::result::Result<(), ExecutorValidationError> {
        let Some(args) = process_args(spec) else {
            let msg = "args must not be empty".to_owned();
            self.report(&msg);
            return Err(ExecutorValidationError::ArgValidationError(msg));
        };
        // This runs inside the container after pivot_root and chdir(cwd),
        // before the environment is replaced, so PATH comes from the spec.
        let resolved = look_path(&args[0], &spec_path_var(spec)).and_then(|p| self.check_not_self(&args[0], &p));
        match resolved {
            Ok(()) => Ok(()),
            Err(msg) => {
                self.report(&msg);
                Err(ExecutorValidationError::ArgValidationError(msg))
            }
        }
    }

    fn exec(&self, spec: &Spec) -> std::result::Result<(), ExecutorError> {
        let Some(args) = process_args(spec) else {
            return Err(ExecutorError::InvalidArg);
        };
        // The environment is the container's now; resolve again because the
        // rootfs may have changed between create and start.
        let path_var = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned());
        let resolved = look_path(&args[0], &path_var).and_then(|p| self.check_not_self(&args[0], &p).map(|()| p));
        let path = match resolved {
            Ok(p) => p,
            Err(msg) => {
                self.report(&msg);
                return Err(ExecutorError::Other(msg));
            }
        };
        let to_c = |s: &[u8]| CString::new(s).map_err(|_| ExecutorError::InvalidArg);
        let c_path = to_c(path.as_os_str().as_bytes())?;
        let c_args = args.iter().map(|a| to_c(a.as_bytes())).collect::<std::result::Result<Vec<_>, _>>()?;
        let err = match nix::unistd::execv(&c_path, &c_args) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        // Go's os.PathError text, as runc returns it from system.Exec. The
        // container has been started by now, so (as with runc) this is not a
        // `start` failure: the text goes to the container's stderr, where
        // `docker logs` shows it, and init exits 1.
        let msg = format!("exec {}: {}", path.display(), errno_text(err));
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{msg}\n").as_bytes());
        self.report(&msg);
        tracing::error!("{msg}");
        if self.status_fd.is_some() {
            // runc's init exits 1 here; returning would make libcontainer's
            // init exit 255 and try to report to a parent that is gone.
            std::process::exit(1);
        }
        Err(ExecutorError::Other(msg))
    }
}

/// Go's lower-case strerror texts ("no such file or directory").
fn errno_text(err: nix::Error) -> String {
    let desc = err.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => desc.to_owned(),
    }
}

/// Go's `findExecutable`: exists, not a directory, some execute bit set.
fn find_executable(path: &Path) -> std::result::Result<(), String> {
    let md = std::fs::metadata(path).map_err(|e| {
        let text = match e.raw_os_error() {
            Some(code) => errno_text(nix::Error::from_raw(code)),
            None => e.to_string(),
        };
        format!("stat {}: {text}", path.display())
    })?;
    if md.is_dir() {
        return Err("is a directory".to_owned());
    }
    if md.mode() & 0o111 == 0 {
        return Err("permission denied".to_owned());
    }
    Ok(())
}

/// Go's `exec.LookPath` with its error texts (`exec: "name": ...`).
pub fn look_path(name: &str, path_var: &str) -> std::result::Result<PathBuf, String> {
    let quoted = serde_json::Value::from(name).to_string();
    if name.contains('/') {
        return find_executable(Path::new(name))
            .map(|()| PathBuf::from(name))
            .map_err(|e| format!("exec: {quoted}: {e}"));
    }
    if !name.is_empty() {
        for dir in path_var.split(':') {
            // An empty PATH element means the current directory.
            let dir = if dir.is_empty() { "." } else { dir };
            let candidate = Path::new(dir).join(name);
            if find_executable(&candidate).is_ok() {
                return Ok(candidate);
            }
        }
    }
    Err(format!("exec: {quoted}: executable file not found in $PATH"))
}

/// The exec-status FIFO while `create` runs.
pub struct ExecStatus {
    temp_path: PathBuf,
    fd: OwnedFd,
}

impl ExecStatus {
    /// Makes the FIFO next to the (not yet existing) container directory and
    /// opens it read-write, so neither side blocks on open and the init
    /// process (which inherits the fd) never gets SIGPIPE. The fd is moved
    /// above the range `--preserve-fds` hands to the container, which is
    /// exempt from close-on-exec.
    pub fn create(root: &Path, id: &str, preserve_fds: i32) -> Result<Self> {
        let temp_path = root.join(format!(".{id}.{EXEC_STATUS_FILE}"));
        let _ = std::fs::remove_file(&temp_path);
        nix::unistd::mkfifo(&temp_path, Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::io("create exec-status fifo", e.into()))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&temp_path)
            .map_err(|e| Error::io("open exec-status fifo", e));
        let file = match file {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&temp_path);
                return Err(e);
            }
        };
        let min_fd = 3 + preserve_fds.max(0);
        let raw = fcntl(file.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(min_fd))
            .map_err(|e| Error::io("dup exec-status fifo", e.into()))?;
        // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(ExecStatus { temp_path, fd })
    }

    /// The fd the init process writes to.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// After a successful create: move the FIFO into the state directory,
    /// where `start` finds it (and `delete` removes it with the directory).
    pub fn install(self, container_dir: &Path) -> Result<()> {
        std::fs::rename(&self.temp_path, container_dir.join(EXEC_STATUS_FILE))
            .map_err(|e| Error::io("install exec-status fifo", e))
    }

    /// After a failed create: whatever the init process reported, and remove
    /// the FIFO.
    pub fn abandon(self) -> Option<String> {
        let _ = std::fs::remove_file(&self.temp_path);
        let mut buf = [0u8; 4096];
        let n = nix::unistd::read(self.fd.as_raw_fd(), &mut buf).unwrap_or(0);
        let msg = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
        (!msg.is_empty()).then_some(msg)
    }
}

/// `start`'s side: opened before the start signal, read after it.
pub struct ExecStatusReader {
    file: File,
}

impl ExecStatusReader {
    /// Opens the container's FIFO for reading, if it has one.
    pub fn open(container_dir: &Path) -> Option<Self> {
        // O_NONBLOCK only so that open(2) does not wait for a writer; the
        // init process holds one, so reads then block until it execs.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(container_dir.join(EXEC_STATUS_FILE))
            .ok()?;
        let flags = fcntl(file.as_raw_fd(), FcntlArg::F_GETFL).ok()?;
        let mut flags = OFlag::from_bits_truncate(flags);
        flags.remove(OFlag::O_NONBLOCK);
        fcntl(file.as_raw_fd(), FcntlArg::F_SETFL(flags)).ok()?;
        Some(ExecStatusReader { file })
    }

    /// Waits until the init process has exec'd (end-of-file, `None`) or
    /// reported why it could not (`Some(message)`).
    pub fn wait(mut self) -> Option<String> {
        let mut buf = Vec::new();
        let _ = self.file.read_to_end(&mut buf);
        let msg = String::from_utf8_lossy(&buf).trim().to_owned();
        (!msg.is_empty()).then_some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_path_finds_and_reports_like_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        let mut perms = std::fs::metadata(&exe).expect("md").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&exe, perms).expect("chmod");
        let noexec = dir.path().join("data");
        std::fs::write(&noexec, "x").expect("write");

        let path_var = format!("/nonexistent:{}", dir.path().display());
        assert_eq!(look_path("tool", &path_var), Ok(exe.clone()));
        assert_eq!(look_path("foo", &path_var), Err(r#"exec: "foo": executable file not found in $PATH"#.to_owned()));
        assert_eq!(look_path("data", &path_var), Err(r#"exec: "data": executable file not found in $PATH"#.to_owned()));
        let abs = noexec.display().to_string();
        assert_eq!(look_path(&abs, &path_var), Err(format!("exec: \"{abs}\": permission denied")));
        let d = dir.path().display().to_string();
        assert_eq!(look_path(&d, &path_var), Err(format!("exec: \"{d}\": is a directory")));
        assert_eq!(
            look_path("/no/such", &path_var),
            Err(r#"exec: "/no/such": stat /no/such: no such file or directory"#.to_owned())
        );
    }

    #[test]
    fn exec_status_roundtrip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = ExecStatus::create(dir.path(), "c1", 0).expect("create");
        assert!(status.raw_fd() >= 3);
        let cdir = dir.path().join("c1");
        std::fs::create_dir(&cdir).expect("mkdir");
        // Another writer, standing in for the init process.
        let writer = fcntl(status.raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(10)).expect("dup");
        let writer = unsafe { OwnedFd::from_raw_fd(writer) };
        status.install(&cdir).expect("install");
        let reader = ExecStatusReader::open(&cdir).expect("open");
        nix::unistd::write(&writer, b"exec /x: exec format error").expect("write");
        drop(writer);
        assert_eq!(reader.wait().as_deref(), Some("exec /x: exec format error"));
    }

    #[test]
    fn exec_status_abandon_reads_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = ExecStatus::create(dir.path(), "c2", 3).expect("create");
        assert!(status.raw_fd() >= 6);
        nix::unistd::write(&status.fd, b"exec: \"foo\": boom").expect("write");
        assert_eq!(status.abandon().as_deref(), Some("exec: \"foo\": boom"));
        assert!(!dir.path().join(".c2.exec-status").exists());
    }

    #[test]
    fn refuses_to_exec_itself() {
        let ex = RuncExecutor::new(None);
        let me = std::fs::read_link("/proc/self/exe").expect("exe");
        assert!(ex.check_not_self("/proc/self/exe", Path::new("/proc/self/exe")).is_err());
        assert!(ex.check_not_self("x", &me).is_err());
        assert!(ex.check_not_self("sh", Path::new("/bin/sh")).is_ok());
    }

    #[test]
    fn errno_texts_are_lower_case() {
        assert_eq!(errno_text(nix::Error::ENOEXEC), "exec format error");
        assert_eq!(errno_text(nix::Error::ENOENT), "no such file or directory");
    }
}
