//! Tests of `wire.rs`: requests as written, and responses decoded from every
//! way their bytes can arrive (whole, at each split point, byte by byte,
//! random splits), malformed and oversized input (a clear error, never a
//! panic).

use bytes::BytesMut;
use http::Method;
use http::header::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::*;

fn encode(
    method: Method,
    headers: &HeaderMap,
    cookie: Option<&str>,
    body_len: usize,
) -> (String, bool) {
    let mut out = BytesMut::new();
    let close = encode_request(
        &mut out,
        &RequestHead {
            method: &method,
            target: "/a/b?c=1",
            host: b"example.com:8080",
            headers,
            cookie,
            accept_encoding: None,
            proxy_auth: None,
            body_len,
        },
    );
    (String::from_utf8(out.to_vec()).unwrap(), close)
}

#[test]
fn writes_a_minimal_get() {
    let (head, close) = encode(Method::GET, &HeaderMap::new(), None, 0);
    assert_eq!(
        head,
        format!(
            "GET /a/b?c=1 HTTP/1.1\r\nhost: example.com:8080\r\nuser-agent: swarmer/{}\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(!close);
}

#[test]
fn writes_lengths_headers_and_cookies() {
    let mut h = HeaderMap::new();
    h.insert("x-one", HeaderValue::from_static("1"));
    h.append("x-many", HeaderValue::from_static("a"));
    h.append("x-many", HeaderValue::from_static("b"));
    h.insert("user-agent", HeaderValue::from_static("mine"));
    // Framing and endpoint are the client's: these are dropped.
    h.insert("host", HeaderValue::from_static("evil"));
    h.insert("content-length", HeaderValue::from_static("999"));
    h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    let (head, close) = encode(Method::POST, &h, Some("a=1; b=2"), 12345);
    assert!(head.starts_with("POST /a/b?c=1 HTTP/1.1\r\nhost: example.com:8080\r\n"));
    for line in [
        "x-one: 1\r\n",
        "x-many: a\r\nx-many: b\r\n",
        "user-agent: mine\r\n",
        "cookie: a=1; b=2\r\n",
        "content-length: 12345\r\n",
    ] {
        assert!(head.contains(line), "{line:?} in {head:?}");
    }
    assert!(!head.contains("evil") && !head.contains("999") && !head.contains("chunked"));
    assert!(!head.contains("swarmer/"));
    assert!(head.ends_with("\r\n\r\n") && !close);
    // Empty bodies: a length where the method gives a body meaning.
    assert!(
        encode(Method::PUT, &HeaderMap::new(), None, 0)
            .0
            .contains("content-length: 0\r\n")
    );
    for m in [Method::GET, Method::HEAD, Method::DELETE, Method::OPTIONS] {
        assert!(
            !encode(m, &HeaderMap::new(), None, 0)
                .0
                .contains("content-length")
        );
    }
    assert!(
        encode(Method::DELETE, &HeaderMap::new(), None, 3)
            .0
            .contains("content-length: 3\r\n")
    );
    // Connection: close is passed on and noted.
    let mut h = HeaderMap::new();
    h.insert("connection", HeaderValue::from_static("Close"));
    let (head, close) = encode(Method::GET, &h, None, 0);
    assert!(close && head.contains("connection: Close\r\n"));
}

/// What decoding gave: the message, whether the connection may be reused,
/// and the bytes left after the response.
type Decoded = (Message, bool, Vec<u8>);

/// Decodes `input` delivered in pieces ending at `cuts`, then the end of
/// the connection if `close` and the response is not complete yet.
fn decode_in_pieces(
    input: &[u8],
    cuts: &[usize],
    head: bool,
    close: bool,
) -> Result<Decoded, WireError> {
    let mut dec = Decoder::new(head);
    let mut buf = BytesMut::new();
    let mut from = 0;
    let ends = cuts.iter().copied().chain([input.len()]);
    for to in ends {
        let to = to.clamp(from, input.len());
        buf.extend_from_slice(&input[from..to]);
        from = to;
        if dec.decode(&mut buf)? {
            let ka = dec.keep_alive();
            let rest = buf.to_vec();
            // The rest of the input was never offered.
            let mut rest = rest;
            rest.extend_from_slice(&input[from..]);
            return Ok((dec.finish(), ka, rest));
        }
    }
    if !close {
        return Err(WireError::Incomplete);
    }
    dec.eof()?;
    let ka = dec.keep_alive();
    Ok((dec.finish(), ka, buf.to_vec()))
}

fn decode_whole(input: &[u8]) -> Result<Decoded, WireError> {
    decode_in_pieces(input, &[], false, true)
}

/// (status, head, body, keep-alive, bytes left): comparable results.
type Summary = (u16, Vec<u8>, Vec<u8>, bool, Vec<u8>);

fn summary(r: &Result<Decoded, WireError>) -> Result<Summary, WireError> {
    r.clone()
        .map(|(m, ka, rest)| (m.status, m.head().to_vec(), m.body().to_vec(), ka, rest))
}

/// Every way of splitting `input` in two, and byte by byte, decodes as the
/// whole does.
fn assert_split_invariant(input: &[u8], head: bool) {
    let whole = summary(&decode_in_pieces(input, &[], head, true));
    for cut in 0..=input.len() {
        let split = summary(&decode_in_pieces(input, &[cut], head, true));
        assert_eq!(
            split,
            whole,
            "split at {cut} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    let every: Vec<usize> = (0..input.len()).collect();
    assert_eq!(
        summary(&decode_in_pieces(input, &every, head, true)),
        whole,
        "byte by byte"
    );
}

const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";

#[test]
fn content_length_body() {
    let (m, ka, rest) = decode_whole(NGINX).unwrap();
    assert_eq!((m.status, m.body(), ka), (200, &b"ok\n"[..], true));
    assert!(rest.is_empty());
    assert!(m.head().starts_with(b"HTTP/1.1 200 OK\r\n") && m.head().ends_with(b"\r\n\r\n"));
    assert_eq!(m.header("content-type"), Some(&b"text/plain"[..]));
    assert_eq!(m.header("CONTENT-TYPE"), Some(&b"text/plain"[..]));
    assert_eq!(m.header("x-none"), None);
    assert!(!m.sets_cookie);
    assert_split_invariant(NGINX, false);
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n5;ext=\"x\"\r\nhello\r\n1A\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n";
    let (m, ka, rest) = decode_whole(input).unwrap();
    assert_eq!(m.body(), b"hello abcdefghijklmnopqrstuvwxy");
    assert!(ka && rest.is_empty() && m.sets_cookie);
    let fields = m.headers();
    let cookies: Vec<&[u8]> = fields.all("set-cookie").collect();
    assert_eq!(cookies, vec![&b"a=1"[..], &b"b=2"[..]]);
    assert_split_invariant(input, false);
    // Bare LF line ends after data and in the trailer section are accepted.
    let lf = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\n0\r\n\n";
    assert_eq!(decode_whole(lf).unwrap().0.body(), b"ab");
    assert_split_invariant(lf, false);
}

#[test]
fn responses_without_body() {
    // HEAD: the length describes the GET's body, which is not sent.
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    let (m, ka, _) = decode_in_pieces(head, &[], true, false).unwrap();
    assert!(m.body().is_empty() && ka && m.status == 200);
    assert_split_invariant(head, true);
    for status in ["204 No Content", "304 Not Modified"] {
        let input = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\nETag: x\r\n\r\n");
        let (m, ka, rest) = decode_in_pieces(input.as_bytes(), &[], false, false).unwrap();
        assert!(m.body().is_empty() && ka && rest.is_empty(), "{status}");
        assert_split_invariant(input.as_bytes(), false);
    }
    let zero = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (m, ka, _) = decode_in_pieces(zero, &[], false, false).unwrap();
    assert!(m.body().is_empty() && ka);
}

#[test]
fn interim_responses_are_skipped() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    let (m, ka, _) = decode_whole(input).unwrap();
    assert_eq!((m.status, m.body(), ka), (201, &b"ok"[..], true));
    assert!(m.head().starts_with(b"HTTP/1.1 201"));
    assert_split_invariant(input, false);
    assert_eq!(
        decode_whole(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
            .unwrap_err(),
        WireError::Switching
    );
}

#[test]
fn connection_close_and_http10() {
    // A length and `Connection: close`: complete, but not reusable.
    let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
    let (m, ka, _) = decode_in_pieces(close, &[], false, false).unwrap();
    assert!(m.body() == b"ok" && !ka);
    // No length: the body runs until the server closes.
    let until_close = b"HTTP/1.1 200 OK\r\n\r\nall of this";
    assert_eq!(
        decode_in_pieces(until_close, &[], false, false).unwrap_err(),
        WireError::Incomplete
    );
    let (m, ka, _) = decode_whole(until_close).unwrap();
    assert!(m.body() == b"all of this" && !ka);
    assert_split_invariant(until_close, false);
    // HTTP/1.0 closes unless it says keep-alive.
    let old = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (m, ka, _) = decode_in_pieces(old, &[], false, false).unwrap();
    assert!(m.body() == b"ok" && !ka);
    let old_ka = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok";
    assert!(decode_in_pieces(old_ka, &[], false, false).unwrap().1);
    let old_until_close = b"HTTP/1.0 200 OK\r\n\r\nbody";
    assert_eq!(decode_whole(old_until_close).unwrap().0.body(), b"body");
    // Transfer-Encoding with Content-Length: chunked wins, no reuse.
    let both = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    let (m, ka, _) = decode_in_pieces(both, &[], false, false).unwrap();
    assert!(m.body() == b"ok" && !ka);
}

#[test]
fn bytes_after_the_response_are_left_in_the_buffer() {
    let two = [NGINX, NGINX].concat();
    let (m, _, rest) = decode_in_pieces(&two, &[], false, false).unwrap();
    assert_eq!(m.body(), b"ok\n");
    assert_eq!(rest, NGINX);
}

#[test]
fn repeated_equal_lengths_are_accepted_different_ones_refused() {
    let same = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok";
    assert_eq!(
        decode_in_pieces(same, &[], false, false).unwrap().0.body(),
        b"ok"
    );
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    ] {
        assert_eq!(decode_whole(bad).unwrap_err(), WireError::ContentLength);
    }
}

#[test]
fn malformed_responses_are_clear_errors() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"SSH-2.0-OpenSSH_9.2\r\n",
            "invalid HTTP response: invalid HTTP version",
        ),
        (
            b"HTTP/1.1 abc OK\r\n\r\n",
            "invalid HTTP response: invalid response status",
        ),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            "invalid HTTP response: invalid header name",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "invalid chunked response body: invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\r\n",
            "invalid chunked response body: invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokX\r\n",
            "invalid chunked response body: no CRLF after chunk data",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n11111111111111111\r\n",
            "invalid chunked response body: invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
            "connection closed before the response was complete",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Le",
            "connection closed before the response was complete",
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
            "connection closed before the response was complete",
        ),
    ];
    for (input, want) in cases {
        let got = decode_whole(input).unwrap_err().to_string();
        assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn oversized_heads_and_too_many_fields() {
    // A head that never ends: refused once it passes the limit, without
    // waiting for the rest.
    let mut big = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    big.resize(MAX_HEAD + 10, b'a');
    let mut dec = Decoder::new(false);
    let mut buf = BytesMut::from(&big[..]);
    assert_eq!(dec.decode(&mut buf).unwrap_err(), WireError::HeadTooLarge);
    assert_eq!(
        WireError::HeadTooLarge.to_string(),
        format!("response head larger than {} KiB", MAX_HEAD / 1024)
    );
    // A complete head over the limit is refused too.
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(decode_whole(&big).unwrap_err(), WireError::HeadTooLarge);
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("x-{i}: {i}\r\n").as_bytes());
    }
    many.extend_from_slice(b"content-length: 0\r\n\r\n");
    assert_eq!(decode_whole(&many).unwrap_err(), WireError::TooManyHeaders);
    // A trailer section that never ends is bounded as well.
    let mut trailers = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n".to_vec();
    while trailers.len() < MAX_HEAD + 100 {
        trailers.extend_from_slice(b"x-t: 1\r\n");
    }
    assert_eq!(
        decode_whole(&trailers).unwrap_err(),
        WireError::Chunked("trailer section too large")
    );
}

