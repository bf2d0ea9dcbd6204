//! The `local` driver's mount options (`type`, `device`, `o`), validated at
//! create and applied with mount(2), as Docker's volume/local/local_unix.go.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::{Error, Result};

const VALID_OPTS: [&str; 4] = ["type", "o", "device", "size"];
/// Docker's `mandatoryOpts`: an option and the ones it needs.
const MANDATORY: [(&str, &[&str]); 3] = [("device", &["type"]), ("type", &["device"]), ("o", &["device", "type"])];

/// Checks the driver options of a `local` volume with Docker's rules and
/// texts (`invalid option: "foo"`, `missing required option: "device"`).
pub(crate) fn validate_opts(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !VALID_OPTS.contains(&k.as_str()) {
            return Err(Error::InvalidArgument(format!("invalid option: {k:?}")));
        }
    }
    for (opt, needs) in MANDATORY {
        if opts.contains_key(opt) {
            for n in needs {
                if !opts.contains_key(*n) {
                    return Err(Error::InvalidArgument(format!("missing required option: {n:?}")));
                }
            }
        }
    }
    if opts.contains_key("size") {
        // Docker only honours size with XFS project quotas on the data root.
        return Err(Error::InvalidArgument("quota size requested but no quota support".into()));
    }
    if let Some(o) = opts.get("o") {
        let (flags, _) = parse_options(o);
        if flags.contains(MsFlags::MS_BIND) && !opts.get("device").is_some_and(|d| d.starts_with('/')) {
            return Err(Error::InvalidArgument("bind mount device must be an absolute path".into()));
        }
    }
    Ok(())
}

/// Whether the options ask for a mount at all (a plain volume is just a
/// directory).
pub(crate) fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    opts.contains_key("type") || opts.contains_key("device")
}

/// Splits `o=` into mount flags and filesystem data as moby/sys/mount's
/// `ParseOptions` does: known flag words become flags, the rest is data.
pub(crate) fn parse_options(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "private" => (MsFlags::MS_PRIVATE, MsFlags::empty()),
            "rprivate" => (MsFlags::MS_PRIVATE | MsFlags::MS_REC, MsFlags::empty()),
            "shared" => (MsFlags::MS_SHARED, MsFlags::empty()),
            "rshared" => (MsFlags::MS_SHARED | MsFlags::MS_REC, MsFlags::empty()),
            "slave" => (MsFlags::MS_SLAVE, MsFlags::empty()),
            "rslave" => (MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::empty()),
            _ => {
                data.push(opt);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// Mounts the volume's device on `target` (its `_data`).
pub(crate) fn mount_volume(opts: &BTreeMap<String, String>, target: &Path) -> Result<()> {
    let device = opts.get("device").map(String::as_str).unwrap_or("");
    if device.is_empty() {
        return Err(Error::InvalidArgument("missing device in volume options".into()));
    }
    let fstype = opts.get("type").map(String::as_str).unwrap_or("");
    let (flags, data) = parse_options(opts.get("o").map(String::as_str).unwrap_or(""));
    let propagation = MsFlags::MS_PRIVATE | MsFlags::MS_SHARED | MsFlags::MS_SLAVE | MsFlags::MS_UNBINDABLE;
    let mut base = flags - propagation;
    if !base.contains(MsFlags::MS_BIND) {
        // MS_REC alone only qualifies the propagation change below.
        base.remove(MsFlags::MS_REC);
    }
    let fail = |e: nix::Error| {
        // Docker masks CIFS passwords in this message.
        let shown = mask_password(&data);
        Error::Internal(format!(
            "error while mounting volume '{}': failed to mount local volume: mount {}:{}, flags: {:#x}, data: {}: {}",
            target.display(),
            device,
            target.display(),
            base.bits(),
            shown,
            e.desc().to_lowercase()
        ))
    };
    let data_opt = (!data.is_empty()).then_some(data.as_str());
    let fstype_opt = (!fstype.is_empty()).then_some(fstype);
    mount(Some(device), target, fstype_opt, base, data_opt).map_err(fail)?;
    // A bind mount ignores most flags on the first call: remount to apply
    // ro/nosuid/… (moby/sys/mount does the same).
    let extra = base & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if base.contains(MsFlags::MS_BIND) && !extra.is_empty() {
        if let Err(e) =
            mount(None::<&str>, target, None::<&str>, MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra, None::<&str>)
        {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(fail(e));
        }
    }
    let prop = flags & (propagation | MsFlags::MS_REC);
    if !(prop & propagation).is_empty() {
        if let Err(e) = mount(None::<&str>, target, None::<&str>, prop, None::<&str>) {
            let _ = umount2(target, MntFlags::MNT_DETACH);
            return Err(fail(e));
        }
    }
    Ok(())
}

fn mask_password(data: &str) -> String {
    data.split(',')
        .map(|kv| if kv.starts_with("password=") { "password=********" } else { kv })
        .collect::<Vec<_>>()
        .join(",")
}

/// Lazily unmounts `target` (MNT_DETACH, as Docker's local driver): a
/// process still holding a file keeps the filesystem alive, we do not fail.
pub(crate) fn unmount_volume(target: &Path) -> Result<()> {
    umount2(target, MntFlags::MNT_DETACH).map_err(|e| {
        Error::Internal(format!("error while unmounting volume path '{}': {}", target.display(), e.desc()))
    })
}

/// Whether `path` is a mount point, from /proc/self/mountinfo (a bind mount
/// of the same filesystem has the same st_dev, so device comparison is not
/// enough).
pub(crate) fn is_mountpoint(path: &Path) -> bool {
    let Ok(canon) = fs::canonicalize(path) else { return false };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = canon.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4).map(unescape_mountinfo).as_deref() == Some(&*want))
}

/// Undoes mountinfo's octal escapes (`\040` for space, …).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_validate_like_docker() {
        assert!(validate_opts(&m(&[])).is_ok());
        assert!(validate_opts(&m(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=100m")])).is_ok());
        assert!(validate_opts(&m(&[("type", "none"), ("device", "/srv"), ("o", "bind")])).is_ok());
        assert_eq!(validate_opts(&m(&[("foo", "x")])).unwrap_err().to_string(), r#"invalid option: "foo""#);
        assert_eq!(
            validate_opts(&m(&[("type", "tmpfs")])).unwrap_err().to_string(),
            r#"missing required option: "device""#
        );
        assert!(validate_opts(&m(&[("type", "none"), ("device", "rel"), ("o", "bind")])).is_err());
        assert!(validate_opts(&m(&[("size", "1g")])).is_err());
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d) = parse_options("size=100m,ro,uid=1000,nosuid,rw");
        assert_eq!(f, MsFlags::MS_NOSUID);
        assert_eq!(d, "size=100m,uid=1000");
        let (f, d) = parse_options("rbind");
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(d, "");
        assert_eq!(mask_password("user=a,password=secret"), "user=a,password=********");
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert!(is_mountpoint(Path::new("/")));
    }
}
