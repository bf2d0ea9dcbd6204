//! `docker exec`: exec instances run by the container's shim.

use std::path::Path;
use std::sync::Arc;

use berth_shim::ShimClient;
use serde_json::{json, Value};

use super::io::pump_then;
use super::{random_id, ExecConfig, ExecInfo, Io, Manager};
use crate::model::{Container, Status};
use crate::{spec, Error, Result};

impl Manager {
    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, name: &str, cfg: ExecConfig) -> Result<String> {
        let c = self.store.resolve(name)?;
        if c.state.status == Status::Paused {
            return Err(Error::Conflict(format!("Container {} is paused, unpause the container before exec", c.id)));
        }
        if !c.state.is_running() || c.state.status == Status::Restarting {
            return Err(Error::Conflict(format!("container {} is not running", c.id)));
        }
        if cfg.cmd.is_empty() {
            return Err(Error::InvalidArgument("No exec command specified".into()));
        }
        let id = random_id();
        self.execs.lock().unwrap_or_else(|e| e.into_inner()).insert(
            id.clone(),
            ExecInfo {
                id: id.clone(),
                container_id: c.id.clone(),
                config: cfg,
                running: false,
                exit_code: None,
                pid: 0,
                started: false,
            },
        );
        self.emit(&c, &format!("exec_create: {}", ""), &[]);
        Ok(id)
    }

    pub fn exec_inspect(&self, id: &str) -> Result<ExecInfo> {
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("No such exec instance: {id}")))
    }

    /// `POST /exec/{id}/start`. With `io`, streams until the process exits;
    /// without (detached), returns once it runs.
    pub async fn exec_start(self: &Arc<Self>, exec_id: &str, tty: Option<bool>, io: Option<Io>) -> Result<()> {
        let mut info = self.exec_inspect(exec_id)?;
        if info.started {
            return Err(Error::Conflict(format!("Error: Exec command {exec_id} has already run")));
        }
        let c = self.store.resolve(&info.container_id)?;
        if c.state.status != Status::Running {
            return Err(Error::Conflict(format!("container {} is not running", c.id)));
        }
        if let Some(t) = tty {
            info.config.tty = t;
        }
        let process = self.exec_process(&c, &info.config)?;
        let req = berth_shim::protocol::ExecRequest {
            id: exec_id.to_string(),
            process: process.to_string(),
            tty: info.config.tty,
            stdin: info.config.attach_stdin,
            detach: io.is_none(),
        };
        {
            let mut ex = self.execs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = ex.get_mut(exec_id) {
                e.started = true;
                e.running = true;
                e.config.tty = info.config.tty;
            }
        }
        let sd = self.state_dir(&c.id);
        let detached = io.is_none();
        let res = tokio::task::spawn_blocking(move || -> Result<(i32, Option<std::os::unix::net::UnixStream>)> {
            let mut cl = ShimClient::connect(&sd)?;
            if detached {
                Ok((cl.exec_detached(req)?, None))
            } else {
                let s = cl.exec(req)?;
                Ok((s.pid, Some(s.stream)))
            }
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let (pid, stream) = match res {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                let (code, _) = berth_shim::protocol::classify_start_error(&msg);
                let mut ex = self.execs.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(e) = ex.get_mut(exec_id) {
                    e.running = false;
                    e.exit_code = Some(code);
                }
                return Err(Error::InvalidArgument(format!("OCI runtime exec failed: {msg}")));
            }
        };
        if let Some(e) = self.execs.lock().unwrap_or_else(|e| e.into_inner()).get_mut(exec_id) {
            e.pid = pid;
        }
        self.emit(&c, &format!("exec_start: {}", info.config.cmd.join(" ")), &[("execID", exec_id.to_string())]);
        let me = self.clone();
        let eid = exec_id.to_string();
        let sd = self.state_dir(&c.id);
        let finish = async move {
            let st = tokio::task::spawn_blocking(move || {
                ShimClient::connect(&sd).and_then(|mut cl| cl.exec_wait(&eid).map(|s| (eid, s)))
            })
            .await;
            if let Ok(Ok((eid, s))) = st {
                if let Some(e) = me.execs.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&eid) {
                    e.running = false;
                    e.exit_code = s.exit_code;
                }
                me.emit(
                    &c,
                    "exec_die",
                    &[("execID", eid.clone()), ("exitCode", s.exit_code.unwrap_or(-1).to_string())],
                );
            }
        };
        match (io, stream) {
            (Some(io), Some(stream)) => {
                // The exit code is recorded before the client's stream ends:
                // the docker CLI inspects the exec as soon as it sees EOF.
                pump_then(io, stream, finish).await;
            }
            _ => {
                tokio::spawn(finish);
            }
        }
        Ok(())
    }

    fn exec_process(&self, c: &Container, e: &ExecConfig) -> Result<Value> {
        let rootfs = self.container_dir(&c.id).join("rootfs");
        let user_spec = if e.user.is_empty() {
            c.config.get("User").and_then(Value::as_str).unwrap_or("").to_string()
        } else {
            e.user.clone()
        };
        let user = spec::resolve_user(&rootfs, &user_spec)?;
        let mut env =
            spec::process_env(&c.config, c.config.get("Hostname").and_then(Value::as_str).unwrap_or(""), &user.home);
        for kv in &e.env {
            let k = kv.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(k));
            env.push(kv.clone());
        }
        if e.tty && !env.iter().any(|x| x.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        let cwd = if !e.working_dir.is_empty() {
            e.working_dir.clone()
        } else {
            c.config.get("WorkingDir").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("/").to_string()
        };
        let privileged = e.privileged || c.host_config.get("Privileged").and_then(Value::as_bool).unwrap_or(false);
        let mut hc = c.host_config.clone();
        if privileged {
            hc.insert("Privileged".into(), Value::Bool(true));
        }
        let spec_caps = spec::build(&spec::SpecInputs {
            id: &c.id,
            rootfs: &rootfs,
            config: &c.config,
            host_config: &hc,
            path: &e.cmd[0],
            args: &e.cmd[1..],
            hostname: "",
            hosts_path: Path::new("/"),
            hostname_path: Path::new("/"),
            resolv_path: Path::new("/"),
            netns: None,
            cgroup_parent: "",
            init_path: None,
            user_mounts: &[],
        })?;
        let caps = spec_caps.pointer("/process/capabilities").cloned().unwrap_or(Value::Null);
        let mut p = json!({
            "terminal": e.tty,
            "user": {"uid": user.uid, "gid": user.gid},
            "args": e.cmd,
            "env": env,
            "cwd": cwd,
            "capabilities": caps,
        });
        if !user.additional_gids.is_empty() {
            p["user"]["additionalGids"] = json!(user.additional_gids);
        }
        Ok(p)
    }
}
