//! Why a request got no usable response. The text of each variant is what
//! the statistics show as the failure, so it names the cause plainly.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The whole exchange, redirects included, took longer than allowed.
    #[error("timeout after {}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The last response was still a redirect after this many hops.
    #[error("too many redirects (more than {0})")]
    TooManyRedirects(u32),
    /// Connecting, the TLS handshake, or the exchange failed; the text
    /// says which and why (e.g. "connect to host:80: refused").
    #[error("{0}")]
    Transport(String),
    /// The response came but its body did not decode from the content
    /// coding it declared (e.g. "invalid gzip response body: ...").
    #[error("{0}")]
    Decode(String),
}
