//! Responses checked against the Engine API v1.47 OpenAPI spec in
//! `../shared/spec/engine-api-v1.47.yaml`: every required field is sent, and
//! no field is sent that the spec does not define (clients index fields
//! directly, and decode strictly in some languages).

mod common;

use common::{fixture, Daemon};
use serde_json::Value;

fn spec() -> Option<Value> {
    let p = common::repo_root().join("../shared/spec/engine-api-v1.47.yaml");
    let text = std::fs::read_to_string(&p).ok()?;
    Some(serde_saphyr::from_str::<Value>(&text).expect("spec parses"))
}

fn check(spec: &Value, def: &str, v: &Value, allow_extra: &[&str]) {
    let d = &spec["definitions"][def];
    assert!(d.is_object(), "definition {def} missing from the spec");
    let props = d["properties"].as_object().expect("properties");
    for r in d["required"].as_array().cloned().unwrap_or_default() {
        let r = r.as_str().unwrap();
        assert!(v.get(r).is_some(), "{def}: required field {r} missing in {v}");
    }
    for k in v.as_object().expect("object").keys() {
        assert!(props.contains_key(k) || allow_extra.contains(&k.as_str()), "{def}: field {k} is not in the spec");
    }
}

#[test]
fn responses_match_the_openapi_spec() {
    require_root!();
    let Some(spec) = spec() else {
        eprintln!("skipped: ../shared/spec not present");
        return;
    };
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    let (_, list) = d.http_json("GET", "/v1.47/images/json", None);
    check(&spec, "ImageSummary", &list[0], &[]);
    let (_, img) = d.http_json("GET", "/v1.47/images/busybox/json", None);
    check(&spec, "ImageInspect", &img, &[]);
    let (_, ver) = d.http_json("GET", "/v1.47/version", None);
    check(&spec, "SystemVersion", &ver, &[]);
    let (_, info) = d.http_json("GET", "/v1.47/info", None);
    // CDISpecDirs arrived in 1.47's successor documents; Docker 27 sends it.
    check(&spec, "SystemInfo", &info, &["CDISpecDirs"]);
    // An event, as /events streams it.
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 5;
    d.ok(&["tag", "busybox", "spec:1"]);
    let (_, _, body) = d.http("GET", &format!("/v1.47/events?since={since}&until={}", since + 10), None);
    let first = String::from_utf8_lossy(&body).lines().next().map(String::from).expect("an event");
    let ev: Value = serde_json::from_str(&first).unwrap();
    check(&spec, "EventMessage", &ev, &["status", "id", "from"]);
    // Networks, and a running container's network settings.
    d.ok(&["network", "create", "--subnet", "10.231.40.0/24", "specnet"]);
    d.ok(&["run", "-d", "--name", "specc", "--network", "specnet", "-p", "127.0.0.1::80", "busybox", "sleep", "60"]);
    d.ok(&["network", "connect", "bridge", "specc"]);
    let (_, nets) = d.http_json("GET", "/v1.47/networks", None);
    for n in nets.as_array().unwrap() {
        check(&spec, "Network", n, &[]);
        check(&spec, "IPAM", &n["IPAM"], &[]);
    }
    let (_, n) = d.http_json("GET", "/v1.47/networks/specnet", None);
    check(&spec, "Network", &n, &[]);
    check(&spec, "IPAMConfig", &n["IPAM"]["Config"][0], &[]);
    for c in n["Containers"].as_object().unwrap().values() {
        check(&spec, "NetworkContainer", c, &[]);
    }
    let (_, c) = d.http_json("GET", "/v1.47/containers/specc/json", None);
    check(&spec, "NetworkSettings", &c["NetworkSettings"], &[]);
    for ep in c["NetworkSettings"]["Networks"].as_object().unwrap().values() {
        check(&spec, "EndpointSettings", ep, &[]);
    }
    let (_, list) = d.http_json("GET", "/v1.47/containers/json", None);
    for p in list[0]["Ports"].as_array().unwrap() {
        check(&spec, "Port", p, &[]);
    }
    d.ok(&["rm", "-f", "specc"]);
}
