//! HTTP/1.1 on the wire, without I/O: writing a request head, and decoding a
//! response from whatever bytes have arrived so far (the head with
//! `httparse`, then a body framed by `Content-Length`, by the chunked
//! transfer coding, or by the end of the connection, per RFC 9112 §6.3).
//! `conn.rs` moves the bytes; keeping this part free of I/O lets the tests
//! feed it any split of any input.
//!
//! Why not hyper: with hyper's client, each request went through its
//! dispatcher (an mpsc channel, a oneshot, several wakers, a `HeaderMap`
//! per response, a `Request` and its body type): about 3 µs of the 5 µs of
//! user time swarmer spent per request, against 0.6 µs for all of wrk. A
//! user sends one request at a time on a connection it owns, which is all
//! this client supports, so writing the head into a reused buffer and
//! parsing the answer in place is most of the job.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method, header};

/// A response head larger than this is refused (hyper's limit was about
/// 400 KiB; no sane server comes near it).
pub const MAX_HEAD: usize = 256 * 1024;
/// More header fields than this is refused (hyper's limit was 100).
pub const MAX_HEADERS: usize = 128;
/// A chunk-size line (hex digits plus extensions) longer than this is junk.
const MAX_CHUNK_LINE: usize = 4096;

pub(crate) const USER_AGENT: &str = concat!("swarmer/", env!("CARGO_PKG_VERSION"));

/// What to write for one request; the body follows the head as it is.
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// The request target: path and query, starting with '/' (the
    /// absolute URL through a proxy).
    pub target: &'a str,
    /// The `Host` header value.
    pub host: &'a [u8],
    /// The script's own headers.
    pub headers: &'a HeaderMap,
    /// From the cookie jar, when the script set no `Cookie` header.
    pub cookie: Option<&'a str>,
    /// The codings to offer, when the script set no `Accept-Encoding`.
    pub accept_encoding: Option<&'a [u8]>,
    /// `Proxy-Authorization` for the proxy this request goes through as
    /// is (plain HTTP), unless the script set its own.
    pub proxy_auth: Option<&'a [u8]>,
    pub body_len: usize,
}

/// Appends the request head to `out`. Returns whether the request asks the
/// server to close the connection (the script sent `Connection: close`).
pub fn encode_request(out: &mut BytesMut, req: &RequestHead<'_>) -> bool {
    out.reserve(64 + req.target.len() + req.host.len());
    out.put_slice(req.method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(req.target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\nhost: ");
    out.put_slice(req.host);
    out.put_slice(b"\r\n");
    let mut close = false;
    for (name, value) in req.headers {
        // The connection's own framing and endpoint: ours are the truth.
        if name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        if name == header::CONNECTION && has_token(value.as_bytes(), b"close") {
            close = true;
        }
        put_field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !req.headers.contains_key(header::USER_AGENT) {
        put_field(out, b"user-agent", USER_AGENT.as_bytes());
    }
    if let Some(cookie) = req.cookie {
        put_field(out, b"cookie", cookie.as_bytes());
    }
    if let Some(codings) = req.accept_encoding
        && !req.headers.contains_key(header::ACCEPT_ENCODING)
    {
        put_field(out, b"accept-encoding", codings);
    }
    if let Some(auth) = req.proxy_auth
        && !req.headers.contains_key(header::PROXY_AUTHORIZATION)
    {
        put_field(out, b"proxy-authorization", auth);
    }
    // As hyper did: a length for any body, and `0` for an empty one when
    // the method gives a body meaning (POST, PUT, PATCH, extensions).
    if req.body_len > 0 || !no_payload_semantics(req.method) {
        out.put_slice(b"content-length: ");
        put_decimal(out, req.body_len as u64);
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    close
}

fn no_payload_semantics(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET
            | Method::HEAD
            | Method::DELETE
            | Method::OPTIONS
            | Method::CONNECT
            | Method::TRACE
    )
}

fn put_field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

fn put_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}

/// Whether a comma-separated header value holds `token` (any case).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Why a response could not be read. The texts are what scripts see as
/// `r.error` and what the failures table groups by, so they are stable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The head is not HTTP (httparse's reason).
    Head(httparse::Error),
    HeadTooLarge,
    TooManyHeaders,
    ContentLength,
    Chunked(&'static str),
    /// A 101: this client does not switch protocols.
    Switching,
    /// The connection ended before the response did.
    Incomplete,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Head(e) => write!(f, "invalid HTTP response: {e}"),
            WireError::HeadTooLarge => {
                write!(f, "response head larger than {} KiB", MAX_HEAD / 1024)
            }
            WireError::TooManyHeaders => {
                write!(f, "response has more than {MAX_HEADERS} header fields")
            }
            WireError::ContentLength => f.write_str("invalid Content-Length in the response"),
            WireError::Chunked(what) => write!(f, "invalid chunked response body: {what}"),
            WireError::Switching => f.write_str("unexpected 101 Switching Protocols"),
            WireError::Incomplete => {
                f.write_str("connection closed before the response was complete")
            }
        }
    }
}

