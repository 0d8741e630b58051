//! Which `Host` names the UI answers to: a guard against DNS rebinding.
//!
//! Without auth, a page on `evil.example` could make its own name resolve
//! to the master's address and then drive the UI as same-origin. The
//! browser still sends `Host: evil.example`, so a request naming a host
//! the server does not know is refused (421) before it reaches a handler.
//!
//! Always allowed: IP literals (a rebinding page cannot make its origin an
//! IP address of ours, and Kubernetes probes and port-forwards use the pod
//! IP or 127.0.0.1), `localhost` and `*.localhost` (browsers resolve them
//! to loopback themselves), and requests without `Host` (HTTP/1.0 tools;
//! browsers always send one). Names must be allowed with
//! `--web-allowed-hosts` (the bind name of `--web-host` is added by the
//! binary); "*" allows any. `/healthz` answers any name for probes.
//!
//! With `--web-auth` or a token the check is off: a rebinding page is
//! another origin to the browser, which sends it no stored credentials,
//! and deployments behind an Ingress keep working unconfigured.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::Shared;

/// The names configured for the UI, resolved once.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    any: bool,
    /// Lowercase, exact.
    names: Vec<String>,
    /// From "*.corp.example": ".corp.example".
    suffixes: Vec<String>,
}

impl AllowedHosts {
    pub fn new(configured: &[String]) -> Self {
        let mut allowed = AllowedHosts::default();
        for name in configured {
            let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
            if name == "*" {
                allowed.any = true;
            } else if let Some(suffix) = name.strip_prefix("*.") {
                allowed.suffixes.push(format!(".{suffix}"));
            } else if !name.is_empty() {
                allowed.names.push(name);
            }
        }
        allowed
    }

    /// Whether a `Host` header value (with or without a port) is ours.
    pub fn allows(&self, host_header: &str) -> bool {
        if self.any {
            return true;
        }
        let host = without_port(host_header.trim());
        if host.parse::<IpAddr>().is_ok() {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == "localhost"
            || host.ends_with(".localhost")
            || self.names.contains(&host)
            || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }
}

/// "a.example:8089" → "a.example"; "[::1]:8089" and "[::1]" → "::1".
fn without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        // One colon: a name or IPv4 with a port; more is a bare IPv6.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Refuses a request whose `Host` is not ours while the UI has no auth.
pub async fn host_guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let secured = app.config.auth.is_some() || app.config.token.is_some();
    let path = req.uri().path();
    if secured || path == "/healthz" || path == app.url("/healthz") {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match host {
        Some(host) if !app.allowed_hosts.allows(&host) => {
            tracing::warn!(
                "refused {} {} for Host {host:?}: not an allowed name",
                req.method(),
                path
            );
            ApiError::ForeignHost(host).into_response()
        }
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_localhost_and_configured_names_pass() {
        let allowed = AllowedHosts::new(&["UI.example".into(), "*.corp.example".into()]);
        for ok in [
            "127.0.0.1:8089",
            "10.0.0.7",
            "[::1]:8089",
            "[fe80::1]",
            "::1",
            "localhost:8089",
            "app.localhost",
            "ui.example:8089",
            "ui.example.",
            "a.b.corp.example",
        ] {
            assert!(allowed.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "ui.example.evil.example:8089",
            "corp.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!allowed.allows(refused), "{refused}");
        }
        assert!(AllowedHosts::new(&["*".into()]).allows("anything.example"));
    }
}
