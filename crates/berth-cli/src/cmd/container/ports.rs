//! Ports: `-p/--publish` and `--expose` parsing (go-connections `nat`, as
//! docker-cli 28 uses it), and their display in `ps` (docker-cli's
//! `DisplayablePorts`) and `port`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::values::parse_uint;

/// `nat.ParsePortRange`.
fn port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let Some((a, b)) = ports.split_once('-') else {
        let p = parse_uint(ports, 16)?;
        return Ok((p, p));
    };
    let b = b.split('-').next().unwrap_or(b);
    let start = parse_uint(a, 16)?;
    let end = parse_uint(b, 16)?;
    if end < start {
        return Err(format!("invalid range specified for port: {ports}"));
    }
    Ok((start, end))
}

/// `nat.SplitProtoPort`: (proto, port).
fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 {
        return ("tcp".into(), raw.into());
    }
    if parts[1].is_empty() {
        return ("tcp".into(), parts[0].into());
    }
    (parts[1].into(), parts[0].into())
}

/// docker-cli's `convertToStandardNotation`: `published=8080,target=80` → `8080:80/tcp`.
fn standard_notation(spec: &str) -> Result<String, String> {
    if !spec.contains('=') {
        return Ok(spec.to_string());
    }
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
    for param in spec.split(',') {
        match param.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                params.insert(k, v);
            }
            _ => return Err(format!("invalid publish opts format (should be name=value but got '{param}')")),
        }
    }
    let get = |k: &str| params.get(k).copied().unwrap_or("");
    Ok(format!("{}:{}/{}", get("published"), get("target"), get("protocol")))
}

