//! The `opts` table of a request (`headers`, `query`, `form`, `json`,
//! `body`, `name`, `timeout`, `allow_redirects`, `accept_encoding`,
//! `proxy`, `http_version`, `client_cert`, `client_key`), checked strictly so a typo is an error naming the option
//! rather than a silently ignored setting.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_client::{HttpVersion, ProxyChoice};
use mlua::{Table, Value};

use super::identity::ClientCert;
use crate::luax::{fault, number, type_name};

/// Locust's FastHttpUser default; a request should never hang a user for
/// the whole run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const OPTION_KEYS: &str = "headers, query, form, json, body, name, timeout, allow_redirects, accept_encoding, proxy, \
     http_version, client_cert, client_key";

/// The `opts` table of a request.
pub struct RequestOptions {
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
    pub name: Option<String>,
    pub timeout: Duration,
    pub allow_redirects: bool,
    /// `Some(None)`: send no `Accept-Encoding`; `None`: the type's default.
    pub accept_encoding: Option<Option<HeaderValue>>,
    /// `proxy = "http://..."` or `proxy = false`; the run's rule otherwise.
    pub proxy: ProxyChoice,
    /// `http_version = "1.1" | "2" | "auto"`; the run's otherwise.
    pub version: Option<HttpVersion>,
    /// `client_cert`/`client_key`; the user type's or the run's otherwise.
    pub client_cert: Option<ClientCert>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            headers: HeaderMap::new(),
            query: None,
            body: Bytes::new(),
            name: None,
            timeout: DEFAULT_TIMEOUT,
            allow_redirects: true,
            accept_encoding: None,
            proxy: ProxyChoice::Run,
            version: None,
            client_cert: None,
        }
    }
}

impl RequestOptions {
    pub fn parse(method: &Method, t: Table, base_dir: &Path) -> mlua::Result<Self> {
        let mut o = RequestOptions {
            client_cert: ClientCert::parse(method.as_str(), &t, base_dir)?,
            ..RequestOptions::default()
        };
        let mut body_from: Option<&'static str> = None;
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            let key = match &k {
                Value::String(s) => s.to_str()?.to_string(),
                other => {
                    return Err(fault(format!(
                        "{method}: option keys must be strings, got a {}",
                        type_name(other)
                    )));
                }
            };
            o.set(method, &key, v, &mut body_from)?;
        }
        Ok(o)
    }

    fn set(
        &mut self,
        method: &Method,
        key: &str,
        v: Value,
        body_from: &mut Option<&'static str>,
    ) -> mlua::Result<()> {
        match key {
            "headers" => self.headers = parse_headers(method, v)?,
            "query" => self.query = Some(urlencode(method, "query", v)?),
            "form" => {
                set_body_kind(method, body_from, "form")?;
                self.body = Bytes::from(urlencode(method, "form", v)?);
                self.headers
                    .entry(header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static(
                        "application/x-www-form-urlencoded",
                    ));
            }
            "json" => {
                set_body_kind(method, body_from, "json")?;
                let bytes = serde_json::to_vec(&v)
                    .map_err(|e| fault(format!("{method}: json option cannot be encoded: {e}")))?;
                self.body = Bytes::from(bytes);
                self.headers
                    .entry(header::CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static("application/json"));
            }
            "body" => {
                set_body_kind(method, body_from, "body")?;
                let Value::String(s) = v else {
                    return Err(fault(format!(
                        "{method}: body must be a string, got a {}",
                        type_name(&v)
                    )));
                };
                self.body = Bytes::copy_from_slice(&s.as_bytes());
            }
            "name" => match v {
                Value::String(s) => self.name = Some(s.to_str()?.to_string()),
                other => {
                    return Err(fault(format!(
                        "{method}: name must be a string, got a {}",
                        type_name(&other)
                    )));
                }
            },
            "timeout" => self.timeout = parse_timeout(method, v)?,
            "allow_redirects" => match v {
                Value::Boolean(b) => self.allow_redirects = b,
                other => {
                    return Err(fault(format!(
                        "{method}: allow_redirects must be true or false, got a {}",
                        type_name(&other)
                    )));
                }
            },
            "accept_encoding" => {
                self.accept_encoding =
                    Some(super::type_options::accept_encoding(method.as_str(), v)?)
            }
            "proxy" => self.proxy = crate::io::proxy_opt(v, method.as_str())?,
            "http_version" => {
                let text = match &v {
                    Value::String(s) => s.to_str()?.to_string(),
                    Value::Number(n) => n.to_string(),
                    Value::Integer(n) => n.to_string(),
                    other => {
                        return Err(fault(format!(
                            "{method}: http_version must be \"auto\", \"1.1\" or \"2\", got a {}",
                            type_name(other)
                        )));
                    }
                };
                let version = HttpVersion::parse(&text)
                    .map_err(|e| fault(format!("{method}: http_version {e}")))?;
                self.version = Some(version);
            }
            // Read by `ClientCert::parse`, which sees both at once.
            "client_cert" | "client_key" => {}
            other => {
                return Err(fault(format!(
                    "{method}: unknown option {other:?} (expected one of: {OPTION_KEYS})"
                )));
            }
        }
        Ok(())
    }
}

