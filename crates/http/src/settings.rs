//! The run's HTTP settings, parsed and checked once before any request:
//! the `Accept-Encoding` offered by default, proxies, TLS files and DNS
//! overrides (curl's `--resolve HOST:PORT:ADDR`, k6's `hosts`). A bad
//! value is an error that quotes it, so the command line or the script
//! can name it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::HeaderValue;

pub use crate::proxy::Proxies;
pub use crate::tls::{Identity, TlsFiles, load_certs, load_key};
pub use crate::version::HttpVersion;

/// What the client offers unless told otherwise: every coding it decodes.
pub const DEFAULT_ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";

/// Settings shared by every user of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `Accept-Encoding` sent when the script sets none; `None`: none.
    pub accept_encoding: Option<HeaderValue>,
    /// Where to connect instead of asking DNS (`--resolve`).
    pub resolve: Vec<HostOverride>,
    /// `--ca-cert`, `--client-cert`/`--client-key`, already read.
    pub tls: TlsFiles,
    /// `--proxy`, or the environment's `HTTP_PROXY` and its kin.
    pub proxies: Arc<Proxies>,
    /// `--http-version`: what requests may speak unless they say.
    pub version: HttpVersion,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            accept_encoding: Some(HeaderValue::from_static(DEFAULT_ACCEPT_ENCODING)),
            resolve: Vec::new(),
            tls: TlsFiles::default(),
            proxies: Arc::default(),
            version: HttpVersion::Auto,
        }
    }
}

/// `none` (or `identity`, or empty) turns the header off; anything else is
/// sent as given, after checking it can be a header value.
pub fn parse_accept_encoding(s: &str) -> Result<Option<HeaderValue>, String> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    HeaderValue::from_str(t)
        .map(Some)
        .map_err(|_| format!("{s:?} is not a valid header value"))
}

/// One DNS override: connections to `host` (on `port`, or any port) go to
/// `ip` (on `to_port`, or the URL's port). TLS still verifies and sends
/// SNI for `host`: only the address changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOverride {
    /// Lower-case, IPv6 without brackets (as `Origin::host`).
    pub host: String,
    pub port: Option<u16>,
    pub ip: IpAddr,
    pub to_port: Option<u16>,
}

impl HostOverride {
    /// curl's `HOST:PORT:ADDR` (ADDR an IP address, IPv6 in brackets or
    /// not): connections to HOST on PORT go to ADDR on PORT.
    pub fn parse_curl(s: &str) -> Result<HostOverride, String> {
        let shape = || format!("{s:?} is not HOST:PORT:ADDRESS (e.g. example.test:443:127.0.0.1)");
        let (host, rest) = split_host(s).ok_or_else(shape)?;
        let (port, addr) = rest.split_once(':').ok_or_else(shape)?;
        let port = parse_port(port).ok_or_else(shape)?;
        let ip = parse_ip(addr).ok_or_else(|| format!("{s:?}: {addr:?} is not an IP address"))?;
        Ok(HostOverride {
            host: host_key(host).ok_or_else(shape)?,
            port: Some(port),
            ip,
            to_port: None,
        })
    }

    /// k6's `hosts` entry: `"host"` or `"host:port"` mapped to `"ip"` or
    /// `"ip:port"`.
    pub fn parse_mapping(from: &str, to: &str) -> Result<HostOverride, String> {
        let (host, port) = match split_host(from) {
            Some((h, p)) => (h, Some(parse_port(p).ok_or_else(|| bad_port(from))?)),
            None => (from, None),
        };
        let host = host_key(host).ok_or_else(|| format!("{from:?} is not a host name"))?;
        let (ip, to_port) = match to.parse::<SocketAddr>() {
            Ok(a) => (a.ip(), Some(a.port())),
            Err(_) => (
                parse_ip(to).ok_or_else(|| {
                    format!("{to:?} is not an IP address or IP:PORT (for {from:?})")
                })?,
                None,
            ),
        };
        Ok(HostOverride {
            host,
            port,
            ip,
            to_port,
        })
    }

    /// Where to connect for `host:port`, if this entry covers it.
    pub fn target(&self, host: &str, port: u16) -> Option<SocketAddr> {
        let covers = self.host.eq_ignore_ascii_case(host) && self.port.is_none_or(|p| p == port);
        covers.then(|| SocketAddr::new(self.ip, self.to_port.unwrap_or(port)))
    }
}

/// The first override covering `host:port` (one naming the port wins over
/// one for any port).
pub fn lookup(overrides: &[HostOverride], host: &str, port: u16) -> Option<SocketAddr> {
    let exact = overrides
        .iter()
        .filter(|o| o.port.is_some())
        .find_map(|o| o.target(host, port));
    exact.or_else(|| overrides.iter().find_map(|o| o.target(host, port)))
}

/// `host:rest` with the host possibly a bracketed IPv6 address.
fn split_host(s: &str) -> Option<(&str, &str)> {
    if let Some(inner) = s.strip_prefix('[') {
        let (h, rest) = inner.split_once(']')?;
        return Some((h, rest.strip_prefix(':')?));
    }
    s.split_once(':')
}

fn host_key(host: &str) -> Option<String> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    valid.then(|| h.to_ascii_lowercase())
}

fn parse_port(s: &str) -> Option<u16> {
    s.parse::<u16>().ok().filter(|&p| p != 0)
}

fn bad_port(s: &str) -> String {
    format!("{s:?}: the port must be a number from 1 to 65535")
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_entries() {
        let o = HostOverride::parse_curl("Example.Test:8443:127.0.0.1").unwrap();
        assert_eq!(o.host, "example.test");
        assert_eq!(
            lookup(std::slice::from_ref(&o), "example.test", 8443),
            Some("127.0.0.1:8443".parse().unwrap())
        );
        assert_eq!(lookup(&[o], "example.test", 443), None);
        let v6 = HostOverride::parse_curl("api.test:443:[::1]").unwrap();
        assert_eq!(v6.ip, "::1".parse::<IpAddr>().unwrap());
        for bad in [
            "example.test",
            "example.test:443",
            "example.test:http:127.0.0.1",
            "example.test:0:127.0.0.1",
            "example.test:443:not-an-ip",
            ":443:127.0.0.1",
        ] {
            let err = HostOverride::parse_curl(bad).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn k6_mappings() {
        let any = HostOverride::parse_mapping("example.test", "127.0.0.1").unwrap();
        let one = HostOverride::parse_mapping("example.test:443", "127.0.0.2:8443").unwrap();
        let all = [any, one];
        assert_eq!(
            lookup(&all, "EXAMPLE.test", 80),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            lookup(&all, "example.test", 443),
            Some("127.0.0.2:8443".parse().unwrap())
        );
        assert_eq!(lookup(&all, "other.test", 80), None);
        assert!(HostOverride::parse_mapping("example.test", "somewhere").is_err());
        assert!(HostOverride::parse_mapping("example.test:x", "127.0.0.1").is_err());
        assert!(HostOverride::parse_mapping("bad host", "127.0.0.1").is_err());
    }

    #[test]
    fn accept_encoding_values() {
        assert_eq!(parse_accept_encoding("none"), Ok(None));
        assert_eq!(parse_accept_encoding(""), Ok(None));
        assert_eq!(
            parse_accept_encoding("gzip").unwrap().unwrap(),
            HeaderValue::from_static("gzip")
        );
        assert!(parse_accept_encoding("gzip\n").is_ok());
        assert!(parse_accept_encoding("a\u{7f}b").is_err());
    }
}
