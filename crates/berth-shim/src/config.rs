//! Command-line flags of the shim binary (documented in the crate docs).

use crate::error::{Error, Result};
use crate::log::{DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE};
use crate::protocol::valid_id;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Parsed shim flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub id: String,
    pub bundle: PathBuf,
    pub state_dir: PathBuf,
    pub runtime: PathBuf,
    pub runtime_root: Option<PathBuf>,
    pub runtime_args: Vec<OsString>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    pub log_path: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_max_files: u32,
    pub no_start: bool,
    pub no_delete: bool,
    pub ready_fd: Option<i32>,
    pub foreground: bool,
}

pub(crate) const USAGE: &str = "\
usage: berth-shim --id <id> --bundle <dir> --state-dir <dir> --runtime <path>
                  [--runtime-root <dir>] [--runtime-arg <arg>]...
                  [--tty] [--stdin] [--stdin-once]
                  [--log-path <file>] [--log-max-size <bytes>] [--log-max-files <n>]
                  [--no-start] [--no-delete] [--ready-fd <fd>] [--foreground]";

/// What the command line asks for.
pub(crate) enum Parsed {
    Run(Box<Config>),
    Help,
    Version,
}

pub(crate) fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed> {
    let mut id = None;
    let mut bundle = None;
    let mut state_dir = None;
    let mut runtime = None;
    let mut cfg = Config {
        id: String::new(),
        bundle: PathBuf::new(),
        state_dir: PathBuf::new(),
        runtime: PathBuf::new(),
        runtime_root: None,
        runtime_args: Vec::new(),
        tty: false,
        stdin: false,
        stdin_once: false,
        log_path: None,
        log_max_size: DEFAULT_MAX_SIZE,
        log_max_files: DEFAULT_MAX_FILES,
        no_start: false,
        no_delete: false,
        ready_fd: None,
        foreground: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let bytes = arg.as_bytes();
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline): (&[u8], Option<OsString>) = match bytes.iter().position(|&b| b == b'=') {
            Some(eq) if bytes.starts_with(b"--") => {
                (&bytes[..eq], Some(OsStr::from_bytes(&bytes[eq + 1..]).to_os_string()))
            }
            _ => (bytes, None),
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let value = |it: &mut dyn Iterator<Item = OsString>| -> Result<OsString> {
            inline.clone().or_else(|| it.next()).ok_or_else(|| Error::InvalidArgument(format!("{name} needs a value")))
        };
        match name.as_str() {
            "--id" => id = Some(value(&mut it)?),
            "--bundle" => bundle = Some(PathBuf::from(value(&mut it)?)),
            "--state-dir" => state_dir = Some(PathBuf::from(value(&mut it)?)),
            "--runtime" => runtime = Some(PathBuf::from(value(&mut it)?)),
            "--runtime-root" => cfg.runtime_root = Some(PathBuf::from(value(&mut it)?)),
            "--runtime-arg" => cfg.runtime_args.push(value(&mut it)?),
            "--log-path" => cfg.log_path = Some(PathBuf::from(value(&mut it)?)),
            "--log-max-size" => cfg.log_max_size = number(&name, &value(&mut it)?)?,
            "--log-max-files" => cfg.log_max_files = number(&name, &value(&mut it)?)?,
            "--ready-fd" => cfg.ready_fd = Some(number(&name, &value(&mut it)?)?),
            "--tty" | "--stdin" | "--stdin-once" | "--no-start" | "--no-delete" | "--foreground"
                if inline.is_some() =>
            {
                return Err(Error::InvalidArgument(format!("{name} takes no value")));
            }
            "--tty" => cfg.tty = true,
            "--stdin" => cfg.stdin = true,
            "--stdin-once" => cfg.stdin_once = true,
            "--no-start" => cfg.no_start = true,
            "--no-delete" => cfg.no_delete = true,
            "--foreground" => cfg.foreground = true,
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            other => return Err(Error::InvalidArgument(format!("unknown flag {other:?}"))),
        }
    }
    let need = |v: Option<PathBuf>, flag: &str| v.ok_or_else(|| Error::InvalidArgument(format!("{flag} is required")));
    let id = id.ok_or_else(|| Error::InvalidArgument("--id is required".into()))?;
    cfg.id = id.into_string().map_err(|_| Error::InvalidArgument("--id must be UTF-8".into()))?;
    if !valid_id(&cfg.id) {
        return Err(Error::InvalidArgument(format!("invalid container id {:?}", cfg.id)));
    }
    cfg.bundle = need(bundle, "--bundle")?;
    cfg.state_dir = need(state_dir, "--state-dir")?;
    cfg.runtime = need(runtime, "--runtime")?;
    if cfg.stdin_once && !cfg.stdin {
        return Err(Error::InvalidArgument("--stdin-once needs --stdin".into()));
    }
    if let Some(fd) = cfg.ready_fd {
        if fd < 3 {
            return Err(Error::InvalidArgument("--ready-fd must be 3 or more".into()));
        }
    }
    Ok(Parsed::Run(Box::new(cfg)))
}

fn number<T: std::str::FromStr>(flag: &str, v: &OsStr) -> Result<T> {
    v.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::InvalidArgument(format!("{flag}: not a number: {}", v.to_string_lossy())))
}

/// Makes `p` absolute against the current directory: the shim changes to `/`
/// once detached so it never pins a mount.
pub(crate) fn absolute(p: &std::path::Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io(format!("resolve {}", p.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn parses_flags() {
        let Parsed::Run(c) = parse(args(
            "--id c1 --bundle /b --state-dir=/s --runtime /usr/bin/runc --tty --stdin --stdin-once \
             --log-path /l --log-max-size 1024 --log-max-files=2 --runtime-arg --systemd-cgroup --ready-fd 3",
        ))
        .unwrap() else {
            panic!("expected a run config")
        };
        assert_eq!(c.id, "c1");
        assert_eq!(c.state_dir, PathBuf::from("/s"));
        assert!(c.tty && c.stdin && c.stdin_once && !c.no_start);
        assert_eq!((c.log_max_size, c.log_max_files, c.ready_fd), (1024, 2, Some(3)));
        assert_eq!(c.runtime_args, vec![OsString::from("--systemd-cgroup")]);
    }

    #[test]
    fn rejects_bad_flags() {
        for bad in [
            "--bundle /b --state-dir /s --runtime r",
            "--id c --bundle /b --state-dir /s",
            "--id ../x --bundle /b --state-dir /s --runtime r",
            "--id c --bundle /b --state-dir /s --runtime r --stdin-once",
            "--id c --bundle /b --state-dir /s --runtime r --log-max-size lots",
            "--id c --bundle /b --state-dir /s --runtime r --frobnicate",
            "--id c --bundle /b --state-dir /s --runtime r --tty=yes",
            "--id c --bundle /b --state-dir /s --runtime r --ready-fd 1",
            "--id",
        ] {
            assert!(parse(args(bad)).is_err(), "{bad}");
        }
        assert!(matches!(parse(args("--help")), Ok(Parsed::Help)));
    }
}