/// A complete response: its head exactly as received (status line and
/// header fields, parsed again only if the script asks for headers) and its
/// body, decoded from any chunking, in one buffer.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub status: u16,
    /// The head has a `Set-Cookie` field (known without parsing it again).
    pub sets_cookie: bool,
    /// The head has a `Content-Encoding` field: the body may need decoding.
    pub content_encoded: bool,
    raw: Bytes,
    head_len: usize,
}

impl Message {
    /// The status line and header fields, ending with the blank line.
    pub fn head(&self) -> &[u8] {
        &self.raw[..self.head_len]
    }

    pub fn body(&self) -> &[u8] {
        &self.raw[self.head_len..]
    }

    /// A response that came another way than HTTP/1.1 (HTTP/2), kept in
    /// the same form: an HTTP/1.1 head written from its status and fields
    /// (so `headers()` reads it as any other), then the body.
    pub fn from_parts(status: u16, fields: &http::HeaderMap, body: &[u8]) -> Message {
        let mut raw = BytesMut::with_capacity(64 + body.len());
        raw.put_slice(b"HTTP/1.1 ");
        put_decimal(&mut raw, u64::from(status));
        raw.put_slice(b" \r\n");
        for (name, value) in fields {
            put_field(&mut raw, name.as_str().as_bytes(), value.as_bytes());
        }
        raw.put_slice(b"\r\n");
        let head_len = raw.len();
        raw.put_slice(body);
        Message {
            status,
            sets_cookie: fields.contains_key(header::SET_COOKIE),
            content_encoded: fields.contains_key(header::CONTENT_ENCODING),
            raw: raw.freeze(),
            head_len,
        }
    }

    /// The same head with another body (the decoded one).
    pub fn with_body(&self, body: &[u8]) -> Message {
        let mut raw = BytesMut::with_capacity(self.head_len + body.len());
        raw.extend_from_slice(self.head());
        raw.extend_from_slice(body);
        Message {
            raw: raw.freeze(),
            ..self.clone()
        }
    }

    /// The header fields, in order, as received.
    pub fn headers(&self) -> Fields<'_> {
        Fields::parse(self.head())
    }

    /// The first value of a header field, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// The header fields of a complete head, parsed again on demand.
pub struct Fields<'a> {
    fields: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Fields<'a> {
    fn parse(head: &'a [u8]) -> Self {
        let mut storage = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let fields = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            head,
            &mut storage,
        ) {
            // Already parsed once with the same limits, so it cannot fail.
            Ok(httparse::Status::Complete(_)) => resp
                .headers
                .iter()
                .map(|h| (h.name.as_bytes(), h.value))
                .collect(),
            _ => Vec::new(),
        };
        Fields { fields }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.fields.iter().copied()
    }

    /// Every value of a field, by case-insensitive name.
    pub fn all(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }
}

