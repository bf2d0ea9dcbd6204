//! Filesystem operations on a container: `cp` (archive stat/get/put),
//! `diff`, `export` and `commit`.
//!
//! Like Docker's `daemon.containerArchivePath`, these work on the
//! container's root as the daemon sees it: the writable snapshot mounted at
//! `rootfs/` (mounted for the duration when the container is not running)
//! with its volumes and binds mounted on top at their destinations, so a
//! path inside a volume reaches the volume. Paths are resolved inside that
//! root with `berth_fsops` (no symlink leads out: CVE-2018-15664,
//! CVE-2019-14271). The container's lock is held throughout, so a start,
//! exit or removal waits for the operation.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::mount::{mount, MsFlags};
use serde_json::{Map, Value};

use super::Manager;
use crate::model::{Container, Status};
use crate::mounts::prepare_destination;
use crate::{Error, Result};

impl From<berth_fsops::Error> for Error {
    fn from(e: berth_fsops::Error) -> Self {
        match e.kind() {
            berth_error::ErrorKind::NotFound => Error::NotFound(e.to_string()),
            berth_error::ErrorKind::Conflict => Error::Conflict(e.to_string()),
            berth_error::ErrorKind::InvalidArgument => Error::InvalidArgument(e.to_string()),
            _ => Error::Internal(e.to_string()),
        }
    }
}

/// A container's root as the daemon sees it, with what this view mounted;
/// everything is unmounted (innermost first) when it is dropped.
pub struct FsView {
    pub container: Container,
    root: PathBuf,
    binds: Vec<PathBuf>,
    unmount_root: bool,
    /// The runtime command that thaws the container again, when this view
    /// froze it.
    thaw: Option<std::process::Command>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl FsView {
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for FsView {
    fn drop(&mut self) {
        for b in self.binds.iter().rev() {
            if let Err(e) = berth_snapshot::unmount(b) {
                tracing::warn!("unmounting {}: {e}", b.display());
            }
        }
        if self.unmount_root {
            if let Err(e) = berth_snapshot::unmount(&self.root) {
                tracing::warn!("unmounting {}: {e}", self.root.display());
            }
        }
        if let Some(mut cmd) = self.thaw.take() {
            match cmd.output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    tracing::warn!("resuming {}: {}", self.container.id, String::from_utf8_lossy(&o.stderr).trim())
                }
                Err(e) => tracing::warn!("resuming {}: {e}", self.container.id),
            }
        }
    }
}

/// Docker's `containerFileNotFound`.
fn not_found(path: &str, name: &str) -> Error {
    Error::NotFound(format!("Could not find the file {path} in container {name}"))
}

fn map_not_found(e: berth_fsops::Error, path: &str, name: &str) -> Error {
    if e.kind() == berth_error::ErrorKind::NotFound {
        not_found(path, name)
    } else {
        e.into()
    }
}