#[test]
fn a_large_body_arrives_in_many_reads() {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut input =
        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
    input.extend_from_slice(&body);
    let cuts: Vec<usize> = (0..input.len()).step_by(8192).collect();
    let (m, ka, _) = decode_in_pieces(&input, &cuts, false, false).unwrap();
    assert!(m.body() == body && ka);
    // The same body chunked in odd sizes.
    let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(7777) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (m, _, _) = decode_in_pieces(&chunked, &cuts, false, false).unwrap();
    assert!(m.body() == body);
}

/// A valid response built from parts chosen by proptest.
fn response_strategy() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, bool)> {
    let body = proptest::collection::vec(any::<u8>(), 0..300);
    let chunks = proptest::collection::vec(1usize..40, 0..8);
    (body, chunks, 0u8..3, any::<bool>()).prop_map(|(body, chunks, framing, head)| {
        let mut out = b"HTTP/1.1 200 OK\r\nX-A: 1\r\n".to_vec();
        match framing {
            0 => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
            }
            1 => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &body[..];
                let mut sizes = chunks.iter().cycle();
                while !rest.is_empty() {
                    let n = (*sizes.next().unwrap_or(&5)).min(rest.len());
                    out.extend_from_slice(format!("{n:X}\r\n").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(b"0\r\n\r\n");
            }
            _ => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&body);
            }
        }
        let want = if head { Vec::new() } else { body };
        (out, want, head)
    })
}

