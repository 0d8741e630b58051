//! Opening a connection: the name lookup (or a `--resolve` override), the
//! TCP connect (to the proxy when there is one, through its CONNECT tunnel
//! for HTTPS), TLS with ALPN, and the protocol that results: HTTP/2 when
//! TLS negotiated h2 or h2c was asked for by prior knowledge, HTTP/1.1
//! otherwise. Each phase is timed for `r.timings`. Other protocols dial
//! with [`dial`] (a host and port) or [`dial_origin`] (an origin, through
//! the proxy the run's rule or the caller chose).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::conn::{Conn, ExchangeError, Stream};
use crate::h2conn::H2Conn;
use crate::origin::{Origin, Scheme};
use crate::proxy::{self, Proxy};
use crate::settings::HostOverride;
use crate::timings::{ExchangeTimes, Timings};
use crate::tls::Tls;
use crate::version::{HttpVersion, Proto};
use crate::wire::{Message, RequestHead};

/// A new connection, in the protocol it speaks.
pub enum Dialed {
    H1(Box<Conn>),
    H2(Box<H2Conn>),
}

/// Dials `origin`, at `addr` instead of its host's DNS answer when given
/// (a DNS override); TLS verifies and names the origin's host either way.
/// Through `via`, the socket goes to the proxy instead: plain HTTP is then
/// sent to it as is (always HTTP/1.1: proxies speak it), HTTPS through a
/// CONNECT tunnel.
pub async fn open(
    origin: &Origin,
    addr: Option<SocketAddr>,
    via: Option<&Arc<Proxy>>,
    version: HttpVersion,
    tls: &Tls,
) -> Result<Dialed, String> {
    let (host, port) = first_hop(origin, via);
    let (mut tcp, mut opened) = dial_tcp(host, port, addr, &hop_name(origin, via)).await?;
    match origin.scheme {
        Scheme::Http if version == HttpVersion::Http2 && via.is_none() => {
            let h2 = H2Conn::handshake(tcp, origin, via, opened).await?;
            Ok(Dialed::H2(Box::new(h2)))
        }
        Scheme::Http => Ok(Dialed::H1(Conn::new(
            origin,
            via,
            Stream::Plain(tcp),
            opened,
        ))),
        Scheme::Https => {
            if let Some(p) = via {
                let t = Instant::now();
                proxy::connect_tunnel(&mut tcp, p, origin).await?;
                opened.connect += t.elapsed();
            }
            let t = Instant::now();
            let config = tls.for_version(version)?;
            let stream = handshake(config, &origin.host, tcp).await?;
            opened.tls = t.elapsed();
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            if h2 {
                let h2 = H2Conn::handshake(stream, origin, via, opened).await?;
                return Ok(Dialed::H2(Box::new(h2)));
            }
            if version == HttpVersion::Http2 {
                return Err(format!(
                    "{}:{} does not speak HTTP/2 (TLS negotiated no h2)",
                    origin.host, origin.port
                ));
            }
            let stream = Stream::Tls(Box::new(stream));
            Ok(Dialed::H1(Conn::new(origin, via, stream, opened)))
        }
    }
}

/// Opens a socket to `host:port` (at `addr` instead of DNS's answer when
/// given, a DNS override), with TLS when `tls` gives a configuration and
/// the name to verify and send as SNI. Shared by every protocol of the
/// script crate (HTTP, WebSocket, raw sockets) so they dial alike.
pub async fn dial(
    host: &str,
    port: u16,
    addr: Option<SocketAddr>,
    tls: Option<(Arc<rustls::ClientConfig>, &str)>,
) -> Result<Stream, String> {
    let (tcp, _) = dial_tcp(host, port, addr, &format!("{host}:{port}")).await?;
    let Some((config, name)) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let tls = handshake(config, name, tcp).await?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// Opens a stream to `origin` for a protocol other than HTTP (WebSocket):
/// through `via`'s CONNECT tunnel whatever the scheme, as browsers open
/// WebSockets through a proxy (a proxy relays an upgraded plain-HTTP
/// connection unreliably), then TLS with the origin when it is `https`,
/// verifying and naming the origin's host inside the tunnel. `hosts`
/// (DNS overrides) apply to the first hop's name, as for HTTP.
pub async fn dial_origin(
    origin: &Origin,
    hosts: &[HostOverride],
    via: Option<&Arc<Proxy>>,
    tls: &Tls,
) -> Result<Stream, String> {
    let (host, port) = first_hop(origin, via);
    let addr = crate::settings::lookup(hosts, host, port);
    let (mut tcp, _) = dial_tcp(host, port, addr, &hop_name(origin, via)).await?;
    if let Some(p) = via {
        proxy::connect_tunnel(&mut tcp, p, origin).await?;
    }
    match origin.scheme {
        Scheme::Http => Ok(Stream::Plain(tcp)),
        Scheme::Https => {
            let stream = handshake(tls.config()?, &origin.host, tcp).await?;
            Ok(Stream::Tls(Box::new(stream)))
        }
    }
}

/// Where a connection to `origin` first goes: the proxy when there is
/// one. DNS overrides apply to this name.
pub(crate) fn first_hop<'a>(origin: &'a Origin, via: Option<&'a Arc<Proxy>>) -> (&'a str, u16) {
    match via {
        Some(p) => (p.host.as_str(), p.port),
        None => (origin.host.as_str(), origin.port),
    }
}

