//! HTTP/2 through the binary against Debian's nginx, started by the test on
//! loopback with a fresh certificate: h2 over TLS (chosen by ALPN, and
//! forced with `--http-version 2`) and h2c by prior knowledge. The script
//! fails any response that did not come over HTTP/2, and what nginx logged
//! equals what swarmer counted. Without nginx the test is skipped locally
//! and fails under `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{text, wait_with_deadline};

const BIN: &str = env!("CARGO_BIN_EXE_swarmer");

fn nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One process (`master_process off`), so killing it stops all of nginx:
/// with a master, the kill orphaned its worker, which outlived the test.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx with an h2 TLS server on `tls_port` and an h2c one on `h2c_port`,
/// logging one line per request to `access.log`. `listen ... http2` is
/// the form nginx 1.22 (Debian 12) knows; later ones accept it too.
fn start_nginx(bin: &Path, dir: &Path, tls_port: u16, h2c_port: u16) -> Nginx {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let d = dir.display();
    let conf = format!(
        r#"
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/tmp;
  server {{
    listen 127.0.0.1:{tls_port} ssl http2;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    location / {{ return 200 "ok\n"; }}
  }}
  server {{
    listen 127.0.0.1:{h2c_port} http2;
    location / {{ return 200 "ok\n"; }}
  }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin)
        .args(["-c", &format!("{d}/nginx.conf"), "-p", &d.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in [tls_port, h2c_port] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Nginx(child)
}

const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self)
  local tls = self.http:get("https://localhost:TLS_PORT/", { name = "h2" })
  if tls.proto ~= "HTTP/2.0" then tls:failure("came over " .. tls.proto) end
  local c = self.http:get("http://localhost:H2C_PORT/", { name = "h2c", http_version = "2" })
  if c.proto ~= "HTTP/2.0" then c:failure("came over " .. c.proto) end
end)
"#;

#[test]
fn http2_against_nginx_over_tls_and_h2c() {
    let Some(bin) = nginx() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("nginx is missing (Debian package nginx-light); CI must test HTTP/2 against it");
        }
        eprintln!("skipped: nginx is not installed (Debian package nginx-light)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (tls_port, h2c_port) = (free_port(), free_port());
    let _nginx = start_nginx(&bin, dir.path(), tls_port, h2c_port);
    let script = dir.path().join("h2.lua");
    let code = SCRIPT
        .replace("TLS_PORT", &tls_port.to_string())
        .replace("H2C_PORT", &h2c_port.to_string());
    std::fs::write(&script, code).unwrap();
    for version in ["auto", "2"] {
        let before = access_lines(dir.path());
        let child = Command::new(BIN)
            .args(["-f", script.to_str().unwrap(), "--headless", "--no-history"])
            .args(["-u", "2", "-r", "10", "-t", "2s", "--insecure", "--json"])
            .args(["--http-version", version])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_with_deadline(child, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
        let total = json["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "Aggregated")
            .unwrap();
        let requests = total["num_requests"].as_u64().unwrap();
        assert!(requests >= 4, "{json}");
        assert_eq!(total["num_failures"], 0, "{json}");
        let logged = wait_for_log(dir.path(), before + requests);
        assert_eq!(
            logged - before,
            requests,
            "nginx logged what swarmer counted"
        );
        let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
        assert!(
            log.lines()
                .skip(before as usize)
                .all(|l| l.contains("HTTP/2.0")),
            "every request came over HTTP/2: {log}"
        );
    }
}

fn access_lines(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("access.log"))
        .map(|s| s.lines().count() as u64)
        .unwrap_or(0)
}

/// nginx writes a request's line when it is done: wait for `want` lines
/// (bounded), then give the count.
fn wait_for_log(dir: &Path, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = access_lines(dir);
        if n >= want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
