//! The rustls client configuration: one per core, built on first HTTPS use,
//! verifying certificates against the webpki roots (plus `--ca-cert`'s)
//! unless the run was started with `insecure_tls` (test servers with
//! self-signed certificates), and presenting `--client-cert` when given.
//! The files are read and checked once, before the run ([`TlsFiles`]).

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::version::HttpVersion;

/// One core's TLS client configuration, built on first HTTPS use (most
/// runs never need it) and shared by every connection on that core.
pub struct Tls {
    insecure: bool,
    files: TlsFiles,
    config: OnceCell<Result<Arc<ClientConfig>, String>>,
    /// The same without ALPN, for raw sockets: their protocol is not
    /// HTTP, and a server with other ALPN protocols would refuse ours.
    raw: OnceCell<Result<Arc<ClientConfig>, String>>,
    /// The same configuration offering other ALPN protocols, by
    /// [`HttpVersion`]: at most three, each made once.
    by_version: RefCell<Vec<(HttpVersion, Arc<ClientConfig>)>>,
}

impl Tls {
    /// `insecure`: accept any certificate (test servers only).
    pub fn new(insecure: bool) -> Self {
        Tls::with_files(insecure, TlsFiles::default())
    }

    /// With extra trusted roots and a client certificate.
    pub fn with_files(insecure: bool, files: TlsFiles) -> Self {
        Tls {
            insecure,
            files,
            config: OnceCell::new(),
            raw: OnceCell::new(),
            by_version: RefCell::default(),
        }
    }

    /// The configuration, or why it could not be built. It offers
    /// HTTP/1.1 only by ALPN (for other protocols over TLS, such as
    /// WebSocket).
    pub fn config(&self) -> Result<Arc<ClientConfig>, String> {
        self.for_version(HttpVersion::Http1)
    }

    /// The configuration offering `version`'s ALPN protocols.
    pub fn for_version(&self, version: HttpVersion) -> Result<Arc<ClientConfig>, String> {
        if let Some((_, c)) = self.by_version.borrow().iter().find(|(v, _)| *v == version) {
            return Ok(c.clone());
        }
        let base = self
            .config
            .get_or_init(|| {
                client_config(self.insecure, &self.files)
                    .map_err(|e| format!("TLS setup failed: {e}"))
            })
            .clone()?;
        let mut config = (*base).clone();
        config.alpn_protocols = version.alpn().iter().map(|p| p.to_vec()).collect();
        let config = Arc::new(config);
        self.by_version.borrow_mut().push((version, config.clone()));
        Ok(config)
    }

    /// [`Tls::config`] offering no ALPN protocol (raw TLS sockets).
    pub fn raw_config(&self) -> Result<Arc<ClientConfig>, String> {
        self.raw
            .get_or_init(|| {
                let mut config = ClientConfig::clone(&*self.config()?);
                config.alpn_protocols.clear();
                Ok(Arc::new(config))
            })
            .clone()
    }
}

/// Certificates read from files: roots to trust besides the webpki ones,
/// and the identity to present to servers that ask for one.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub identity: Option<Arc<Identity>>,
}

/// A client certificate chain and its private key, known to match.
#[derive(Debug)]
pub struct Identity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Refuses a key that is not the certificate's.
    pub fn new(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Identity, String> {
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(certs.clone(), key.clone_key(), &provider)
            .map_err(|e| format!("the key does not go with the certificate ({e})"))?;
        Ok(Identity { certs, key })
    }
}

/// Every certificate of a PEM file; none is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: not a PEM certificate file ({e})"))?;
    if certs.is_empty() {
        return Err(format!("{shown}: no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{shown}: no PEM private key in the file ({e})"))
}

fn client_config(insecure: bool, files: &TlsFiles) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(
                provider.signature_verification_algorithms,
            )))
    } else {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in &files.extra_roots {
            roots.add(cert.clone())?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match &files.identity {
        Some(id) => builder.with_client_auth_cert(id.certs.clone(), id.key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any certificate but still checks handshake signatures, so the
/// connection is encrypted, only not authenticated.
#[derive(Debug)]
struct AcceptAnything(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
