//! DNS overrides: a user type's `hosts` table (k6's) and the run's
//! `--resolve` entries send a URL's host name to a chosen address, while
//! the `Host` header and the TLS server name (SNI) still follow the URL.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use script::RuntimeConfig;
use script::http_settings::HostOverride;

const MAX: Duration = Duration::from_secs(10);

fn run(code: &str, config: RuntimeConfig, requests: u64) -> stats::RequestStats {
    let stats = run_users(
        code,
        config,
        &[("U", 1)],
        |s| s.num_requests() >= requests || s.exceptions().next().is_some(),
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    let errors: Vec<String> = stats
        .errors()
        .keys()
        .map(|k| format!("{}: {}", k.name, k.error))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(stats.num_requests(), requests);
    stats
}

/// A user that checks the `Host` header the target saw for `url`.
fn host_check(user_opts: &str, url: &str, want_host: &str) -> String {
    format!(
        r#"
local U = swarmer.user {{ name = "U"{user_opts} }}
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local r = self.http:get("{url}", {{ name = "echo" }})
  if not r.ok then return end
  local host = r:json().headers.host
  if host ~= "{want_host}" then r:failure("Host " .. tostring(host)) end
end)
"#
    )
}

#[test]
fn a_hosts_table_sends_a_name_to_an_address() {
    let addr = start_server();
    let port = addr.port();
    // Any port of the name.
    let code = host_check(
        r#", host = "http://example.test:PORT", hosts = { ["example.test"] = "127.0.0.1" }"#,
        "/echo",
        "example.test:PORT",
    )
    .replace("PORT", &port.to_string());
    run(&code, RuntimeConfig::default(), 1);
    // One port of the name, to another address and port.
    let code = host_check(
        r#", hosts = { ["Example.Test:1"] = "ADDR" }"#,
        "http://example.test:1/echo",
        "example.test:1",
    )
    .replace("ADDR", &addr.to_string());
    run(&code, RuntimeConfig::default(), 1);
}

#[test]
fn resolve_entries_apply_to_every_user_type() {
    let addr = start_server();
    let code = host_check(
        "",
        &format!("http://example.test:{}/echo", addr.port()),
        &format!("example.test:{}", addr.port()),
    );
    let entry = format!("example.test:{}:127.0.0.1", addr.port());
    let config = RuntimeConfig {
        http: script::HttpSettings {
            resolve: vec![HostOverride::parse_curl(&entry).unwrap()],
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    run(&code, config, 1);
}

#[test]
fn bad_hosts_entries_are_script_errors() {
    for (hosts, want) in [
        (
            r#"{ ["example.test"] = "nowhere" }"#,
            "is not an IP address",
        ),
        (
            r#"{ ["example.test:x"] = "127.0.0.1" }"#,
            "the port must be",
        ),
        (r#""example.test""#, "hosts must be a table"),
    ] {
        let code = format!(
            "local U = swarmer.user {{ name = \"U\", hosts = {hosts} }}\nU:task(function(self) end)\n"
        );
        let Err(err) = script::inspect(&source(&code)) else {
            panic!("{hosts} was accepted");
        };
        let text = err.to_string();
        assert!(
            text.contains("swarmer.user") && text.contains(want),
            "{text}"
        );
    }
}

/// A TLS server (any certificate will do: the client runs insecure) that
/// answers each request with the server name the client sent.
fn sni_server() -> SocketAddr {
    let ck = rcgen::generate_simple_self_signed(vec!["example.test".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
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
                let sni = tls.conn.server_name().unwrap_or("-").to_string();
                let out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{sni}",
                    sni.len()
                );
                let _ = tls.write_all(out.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

#[test]
fn tls_names_the_urls_host_whatever_the_address() {
    let addr = sni_server();
    let code = format!(
        r#"
local U = swarmer.user {{ name = "U", host = "https://example.test:{port}",
  hosts = {{ ["example.test"] = "127.0.0.1" }} }}
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  local r = self.http:get("/", {{ name = "sni" }})
  if r.ok and r.body ~= "example.test" then r:failure("SNI " .. r.body) end
end)
"#,
        port = addr.port()
    );
    let config = RuntimeConfig {
        insecure_tls: true,
        ..Default::default()
    };
    run(&code, config, 1);
}
