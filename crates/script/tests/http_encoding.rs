//! What goes on the wire for a script's URLs (percent-encoding of spaces
//! and non-ASCII text) and what comes back compressed: a raw server that
//! answers exactly the bytes a test chooses and sees the request line as
//! sent.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::*;
use script::RuntimeConfig;

const MAX: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1:0 that answers each request with
/// `answer(request head)`: (extra header lines, body bytes).
fn raw_server(answer: impl Fn(&str) -> (String, Vec<u8>) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        // Raw bytes shown as \xNN, so the test sees what was sent.
                        let head: String = buf[..end]
                            .iter()
                            .flat_map(|&b| std::ascii::escape_default(b))
                            .map(char::from)
                            .collect();
                        buf.drain(..end + 4);
                        let (headers, body) = answer(&head);
                        let mut out = format!(
                            "HTTP/1.1 200 OK\r\n{headers}Content-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(&body);
                        if stream.write_all(&out).is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

/// Runs one user of `code` once through its task (it sets `self.done`).
fn run_once(code: &str, config: RuntimeConfig, requests: u64) -> stats::RequestStats {
    run_users(
        code,
        config,
        &[("U", 1)],
        |s| s.num_requests() >= requests || s.exceptions().next().is_some(),
        MAX,
    )
}

#[test]
fn spaces_and_non_ascii_are_percent_encoded_on_the_request_line() {
    let addr = raw_server(|head| {
        let line = head.split("\\r\\n").next().unwrap_or("").to_string();
        (String::new(), line.into_bytes())
    });
    let code = with_host(
        &format!(
            r#"
local U = swarmer.user {{ name = "U", host = HOST }}
local function expect(r, want)
  if r.body ~= want then r:failure(r.body) end
end
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  expect(self.http:get("/café x?q=naïve y", {{ name = "rel" }}),
    "GET /caf%C3%A9%20x?q=na%C3%AFve%20y HTTP/1.1")
  expect(self.http:get("http://{addr}/a b/日本?x=1%2F2", {{ name = "abs" }}),
    "GET /a%20b/%E6%97%A5%E6%9C%AC?x=1%2F2 HTTP/1.1")
  expect(self.http:get("/100%/x", {{ name = "pct", query = {{ k = "v w" }} }}),
    "GET /100%25/x?k=v+w HTTP/1.1")
end)
"#
        ),
        addr,
    );
    let stats = run_once(&code, RuntimeConfig::default(), 3);
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    let errors: Vec<String> = stats.errors().keys().map(|k| k.error.clone()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    for name in ["rel", "abs", "pct"] {
        assert_eq!(count(&stats, "GET", name), (1, 0), "{name}");
    }
}