/// The first hop, for messages: the proxy's URL (without credentials), or
/// the origin's `host:port`.
fn hop_name(origin: &Origin, via: Option<&Arc<Proxy>>) -> String {
    match via {
        Some(p) => format!("proxy {}", p.shown),
        None => format!("{}:{}", origin.host, origin.port),
    }
}

/// TLS over `tcp`, verifying `name` and sending it as SNI.
async fn handshake(
    config: Arc<rustls::ClientConfig>,
    name: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let server = ServerName::try_from(name.to_string())
        .map_err(|e| format!("invalid TLS server name {name:?}: {e}"))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(server, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {name}: {e}"))
}

/// Where a connection goes: the origin it serves and the proxy it goes
/// through. A pooled connection carries only requests of the same route.
pub struct Route {
    scheme: Scheme,
    host: String,
    port: u16,
    via: Option<Arc<Proxy>>,
}

impl Route {
    pub fn new(origin: &Origin, via: Option<&Arc<Proxy>>) -> Route {
        Route {
            scheme: origin.scheme,
            host: origin.host.clone(),
            port: origin.port,
            via: via.cloned(),
        }
    }

    /// Whether it reaches `origin` the way `via` says.
    pub fn serves(&self, origin: &Origin, via: Option<&Arc<Proxy>>) -> bool {
        let same_proxy = match (&self.via, via) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same(b),
            _ => false,
        };
        self.scheme == origin.scheme
            && self.port == origin.port
            && self.host == origin.host
            && same_proxy
    }
}

/// Looks `host` up (unless `addr` overrides it) and connects to the first
/// address that answers, timing both.
async fn dial_tcp(
    host: &str,
    port: u16,
    addr: Option<SocketAddr>,
    what: &str,
) -> Result<(TcpStream, Timings), String> {
    let t = Instant::now();
    let addrs: Vec<SocketAddr> = match addr {
        Some(a) => vec![a],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("connect to {what}: {e}"))?
            .collect(),
    };
    let dns = t.elapsed();
    let t = Instant::now();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect(a).await {
            Ok(tcp) => {
                // Requests are small writes followed by a wait for the
                // answer: Nagle would only delay them.
                tcp.set_nodelay(true)
                    .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
                let connect = t.elapsed();
                let timings = Timings {
                    dns,
                    connect,
                    ..Timings::default()
                };
                return Ok((tcp, timings));
            }
            Err(e) => last = Some((a, e)),
        }
    }
    Err(match (last, addr) {
        (Some((a, e)), Some(_)) => format!("connect to {what} at {a}: {e}"),
        (Some((_, e)), None) => format!("connect to {what}: {e}"),
        (None, _) => format!("connect to {what}: the name has no address"),
    })
}

impl Dialed {
    /// See [`Conn::take_opened`].
    pub fn take_opened(&mut self) -> Timings {
        match self {
            Dialed::H1(c) => c.take_opened(),
            Dialed::H2(c) => c.take_opened(),
        }
    }

    pub fn proto(&self) -> Proto {
        match self {
            Dialed::H1(_) => Proto::Http1,
            Dialed::H2(_) => Proto::Http2,
        }
    }

    /// Whether it reaches `origin` through `via` in a protocol `version`
    /// allows (h2c only when asked for: Auto over plain TCP is HTTP/1.1).
    pub fn fits(&self, origin: &Origin, via: Option<&Arc<Proxy>>, version: HttpVersion) -> bool {
        match self {
            Dialed::H1(c) => version != HttpVersion::Http2 && c.route.serves(origin, via),
            Dialed::H2(c) => {
                let allowed = match version {
                    HttpVersion::Http2 => true,
                    HttpVersion::Auto => origin.scheme == Scheme::Https,
                    HttpVersion::Http1 => false,
                };
                allowed && c.route.serves(origin, via)
            }
        }
    }

    /// Sends one request and reads its response, with its ttfb and receive
    /// phases counted from `began`.
    pub async fn exchange(
        &mut self,
        origin: &Origin,
        head: &RequestHead<'_>,
        body: &[u8],
        began: Instant,
    ) -> Result<(Message, ExchangeTimes), ExchangeError> {
        match self {
            Dialed::H1(c) => c.exchange(head, body, began).await,
            Dialed::H2(c) => c.exchange(origin, head, body, began).await,
        }
    }

    /// Whether it can carry another request.
    pub fn reusable(&mut self) -> bool {
        match self {
            Dialed::H1(c) => c.keep_alive(),
            Dialed::H2(c) => c.is_open(),
        }
    }

    /// Whether the server closed it while it sat in the pool (HTTP/1.1; an
    /// HTTP/2 connection says so through [`Dialed::reusable`]).
    pub fn closed_while_idle(&mut self) -> bool {
        match self {
            Dialed::H1(c) => c.closed_while_idle(),
            Dialed::H2(c) => !c.is_open(),
        }
    }
}
