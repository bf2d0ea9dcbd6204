//! The container configuration a client sends to `POST /containers/create`
//! (Docker's `container.Config` + `HostConfig`), normalised: Go decodes JSON
//! field names case-insensitively and accepts a string where a list is
//! expected for `Cmd`/`Entrypoint`, so berth does too; then the image's config
//! is merged in exactly as moby's `image.Merge` does.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// Canonical field names of `container.Config`, in Docker's order.
pub const CONFIG_FIELDS: &[&str] = &[
    "Hostname",
    "Domainname",
    "User",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "ExposedPorts",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Image",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "NetworkDisabled",
    "MacAddress",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
];

/// Canonical field names of `HostConfig` berth reads or reports.
pub const HOST_CONFIG_FIELDS: &[&str] = &[
    "Binds",
    "ContainerIDFile",
    "LogConfig",
    "NetworkMode",
    "PortBindings",
    "RestartPolicy",
    "AutoRemove",
    "VolumeDriver",
    "VolumesFrom",
    "ConsoleSize",
    "Annotations",
    "CapAdd",
    "CapDrop",
    "CgroupnsMode",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "GroupAdd",
    "IpcMode",
    "Cgroup",
    "Links",
    "OomScoreAdj",
    "PidMode",
    "Privileged",
    "PublishAllPorts",
    "ReadonlyRootfs",
    "SecurityOpt",
    "StorageOpt",
    "Tmpfs",
    "UTSMode",
    "UsernsMode",
    "ShmSize",
    "Sysctls",
    "Runtime",
    "Isolation",
    "CpuShares",
    "Memory",
    "NanoCpus",
    "CgroupParent",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "OomKillDisable",
    "PidsLimit",
    "Ulimits",
    "CpuCount",
    "CpuPercent",
    "IOMaximumIOps",
    "IOMaximumBandwidth",
    "Mounts",
    "MaskedPaths",
    "ReadonlyPaths",
    "Init",
];

/// Re-keys `obj` with canonical names (case-insensitive match), keeping
/// unknown keys as they are.
pub fn canonicalize(obj: &Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        let key = fields.iter().find(|f| f.eq_ignore_ascii_case(k)).map(|f| f.to_string()).unwrap_or_else(|| k.clone());
        out.insert(key, v.clone());
    }
    out
}

/// `Cmd`, `Entrypoint` and `Shell` may be a string (one element) or a list.
fn str_slice(v: &Value, field: &str) -> Result<Value> {
    match v {
        Value::Null => Ok(Value::Null),
        Value::String(s) => Ok(Value::Array(vec![Value::String(s.clone())])),
        Value::Array(a) => {
            if a.iter().all(Value::is_string) {
                Ok(v.clone())
            } else {
                Err(Error::InvalidArgument(format!("json: cannot unmarshal {field}: expected strings")))
            }
        }
        _ => Err(Error::InvalidArgument(format!("json: cannot unmarshal {field}: expected string or list"))),
    }
}

