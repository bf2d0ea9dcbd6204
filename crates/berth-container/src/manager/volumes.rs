//! The manager's side of volumes and mounts: creating a container's volumes
//! at create, mounting them (with copy-up) at start and releasing them at
//! exit, and who references which volume (`volume rm` / `prune` / `ls
//! -f dangling`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use berth_volume::VolumeStore;
use serde_json::{Map, Value};

use super::Manager;
use crate::model::Container;
use crate::mounts::{self, MountPoint, Planned};
use crate::{Error, Result};

impl From<berth_volume::Error> for Error {
    fn from(e: berth_volume::Error) -> Self {
        match e.kind() {
            berth_error::ErrorKind::NotFound => Error::NotFound(e.to_string()),
            berth_error::ErrorKind::Conflict => Error::Conflict(e.to_string()),
            berth_error::ErrorKind::InvalidArgument => Error::InvalidArgument(e.to_string()),
            _ => Error::Internal(e.to_string()),
        }
    }
}

/// Volumes made by one create, removed again if the create fails.
pub(super) struct Created {
    pub volumes: Vec<String>,
}

impl Manager {
    pub fn volumes(&self) -> &Arc<VolumeStore> {
        &self.volumes
    }

    /// Ids of the containers whose mount points use volume `name`, running
    /// or not (Docker keeps a volume referenced while such a container
    /// exists).
    pub fn containers_using_volume(&self, name: &str) -> Vec<String> {
        self.store
            .all()
            .into_iter()
            .filter(|c| c.mount_points.iter().any(|m| m.kind == "volume" && m.name == name))
            .map(|c| c.id)
            .collect()
    }

    fn emit_volume(&self, action: &str, name: &str, attrs: &[(&str, String)]) {
        let mut a: Vec<(&str, &str)> = vec![("driver", "local")];
        a.extend(attrs.iter().map(|(k, v)| (*k, v.as_str())));
        self.events.emit("volume", action, name, &a);
    }

    /// Volume events for `volume create` through the API.
    pub fn volume_created(&self, name: &str) {
        self.emit_volume("create", name, &[]);
    }

    pub fn volume_destroyed(&self, name: &str) {
        self.emit_volume("destroy", name, &[]);
    }

    /// Plans and makes a new container's mount points (blocking). On error
    /// whatever this call created is removed again.
    pub(super) fn register_mounts(
        &self,
        cfg: &Map<String, Value>,
        hc: &Map<String, Value>,
    ) -> Result<(Vec<MountPoint>, Created)> {
        let from = |name: &str| -> Result<Vec<MountPoint>> {
            // A 404 from create makes the docker CLI try to pull the image;
            // the missing container is a bad parameter of this request.
            let c = self.store.resolve(name).map_err(|e| match e {
                Error::NotFound(m) => Error::InvalidArgument(m),
                e => e,
            })?;
            Ok(c.mount_points.clone())
        };
        let planned = mounts::plan(cfg, hc, &from)?;
        let mut created = Created { volumes: Vec::new() };
        let mut out = Vec::with_capacity(planned.len());
        for p in planned {
            match self.realize(p, &mut created) {
                Ok(mp) => out.push(mp),
                Err(e) => {
                    self.undo_created(&created);
                    return Err(e);
                }
            }
        }
        Ok((out, created))
    }

    fn realize(&self, p: Planned, created: &mut Created) -> Result<MountPoint> {
        let Planned { mut mp, volume, create_source } = p;
        if create_source && std::fs::symlink_metadata(&mp.source).is_err() {
            // `-v /missing:/p` creates the host directory (Docker's
            // long-standing behaviour; --mount refuses instead).
            std::fs::create_dir_all(&mp.source).map_err(|e| {
                Error::InvalidArgument(format!("error while creating mount source path '{}': {e}", mp.source))
            })?;
        }
        if let Some(req) = volume {
            let existed = req.name.as_deref().is_some_and(|n| self.volumes.get(n).is_ok());
            let v = self.volumes.create(req.name.as_deref(), &req.driver, &req.opts, &req.labels)?;
            if !existed {
                created.volumes.push(v.name.clone());
                self.emit_volume("create", &v.name, &[]);
            }
            mp.name = v.name.clone();
            mp.source = v.mountpoint.clone();
            mp.driver = v.driver.clone();
            mp.anonymous = mp.anonymous || v.is_anonymous();
        }
        Ok(mp)
    }