proptest! {
    #[test]
    fn any_split_of_a_valid_response_decodes_the_same(
        (input, body, head) in response_strategy(),
        cuts in proptest::collection::vec(0usize..2000, 0..12),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let got = decode_in_pieces(&input, &cuts, head, true).unwrap();
        prop_assert_eq!(got.0.body(), &body[..]);
        prop_assert_eq!(summary(&Ok(got)), summary(&decode_in_pieces(&input, &[], head, true)));
    }

    #[test]
    fn random_bytes_never_panic(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(0usize..600, 0..6),
        head in any::<bool>(),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        let _ = decode_in_pieces(&input, &cuts, head, true);
        // The same behind a valid status line, to reach the body decoders.
        let mut framed = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        framed.extend_from_slice(&input);
        let _ = decode_in_pieces(&framed, &cuts, head, true);
    }

    #[test]
    fn mutated_responses_never_panic(
        (input, _body, head) in response_strategy(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut input = input;
        for (i, b) in flips {
            let i = i.index(input.len());
            input[i] = b;
        }
        let every: Vec<usize> = (0..input.len()).collect();
        let whole = summary(&decode_in_pieces(&input, &[], head, true));
        prop_assert_eq!(summary(&decode_in_pieces(&input, &every, head, true)), whole);
    }
}