/// The full `container.Config` with defaults for missing fields.
pub fn normalize_config(raw: &Map<String, Value>) -> Result<Map<String, Value>> {
    let c = canonicalize(raw, CONFIG_FIELDS);
    let mut out = Map::new();
    for f in CONFIG_FIELDS {
        let v = c.get(*f).cloned().unwrap_or(Value::Null);
        let v = match *f {
            "Cmd" | "Entrypoint" | "Shell" => str_slice(&v, f)?,
            "Hostname" | "Domainname" | "User" | "Image" | "WorkingDir" | "MacAddress" | "StopSignal" => match v {
                Value::Null => Value::String(String::new()),
                Value::String(_) => v,
                _ => return Err(Error::InvalidArgument(format!("json: cannot unmarshal {f}: expected a string"))),
            },
            "AttachStdin" | "AttachStdout" | "AttachStderr" | "Tty" | "OpenStdin" | "StdinOnce" | "ArgsEscaped"
            | "NetworkDisabled" => match v {
                Value::Null => Value::Bool(false),
                Value::Bool(_) => v,
                _ => return Err(Error::InvalidArgument(format!("json: cannot unmarshal {f}: expected a bool"))),
            },
            "Env" | "OnBuild" => match &v {
                Value::Null => Value::Null,
                Value::Array(a) if a.iter().all(Value::is_string) => v,
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "json: cannot unmarshal {f}: expected a list of strings"
                    )))
                }
            },
            "ExposedPorts" | "Volumes" | "Labels" => match &v {
                Value::Null | Value::Object(_) => v,
                _ => return Err(Error::InvalidArgument(format!("json: cannot unmarshal {f}: expected an object"))),
            },
            _ => v,
        };
        out.insert(f.to_string(), v);
    }
    // Fields Docker only sends when set.
    for f in ["Healthcheck", "StopTimeout", "Shell", "ArgsEscaped", "NetworkDisabled", "MacAddress"] {
        if out.get(f).is_some_and(|v| v.is_null() || *v == Value::Bool(false) || *v == Value::String(String::new())) {
            out.remove(f);
        }
    }
    Ok(out)
}

pub fn normalize_host_config(raw: Option<&Map<String, Value>>) -> Map<String, Value> {
    let h = raw.map(|r| canonicalize(r, HOST_CONFIG_FIELDS)).unwrap_or_default();
    let mut out = Map::new();
    for f in HOST_CONFIG_FIELDS {
        let v = h.get(*f).cloned().unwrap_or(Value::Null);
        let v = match (*f, &v) {
            ("NetworkMode", Value::Null) => Value::String("bridge".into()),
            ("NetworkMode", Value::String(s)) if s.is_empty() || s == "default" => Value::String("bridge".into()),
            ("RestartPolicy", Value::Null) => serde_json::json!({"Name": "no", "MaximumRetryCount": 0}),
            ("RestartPolicy", Value::Object(m)) => {
                let name =
                    m.iter().find(|(k, _)| k.eq_ignore_ascii_case("Name")).and_then(|(_, v)| v.as_str()).unwrap_or("");
                let n = m
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("MaximumRetryCount"))
                    .and_then(|(_, v)| v.as_i64())
                    .unwrap_or(0);
                serde_json::json!({"Name": if name.is_empty() { "no" } else { name }, "MaximumRetryCount": n})
            }
            ("LogConfig", Value::Null) => serde_json::json!({"Type": "json-file", "Config": {}}),
            ("AutoRemove" | "Privileged" | "PublishAllPorts" | "ReadonlyRootfs", Value::Null) => Value::Bool(false),
            (
                "ShmSize" | "Memory" | "NanoCpus" | "CpuShares" | "MemorySwap" | "PidsLimit" | "CpuPeriod" | "CpuQuota"
                | "MemoryReservation" | "OomScoreAdj" | "BlkioWeight",
                Value::Null,
            ) => Value::from(0),
            ("CgroupnsMode", Value::Null) => Value::String("host".into()),
            ("IpcMode", Value::Null) => Value::String("private".into()),
            ("ConsoleSize", Value::Null) => serde_json::json!([0, 0]),
            _ => v,
        };
        out.insert(f.to_string(), v);
    }
    out
}

/// Validates a restart policy as Docker does.
pub fn validate_restart(hc: &Map<String, Value>) -> Result<()> {
    let rp = hc.get("RestartPolicy").cloned().unwrap_or(Value::Null);
    let name = rp.get("Name").and_then(Value::as_str).unwrap_or("no");
    let max = rp.get("MaximumRetryCount").and_then(Value::as_i64).unwrap_or(0);
    match name {
        "no" | "" | "always" | "unless-stopped" => {
            if max != 0 {
                return Err(Error::InvalidArgument(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string(),
                ));
            }
        }
        "on-failure" => {
            if max < 0 {
                return Err(Error::InvalidArgument("invalid restart policy: maximum retry count cannot be negative".into()));
            }
        }
        other => return Err(Error::InvalidArgument(format!("invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"))),
    }
    if name != "no" && !name.is_empty() && hc.get("AutoRemove").and_then(Value::as_bool).unwrap_or(false) {
        return Err(Error::InvalidArgument("conflicting options: cannot specify both --restart and --rm".into()));
    }
    Ok(())
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map(|(k, _)| k).unwrap_or(e)
}