    pub(super) fn undo_created(&self, created: &Created) {
        let none = |_: &str| Vec::new();
        for v in &created.volumes {
            if self.volumes.remove(v, true, &none).is_ok() {
                self.emit_volume("destroy", v, &[]);
            }
        }
    }

    /// At start (blocking, rootfs mounted): mounts the container's volumes,
    /// copies the image's content into empty ones, creates the mount points
    /// inside the rootfs and returns the OCI mounts. On error every volume
    /// mounted here is released.
    pub(super) fn setup_mounts(&self, c: &Container, rootfs: &Path) -> Result<Vec<Value>> {
        let mut dests = Vec::with_capacity(c.mount_points.len());
        let mut mps = c.mount_points.clone();
        let mut mounted: Vec<String> = Vec::new();
        let res = (|| -> Result<()> {
            for mp in mps.iter_mut() {
                if mp.kind == "volume" {
                    let data = self.volumes.mount(&mp.name, &c.id)?;
                    mounted.push(mp.name.clone());
                    mp.source = data.display().to_string();
                    if mp.copy_data {
                        // Docker's copy-up: an empty volume gets the image's
                        // files at the mount point (resolved in the rootfs).
                        if let Ok(src) = berth_fsops::resolve_in_root(rootfs, &mp.destination, true) {
                            berth_volume::copy_up(&src, &data)?;
                        }
                    }
                }
                let is_dir = match mp.kind.as_str() {
                    "tmpfs" => true,
                    _ => std::fs::metadata(&mp.source).map(|m| m.is_dir()).unwrap_or(true),
                };
                if mp.kind == "bind" && std::fs::symlink_metadata(&mp.source).is_err() {
                    return Err(Error::InvalidArgument(format!(
                        "error while creating mount source path '{}': no such file or directory",
                        mp.source
                    )));
                }
                dests.push(mounts::prepare_destination(rootfs, &mp.destination, is_dir)?);
            }
            Ok(())
        })();
        if let Err(e) = res {
            for name in &mounted {
                let _ = self.volumes.unmount(name, &c.id);
            }
            return Err(e);
        }
        for mp in mps.iter().filter(|m| m.kind == "volume") {
            self.emit_volume(
                "mount",
                &mp.name,
                &[
                    ("container", c.id.clone()),
                    ("destination", mp.destination.clone()),
                    ("propagation", mp.propagation.clone()),
                    ("read/write", mp.rw.to_string()),
                ],
            );
        }
        Ok(mounts::oci_mounts(&mps, &dests))
    }

    /// Drops the container's hold on its volumes (after it stopped, or a
    /// failed start). Harmless when nothing is held.
    pub(super) fn release_mounts(&self, c: &Container) {
        for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
            let held = self.volumes.mount_users(&mp.name).map(|u| u.contains(&c.id)).unwrap_or(false);
            if let Err(e) = self.volumes.unmount(&mp.name, &c.id) {
                tracing::warn!("unmounting volume {} of {}: {e}", mp.name, c.short_id());
            }
            if held {
                self.emit_volume("unmount", &mp.name, &[("container", c.id.clone())]);
            }
        }
    }

    /// `rm -v` / `--rm`: removes the container's anonymous volumes that no
    /// other container references; named volumes always stay (Docker 23+).
    pub(super) fn remove_anonymous_volumes(&self, c: &Container) {
        for mp in c.mount_points.iter().filter(|m| m.kind == "volume" && m.anonymous) {
            let in_use = |n: &str| self.containers_using_volume(n);
            match self.volumes.remove(&mp.name, false, &in_use) {
                Ok(()) => self.emit_volume("destroy", &mp.name, &[]),
                Err(e) => tracing::info!("keeping volume {}: {e}", mp.name),
            }
        }
    }

    /// Where each mount point's data lives on the host, keyed by the
    /// container destination (for `cp` and `system df`).
    pub fn mount_sources(&self, c: &Container) -> BTreeMap<String, String> {
        c.mount_points
            .iter()
            .filter(|m| m.kind != "tmpfs")
            .map(|m| {
                let src = if m.kind == "volume" {
                    self.volumes.data_path(&m.name).display().to_string()
                } else {
                    m.source.clone()
                };
                (m.destination.clone(), src)
            })
            .collect()
    }
}
