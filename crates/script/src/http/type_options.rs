//! A user type's HTTP settings: what `swarmer.user { accept_encoding = ...,
//! hosts = { ... } }` declares, merged once per type with the run's flags
//! (`--accept-encoding`, `--resolve`) into what each of its users' clients
//! use. The flags' DNS overrides win over the script's, as `-H` wins over
//! the script's host; the type's client certificate wins over the run's
//! `--client-cert`, and is read when the type is declared, so a bad file
//! fails the load.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use http::HeaderValue;
use http_client::settings::parse_accept_encoding;
use http_client::{HostOverride, HttpVersion, Proxies, Settings};
use mlua::{Table, Value};

use super::identity::ClientCert;
use crate::luax::{fault, type_name};

/// What the script declared on a user type (nothing by default).
#[derive(Debug, Clone, Default)]
pub struct DeclaredHttp {
    /// `Some(None)`: `accept_encoding = false`; `None`: not declared.
    pub accept_encoding: Option<Option<HeaderValue>>,
    pub hosts: Vec<HostOverride>,
    /// `client_cert`/`client_key`, checked readable and matching.
    pub client_cert: Option<ClientCert>,
}

impl DeclaredHttp {
    /// Reads `accept_encoding`, `hosts` and `client_cert`/`client_key`
    /// from a `swarmer.user` table; relative paths from `base_dir`.
    pub fn parse(t: &Table, base_dir: &Path) -> mlua::Result<Self> {
        let client_cert = ClientCert::parse("swarmer.user", t, base_dir)?;
        if let Some(c) = &client_cert {
            c.load().map_err(|e| fault(format!("swarmer.user: {e}")))?;
        }
        let accept_encoding = match t.raw_get::<Value>("accept_encoding")? {
            Value::Nil => None,
            v => Some(accept_encoding("swarmer.user", v)?),
        };
        let hosts = match t.raw_get::<Value>("hosts")? {
            Value::Nil => Vec::new(),
            Value::Table(h) => parse_hosts(&h)?,
            other => {
                return Err(fault(format!(
                    "swarmer.user: hosts must be a table such as {{ [\"example.test\"] = \"127.0.0.1\" }}, got a {}",
                    type_name(&other)
                )));
            }
        };
        Ok(DeclaredHttp {
            accept_encoding,
            hosts,
            client_cert,
        })
    }
}

/// `accept_encoding = false` (send none), `true` (the default list) or a
/// string (sent as given; "none" also turns it off).
pub fn accept_encoding(what: &str, v: Value) -> mlua::Result<Option<HeaderValue>> {
    match v {
        Value::Boolean(false) => Ok(None),
        Value::Boolean(true) => Ok(Settings::default().accept_encoding),
        Value::String(s) => parse_accept_encoding(&s.to_str()?)
            .map_err(|e| fault(format!("{what}: accept_encoding {e}"))),
        other => Err(fault(format!(
            "{what}: accept_encoding must be true, false or a string such as \"gzip\", got a {}",
            type_name(&other)
        ))),
    }
}

fn parse_hosts(t: &Table) -> mlua::Result<Vec<HostOverride>> {
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let (Value::String(from), Value::String(to)) = (&k, &v) else {
            return Err(fault(format!(
                "swarmer.user: hosts maps names to addresses as strings ({{ [\"example.test:443\"] = \"127.0.0.1:8443\" }}), got a {} = a {}",
                type_name(&k),
                type_name(&v)
            )));
        };
        let o = HostOverride::parse_mapping(&from.to_str()?, &to.to_str()?)
            .map_err(|e| fault(format!("swarmer.user: hosts: {e}")))?;
        out.push(o);
    }
    // Table order is not defined: keep lookups reproducible.
    out.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
    Ok(out)
}

/// A user type's settings as its clients use them.
#[derive(Debug)]
pub struct TypeHttp {
    pub accept_encoding: Option<HeaderValue>,
    pub hosts: Rc<[HostOverride]>,
    /// The run's proxies.
    pub proxies: Arc<Proxies>,
    /// The run's `--http-version`.
    pub version: HttpVersion,
    /// The type's client certificate; `None`: the run's, if any.
    pub client_cert: Option<ClientCert>,
}

impl TypeHttp {
    pub fn new(run: &Settings, declared: &DeclaredHttp) -> Rc<Self> {
        let accept_encoding = match &declared.accept_encoding {
            Some(a) => a.clone(),
            None => run.accept_encoding.clone(),
        };
        let hosts: Vec<HostOverride> = run.resolve.iter().chain(&declared.hosts).cloned().collect();
        Rc::new(TypeHttp {
            accept_encoding,
            hosts: Rc::from(hosts),
            proxies: run.proxies.clone(),
            version: run.version,
            client_cert: declared.client_cert.clone(),
        })
    }
}
