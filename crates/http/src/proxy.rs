//! Forward proxies: which requests go through one (`--proxy`, or
//! `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` as curl, requests and Go read
//! them, or a connection's own choice: [`ProxyChoice::pick`], the one rule
//! HTTP and WebSocket follow), and the CONNECT tunnel an HTTPS request or
//! any WebSocket opens through it.
//!
//! Plain HTTP goes to the proxy with the absolute URL on the request line;
//! HTTPS asks the proxy for a tunnel and speaks TLS with the origin inside
//! it, so certificates and SNI still name the origin. Credentials in the
//! proxy URL become `Proxy-Authorization: Basic`.
//!
//! Like Go (and so k6), proxies taken from the environment never carry
//! requests to `localhost` or a loopback address: a machine-wide proxy
//! setting must not turn a test of a local server into a test of the
//! proxy. `--proxy` is explicit and applies to every host not in
//! `NO_PROXY`.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::BytesMut;
use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

use crate::origin::{Origin, Scheme};

/// A proxy's response head to CONNECT longer than this is refused.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// One forward proxy (an `http://` URL).
#[derive(Debug)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization`, from the URL's user and password.
    pub auth: Option<HeaderValue>,
    /// The URL without its credentials, for messages.
    pub shown: String,
}

impl Proxy {
    /// `http://[user[:password]@]host[:port]` (port 80 by default; a URL
    /// without a scheme is read as http, as curl does).
    pub fn parse(s: &str) -> Result<Arc<Proxy>, String> {
        let t = s.trim();
        let with_scheme = if t.contains("://") {
            t.to_string()
        } else {
            format!("http://{t}")
        };
        let url =
            Url::parse(&with_scheme).map_err(|e| format!("{s:?} is not a proxy URL ({e})"))?;
        if url.scheme() != "http" {
            return Err(format!(
                "{s:?}: only http:// proxies are supported (HTTPS requests still go through \
                 them, in a CONNECT tunnel)"
            ));
        }
        let origin = Origin::from_url(&url).map_err(|e| format!("{s:?}: {e}"))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(format!("{s:?}: a proxy URL has no path or query"));
        }
        let auth = match (url.username(), url.password()) {
            ("", None) => None,
            (user, password) => Some(basic_auth(user, password.unwrap_or(""))?),
        };
        Ok(Arc::new(Proxy {
            shown: format!("http://{}", origin.authority.to_str().unwrap_or("?")),
            host: origin.host,
            port: origin.port,
            auth,
        }))
    }

    /// The same proxy (for a connection made through one to be reused).
    pub fn same(&self, other: &Proxy) -> bool {
        self.host == other.host && self.port == other.port && self.auth == other.auth
    }
}

fn basic_auth(user: &str, password: &str) -> Result<HeaderValue, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| "the proxy credentials are not UTF-8 once decoded".to_string())
    };
    let pair = format!("{}:{}", decode(user)?, decode(password)?);
    let token = base64::engine::general_purpose::STANDARD.encode(pair);
    HeaderValue::from_str(&format!("Basic {token}"))
        .map_err(|_| "the proxy credentials cannot be a header value".to_string())
}

/// The run's proxies: one per scheme, and the hosts that go direct.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    http: Option<Arc<Proxy>>,
    https: Option<Arc<Proxy>>,
    no_proxy: Vec<NoProxy>,
    /// Taken from the environment: loopback hosts go direct.
    from_env: bool,
}

impl Proxies {
    /// No proxy at all.
    pub fn none() -> Self {
        Proxies::default()
    }

    /// `--proxy URL` for both schemes, with `no_proxy` (NO_PROXY's syntax).
    pub fn explicit(url: &str, no_proxy: Option<&str>) -> Result<Self, String> {
        let p = Proxy::parse(url)?;
        Ok(Proxies {
            http: Some(p.clone()),
            https: Some(p),
            no_proxy: no_proxy.map(parse_no_proxy).unwrap_or_default(),
            from_env: false,
        })
    }

