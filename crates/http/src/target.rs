//! Request targets as browsers and python-requests send them: a script's
//! path or query may hold spaces and non-ASCII text, which must not reach
//! the request line raw (RFC 9112 allows neither), so they are
//! percent-encoded as UTF-8. What is already encoded (`%2F`) stays as it
//! is, so encoding twice changes nothing.
//!
//! Written here rather than with the `percent-encoding` crate because of
//! that last rule: a `%` is kept when two hex digits follow it and encoded
//! (`%25`) otherwise, which the crate's encode sets cannot express.

use std::borrow::Cow;

/// `path_and_query` with every byte a request target may not hold
/// percent-encoded, and any `#fragment` removed (fragments are never sent).
/// Borrows when there is nothing to change, which is the common case.
pub fn encode_target(path_and_query: &str) -> Cow<'_, str> {
    let s = match path_and_query.find('#') {
        Some(i) => &path_and_query[..i],
        None => path_and_query,
    };
    let b = s.as_bytes();
    let Some(first) = (0..b.len()).find(|&i| needs_encoding(b, i)) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for i in first..b.len() {
        if needs_encoding(b, i) {
            out.push('%');
            out.push(hex_digit(b[i] >> 4));
            out.push(hex_digit(b[i] & 0xf));
        } else {
            out.push(b[i] as char);
        }
    }
    Cow::Owned(out)
}

/// Whether byte `i` of `b` must be encoded: controls, space, non-ASCII
/// (each byte of a UTF-8 sequence), the characters RFC 3986 never allows
/// in a URI (`"<>\^`{|}`), and a `%` that does not start an escape.
fn needs_encoding(b: &[u8], i: usize) -> bool {
    match b[i] {
        b'%' => !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()),
        b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' => true,
        c => c <= b' ' || c >= 0x7f,
    }
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n)])
}

#[cfg(test)]
mod tests {
    use super::encode_target;

    #[test]
    fn plain_targets_are_borrowed_unchanged() {
        for t in ["/", "/item/1?q=a&b=c", "/a%20b", "/x;y=1,z=2:@!$&'()*+~._-"] {
            let got = encode_target(t);
            assert!(matches!(got, std::borrow::Cow::Borrowed(_)), "{t}");
            assert_eq!(got, t);
        }
    }

    #[test]
    fn spaces_and_non_ascii_are_encoded_as_utf8() {
        // What python-requests and browsers send for the same URLs.
        assert_eq!(encode_target("/a b"), "/a%20b");
        assert_eq!(
            encode_target("/café?q=naïve x"),
            "/caf%C3%A9?q=na%C3%AFve%20x"
        );
        assert_eq!(encode_target("/日本"), "/%E6%97%A5%E6%9C%AC");
        assert_eq!(
            encode_target("/{x}|\"<y>\"`^\\"),
            "/%7Bx%7D%7C%22%3Cy%3E%22%60%5E%5C"
        );
        assert_eq!(encode_target("/tab\there\x7f"), "/tab%09here%7F");
    }

    #[test]
    fn escapes_are_kept_and_lone_percents_encoded() {
        assert_eq!(encode_target("/a%2Fb%c3%a9"), "/a%2Fb%c3%a9");
        assert_eq!(encode_target("/100%"), "/100%25");
        assert_eq!(encode_target("/5%x"), "/5%25x");
        assert_eq!(encode_target("/%4"), "/%254");
        // Encoding twice changes nothing.
        let once = encode_target("/é %zz").into_owned();
        assert_eq!(encode_target(&once), once);
    }

    #[test]
    fn fragments_are_not_sent() {
        assert_eq!(encode_target("/page#top"), "/page");
        assert_eq!(encode_target("/a b?q=1#x y"), "/a%20b?q=1");
    }

    #[test]
    fn every_result_is_a_valid_request_target() {
        let samples = ["/a b", "/é", "/%", "/{}", "/x\u{1F600}?y=\u{0}", "/?q=a^b"];
        for s in samples {
            let t = encode_target(s);
            assert!(http::Uri::try_from(t.as_ref()).is_ok(), "{s:?} -> {t:?}");
            assert!(t.bytes().all(|c| c.is_ascii_graphic()), "{t:?}");
        }
    }
}
