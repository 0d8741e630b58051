//! Base URLs parsed once: where to connect, what to put in `Host`, and how
//! to turn a script's path into a request target without re-parsing a URL
//! on every request.

use http::HeaderValue;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

/// A parsed `http(s)://host[:port][/base/path]`.
#[derive(Debug, Clone)]
pub struct Origin {
    pub scheme: Scheme,
    /// Host to connect to and verify TLS against (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The `Host` header value.
    pub authority: HeaderValue,
    /// `scheme://authority`, to build absolute URLs for cookies and `r.url`.
    pub prefix: String,
    /// The base URL's path without a trailing slash ("" for the root):
    /// Locust joins host and path by plain concatenation, and so do we.
    pub base_path: String,
}

impl Origin {
    pub fn parse(s: &str) -> Result<Origin, String> {
        let url = Url::parse(s).map_err(|e| {
            format!("not a URL ({e}); write it as http://host:port or https://host")
        })?;
        Self::from_url(&url)
    }

    pub fn from_url(url: &Url) -> Result<Origin, String> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(format!("unsupported scheme {other:?} (use http or https)")),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err("the URL has no host".to_string()),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "the URL has no port".to_string())?;
        let host_str = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        let prefix = format!("{}://{authority}", url.scheme());
        let authority = HeaderValue::from_str(&authority)
            .map_err(|_| "the host is not a valid header value".to_string())?;
        Ok(Origin {
            scheme,
            host,
            port,
            authority,
            prefix,
            base_path: url.path().trim_end_matches('/').to_string(),
        })
    }

    /// Whether two origins can share a connection.
    pub fn same_endpoint(&self, other: &Origin) -> bool {
        self.scheme == other.scheme && self.port == other.port && self.host == other.host
    }

    /// The absolute URL of `path_and_query` on this origin.
    pub fn url_of(&self, path_and_query: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + path_and_query.len());
        s.push_str(&self.prefix);
        s.push_str(path_and_query);
        s
    }
}

/// Whether a script's URL argument is absolute (`http://` or `https://`).
pub fn is_absolute(s: &str) -> bool {
    let b = s.as_bytes();
    let starts = |p: &[u8]| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p);
    starts(b"http://") || starts(b"https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts() {
        let o = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (o.scheme, o.host.as_str(), o.port),
            (Scheme::Http, "127.0.0.1", 8080)
        );
        assert_eq!(o.authority, "127.0.0.1:8080");
        assert_eq!(o.base_path, "");
        let o = Origin::parse("https://example.com/api/").unwrap();
        assert_eq!(
            (o.port, o.authority.to_str().unwrap()),
            (443, "example.com")
        );
        assert_eq!(o.base_path, "/api");
        assert_eq!(o.url_of("/x?y=1"), "https://example.com/x?y=1");
        let o = Origin::parse("http://[::1]:81").unwrap();
        assert_eq!(
            (o.host.as_str(), o.authority.to_str().unwrap()),
            ("::1", "[::1]:81")
        );
    }

    #[test]
    fn refuses_non_http() {
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("localhost:8080").is_err());
        assert!(Origin::parse("127.0.0.1").is_err());
    }

    #[test]
    fn absolute_detection() {
        assert!(is_absolute("HTTP://x"));
        assert!(is_absolute("https://x/y"));
        assert!(!is_absolute("/http://"));
        assert!(!is_absolute("item/1"));
    }
}