    /// What the environment says, through `var` (upper-case names first,
    /// then lower-case, except `HTTP_PROXY`, which only counts in lower
    /// case under CGI, as curl and Go have it: `REQUEST_METHOD` set).
    /// `ALL_PROXY` covers a scheme left without one.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| {
            let upper = name.to_ascii_uppercase();
            let cgi = name == "http_proxy" && var("REQUEST_METHOD").is_some();
            let v = if cgi { None } else { var(&upper) };
            v.or_else(|| var(name)).filter(|v| !v.trim().is_empty())
        };
        let parse = |name: &str| {
            get(name)
                .map(|v| Proxy::parse(&v).map_err(|e| format!("{}: {e}", name.to_uppercase())))
                .transpose()
        };
        let all = parse("all_proxy")?;
        Ok(Proxies {
            http: parse("http_proxy")?.or_else(|| all.clone()),
            https: parse("https_proxy")?.or(all),
            no_proxy: get("no_proxy")
                .map(|v| parse_no_proxy(&v))
                .unwrap_or_default(),
            from_env: true,
        })
    }

    /// Whether any request can go through a proxy.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy a request to `origin` goes through, if any.
    pub fn for_origin(&self, origin: &Origin) -> Option<&Arc<Proxy>> {
        let proxy = match origin.scheme {
            Scheme::Http => self.http.as_ref(),
            Scheme::Https => self.https.as_ref(),
        }?;
        if self.from_env && is_loopback(&origin.host) {
            return None;
        }
        let direct = self
            .no_proxy
            .iter()
            .any(|n| n.covers(&origin.host, origin.port));
        (!direct).then_some(proxy)
    }
}

/// A connection's proxy as a request or a WebSocket chose it: the run's
/// rule for its origin (the default), none, or its own.
#[derive(Debug, Clone, Default)]
pub enum ProxyChoice {
    #[default]
    Run,
    Direct,
    Via(Arc<Proxy>),
}

impl ProxyChoice {
    /// The proxy a connection to `origin` goes through, under the run's
    /// `proxies`: the one rule every protocol that dials follows.
    pub fn pick<'a>(&'a self, proxies: &'a Proxies, origin: &Origin) -> Option<&'a Arc<Proxy>> {
        match self {
            ProxyChoice::Run if proxies.is_empty() => None,
            ProxyChoice::Run => proxies.for_origin(origin),
            ProxyChoice::Direct => None,
            ProxyChoice::Via(p) => Some(p),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq)]
enum NoProxy {
    All,
    /// A name and its subdomains (a leading `.` or `*.` is the same).
    Domain(String, Option<u16>),
    Ip(IpAddr, Option<u16>),
    Net(IpAddr, u8),
}

/// `NO_PROXY`: comma- or space-separated `*`, host names (and their
/// subdomains), IP addresses and CIDR blocks, each optionally with
/// `:port`. Entries that are none of these are ignored, as curl does.
fn parse_no_proxy(s: &str) -> Vec<NoProxy> {
    s.split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            if e == "*" {
                return Some(NoProxy::All);
            }
            if let Some((net, bits)) = e.split_once('/') {
                let ip = net.trim_matches(['[', ']']).parse().ok()?;
                return Some(NoProxy::Net(ip, bits.parse().ok()?));
            }
            let (host, port) = split_port(e);
            let host = host.trim_matches(['[', ']']);
            match host.parse::<IpAddr>() {
                Ok(ip) => Some(NoProxy::Ip(ip, port)),
                Err(_) => {
                    let name = host.trim_start_matches("*.").trim_start_matches('.');
                    Some(NoProxy::Domain(name.to_ascii_lowercase(), port))
                }
            }
        })
        .collect()
}