/// moby's `image.Merge`: fills the user's config from the image's.
pub fn merge_image_config(user: &mut Map<String, Value>, image: &Map<String, Value>) {
    let empty_str = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
    let empty_list = |v: Option<&Value>| v.and_then(Value::as_array).is_none_or(Vec::is_empty);
    let empty_obj = |v: Option<&Value>| v.and_then(Value::as_object).is_none_or(Map::is_empty);
    if empty_str(user.get("User")) {
        user.insert("User".into(), image.get("User").cloned().unwrap_or(Value::String(String::new())));
    }
    // ExposedPorts, Volumes, Labels: union, user's entries win.
    for f in ["ExposedPorts", "Volumes", "Labels"] {
        if let Some(Value::Object(img)) = image.get(f) {
            let mut m = user.get(f).and_then(Value::as_object).cloned().unwrap_or_default();
            for (k, v) in img {
                if !m.contains_key(k) {
                    m.insert(k.clone(), v.clone());
                }
            }
            user.insert(f.into(), Value::Object(m));
        } else if f == "Labels" && user.get(f).is_none_or(Value::is_null) {
            user.insert(f.into(), Value::Object(Map::new()));
        }
    }
    if empty_list(user.get("Env")) {
        user.insert("Env".into(), image.get("Env").cloned().unwrap_or(Value::Null));
    } else if let Some(Value::Array(img_env)) = image.get("Env") {
        let mut env = user.get("Env").and_then(Value::as_array).cloned().unwrap_or_default();
        let keys: Vec<String> = env.iter().filter_map(Value::as_str).map(|e| env_key(e).to_string()).collect();
        for e in img_env.iter().filter_map(Value::as_str) {
            if !keys.iter().any(|k| k == env_key(e)) {
                env.push(Value::String(e.to_string()));
            }
        }
        user.insert("Env".into(), Value::Array(env));
    }
    if empty_list(user.get("Entrypoint")) {
        if empty_list(user.get("Cmd")) {
            user.insert("Cmd".into(), image.get("Cmd").cloned().unwrap_or(Value::Null));
        }
        if user.get("Entrypoint").is_none_or(Value::is_null) {
            user.insert("Entrypoint".into(), image.get("Entrypoint").cloned().unwrap_or(Value::Null));
        }
    }
    if !empty_obj(image.get("Healthcheck")) && user.get("Healthcheck").is_none_or(Value::is_null) {
        user.insert("Healthcheck".into(), image["Healthcheck"].clone());
    }
    if empty_str(user.get("WorkingDir")) {
        user.insert("WorkingDir".into(), image.get("WorkingDir").cloned().unwrap_or(Value::String(String::new())));
    }
    if empty_str(user.get("StopSignal")) {
        if let Some(s) = image.get("StopSignal").filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
            user.insert("StopSignal".into(), s.clone());
        }
    }
    if let Some(s) = image.get("Shell").filter(|v| !v.is_null()) {
        if user.get("Shell").is_none_or(Value::is_null) {
            user.insert("Shell".into(), s.clone());
        }
    }
    if let Some(ob) = image.get("OnBuild").filter(|v| !v.is_null()) {
        if user.get("OnBuild").is_none_or(Value::is_null) {
            user.insert("OnBuild".into(), ob.clone());
        }
    }
}

pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// `getEntrypointAndArgs`: the process path and its arguments.
pub fn entrypoint_and_args(cfg: &Map<String, Value>) -> Result<(String, Vec<String>)> {
    let mut ep = strings(cfg.get("Entrypoint"));
    // `--entrypoint ""` arrives as [""]: it resets the entrypoint.
    if ep.len() == 1 && ep[0].is_empty() {
        ep.clear();
    }
    let cmd = strings(cfg.get("Cmd"));
    let mut all: Vec<String> = ep.into_iter().chain(cmd).collect();
    if all.is_empty() {
        return Err(Error::InvalidArgument("no command specified".into()));
    }
    let path = all.remove(0);
    Ok((path, all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn lenient_parsing_like_go() {
        let c = normalize_config(&obj(json!({"cmd": "echo hi", "IMAGE": "busybox", "env": ["A=1"]}))).unwrap();
        assert_eq!(c["Cmd"], json!(["echo hi"]));
        assert_eq!(c["Image"], "busybox");
        assert_eq!(c["Env"], json!(["A=1"]));
        assert_eq!(c["Tty"], false);
        assert!(normalize_config(&obj(json!({"Cmd": 5}))).is_err());
        assert!(normalize_config(&obj(json!({"Tty": "yes"}))).is_err());
    }

    #[test]
    fn merge_follows_moby() {
        let img = obj(json!({"Cmd": ["sh"], "Entrypoint": null, "Env": ["PATH=/bin", "A=img"], "WorkingDir": "/w",
            "User": "nobody", "Labels": {"a": "img", "b": "img"}, "ExposedPorts": {"80/tcp": {}}}));
        // docker run img
        let mut u = normalize_config(&obj(json!({"Image": "x", "Env": ["A=user"], "Labels": {"a": "user"}}))).unwrap();
        merge_image_config(&mut u, &img);
        assert_eq!(u["Cmd"], json!(["sh"]));
        assert_eq!(u["Env"], json!(["A=user", "PATH=/bin"]));
        assert_eq!(u["WorkingDir"], "/w");
        assert_eq!(u["User"], "nobody");
        assert_eq!(u["Labels"], json!({"a": "user", "b": "img"}));
        assert_eq!(entrypoint_and_args(&u).unwrap(), ("sh".to_string(), vec![]));
        // docker run img echo hi → replaces CMD
        let mut u = normalize_config(&obj(json!({"Cmd": ["echo", "hi"]}))).unwrap();
        merge_image_config(&mut u, &img);
        assert_eq!(entrypoint_and_args(&u).unwrap(), ("echo".to_string(), vec!["hi".to_string()]));
        // --entrypoint resets CMD
        let img2 = obj(json!({"Cmd": ["--help"], "Entrypoint": ["/app"]}));
        let mut u = normalize_config(&obj(json!({"Entrypoint": ["/other"]}))).unwrap();
        merge_image_config(&mut u, &img2);
        assert_eq!(entrypoint_and_args(&u).unwrap(), ("/other".to_string(), vec![]));
        // image ENTRYPOINT + user args
        let mut u = normalize_config(&obj(json!({"Cmd": ["-v"]}))).unwrap();
        merge_image_config(&mut u, &img2);
        assert_eq!(entrypoint_and_args(&u).unwrap(), ("/app".to_string(), vec!["-v".to_string()]));
        // no command at all
        let mut u = normalize_config(&obj(json!({}))).unwrap();
        merge_image_config(&mut u, &obj(json!({})));
        assert!(entrypoint_and_args(&u).is_err());
    }

    #[test]
    fn restart_policies() {
        let hc = |v: Value| normalize_host_config(Some(&obj(v)));
        assert!(validate_restart(&hc(json!({"RestartPolicy": {"Name": "always"}}))).is_ok());
        assert!(validate_restart(&hc(json!({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}))).is_ok());
        assert!(validate_restart(&hc(json!({"RestartPolicy": {"Name": "sometimes"}}))).is_err());
        assert!(validate_restart(&hc(json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}))).is_err());
        assert!(validate_restart(&hc(json!({"RestartPolicy": {"Name": "always"}, "AutoRemove": true}))).is_err());
        assert_eq!(hc(json!({}))["RestartPolicy"]["Name"], "no");
    }
}