fn parse_timeout(method: &Method, v: Value) -> mlua::Result<Duration> {
    let Some(secs) = number(&v) else {
        return Err(fault(format!(
            "{method}: timeout must be seconds, got a {}",
            type_name(&v)
        )));
    };
    if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
        return Err(fault(format!(
            "{method}: timeout must be > 0 seconds, got {secs}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn set_body_kind(
    method: &Method,
    seen: &mut Option<&'static str>,
    kind: &'static str,
) -> mlua::Result<()> {
    if let Some(prev) = seen.replace(kind) {
        return Err(fault(format!(
            "{method}: give only one of form, json and body (got {prev} and {kind})"
        )));
    }
    Ok(())
}

/// A header or form value: strings as they are, numbers and booleans as
/// Lua prints them.
fn scalar_text(method: &Method, what: &str, v: &Value) -> mlua::Result<String> {
    match v {
        Value::String(s) => Ok(s.to_str()?.to_string()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Ok(format!("{}", *n as i64)),
        Value::Number(n) => Ok(n.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        other => Err(fault(format!(
            "{method}: {what} values must be strings or numbers, got a {}",
            type_name(other)
        ))),
    }
}

fn parse_headers(method: &Method, v: Value) -> mlua::Result<HeaderMap> {
    let Value::Table(t) = v else {
        return Err(fault(format!(
            "{method}: headers must be a table of name = value, got a {}",
            type_name(&v)
        )));
    };
    let mut h = HeaderMap::new();
    for pair in t.pairs::<String, Value>() {
        let (k, v) = pair?;
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| fault(format!("{method}: invalid header name {k:?}")))?;
        let text = scalar_text(method, "header", &v)?;
        let value = HeaderValue::from_str(&text)
            .map_err(|_| fault(format!("{method}: invalid value for header {k:?}")))?;
        h.append(name, value);
    }
    Ok(h)
}

/// `{ a = 1, tags = { "x", "y" } }` → `a=1&tags=x&tags=y`, keys sorted so
/// the same table always gives the same string (and the same stats name).
fn urlencode(method: &Method, what: &str, v: Value) -> mlua::Result<String> {
    let Value::Table(t) = v else {
        return Err(fault(format!(
            "{method}: {what} must be a table of name = value, got a {}",
            type_name(&v)
        )));
    };
    let mut pairs: Vec<(String, Value)> = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        pairs.push((scalar_text(method, what, &k)?, v));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Value::Table(list) = &v {
            for item in list.sequence_values::<Value>() {
                ser.append_pair(&k, &scalar_text(method, what, &item?)?);
            }
        } else {
            ser.append_pair(&k, &scalar_text(method, what, &v)?);
        }
    }
    Ok(ser.finish())
}