fn split_port(e: &str) -> (&str, Option<u16>) {
    // An unbracketed IPv6 address has colons but no port.
    if e.parse::<IpAddr>().is_ok() {
        return (e, None);
    }
    match e.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse().ok()),
        _ => (e, None),
    }
}

impl NoProxy {
    fn covers(&self, host: &str, port: u16) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        let ip = host.parse::<IpAddr>().ok();
        match self {
            NoProxy::All => true,
            NoProxy::Domain(d, p) => {
                let h = host.to_ascii_lowercase();
                port_ok(p)
                    && (h == *d || h.strip_suffix(d.as_str()).is_some_and(|r| r.ends_with('.')))
            }
            NoProxy::Ip(a, p) => port_ok(p) && ip == Some(*a),
            NoProxy::Net(net, bits) => ip.is_some_and(|ip| in_net(ip, *net, *bits)),
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Asks `proxy`, over `io`, for a tunnel to `origin`, and reads its answer:
/// `Ok` once it said 2xx, with nothing read past its head (the origin's
/// TLS handshake follows on the same stream).
pub async fn connect_tunnel<S>(io: &mut S, proxy: &Proxy, origin: &Origin) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authority = origin.authority.to_str().unwrap_or_default();
    // The port is always explicit in CONNECT's target.
    let target = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:{}", origin.port)
    };
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n");
    if let Some(auth) = &proxy.auth {
        head.push_str("proxy-authorization: ");
        head.push_str(auth.to_str().unwrap_or_default());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let fail = |e: String| format!("proxy {}: CONNECT {target}: {e}", proxy.shown);
    io.write_all(head.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = read_connect_answer(io).await.map_err(fail)?;
    if (200..300).contains(&status.0) {
        Ok(())
    } else {
        Err(fail(format!("refused with {} {}", status.0, status.1)))
    }
}

/// The status line of the proxy's answer, read byte by byte up to the end
/// of its head: a tunnel must not lose a byte of what follows.
async fn read_connect_answer<S>(io: &mut S) -> Result<(u16, String), String>
where
    S: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(256);
    loop {
        if buf.len() >= MAX_CONNECT_HEAD {
            return Err(format!(
                "the answer's head is over {MAX_CONNECT_HEAD} bytes"
            ));
        }
        let b = io.read_u8().await.map_err(|e| format!("no answer ({e})"))?;
        buf.extend_from_slice(&[b]);
        if buf.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut fields);
    match res.parse(&buf) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("the answer is not HTTP".to_string()),
    }
    let code = res.code.unwrap_or(0);
    Ok((code, res.reason.unwrap_or("").to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn proxy_urls() {
        let p = Proxy::parse("http://bob:s%40cret@proxy.test:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.test", 3128));
        // "bob:s@cret" in base64.
        assert_eq!(p.auth.as_ref().unwrap(), "Basic Ym9iOnNAY3JldA==");
        assert_eq!(p.shown, "http://proxy.test:3128");
        let bare = Proxy::parse("proxy.test").unwrap();
        assert_eq!((bare.port, bare.auth.is_none()), (80, true));
        for bad in [
            "socks5://p.test:1080",
            "http://",
            "http://p.test/path",
            "::",
        ] {
            let e = Proxy::parse(bad).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn environment_and_no_proxy() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let p = Proxies::from_env(env(&[
            ("HTTP_PROXY", "http://p.test:3128"),
            ("https_proxy", "p2.test:8080"),
            (
                "NO_PROXY",
                "internal.test, .corp.test:8080,10.0.0.0/8, 192.168.1.5",
            ),
        ]))
        .unwrap();
        let via = |u: &str| p.for_origin(&origin(u)).map(|p| p.port);
        assert_eq!(via("http://shop.test/"), Some(3128));
        assert_eq!(via("https://shop.test/"), Some(8080));
        assert_eq!(via("http://internal.test/"), None);
        assert_eq!(via("http://api.internal.test/"), None);
        assert_eq!(via("http://notinternal.test/"), Some(3128));
        assert_eq!(via("http://a.corp.test:8080/"), None);
        assert_eq!(via("http://a.corp.test:80/"), Some(3128));
        assert_eq!(via("http://10.1.2.3/"), None);
        assert_eq!(via("http://11.1.2.3/"), Some(3128));
        assert_eq!(via("http://192.168.1.5/"), None);
        // The environment's proxy never takes loopback traffic...
        assert_eq!(via("http://127.0.0.1:8080/"), None);
        assert_eq!(via("http://localhost:8080/"), None);
        assert_eq!(via("http://[::1]:8080/"), None);
        // ...an explicit one does, unless NO_PROXY says otherwise.
        let x = Proxies::explicit("http://p.test:3128", Some("*.skip.test")).unwrap();
        assert!(x.for_origin(&origin("http://127.0.0.1:8080/")).is_some());
        assert!(x.for_origin(&origin("https://a.skip.test/")).is_none());
        let all = Proxies::explicit("p.test:1", Some("*")).unwrap();
        assert!(all.for_origin(&origin("http://x.test/")).is_none());
        // CGI: an HTTP_PROXY header must not become the proxy (httpoxy).
        let cgi = Proxies::from_env(env(&[
            ("HTTP_PROXY", "http://evil.test:1"),
            ("REQUEST_METHOD", "GET"),
        ]))
        .unwrap();
        assert!(cgi.is_empty());
        let bad = Proxies::from_env(env(&[("HTTPS_PROXY", "ftp://p.test")])).unwrap_err();
        assert!(bad.starts_with("HTTPS_PROXY: "), "{bad}");
    }

    #[test]
    fn a_choice_picks_the_runs_rule_none_or_its_own() {
        let run = Proxies::explicit("http://run.test:1", Some("direct.test")).unwrap();
        let own = Proxy::parse("http://own.test:2").unwrap();
        let pick = |c: &ProxyChoice, u: &str| {
            let o = origin(u);
            c.pick(&run, &o).map(|p| p.host.clone())
        };
        assert_eq!(
            pick(&ProxyChoice::Run, "http://a.test/").as_deref(),
            Some("run.test")
        );
        assert_eq!(pick(&ProxyChoice::Run, "https://direct.test/"), None);
        assert_eq!(pick(&ProxyChoice::Direct, "http://a.test/"), None);
        let via = ProxyChoice::Via(own);
        // Its own proxy even where the run's rule goes direct.
        assert_eq!(
            pick(&via, "http://direct.test/").as_deref(),
            Some("own.test")
        );
        let none = Proxies::none();
        assert!(
            ProxyChoice::Run
                .pick(&none, &origin("http://a.test/"))
                .is_none()
        );
    }

    #[tokio::test]
    async fn connect_answers() {
        let proxy = Proxy::parse("http://u:p@p.test:3128").unwrap();
        let (mut client, mut server) = tokio::io::duplex(4096);
        let o = origin("https://shop.test/");
        let serve = tokio::spawn(async move {
            let mut seen = vec![0u8; 512];
            let n = server.read(&mut seen).await.unwrap();
            server
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\nTLS")
                .await
                .unwrap();
            String::from_utf8_lossy(&seen[..n]).into_owned()
        });
        connect_tunnel(&mut client, &proxy, &o).await.unwrap();
        let mut rest = [0u8; 3];
        client.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"TLS", "nothing past the head is consumed");
        let seen = serve.await.unwrap();
        assert!(
            seen.starts_with("CONNECT shop.test:443 HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains("proxy-authorization: Basic dTpw\r\n"),
            "{seen}"
        );

        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut seen = vec![0u8; 512];
            let _ = server.read(&mut seen).await;
            let _ = server
                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                .await;
        });
        let e = connect_tunnel(&mut client, &proxy, &o).await.unwrap_err();
        assert!(
            e.contains("refused with 407 Proxy Authentication Required"),
            "{e}"
        );
    }
}
