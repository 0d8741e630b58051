//! Which HTTP a request may speak, and which it spoke.
//!
//! Over TLS the server chooses by ALPN among what the client offers; over
//! plain TCP there is no negotiation, so HTTP/2 there (h2c) is spoken by
//! prior knowledge only when asked for.

/// What a request may speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    /// HTTPS offers h2 and HTTP/1.1 (the server picks); HTTP is HTTP/1.1.
    #[default]
    Auto,
    /// HTTP/1.1 only, even to a server that prefers h2.
    Http1,
    /// HTTP/2 only: h2 by ALPN over TLS, h2c by prior knowledge over TCP.
    Http2,
}

impl HttpVersion {
    /// `auto`, `1.1` (or `1`, `http/1.1`), `2` (or `h2`, `http/2`).
    pub fn parse(s: &str) -> Result<HttpVersion, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(HttpVersion::Auto),
            "1" | "1.1" | "http/1.1" | "http1" => Ok(HttpVersion::Http1),
            "2" | "2.0" | "h2" | "h2c" | "http/2" | "http2" => Ok(HttpVersion::Http2),
            _ => Err(format!("{s:?} is not an HTTP version (auto, 1.1 or 2)")),
        }
    }

    /// The ALPN protocols a TLS connection offers.
    pub fn alpn(self) -> &'static [&'static [u8]] {
        match self {
            HttpVersion::Auto => &[b"h2", b"http/1.1"],
            HttpVersion::Http1 => &[b"http/1.1"],
            HttpVersion::Http2 => &[b"h2"],
        }
    }
}

/// The protocol a response came over (`r.proto`, named as k6 names it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
    Http1,
    Http2,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Http1 => "HTTP/1.1",
            Proto::Http2 => "HTTP/2.0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_or_say_why_not() {
        assert_eq!(HttpVersion::parse("2"), Ok(HttpVersion::Http2));
        assert_eq!(HttpVersion::parse(" HTTP/1.1"), Ok(HttpVersion::Http1));
        assert_eq!(HttpVersion::parse("auto"), Ok(HttpVersion::Auto));
        let e = HttpVersion::parse("3").unwrap_err();
        assert!(e.contains("\"3\""), "{e}");
    }
}