/// How the body of the response being decoded ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// Bytes of a `Content-Length` body still to come.
    Length(u64),
    ChunkSize,
    /// Bytes of the current chunk still to come.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    /// Trailer fields after the last chunk, and how many bytes of them so far.
    Trailers(usize),
    /// No framing: the body is whatever comes until the server closes.
    UntilClose,
    Done,
}

/// Decodes one response from the bytes of a connection as they arrive.
#[derive(Debug)]
pub struct Decoder {
    /// Responses to HEAD have no body, whatever their headers say.
    head_request: bool,
    state: State,
    msg: BytesMut,
    head_len: usize,
    status: u16,
    sets_cookie: bool,
    content_encoded: bool,
    keep_alive: bool,
}

impl Decoder {
    pub fn new(head_request: bool) -> Self {
        Decoder {
            head_request,
            state: State::Head,
            msg: BytesMut::new(),
            head_len: 0,
            status: 0,
            sets_cookie: false,
            content_encoded: false,
            keep_alive: false,
        }
    }

    /// Consumes what it can of `buf` (the bytes read from the connection
    /// and not yet consumed). `Ok(true)`: the response is complete, and
    /// whatever is left in `buf` came after it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<bool, WireError> {
        loop {
            match self.state {
                State::Head => {
                    if buf.is_empty() || !self.parse_head(buf)? {
                        return Ok(false);
                    }
                }
                State::Length(rem) | State::ChunkData(rem) => {
                    let n = rem.min(buf.len() as u64) as usize;
                    self.msg.extend_from_slice(&buf[..n]);
                    buf.advance(n);
                    let rem = rem - n as u64;
                    self.state = match self.state {
                        State::Length(_) if rem == 0 => State::Done,
                        State::Length(_) => State::Length(rem),
                        _ if rem == 0 => State::ChunkEnd,
                        _ => State::ChunkData(rem),
                    };
                    if rem > 0 {
                        return Ok(false);
                    }
                }
                State::ChunkSize => {
                    // httparse takes an empty size for 0; a size needs a digit.
                    if buf.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                        return Err(WireError::Chunked("invalid chunk size"));
                    }
                    match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.advance(used);
                            self.state = if size == 0 {
                                State::Trailers(0)
                            } else {
                                State::ChunkData(size)
                            };
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_CHUNK_LINE => {
                            return Err(WireError::Chunked("chunk size line too long"));
                        }
                        Ok(httparse::Status::Partial) => return Ok(false),
                        Err(_) => return Err(WireError::Chunked("invalid chunk size")),
                    }
                }
                State::ChunkEnd => match buf.first() {
                    None => return Ok(false),
                    Some(b'\n') => {
                        buf.advance(1);
                        self.state = State::ChunkSize;
                    }
                    Some(b'\r') => match buf.get(1) {
                        None => return Ok(false),
                        Some(b'\n') => {
                            buf.advance(2);
                            self.state = State::ChunkSize;
                        }
                        Some(_) => return Err(WireError::Chunked("no CRLF after chunk data")),
                    },
                    Some(_) => return Err(WireError::Chunked("no CRLF after chunk data")),
                },
                State::Trailers(seen) => {
                    let Some(eol) = buf.iter().position(|&b| b == b'\n') else {
                        if seen + buf.len() > MAX_HEAD {
                            return Err(WireError::Chunked("trailer section too large"));
                        }
                        return Ok(false);
                    };
                    let blank = eol == 0 || (eol == 1 && buf[0] == b'\r');
                    buf.advance(eol + 1);
                    if blank {
                        self.state = State::Done;
                    } else if seen + eol + 1 > MAX_HEAD {
                        return Err(WireError::Chunked("trailer section too large"));
                    } else {
                        // Trailer fields are dropped, as hyper did.
                        self.state = State::Trailers(seen + eol + 1);
                    }
                }
                State::UntilClose => {
                    self.msg.extend_from_slice(buf);
                    buf.clear();
                    return Ok(false);
                }
                State::Done => return Ok(true),
            }
        }
    }

    /// The connection reached its end. Completes a body that runs until
    /// the close; anything else cut short is an error.
    pub fn eof(&mut self) -> Result<(), WireError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(WireError::Incomplete),
        }
    }

    /// Whether the server may take another request on this connection once
    /// this response is complete.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && self.state == State::Done
    }

    /// The complete response (call after `decode` said so, or `eof` agreed).
    pub fn finish(self) -> Message {
        Message {
            status: self.status,
            sets_cookie: self.sets_cookie,
            content_encoded: self.content_encoded,
            raw: self.msg.freeze(),
            head_len: self.head_len,
        }
    }

    /// Parses the head if all of it is in `buf`; skips 1xx heads.
    fn parse_head(&mut self, buf: &mut BytesMut) -> Result<bool, WireError> {
        let mut storage = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut resp,
            buf,
            &mut storage,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Err(WireError::HeadTooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(false),
            Err(httparse::Error::TooManyHeaders) => return Err(WireError::TooManyHeaders),
            Err(e) => return Err(WireError::Head(e)),
        };
        if len > MAX_HEAD {
            return Err(WireError::HeadTooLarge);
        }
        let status = resp.code.unwrap_or(0);
        let http11 = resp.version == Some(1);
        if status == 101 {
            return Err(WireError::Switching);
        }
        if (100..200).contains(&status) {
            // Interim (100 Continue, 103 Early Hints): the real one follows.
            buf.advance(len);
            return Ok(true);
        }
        let framing = Framing::of(resp.headers, http11)?;
        let body = if self.head_request || status == 204 || status == 304 {
            State::Done
        } else if framing.chunked {
            State::ChunkSize
        } else if let Some(n) = framing.length {
            if n == 0 {
                State::Done
            } else {
                State::Length(n)
            }
        } else {
            State::UntilClose
        };
        // Room for the whole of a small body, so that it needs no growing.
        let hint = match body {
            State::Length(n) => n.min(64 * 1024) as usize,
            State::Done => 0,
            _ => buf.len() - len,
        };
        self.msg = BytesMut::with_capacity(len + hint);
        self.msg.extend_from_slice(&buf[..len]);
        buf.advance(len);
        self.head_len = len;
        self.status = status;
        self.sets_cookie = framing.sets_cookie;
        self.content_encoded = framing.content_encoded;
        self.keep_alive = framing.keep_alive && body != State::UntilClose;
        self.state = body;
        Ok(true)
    }
}