impl Manager {
    /// Mounts the container's root (if it is not running) and, with
    /// `volumes`, its volumes and binds, holding the container's lock.
    pub async fn fs_view(self: &Arc<Self>, name: &str, volumes: bool) -> Result<FsView> {
        let c = self.store.resolve(name)?;
        let guard = self.lock_for(&c.id).lock_owned().await;
        let c = self.store.resolve(&c.id)?;
        if matches!(c.state.status, Status::Removing | Status::Dead) {
            return Err(Error::Conflict(format!("container {} is marked for removal", c.id)));
        }
        // A running container is frozen while the daemon works in its root:
        // a process inside cannot swap a path component for a symlink
        // between our resolution and our use of it (CVE-2018-15664).
        let thaw = if c.state.status == Status::Running {
            match self.runtime_cmd(&c, "pause").await {
                Ok(()) => {
                    let runtime =
                        self.cfg.runtimes.get(&c.runtime).cloned().unwrap_or_else(|| PathBuf::from(&c.runtime));
                    let mut cmd = std::process::Command::new(runtime);
                    cmd.arg("--root").arg(self.runtime_root(&c.runtime)).arg("resume").arg(&c.id);
                    Some(cmd)
                }
                Err(e) => {
                    tracing::warn!("could not freeze {} for a filesystem operation: {e}", c.short_id());
                    None
                }
            }
        } else {
            None
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.fs_view_blocking(c, volumes, guard, thaw))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    fn fs_view_blocking(
        &self,
        c: Container,
        volumes: bool,
        guard: tokio::sync::OwnedMutexGuard<()>,
        thaw: Option<std::process::Command>,
    ) -> Result<FsView> {
        let root = self.container_dir(&c.id).join("rootfs");
        std::fs::create_dir_all(&root).map_err(Error::io("creating rootfs dir"))?;
        let mut view =
            FsView { container: c, root: root.clone(), binds: Vec::new(), unmount_root: false, thaw, _guard: guard };
        if !super::is_mountpoint(&root) {
            let mounts = self.images.snapshots().mounts(&view.container.id)?;
            berth_snapshot::mount_all(&mounts, &root)?;
            view.unmount_root = true;
        }
        // Our binds below must not propagate into the running container's
        // mount namespace (nor anywhere else).
        mount(None::<&str>, &root, None::<&str>, MsFlags::MS_PRIVATE, None::<&str>)
            .map_err(|e| Error::Internal(format!("making {} private: {e}", root.display())))?;
        if !volumes {
            return Ok(view);
        }
        let mut mps: Vec<_> = view.container.mount_points.iter().filter(|m| m.kind != "tmpfs").cloned().collect();
        mps.sort_by_key(|m| m.destination.split('/').filter(|s| !s.is_empty()).count());
        for mp in mps {
            let src = if mp.kind == "volume" { self.volumes.data_path(&mp.name) } else { PathBuf::from(&mp.source) };
            let Ok(meta) = std::fs::metadata(&src) else { continue };
            let dest = prepare_destination(&root, &mp.destination, meta.is_dir())?;
            let target = root.join(dest.trim_start_matches('/'));
            mount(Some(&src), &target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| Error::Internal(format!("mounting {} for {}: {e}", src.display(), mp.destination)))?;
            view.binds.push(target);
        }
        Ok(view)
    }

    /// `HEAD /containers/{id}/archive`: the stat of a container path.
    pub fn stat_path(&self, view: &FsView, name: &str, path: &str) -> Result<berth_fsops::PathStat> {
        berth_fsops::stat(view.root(), path).map_err(|e| map_not_found(e, path, name))
    }

    /// `GET /containers/{id}/archive`: writes the tar of `path`.
    pub fn archive_path(&self, view: &FsView, name: &str, path: &str, out: impl Write) -> Result<()> {
        berth_fsops::archive_path(view.root(), path, false, out).map_err(|e| map_not_found(e, path, name))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar into directory
    /// `path`, refusing read-only targets with Docker's texts.
    pub fn extract_archive(
        &self,
        view: &FsView,
        name: &str,
        path: &str,
        input: impl Read,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        let c = &view.container;
        let abs = format!("/{}", path.trim_start_matches('/'));
        let host = berth_fsops::resolve_in_root(view.root(), &abs, true).map_err(|e| map_not_found(e, path, name))?;
        let meta = std::fs::symlink_metadata(&host).map_err(|_| not_found(path, name))?;
        if !meta.is_dir() {
            return Err(Error::InvalidArgument("extraction point is not a directory".into()));
        }
        let in_ctr = host.strip_prefix(view.root()).map(|p| format!("/{}", p.display())).unwrap_or(abs.clone());
        // The innermost mount point holding the path decides (moby's
        // `isPathInVolume` / `ErrVolumeReadonly` / `ErrRootFSReadOnly`).
        let holder = c
            .mount_points
            .iter()
            .filter(|m| m.kind != "tmpfs")
            .filter(|m| in_ctr == m.destination || in_ctr.starts_with(&format!("{}/", m.destination)))
            .max_by_key(|m| m.destination.len());
        match holder {
            Some(m) if !m.rw => return Err(Error::InvalidArgument("mounted volume is marked read-only".into())),
            None if c.host_config.get("ReadonlyRootfs").and_then(Value::as_bool).unwrap_or(false) => {
                return Err(Error::InvalidArgument("container rootfs is marked read-only".into()))
            }
            _ => {}
        }
        // Docker chowns to the container's root by default; `cp -a` keeps
        // the archive's owners, or gives everything to the container's
        // configured user.
        let chown = if copy_uid_gid {
            let user = c.config.get("User").and_then(Value::as_str).unwrap_or("");
            if user.is_empty() {
                None
            } else {
                let u = crate::spec::resolve_user(view.root(), user)?;
                Some((u.uid, u.gid))
            }
        } else {
            Some((0, 0))
        };
        let opts = berth_fsops::ExtractOptions { no_overwrite_dir_non_dir, chown };
        berth_fsops::extract_to_with(view.root(), &abs, input, &opts).map_err(|e| map_not_found(e, path, name))?;
        Ok(())
    }

    /// `GET /containers/{id}/changes`: the writable layer against the
    /// image's layers.
    pub fn changes(&self, c: &Container) -> Result<Vec<berth_fsops::Change>> {
        let mounts = self.images.snapshots().mounts(&c.id)?;
        let mut upper: Option<PathBuf> = None;
        let mut lowers: Vec<PathBuf> = Vec::new();
        for m in &mounts {
            if m.kind == "bind" {
                upper = Some(PathBuf::from(&m.source));
                continue;
            }
            for o in &m.options {
                if let Some(u) = o.strip_prefix("upperdir=") {
                    upper = Some(PathBuf::from(u));
                } else if let Some(l) = o.strip_prefix("lowerdir=") {
                    lowers.extend(l.split(':').map(PathBuf::from));
                }
            }
        }
        let upper = upper.ok_or_else(|| Error::Internal(format!("container {} has no writable layer", c.id)))?;
        let lower_refs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        let mut out = berth_fsops::changes(&upper, &lower_refs)?;
        // The files Docker bind-mounts over the image are not changes of
        // the container (moby hides the mount points it created).
        let hidden: Vec<String> = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev", "/proc", "/sys"]
            .iter()
            .map(|s| s.to_string())
            .chain(c.mount_points.iter().map(|m| m.destination.clone()))
            .collect();
        out.retain(|ch| {
            !(hidden.contains(&ch.path) && ch.kind == berth_fsops::ChangeKind::Added
                || hidden
                    .iter()
                    .any(|h| ch.path.starts_with(&format!("{h}/")) && (h == "/dev" || h == "/proc" || h == "/sys")))
        });
        Ok(out)
    }

    /// `GET /containers/{id}/export`: the container's root filesystem as a
    /// tar (volumes are not part of it, as in Docker).
    pub fn export(&self, view: &FsView, out: impl Write) -> Result<()> {
        Ok(berth_fsops::export(view.root(), out)?)
    }

    /// `POST /commit`: a new image from the container's writable layer
    /// (volume contents are not part of it). `pause` freezes a running
    /// container for the duration, as Docker does by default.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit(
        self: &Arc<Self>,
        name: &str,
        config: Map<String, Value>,
        changes: &[String],
        comment: &str,
        author: &str,
        tags: Vec<berth_image::Reference>,
        pause: bool,
    ) -> Result<String> {
        let c = self.store.resolve(name)?;
        let paused_here = pause && c.state.status == Status::Running;
        if paused_here {
            self.pause(&c.id).await?;
        }
        let res = self.commit_inner(&c, config, changes, comment, author, tags).await;
        if paused_here {
            if let Err(e) = self.unpause(&c.id).await {
                tracing::warn!("unpausing {} after commit: {e}", c.short_id());
            }
        }
        let id = res?;
        self.emit(&c, "commit", &[("comment", comment.to_string()), ("imageID", id.clone())]);
        Ok(id)
    }

    async fn commit_inner(
        self: &Arc<Self>,
        c: &Container,
        config: Map<String, Value>,
        changes: &[String],
        comment: &str,
        author: &str,
        tags: Vec<berth_image::Reference>,
    ) -> Result<String> {
        // Docker's commit config: the container's config, with what the
        // client sent merged over it, then the `--change` instructions.
        let mut cfg = c.config.clone();
        for (k, v) in crate::config::canonicalize(&config, crate::config::CONFIG_FIELDS) {
            if v.is_null() {
                continue;
            }
            let empty = match &v {
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if !empty {
                cfg.insert(k, v);
            }
        }
        berth_image::changes::apply(&mut cfg, changes)?;
        // The hostname and image name are the container's, not the image's.
        cfg.insert("Image".into(), Value::String(c.image.clone()));
        let images = self.images.clone();
        let opts = berth_image::commit::CommitOptions {
            parent: Some(c.image.clone()),
            config: cfg,
            created_by: {
                let mut parts = vec![c.path.clone()];
                parts.extend(c.args.iter().cloned());
                parts.join(" ")
            },
            comment: comment.to_string(),
            author: author.to_string(),
            container: c.id.clone(),
            tags,
            created: None,
        };
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || -> Result<String> {
            let snaps = images.snapshots();
            let mut write =
                |w: &mut dyn Write| -> berth_image::Result<()> { snaps.diff(&id, w).map_err(berth_image::Error::from) };
            Ok(berth_image::commit::commit(&images, berth_image::commit::LayerSource::Tar(&mut write), &opts)?)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }
}
