//! The option tables of `self.ws:connect` and of a WebSocket's methods,
//! checked before anything is sent: an unknown key or a value of the
//! wrong type is a Lua error naming the option.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use mlua::{Table, Value};

use crate::io::{options, shown, string_opt, timeout_opt};
use crate::luax::{check_keys, fault, type_name};

/// `self.ws:connect(url, { headers, subprotocols, timeout, name })`.
#[derive(Default)]
pub struct ConnectOptions {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub subprotocols: Vec<String>,
    /// For the TCP and TLS connection and the upgrade together.
    pub timeout: Option<Duration>,
    pub name: Option<String>,
}

const CONNECT: &str = "self.ws:connect";

impl ConnectOptions {
    pub fn parse(v: Value) -> mlua::Result<Self> {
        let Some(t) = options(v, CONNECT)? else {
            return Ok(Self::default());
        };
        check_keys(&t, CONNECT, &["headers", "subprotocols", "timeout", "name"])?;
        Ok(ConnectOptions {
            headers: headers(&t)?,
            subprotocols: subprotocols(&t)?,
            timeout: timeout_opt(&t, CONNECT)?,
            name: string_opt(&t, "name", CONNECT)?,
        })
    }
}

fn headers(t: &Table) -> mlua::Result<Vec<(HeaderName, HeaderValue)>> {
    let h = match t.raw_get::<Value>("headers")? {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(h) => h,
        other => {
            return Err(fault(format!(
                "{CONNECT}: headers must be a table of name = value, got a {}",
                type_name(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for pair in h.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let (Value::String(k), Value::String(v)) = (&k, &v) else {
            return Err(fault(format!(
                "{CONNECT}: headers: names and values must be strings, got {} = {}",
                shown(&k),
                shown(&v)
            )));
        };
        let name = HeaderName::from_bytes(&k.as_bytes()).map_err(|_| {
            fault(format!(
                "{CONNECT}: headers: {:?} is not a header name",
                k.to_string_lossy()
            ))
        })?;
        let value = HeaderValue::from_bytes(&v.as_bytes()).map_err(|_| {
            fault(format!(
                "{CONNECT}: headers: the value of {name} is not a valid header value"
            ))
        })?;
        out.push((name, value));
    }
    Ok(out)
}

fn subprotocols(t: &Table) -> mlua::Result<Vec<String>> {
    let list = match t.raw_get::<Value>("subprotocols")? {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(l) => l,
        other => {
            return Err(fault(format!(
                "{CONNECT}: subprotocols must be a list of strings such as {{ \"chat\" }}, got a {}",
                type_name(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for v in list.sequence_values::<Value>() {
        match v? {
            Value::String(s)
                if !s.as_bytes().is_empty()
                    && s.as_bytes()
                        .iter()
                        .all(|b| b.is_ascii_graphic() && *b != b',') =>
            {
                out.push(s.to_str()?.to_string())
            }
            other => {
                return Err(fault(format!(
                    "{CONNECT}: subprotocols: {} is not a protocol name",
                    shown(&other)
                )));
            }
        }
    }
    Ok(out)
}

/// `ws:recv({ timeout })`.
pub fn recv_timeout(v: Value) -> mlua::Result<Option<Duration>> {
    let Some(t) = options(v, "ws:recv")? else {
        return Ok(None);
    };
    check_keys(&t, "ws:recv", &["timeout"])?;
    timeout_opt(&t, "ws:recv")
}

/// `ws:close(code, reason)`: a code a client may send (1000, or 3000 to
/// 4999) and a reason that fits a control frame.
pub fn close_frame(code: Value, reason: Value) -> mlua::Result<(u16, String)> {
    let code = match code {
        Value::Nil => 1000,
        Value::Integer(c) if c == 1000 || (3000..=4999).contains(&c) => c as u16,
        Value::Number(c) if c == 1000.0 || (c.fract() == 0.0 && (3000.0..=4999.0).contains(&c)) => {
            c as u16
        }
        other => {
            return Err(fault(format!(
                "ws:close: code must be 1000 or from 3000 to 4999, got {}",
                shown(&other)
            )));
        }
    };
    let reason = match reason {
        Value::Nil => String::new(),
        Value::String(s) if s.as_bytes().len() <= 123 => s.to_str()?.to_string(),
        Value::String(_) => {
            return Err(fault("ws:close: reason must be at most 123 bytes"));
        }
        other => {
            return Err(fault(format!(
                "ws:close: reason must be a string, got a {}",
                type_name(&other)
            )));
        }
    };
    Ok((code, reason))
}

/// `ws:request(msg, { name, match, timeout })`.
pub struct RequestOptions {
    pub name: Option<String>,
    pub matcher: Option<mlua::Function>,
    pub timeout: Option<Duration>,
}

impl RequestOptions {
    pub fn parse(v: Value) -> mlua::Result<Self> {
        let Some(t) = options(v, "ws:request")? else {
            return Ok(RequestOptions {
                name: None,
                matcher: None,
                timeout: None,
            });
        };
        check_keys(&t, "ws:request", &["name", "match", "timeout"])?;
        let matcher = match t.raw_get::<Value>("match")? {
            Value::Nil => None,
            Value::Function(f) => Some(f),
            other => {
                return Err(fault(format!(
                    "ws:request: match must be a function(reply) returning true for the awaited reply, got a {}",
                    type_name(&other)
                )));
            }
        };
        Ok(RequestOptions {
            name: string_opt(&t, "name", "ws:request")?,
            matcher,
            timeout: timeout_opt(&t, "ws:request")?,
        })
    }
}
