//! Client certificates chosen by the script: `client_cert`/`client_key` on
//! a user type (`swarmer.user { client_cert = ..., client_key = ... }`) or
//! on one request, overriding the run's `--client-cert`. Paths are
//! relative to the script's directory (as `swarmer.data`'s).
//!
//! A user keeps one [`Session`] per certificate it uses, so a connection
//! opened with one certificate is never pooled for a request made with
//! another (each session has its own pool, and its own cookie jar). The
//! files are read once per core and per pair of paths.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use http_client::settings::{Identity, TlsFiles, load_certs, load_key};
use http_client::{Session, Tls};
use mlua::{Table, Value};

use crate::luax::{fault, type_name};

/// A certificate file and its key file (the same file when the key is
/// in the certificate's PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ClientCert {
    /// `client_cert`/`client_key` of `t` (a user type or a request's
    /// options), resolved against `base`; `None` when neither is given.
    pub fn parse(what: &str, t: &Table, base: &Path) -> mlua::Result<Option<ClientCert>> {
        let cert = path_option(what, "client_cert", t.raw_get("client_cert")?)?;
        let key = path_option(what, "client_key", t.raw_get("client_key")?)?;
        match (cert, key) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(fault(format!(
                "{what}: client_key needs a client_cert to go with it"
            ))),
            (Some(cert), key) => {
                let key = key.unwrap_or_else(|| cert.clone());
                Ok(Some(ClientCert {
                    cert: base.join(cert),
                    key: base.join(key),
                }))
            }
        }
    }

    /// Reads both files and checks the key is the certificate's; the
    /// message names the file at fault.
    pub fn load(&self) -> Result<Arc<Identity>, String> {
        let certs = load_certs(&self.cert).map_err(|e| format!("client_cert {e}"))?;
        let key = load_key(&self.key).map_err(|e| format!("client_key {e}"))?;
        Identity::new(certs, key).map(Arc::new).map_err(|e| {
            format!(
                "client_key {} and client_cert {}: {e}",
                self.key.display(),
                self.cert.display()
            )
        })
    }
}

fn path_option(what: &str, key: &str, v: Value) -> mlua::Result<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        Value::String(s) if !s.as_bytes().is_empty() => Ok(Some(s.to_str()?.to_string())),
        other => Err(fault(format!(
            "{what}: {key} must be a file path (a non-empty string), got a {}",
            type_name(&other)
        ))),
    }
}

/// A certificate's TLS configuration, or why its files are unusable.
type Loaded = Result<Rc<Tls>, String>;

/// One core's TLS configurations by client certificate, each built once
/// from the run's trusted roots plus that certificate.
#[derive(Default)]
pub struct Identities {
    loaded: RefCell<Vec<(ClientCert, Loaded)>>,
}

impl Identities {
    pub fn tls(
        &self,
        cert: &ClientCert,
        insecure: bool,
        run: &TlsFiles,
    ) -> Result<Rc<Tls>, String> {
        if let Some((_, tls)) = self.loaded.borrow().iter().find(|(c, _)| c == cert) {
            return tls.clone();
        }
        let tls = cert.load().map(|identity| {
            let files = TlsFiles {
                extra_roots: run.extra_roots.clone(),
                identity: Some(identity),
            };
            Rc::new(Tls::with_files(insecure, files))
        });
        self.loaded.borrow_mut().push((cert.clone(), tls.clone()));
        tls
    }
}

/// A user's sessions for the certificates it used, besides its default.
#[derive(Default)]
pub struct SessionsByCert {
    sessions: RefCell<Vec<(ClientCert, Rc<Session>)>>,
}

impl SessionsByCert {
    /// The session of `cert`, made with `new` the first time.
    pub fn get(&self, cert: &ClientCert, new: impl FnOnce() -> Session) -> Rc<Session> {
        if let Some((_, s)) = self.sessions.borrow().iter().find(|(c, _)| c == cert) {
            return s.clone();
        }
        let session = Rc::new(new());
        self.sessions
            .borrow_mut()
            .push((cert.clone(), session.clone()));
        session
    }
}
