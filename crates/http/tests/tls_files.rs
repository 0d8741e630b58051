//! TLS with the run's own files: a CA certificate added to the trusted
//! roots (`--ca-cert`) and a client certificate (`--client-cert`/
//! `--client-key`) presented to a server that requires one (mTLS). The
//! certificates come from rcgen, the server is rustls on 127.0.0.1:0.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;

use http_client::settings::{Identity, TlsFiles, load_certs, load_key};
use http_client::{Origin, Tls};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use common::*;

/// A CA, a server certificate for "localhost" and a client certificate,
/// both signed by the CA.
struct Pki {
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client_pem: (String, String),
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert, key)
    };
    let (server, server_key) = leaf("localhost");
    let (client, client_key) = leaf("client");
    let der_key = |k: &KeyPair| PrivateKeyDer::try_from(k.serialize_der()).unwrap();
    Pki {
        ca: ca.der().clone(),
        server: (server.der().clone(), der_key(&server_key)),
        client_pem: (client.pem(), client_key.serialize_pem()),
        client: (client.der().clone(), der_key(&client_key)),
    }
}

/// A server that requires a client certificate signed by the CA and
/// answers "hello" to each request.
fn mtls_server(pki: &Pki) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tls.write_all(&ok("hello"));
                let _ = tls.flush();
            });
        }
    });
    addr
}

/// One GET of https://localhost:PORT/ with these TLS settings.
fn get(addr: SocketAddr, tls: Tls) -> http_client::Reply {
    let mut user = User::new(addr);
    user.origin = Rc::new(Origin::parse(&format!("https://localhost:{}", addr.port())).unwrap());
    user.tls = tls;
    user.get("/")
}

#[test]
fn a_server_requiring_a_client_certificate_gets_ours() {
    let pki = pki();
    let addr = mtls_server(&pki);
    let identity = Identity::new(vec![pki.client.0.clone()], pki.client.1.clone_key()).unwrap();
    let files = TlsFiles {
        extra_roots: vec![pki.ca.clone()],
        identity: Some(Arc::new(identity)),
    };
    let r = get(addr, Tls::with_files(false, files.clone()));
    assert_eq!(ok_body(&r), "hello");

    // Without a client certificate the server refuses the handshake.
    let no_client = TlsFiles {
        identity: None,
        ..files
    };
    let r = get(addr, Tls::with_files(false, no_client));
    let err = r.error.expect("refused").to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // Without the CA, the server's certificate is not trusted.
    let r = get(addr, Tls::new(false));
    let err = r.error.expect("untrusted").to_string();
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn certificate_files_are_read_and_checked() {
    let pki = pki();
    let dir = std::env::temp_dir().join(format!("swarmer-tls-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("client.pem");
    let key = dir.join("client.key");
    std::fs::write(&cert, &pki.client_pem.0).unwrap();
    std::fs::write(&key, &pki.client_pem.1).unwrap();
    let certs = load_certs(&cert).unwrap();
    assert_eq!(certs, vec![pki.client.0.clone()]);
    let k = load_key(&key).unwrap();
    assert!(Identity::new(certs.clone(), k).is_ok());

    // Another key: refused, saying so.
    let other = KeyPair::generate().unwrap();
    let other = PrivateKeyDer::try_from(other.serialize_der()).unwrap();
    let err = Identity::new(certs, other).unwrap_err();
    assert!(err.contains("does not go with"), "{err}");

    // Unreadable, or not PEM: the error names the file.
    let missing = dir.join("missing.pem");
    let err = load_certs(&missing).unwrap_err();
    assert!(err.contains("missing.pem"), "{err}");
    let err = load_certs(&key).unwrap_err();
    assert!(
        err.contains("client.key") && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = load_key(&cert).unwrap_err();
    assert!(err.contains("client.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