/// One `-p` value → (port key, host IP, host port) triples (`nat.ParsePortSpec`).
fn parse_spec(raw: &str) -> Result<Vec<(String, String, String)>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host_port, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container) = split_proto_port(container);
    if ip.starts_with('[') {
        match ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => ip = inner.to_string(),
            None => return Err(format!("invalid IP address {ip}: address {ip}:: missing ']' in address")),
        }
    }
    if !ip.is_empty() && super::values::canonical_ip(&ip).is_none() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = port_range(&container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (mut hstart, mut hend) = (0, 0);
    if !host_port.is_empty() {
        (hstart, hend) = port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?;
    }
    if !host_port.is_empty() && end - start != hend.wrapping_sub(hstart) && end != start {
        return Err(format!("invalid ranges specified for container and host Ports: {container} and {host_port}"));
    }
    let proto_l = proto.to_lowercase();
    if !["tcp", "udp", "sctp"].contains(&proto_l.as_str()) {
        return Err(format!("invalid proto: {proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut hp = if host_port.is_empty() { String::new() } else { (hstart + i).to_string() };
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        out.push((format!("{}/{proto_l}", start + i), ip.clone(), hp));
    }
    Ok(out)
}

/// `ExposedPorts` and `PortBindings`, keyed `80/tcp`, sorted as Go's encoder sorts map keys.
pub type PortMaps = (BTreeMap<String, Value>, BTreeMap<String, Vec<Value>>);

/// `-p` values → (ExposedPorts, PortBindings) JSON maps.
pub fn parse_publish(specs: &[String]) -> Result<PortMaps, String> {
    let mut exposed = BTreeMap::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for spec in specs {
        for (port, ip, host_port) in parse_spec(&standard_notation(spec)?)? {
            exposed.insert(port.clone(), json!({}));
            bindings.entry(port).or_default().push(json!({"HostIp": ip, "HostPort": host_port}));
        }
    }
    Ok((exposed, bindings))
}

/// `--expose` values (docker-cli 28's loop over `nat.SplitProtoPort`/`ParsePortRange`).
pub fn parse_expose(values: &[String], exposed: &mut BTreeMap<String, Value>) -> Result<(), String> {
    for e in values {
        if e.contains(':') {
            return Err(format!("invalid port format for --expose: {e}"));
        }
        let (proto, port) = split_proto_port(e);
        let (start, end) =
            port_range(&port).map_err(|err| format!("invalid range format for --expose: {e}, error: {err}"))?;
        for p in start..=end {
            exposed.entry(format!("{p}/{proto}")).or_insert_with(|| json!({}));
        }
    }
    Ok(())
}

/// Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

struct Port {
    ip: String,
    private: u64,
    public: u64,
    kind: String,
}

/// docker-cli's `DisplayablePorts` over the list API's `Ports`:
/// `0.0.0.0:8080->80/tcp, [::]:8080->80/tcp` (docker 28 brackets IPv6), consecutive ports grouped.
pub fn displayable_ports(ports: &[Value]) -> String {
    let mut ports: Vec<Port> = ports
        .iter()
        .map(|p| Port {
            ip: p.get("IP").and_then(Value::as_str).unwrap_or("").to_string(),
            private: p.get("PrivatePort").and_then(Value::as_u64).unwrap_or(0),
            public: p.get("PublicPort").and_then(Value::as_u64).unwrap_or(0),
            kind: p.get("Type").and_then(Value::as_str).unwrap_or("").to_string(),
        })
        .collect();
    ports.sort_by(|a, b| {
        a.private
            .cmp(&b.private)
            .then_with(|| a.ip.cmp(&b.ip))
            .then_with(|| a.public.cmp(&b.public))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    let mut groups: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut keys: Vec<String> = Vec::new();
    let mut result: Vec<String> = Vec::new();
    let mut host_mappings: Vec<String> = Vec::new();
    for p in &ports {
        let current = p.private;
        let mut key = p.kind.clone();
        if !p.ip.is_empty() {
            if p.public != current {
                let h = join_host_port(&p.ip, &p.public.to_string());
                host_mappings.push(format!("{h}->{}/{}", p.private, p.kind));
                continue;
            }
            key = format!("{}/{}", p.ip, p.kind);
        }
        match groups.get_mut(&key) {
            None => {
                groups.insert(key.clone(), (current, current));
                keys.push(key);
            }
            Some(g) if current == g.1 + 1 => g.1 = current,
            Some(g) => {
                result.push(form_group(&key, g.0, g.1));
                *g = (current, current);
            }
        }
    }
    for key in &keys {
        if let Some(g) = groups.get(key) {
            result.push(form_group(key, g.0, g.1));
        }
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn form_group(key: &str, start: u64, last: u64) -> String {
    let parts: Vec<&str> = key.split('/').collect();
    let (ip, kind) = if parts.len() > 1 { (parts[0], parts[1]) } else { ("", parts[0]) };
    let mut group = start.to_string();
    if start != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{}->{group}", join_host_port(ip, &group));
    }
    format!("{group}/{kind}")
}

/// `sortorder.NaturalLess`: digit runs compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (ca, cb) = (a[i], b[j]);
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i] == b'0' {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
            let (ni, nj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (da, db) = (&a[ni..i], &b[nj..j]);
            let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
            if ord != Ordering::Equal {
                return ord;
            }
            // Equal values: fewer leading zeros first.
            let z = (ni - si).cmp(&(nj - sj));
            if z != Ordering::Equal {
                return z;
            }
            continue;
        }
        if ca != cb {
            return ca.cmp(&cb);
        }
        i += 1;
        j += 1;
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// `docker port` lines from inspect's `NetworkSettings.Ports`.
pub fn port_lines(ports: &serde_json::Map<String, Value>, filter: Option<&str>) -> Result<Vec<String>, String> {
    let frontends = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|b| {
                        join_host_port(
                            b.get("HostIp").and_then(Value::as_str).unwrap_or(""),
                            b.get("HostPort").and_then(Value::as_str).unwrap_or(""),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    match filter {
        Some(spec) => {
            let (port, proto) = spec.split_once('/').unwrap_or((spec, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if let Err(e) = parse_uint(port, 16) {
                return Err(format!("Error: invalid port ({port}): {e}"));
            }
            out = ports.get(&format!("{port}/{proto}")).map(frontends).unwrap_or_default();
            if out.is_empty() {
                return Err(String::new());
            }
        }
        None => {
            for (from, v) in ports {
                for f in frontends(v) {
                    out.push(format!("{from} -> {f}"));
                }
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(specs: &[&str]) -> Result<(Value, Value), String> {
        let specs: Vec<String> = specs.iter().map(|s| s.to_string()).collect();
        let (e, b) = parse_publish(&specs)?;
        Ok((serde_json::to_value(e).unwrap(), serde_json::to_value(b).unwrap()))
    }

    #[test]
    fn publish_forms_like_docker() {
        let (e, b) = publish(&[
            "80",
            "8080:80",
            "127.0.0.1::81",
            "[::1]:8082:82",
            "8000-8001:83",
            "0.0.0.0:84:84/sctp",
            "published=8085,target=85",
            "90-91",
            "127.0.0.1:92-93:92-93/udp",
        ])
        .unwrap();
        // Recorded from docker 28.2.2's create request for the same flags.
        assert_eq!(
            e,
            json!({"80/tcp": {}, "81/tcp": {}, "82/tcp": {}, "83/tcp": {}, "84/sctp": {}, "85/tcp": {}, "90/tcp": {}, "91/tcp": {}, "92/udp": {}, "93/udp": {}})
        );
        assert_eq!(
            b,
            json!({
                "80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostIp": "", "HostPort": "8080"}],
                "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
                "82/tcp": [{"HostIp": "::1", "HostPort": "8082"}],
                "83/tcp": [{"HostIp": "", "HostPort": "8000-8001"}],
                "84/sctp": [{"HostIp": "0.0.0.0", "HostPort": "84"}],
                "85/tcp": [{"HostIp": "", "HostPort": "8085"}],
                "90/tcp": [{"HostIp": "", "HostPort": ""}],
                "91/tcp": [{"HostIp": "", "HostPort": ""}],
                "92/udp": [{"HostIp": "127.0.0.1", "HostPort": "92"}],
                "93/udp": [{"HostIp": "127.0.0.1", "HostPort": "93"}]
            })
        );
    }

    #[test]
    fn publish_errors_like_docker() {
        let err = |s: &str| publish(&[s]).unwrap_err();
        assert_eq!(err("80:abc"), "invalid containerPort: abc");
        assert_eq!(err("1.2.3:80:80"), "invalid IP address: 1.2.3");
        assert_eq!(err("80/foo"), "invalid proto: foo");
        assert_eq!(err("81-80:80"), "invalid hostPort: 81-80");
        assert_eq!(err("80-81:90-92"), "invalid ranges specified for container and host Ports: 90-92 and 80-81");
        assert_eq!(err(""), "no port specified: <empty>");
        assert_eq!(err("8080:"), "no port specified: 8080:<empty>");
        assert_eq!(err("99999"), "invalid containerPort: 99999");
        assert_eq!(err("published=1,x"), "invalid publish opts format (should be name=value but got 'x')");
    }

    #[test]
    fn expose_like_docker() {
        let mut m = BTreeMap::new();
        parse_expose(&["7000-7001".into(), "80/udp".into(), "80/foo".into()], &mut m).unwrap();
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), vec!["7000/tcp", "7001/tcp", "80/foo", "80/udp"]);
        assert_eq!(
            parse_expose(&["abc".into()], &mut m).unwrap_err(),
            "invalid range format for --expose: abc, error: strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            parse_expose(&["90-80".into()], &mut m).unwrap_err(),
            "invalid range format for --expose: 90-80, error: invalid range specified for port: 90-80"
        );
        assert_eq!(parse_expose(&["1:2".into()], &mut m).unwrap_err(), "invalid port format for --expose: 1:2");
    }

    #[test]
    fn ports_column_like_docker() {
        let p = |ip: &str, private: u64, public: u64, t: &str| {
            let mut v = json!({"PrivatePort": private, "Type": t});
            if !ip.is_empty() {
                v["IP"] = json!(ip);
                v["PublicPort"] = json!(public);
            }
            v
        };
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 80, 8080, "tcp"), p("::", 80, 8080, "tcp")]),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(displayable_ports(&[p("", 80, 0, "tcp")]), "80/tcp");
        assert_eq!(displayable_ports(&[p("", 80, 0, "tcp"), p("", 81, 0, "tcp"), p("", 82, 0, "tcp")]), "80-82/tcp");
        assert_eq!(
            displayable_ports(&[p("0.0.0.0", 9000, 9000, "tcp"), p("0.0.0.0", 9001, 9001, "tcp")]),
            "0.0.0.0:9000-9001->9000-9001/tcp"
        );
        assert_eq!(displayable_ports(&[p("", 53, 0, "udp"), p("", 80, 0, "tcp")]), "53/udp, 80/tcp");
        assert_eq!(displayable_ports(&[]), "");
    }

    #[test]
    fn port_command_lines() {
        let ports = json!({
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}],
            "9/udp": [{"HostIp": "127.0.0.1", "HostPort": "9"}],
            "443/tcp": null
        });
        let m = ports.as_object().unwrap();
        assert_eq!(
            port_lines(m, None).unwrap(),
            vec!["9/udp -> 127.0.0.1:9", "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]
        );
        assert_eq!(port_lines(m, Some("80")).unwrap(), vec!["0.0.0.0:8080", "[::]:8080"]);
        assert_eq!(port_lines(m, Some("443")).unwrap_err(), "");
        assert_eq!(
            port_lines(m, Some("x")).unwrap_err(),
            "Error: invalid port (x): strconv.ParseUint: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn natural_order() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_cmp("9/udp", "80/tcp"), Less);
        assert_eq!(natural_cmp("a10", "a9"), Greater);
        assert_eq!(natural_cmp("abc", "abc"), Equal);
    }
}
