//! Client certificates chosen by the script: per user type and per
//! request, against a server that requires one (mTLS) and answers with the
//! name of the certificate it was shown. Connections are pooled per
//! certificate; a file that cannot be read fails the load (user type) or
//! the request (request option), naming the file.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use http_client::settings::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use script::{HttpSettings, RuntimeConfig, ScriptError};

/// A CA, the server's certificate for "localhost", and two client
/// certificates ("alice", "bob") written as PEM files into `dir`.
struct Pki {
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    clients: Vec<(String, CertificateDer<'static>)>,
}

fn pki(dir: &Path) -> Pki {
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
    let mut clients = Vec::new();
    for name in ["alice", "bob"] {
        let (cert, key) = leaf(name);
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        clients.push((name.to_string(), cert.der().clone()));
    }
    Pki {
        ca: ca.der().clone(),
        server: (
            server.der().clone(),
            PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        ),
        clients,
    }
}

/// A keep-alive HTTPS server that requires a client certificate signed by
/// the CA and answers every request with the name of the certificate its
/// connection presented.
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
    let clients = Arc::new(pki.clients.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let (config, clients) = (config.clone(), clients.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let shown = tls.conn.peer_certificates().and_then(|c| c.first());
                        let name = clients
                            .iter()
                            .find(|(_, der)| Some(der) == shown)
                            .map_or("unknown", |(n, _)| n.as_str());
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                            name.len()
                        );
                        if tls.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                    match tls.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swarmer-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const SCRIPT: &str = r#"
local function expect(r, who)
  if r.body ~= who then r:failure("expected " .. who .. ", got " .. tostring(r.body) .. " " .. tostring(r.error)) end
end
local A = swarmer.user { name = "A", host = HOST, client_cert = "alice.pem", client_key = "alice.key" }
A:task(function(self)
  expect(self.http:get("/", { name = "alice" }), "alice")
  -- The same origin with another certificate: never alice's connection.
  expect(self.http:get("/", { name = "alice as bob", client_cert = "bob.pem", client_key = "bob.key" }), "bob")
  expect(self.http:get("/", { name = "alice again" }), "alice")
  swarmer.sleep(0.05)
end)
local B = swarmer.user { name = "B", host = HOST, client_cert = "bob.pem", client_key = "bob.key" }
B:task(function(self)
  expect(self.http:get("/", { name = "bob" }), "bob")
  swarmer.sleep(0.05)
end)
local N = swarmer.user { name = "N", host = HOST }
N:task(function(self)
  self.http:get("/", { name = "no certificate" })
  self.http:get("/", { name = "missing file", client_cert = "nowhere.pem" })
  swarmer.sleep(0.05)
end)
"#;

#[test]
fn each_user_and_request_shows_its_own_certificate() {
    let dir = temp_dir("client-certs");
    let pki = pki(&dir);
    let addr = mtls_server(&pki);
    let code = SCRIPT.replace("HOST", &format!("\"https://localhost:{}\"", addr.port()));
    let http = HttpSettings {
        tls: TlsFiles {
            extra_roots: vec![pki.ca.clone()],
            identity: None,
        },
        ..Default::default()
    };
    let config = RuntimeConfig {
        http: Arc::new(http),
        base_dir: Some(dir.clone()),
        ..Default::default()
    };
    let names = [
        "alice",
        "alice as bob",
        "alice again",
        "bob",
        "no certificate",
        "missing file",
    ];
    let stats = run_users(
        &code,
        config,
        &[("A", 1), ("B", 1), ("N", 1)],
        |s| {
            names
                .iter()
                .all(|n| s.entry("GET", n).is_some_and(|e| e.num_requests >= 2))
        },
        Duration::from_secs(10),
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    for name in ["alice", "alice as bob", "alice again", "bob"] {
        let (requests, failures) = count(&stats, "GET", name);
        let errors: Vec<_> = stats.errors().keys().map(|k| (&k.name, &k.error)).collect();
        assert!(requests >= 2 && failures == 0, "{name}: {errors:?}");
    }
    let refused = stats
        .errors()
        .keys()
        .find(|k| k.name == "no certificate")
        .expect("the server refuses a request without a certificate");
    assert!(
        refused.error.to_lowercase().contains("certificate"),
        "{}",
        refused.error
    );
    let missing = stats
        .errors()
        .keys()
        .find(|k| k.name == "missing file")
        .expect("an unreadable certificate fails the request");
    assert!(
        missing.error.contains("client_cert") && missing.error.contains("nowhere.pem"),
        "{}",
        missing.error
    );
}

#[test]
fn a_user_types_bad_certificate_fails_the_load_naming_the_file() {
    let dir = temp_dir("client-certs-load");
    pki(&dir);
    let load = |cert: &str, key: &str| {
        let code = format!(
            "local U = swarmer.user {{ name = \"U\", client_cert = {cert:?}, client_key = {key:?} }}\nU:task(function(self) end)\n"
        );
        match script::inspect(&source(&code)) {
            Err(ScriptError::Load { message }) => message,
            other => panic!("expected a load error, got {other:?}"),
        }
    };
    let missing = dir.join("missing.pem");
    let msg = load(missing.to_str().unwrap(), missing.to_str().unwrap());
    assert!(
        msg.contains("client_cert") && msg.contains("missing.pem"),
        "{msg}"
    );
    let (alice, bob_key) = (dir.join("alice.pem"), dir.join("bob.key"));
    let msg = load(alice.to_str().unwrap(), bob_key.to_str().unwrap());
    assert!(
        msg.contains("does not go with") && msg.contains("bob.key"),
        "{msg}"
    );
}
