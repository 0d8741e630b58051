//! The option tables of `self.ws:connect` and of a WebSocket's methods,
//! checked before anything is sent: an unknown key or a value of the
//! wrong type is a Lua error naming the option.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use http_client::ProxyChoice;
use mlua::{Table, Value};

use crate::io::{options, proxy_opt, shown, string_opt, timeout_opt};
use crate::luax::{check_keys, fault, type_name};

/// `self.ws:connect(url, { headers, subprotocols, timeout, name, proxy })`.
#[derive(Default)]
pub struct ConnectOptions {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub subprotocols: Vec<String>,
    /// For the TCP and TLS connection and the upgrade together.
    pub timeout: Option<Duration>,
    pub name: Option<String>,
    /// The run's proxy rule (absent), none (`false`) or a URL's.
    pub proxy: ProxyChoice,
}

const CONNECT: &str = "self.ws:connect";

impl ConnectOptions {
    pub fn parse(v: Value) -> mlua::Result<Self> {
        let Some(t) = options(v, CONNECT)? else {
            return Ok(Self::default());
        };
        check_keys(
            &t,
            CONNECT,
            &["headers", "subprotocols", "timeout", "name", "proxy"],
        )?;
        Ok(ConnectOptions {
            headers: headers(&t)?,
            subprotocols: subprotocols(&t)?,
            timeout: timeout_opt(&t, CONNECT)?,
            name: string_opt(&t, "name", CONNECT)?,
            proxy: proxy_opt(t.raw_get("proxy")?, CONNECT)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    fn parse(lua: &Lua, opts: &str) -> mlua::Result<ConnectOptions> {
        ConnectOptions::parse(lua.load(opts).eval()?)
    }

    fn error(lua: &Lua, opts: &str) -> String {
        match parse(lua, opts) {
            Ok(_) => panic!("{opts} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn proxy_is_a_url_false_or_the_runs_rule() {
        let lua = Lua::new();
        assert!(matches!(
            parse(&lua, "nil").unwrap().proxy,
            ProxyChoice::Run
        ));
        assert!(matches!(
            parse(&lua, "{ name = 'x' }").unwrap().proxy,
            ProxyChoice::Run
        ));
        assert!(matches!(
            parse(&lua, "{ proxy = false }").unwrap().proxy,
            ProxyChoice::Direct
        ));
        let ProxyChoice::Via(p) = parse(&lua, "{ proxy = 'http://u:pw@p.test:3128' }")
            .unwrap()
            .proxy
        else {
            panic!("a URL is that proxy");
        };
        assert_eq!((p.host.as_str(), p.port), ("p.test", 3128));
        assert_eq!(p.shown, "http://p.test:3128");
        // "u:pw" in base64: the userinfo becomes Proxy-Authorization.
        assert_eq!(p.auth.as_ref().unwrap(), "Basic dTpwdw==");
    }

    #[test]
    fn a_bad_proxy_is_an_error_naming_the_option() {
        let lua = Lua::new();
        let e = error(&lua, "{ proxy = 'socks5://p.test:1080' }");
        assert!(
            e.contains("self.ws:connect: proxy \"socks5://p.test:1080\": only http:// proxies"),
            "{e}"
        );
        let e = error(&lua, "{ proxy = 'http://p.test/path' }");
        assert!(e.contains("self.ws:connect: proxy"), "{e}");
        assert!(e.contains("no path"), "{e}");
        let e = error(&lua, "{ proxy = true }");
        assert!(
            e.contains("self.ws:connect: proxy must be a proxy URL or false, got a boolean"),
            "{e}"
        );
        let e = error(&lua, "{ proxy = 3128 }");
        assert!(e.contains("proxy must be a proxy URL or false"), "{e}");
        let e = error(&lua, "{ proxi = false }");
        assert!(e.contains("unknown option \"proxi\""), "{e}");
    }

    #[test]
    fn the_other_options_still_parse() {
        let lua = Lua::new();
        let o = parse(
            &lua,
            "{ headers = { ['x-a'] = 'b' }, subprotocols = { 'chat' }, timeout = 2, name = 'n' }",
        )
        .unwrap();
        assert_eq!(o.headers.len(), 1);
        assert_eq!(o.subprotocols, ["chat"]);
        assert_eq!(o.timeout, Some(Duration::from_secs(2)));
        assert_eq!(o.name.as_deref(), Some("n"));
    }
}
