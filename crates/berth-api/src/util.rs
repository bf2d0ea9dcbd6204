//! Request helpers shared by the handlers: Docker's query conventions
//! (repeated keys, lenient booleans, JSON filters) and JSON responses.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, ApiResult};

/// The raw query, keeping repeated keys (`names=a&names=b`).
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> ApiResult<Self> {
        match q {
            None => Ok(Self::default()),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .map(Self)
                .map_err(|e| ApiError::bad_request(format!("invalid query: {e}"))),
        }
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0.iter().filter(|(a, _)| a == k).map(|(_, v)| v.clone()).collect()
    }
    /// Docker's `httputils.BoolValue`: anything but "", 0, no, false, none is true.
    pub fn bool(&self, k: &str) -> bool {
        match self.get(k) {
            None => false,
            Some(v) => {
                let v = v.trim().to_ascii_lowercase();
                !(v.is_empty() || v == "0" || v == "no" || v == "false" || v == "none")
            }
        }
    }
    pub fn str_or<'a>(&'a self, k: &str, d: &'a str) -> &'a str {
        self.get(k).unwrap_or(d)
    }
    /// The `filters` parameter: `{"key":["v"]}` or the legacy `{"key":{"v":true}}`.
    pub fn filters(&self) -> ApiResult<Filters> {
        match self.get("filters") {
            None | Some("") => Ok(Filters::default()),
            Some(s) => Filters::parse(s),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(s: &str) -> ApiResult<Self> {
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = v.as_object().ok_or_else(|| ApiError::bad_request("invalid filter: not an object"))?;
        let mut out = BTreeMap::new();
        for (k, val) in obj {
            let vals: Vec<String> = match val {
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                serde_json::Value::Object(m) => {
                    m.iter().filter(|(_, b)| b.as_bool().unwrap_or(false)).map(|(k, _)| k.clone()).collect()
                }
                _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            };
            out.insert(k.clone(), vals);
        }
        Ok(Self(out))
    }
    pub fn validate(&self, allowed: &[&str]) -> ApiResult<()> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }
    pub fn get(&self, k: &str) -> &[String] {
        self.0.get(k).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn has(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| !v.is_empty())
    }
    /// A boolean filter such as `dangling=true`, validated as Docker does.
    pub fn bool(&self, k: &str) -> ApiResult<Option<bool>> {
        let vals = self.get(k);
        if vals.is_empty() {
            return Ok(None);
        }
        let mut result = None;
        for v in vals {
            let b = match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ApiError::bad_request(format!("Invalid filter '{k}={v}'"))),
            };
            result = Some(result.unwrap_or(false) || b);
        }
        Ok(result)
    }
    /// `label=key` or `label=key=value` against a label map.
    pub fn labels_match(&self, k: &str, labels: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.get(k).iter().all(|f| match f.split_once('=') {
            Some((key, val)) => labels.get(key).and_then(|v| v.as_str()) == Some(val),
            None => labels.contains_key(f.as_str()),
        })
    }
}

/// A JSON response with exactly `application/json`.
pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

pub fn ok_json<T: Serialize>(v: &T) -> Response {
    json(StatusCode::OK, v)
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    F: FnOnce() -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await?
}

/// Go's `path.Match` for reference filters (`*`, `?`, `[...]`; `*` stops at `/`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).take_while(|&i| i == 0 || n[i - 1] != '/').any(|i| m(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && n[0] != '/' && m(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else { return false };
                if n.is_empty() {
                    return false;
                }
                let (neg, set) = if p.get(1) == Some(&'^') { (true, &p[2..end]) } else { (false, &p[1..end]) };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        if set[i] <= n[0] && n[0] <= set[i + 2] {
                            hit = true;
                        }
                        i += 3;
                    } else {
                        if set[i] == n[0] {
                            hit = true;
                        }
                        i += 1;
                    }
                }
                hit != neg && m(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => !n.is_empty() && n[0] == p[1] && m(&p[2..], &n[1..]),
            Some(&c) => !n.is_empty() && n[0] == c && m(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

/// Parses Docker's `since`/`until` timestamps: unix seconds (with optional
/// fraction), RFC 3339, or a Go duration relative to now ("10m", "1h30m").
pub fn parse_timestamp(s: &str) -> ApiResult<f64> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    if let Ok(v) = s.parse::<f64>() {
        return Ok(v);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9);
    }
    if let Ok(t) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(dt) = t.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp() as f64);
        }
    }
    if let Some(d) = parse_go_duration(s) {
        return Ok(now - d);
    }
    Err(ApiError::bad_request(format!("failed to parse value {s:?} as a timestamp or duration")))
}

/// `time.ParseDuration`: "1h", "10m30s", "1.5h", "300ms".
pub fn parse_go_duration(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "a/b"));
        assert!(glob_match("*/*", "a/b"));
        assert!(glob_match("b?sy[a-z]ox", "busybox"));
        assert!(!glob_match("b[^u]sybox", "busybox"));
    }

    #[test]
    fn filters_both_forms() {
        let f = Filters::parse(r#"{"dangling":["true"],"label":{"a=b":true}}"#).unwrap();
        assert_eq!(f.bool("dangling").unwrap(), Some(true));
        assert_eq!(f.get("label"), ["a=b".to_string()]);
        assert!(f.validate(&["dangling"]).is_err());
        let bad = Filters::parse(r#"{"dangling":["maybe"]}"#).unwrap();
        assert!(bad.bool("dangling").is_err());
    }

    #[test]
    fn timestamps_and_durations() {
        assert_eq!(parse_timestamp("100").unwrap(), 100.0);
        assert_eq!(parse_timestamp("1970-01-01T00:01:40Z").unwrap(), 100.0);
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn lenient_bools() {
        let q = Query::parse(Some("a=1&b=False&c=true&d=&names=x&names=y")).unwrap();
        assert!(q.bool("a") && !q.bool("b") && q.bool("c") && !q.bool("d") && !q.bool("zz"));
        assert_eq!(q.all("names"), vec!["x", "y"]);
    }
}
