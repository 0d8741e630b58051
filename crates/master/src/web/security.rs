//! Authentication (Basic or Bearer) and the cross-site request check.
//!
//! With `--web-auth` or `SWARMER_WEB_TOKEN`, every route but `/healthz`
//! needs credentials. The token is also accepted as a Basic password (any
//! user name), because a browser can prompt for Basic credentials but cannot
//! attach a Bearer token to a page load or to an `EventSource`.
//!
//! Browsers send stored credentials with cross-site form posts, so control
//! requests are also checked for their origin: a request whose `Origin`
//! (or, without it, `Referer`) names another host, or that a browser marks
//! `Sec-Fetch-Site: cross-site`, is refused unless it carries our CSRF token
//! (which a page on another origin cannot read). Clients that send none of
//! these headers (curl, CI scripts) are not browsers and pass.

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::WebConfig;
use super::error::ApiError;
use super::state::{Identity, Shared};

pub const CSRF_HEADER: &str = "x-csrf-token";

/// Paths (relative to the base) that change state even on GET, kept for
/// older Locust scripts; they get the same cross-site check as a POST.
const CONTROL_GETS: [&str; 2] = ["/stop", "/stats/reset"];

pub async fn authenticate(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || path == app.url("/healthz") {
        return next.run(req).await;
    }
    let addr = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    match check_credentials(&app.config, req.headers()) {
        Ok(user) => {
            req.extensions_mut().insert(Identity { user, addr });
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// `Ok(None)` when auth is off, `Ok(Some(user))` when the credentials fit.
pub fn check_credentials(
    config: &WebConfig,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    if config.auth.is_none() && config.token.is_none() {
        return Ok(None);
    }
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let (scheme, rest) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return match &config.token {
            Some(token) if same(rest, token) => Ok(Some("token".to_string())),
            _ => Err(ApiError::Unauthorized),
        };
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::Unauthorized);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(ApiError::Unauthorized)?;
    let (user, password) = decoded.split_once(':').ok_or(ApiError::Unauthorized)?;
    // Both comparisons always run, so timing does not tell which one failed.
    let by_password = config
        .auth
        .as_ref()
        .is_some_and(|(u, p)| same(user, u) & same(password, p));
    let by_token = config.token.as_ref().is_some_and(|t| same(password, t));
    if by_password | by_token {
        Ok(Some(user.to_string()))
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Constant-time for equal lengths; a length mismatch reveals only that.
fn same(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

pub async fn csrf_guard(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let relative = req
        .uri()
        .path()
        .strip_prefix(app.base.as_str())
        .unwrap_or("");
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe && !CONTROL_GETS.contains(&relative) {
        return next.run(req).await;
    }
    match check_same_origin(req.headers(), &app.csrf_token) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!("refused {} {}: {e}", req.method(), req.uri().path());
            e.into_response()
        }
    }
}

/// Passes same-origin browser requests, requests with our CSRF token, and
/// requests from non-browser clients.
pub fn check_same_origin(headers: &HeaderMap, csrf_token: &str) -> Result<(), ApiError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(token) = text(CSRF_HEADER) {
        return if same(token, csrf_token) {
            Ok(())
        } else {
            Err(ApiError::CrossSite(
                "refused: the CSRF token does not match; reload the page".into(),
            ))
        };
    }
    if text("sec-fetch-site") == Some("cross-site") {
        return Err(ApiError::CrossSite(
            "refused a cross-site request from a browser".into(),
        ));
    }
    let hosts: Vec<&str> = [text("host"), text("x-forwarded-host")]
        .into_iter()
        .flatten()
        .collect();
    let (header, source) = match (text("origin"), text("referer")) {
        (Some(origin), _) => ("Origin", origin),
        (None, Some(referer)) => ("Referer", referer),
        (None, None) => return Ok(()),
    };
    match authority(source) {
        Some(from) if hosts.iter().any(|h| h.eq_ignore_ascii_case(from)) => Ok(()),
        _ => Err(ApiError::CrossSite(format!(
            "refused a cross-site request: {header} {source:?} does not match the host {:?}",
            hosts.first().copied().unwrap_or("")
        ))),
    }
}

/// "https://a.example:8089/x?y" → "a.example:8089"; `None` for "null".
fn authority(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Credentials in a URL ("user@host") are not part of the host.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    (!authority.is_empty()).then_some(authority)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn origin_must_match_host() {
        let ok = headers(&[("host", "h:8089"), ("origin", "http://h:8089")]);
        assert!(check_same_origin(&ok, "t").is_ok());
        let evil = headers(&[("host", "h:8089"), ("origin", "http://evil.example")]);
        assert!(check_same_origin(&evil, "t").is_err());
        let null = headers(&[("host", "h:8089"), ("origin", "null")]);
        assert!(check_same_origin(&null, "t").is_err());
        let referer = headers(&[("host", "h"), ("referer", "http://h/swarmer/")]);
        assert!(check_same_origin(&referer, "t").is_ok());
        let cli = headers(&[("host", "h")]);
        assert!(check_same_origin(&cli, "t").is_ok());
        let token = headers(&[
            ("host", "h"),
            ("origin", "http://proxy"),
            (CSRF_HEADER, "t"),
        ]);
        assert!(check_same_origin(&token, "t").is_ok());
        let bad_token = headers(&[("host", "h"), (CSRF_HEADER, "x")]);
        assert!(check_same_origin(&bad_token, "t").is_err());
        let fetch = headers(&[("host", "h"), ("sec-fetch-site", "cross-site")]);
        assert!(check_same_origin(&fetch, "t").is_err());
    }

    #[test]
    fn authority_ignores_path_and_userinfo() {
        assert_eq!(authority("https://a:1/x?y"), Some("a:1"));
        assert_eq!(authority("http://u:p@a/"), Some("a"));
        assert_eq!(authority("null"), None);
    }
}
