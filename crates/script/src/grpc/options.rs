//! The URL and option tables of `self.grpc:connect` and of a client's
//! calls, checked before anything is sent: an unknown key or a value of
//! the wrong type is a Lua error naming the option.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use mlua::{Table, Value};

use super::protos::ProtoSet;
use crate::io::{options, shown, string_opt, timeout_opt};
use crate::luax::{check_keys, fault, type_name};

const CONNECT: &str = "self.grpc:connect";

/// Where a client connects.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// `host:port`, the requests' `:authority`.
    pub authority: String,
}

impl Target {
    pub fn parse(url: Value) -> mlua::Result<Self> {
        let Value::String(url) = url else {
            return Err(fault(format!(
                "{CONNECT}: the URL must be a string such as \"http://host:50051\", got a {}",
                type_name(&url)
            )));
        };
        let url = url.to_str()?.to_string();
        let parsed = url::Url::parse(&url)
            .map_err(|e| fault(format!("{CONNECT} {url}: invalid URL: {e}")))?;
        let tls = match parsed.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(fault(format!(
                    "{CONNECT} {url}: the scheme must be http:// or https://, got {other}://"
                )));
            }
        };
        let Some(host) = parsed.host_str() else {
            return Err(fault(format!("{CONNECT} {url}: the URL has no host")));
        };
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Target {
            authority: format!("{host}:{port}"),
            host: bare,
            port,
            tls,
        })
    }
}

/// `{ proto = "a.proto" | protos = {...}, import_paths = {...}, metadata = {...}, timeout = s }`.
pub struct ConnectOptions {
    pub protos: ProtoSet,
    pub metadata: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Option<Duration>,
}

impl ConnectOptions {
    pub fn parse(v: Value) -> mlua::Result<Self> {
        let Some(t) = options(v, CONNECT)? else {
            return Err(fault(format!(
                "{CONNECT}: name the .proto files: {{ proto = \"api.proto\" }}"
            )));
        };
        check_keys(
            &t,
            CONNECT,
            &["proto", "protos", "import_paths", "metadata", "timeout"],
        )?;
        let mut protos = strings(&t, "protos", CONNECT)?;
        if let Some(p) = string_opt(&t, "proto", CONNECT)? {
            protos.insert(0, p);
        }
        if protos.is_empty() {
            return Err(fault(format!(
                "{CONNECT}: name the .proto files: {{ proto = \"api.proto\" }} or {{ protos = {{ ... }} }}"
            )));
        }
        Ok(ConnectOptions {
            protos: ProtoSet {
                protos,
                import_paths: strings(&t, "import_paths", CONNECT)?,
            },
            metadata: metadata(&t, CONNECT)?,
            timeout: timeout_opt(&t, CONNECT)?,
        })
    }
}

/// `g:invoke(method, request, { metadata, timeout, name })`.
pub struct CallOptions {
    pub metadata: Vec<(HeaderName, HeaderValue)>,
    /// The call's deadline, also sent to the server as `grpc-timeout`.
    pub timeout: Option<Duration>,
    pub name: Option<String>,
}

impl CallOptions {
    pub fn parse(v: Value, what: &str) -> mlua::Result<Self> {
        let Some(t) = options(v, what)? else {
            return Ok(CallOptions {
                metadata: Vec::new(),
                timeout: None,
                name: None,
            });
        };
        check_keys(&t, what, &["metadata", "timeout", "name"])?;
        Ok(CallOptions {
            metadata: metadata(&t, what)?,
            timeout: timeout_opt(&t, what)?,
            name: string_opt(&t, "name", what)?,
        })
    }
}

fn strings(t: &Table, key: &str, what: &str) -> mlua::Result<Vec<String>> {
    let list = match t.raw_get::<Value>(key)? {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(l) => l,
        other => {
            return Err(fault(format!(
                "{what}: {key} must be a list of paths, got a {}",
                type_name(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for v in list.sequence_values::<Value>() {
        match v? {
            Value::String(s) => out.push(s.to_str()?.to_string()),
            other => {
                return Err(fault(format!(
                    "{what}: {key}: {} is not a path",
                    shown(&other)
                )));
            }
        }
    }
    Ok(out)
}

/// Metadata as lowercase header names and values.
fn metadata(t: &Table, what: &str) -> mlua::Result<Vec<(HeaderName, HeaderValue)>> {
    let m = match t.raw_get::<Value>("metadata")? {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(m) => m,
        other => {
            return Err(fault(format!(
                "{what}: metadata must be a table of key = value, got a {}",
                type_name(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for pair in m.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let (Value::String(k), Value::String(v)) = (&k, &v) else {
            return Err(fault(format!(
                "{what}: metadata: keys and values must be strings, got {} = {}",
                shown(&k),
                shown(&v)
            )));
        };
        let key = k.to_string_lossy().to_ascii_lowercase();
        let name = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| fault(format!("{what}: metadata: {key:?} is not a metadata key")))?;
        let value = HeaderValue::from_bytes(&v.as_bytes())
            .map_err(|_| fault(format!("{what}: metadata: the value of {key} is not valid")))?;
        out.push((name, value));
    }
    Ok(out)
}