/// What the header fields say about the body and the connection.
struct Framing {
    length: Option<u64>,
    chunked: bool,
    keep_alive: bool,
    sets_cookie: bool,
    content_encoded: bool,
}

impl Framing {
    fn of(headers: &[httparse::Header<'_>], http11: bool) -> Result<Framing, WireError> {
        let mut length: Option<u64> = None;
        let mut transfer_coded = false;
        let mut chunked = false;
        let (mut close, mut keep) = (false, false);
        let mut sets_cookie = false;
        let mut content_encoded = false;
        for h in headers {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"content-length") {
                // "3" or, repeated, "3, 3": every value must agree.
                for v in h.value.split(|&b| b == b',') {
                    let n = parse_length(v.trim_ascii()).ok_or(WireError::ContentLength)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(WireError::ContentLength);
                    }
                    length = Some(n);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                transfer_coded = true;
                // Chunked only if it is the last coding applied.
                chunked = h
                    .value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if name.eq_ignore_ascii_case(b"connection") {
                close |= has_token(h.value, b"close");
                keep |= has_token(h.value, b"keep-alive");
            } else if name.eq_ignore_ascii_case(b"set-cookie") {
                sets_cookie = true;
            } else if name.eq_ignore_ascii_case(b"content-encoding") {
                content_encoded = true;
            }
        }
        let mut keep_alive = if http11 { !close } else { keep && !close };
        if transfer_coded {
            // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3),
            // and a message with both is suspect: do not reuse the
            // connection after it.
            if length.is_some() {
                keep_alive = false;
            }
            length = None;
        }
        Ok(Framing {
            length,
            chunked,
            keep_alive,
            sets_cookie,
            content_encoded,
        })
    }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
