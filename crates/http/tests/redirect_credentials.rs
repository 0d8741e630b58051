//! Redirects and credentials: a redirect that leaves the origin must not
//! take the script's `Authorization`, `Cookie` or `Proxy-Authorization`
//! header to the new host; a redirect within the origin keeps them.

mod common;

use std::sync::{Arc, Mutex};

use http::HeaderValue;
use http::header::{AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION};

use common::*;

const SECRETS: [&str; 3] = ["authorization:", "cookie:", "proxy-authorization:"];

/// Which of the credential headers a request head carried.
fn credentials(head: &str) -> Vec<&'static str> {
    let lower = head.to_ascii_lowercase();
    SECRETS
        .into_iter()
        .filter(|h| lower.lines().any(|l| l.starts_with(h)))
        .collect()
}

fn redirect_to(location: &str) -> Then {
    Then::Reply(
        format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
            .into_bytes(),
    )
}

#[test]
fn a_redirect_to_another_host_drops_the_credentials() {
    // The second server records the heads it got.
    let seen2 = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen2.clone();
    let (addr2, _) = raw_server(move |seen| {
        log.lock().unwrap().push(seen.head.clone());
        Then::Reply(ok("landed"))
    });
    let seen1 = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen1.clone();
    let port2 = addr2.port();
    let (addr1, _) = raw_server(move |seen| {
        log.lock().unwrap().push(seen.head.clone());
        match seen.target.as_str() {
            // Same address, other host name: another origin.
            "/away" => redirect_to(&format!("http://localhost:{port2}/there")),
            "/stay" => redirect_to("/here"),
            _ => Then::Reply(ok("home")),
        }
    });
    let user = User::new(addr1);
    let with_secrets = |path: &str| {
        let mut req = user.request(path);
        req.headers
            .insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
        req.headers
            .insert(COOKIE, HeaderValue::from_static("session=s3cret"));
        req.headers
            .insert(PROXY_AUTHORIZATION, HeaderValue::from_static("Basic eA=="));
        req
    };

    let r = user.send_request(with_secrets("/away"));
    assert_eq!(ok_body(&r), "landed");
    let first = seen1.lock().unwrap().clone();
    assert_eq!(credentials(&first[0]), SECRETS, "{}", first[0]);
    let second = seen2.lock().unwrap().clone();
    assert_eq!(second.len(), 1);
    assert!(credentials(&second[0]).is_empty(), "{}", second[0]);

    // Within the origin, they go along.
    seen1.lock().unwrap().clear();
    let r = user.send_request(with_secrets("/stay"));
    assert_eq!(ok_body(&r), "home");
    let heads = seen1.lock().unwrap().clone();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        assert_eq!(credentials(head), SECRETS, "{head}");
    }
}

#[test]
fn another_port_on_the_same_host_is_another_origin() {
    let seen2 = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen2.clone();
    let (addr2, _) = raw_server(move |seen| {
        log.lock().unwrap().push(seen.head.clone());
        Then::Reply(ok("landed"))
    });
    let port2 = addr2.port();
    let (addr1, _) = raw_server(move |_| redirect_to(&format!("http://127.0.0.1:{port2}/")));
    let user = User::new(addr1);
    let mut req = user.request("/");
    req.headers
        .insert(AUTHORIZATION, HeaderValue::from_static("Bearer s3cret"));
    assert_eq!(ok_body(&user.send_request(req)), "landed");
    let heads = seen2.lock().unwrap().clone();
    assert!(credentials(&heads[0]).is_empty(), "{}", heads[0]);
}
