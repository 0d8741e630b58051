//! Content codings (RFC 9110 §8.4): undoing `Content-Encoding: gzip`,
//! `deflate`, `br` and `zstd` so the script gets the body the server meant.
//! Only responses that say they are encoded come here; the others never
//! pay for it.
//!
//! The decoders are pure Rust and decode-only where that exists: flate2
//! (on miniz_oxide) for gzip and deflate, brotli-decompressor (the
//! decoder half of the `brotli` crate) and ruzstd, so no C library joins
//! the build.

use std::io::Read;

/// A decoded body larger than this is refused: a small compressed body
/// can expand a thousandfold, and a load generator holds one per user.
pub const MAX_DECODED: u64 = 256 * 1024 * 1024;

/// The body with the codings of `content_encoding` (a field value such as
/// `gzip` or `deflate, br`) undone, last applied first. `Ok(None)`: nothing
/// to undo (only `identity`), or a coding this client does not know, in
/// which case the body is left as it came.
pub fn decode_body(content_encoding: &[u8], body: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let codings: Vec<&[u8]> = content_encoding
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"))
        .collect();
    if codings.is_empty() {
        return Ok(None);
    }
    let known = |c: &[u8]| Coding::of(c).is_some();
    if !codings.iter().all(|c| known(c)) {
        return Ok(None);
    }
    let mut data = body.to_vec();
    for c in codings.iter().rev() {
        let coding = Coding::of(c).unwrap_or(Coding::Gzip);
        data = coding
            .decode(&data)
            .map_err(|e| format!("invalid {} response body: {e}", coding.name()))?;
    }
    Ok(Some(data))
}

#[derive(Debug, Clone, Copy)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    fn of(name: &[u8]) -> Option<Coding> {
        let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        if is("gzip") || is("x-gzip") {
            Some(Coding::Gzip)
        } else if is("deflate") {
            Some(Coding::Deflate)
        } else if is("br") {
            Some(Coding::Brotli)
        } else if is("zstd") {
            Some(Coding::Zstd)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }

    fn decode(self, input: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Coding::Gzip => read_all(flate2::read::MultiGzDecoder::new(input)),
            // RFC 9110 says zlib-wrapped; some servers send raw deflate,
            // which browsers accept too.
            Coding::Deflate => match read_all(flate2::read::ZlibDecoder::new(input)) {
                Ok(v) => Ok(v),
                Err(zlib) => read_all(flate2::read::DeflateDecoder::new(input)).map_err(|_| zlib),
            },
            Coding::Brotli => read_all(brotli_decompressor::Decompressor::new(input, 4096)),
            Coding::Zstd => {
                let mut input = input;
                let dec = ruzstd::decoding::StreamingDecoder::new(&mut input)
                    .map_err(|e| e.to_string())?;
                read_all(dec)
            }
        }
    }
}

fn read_all(r: impl Read) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.take(MAX_DECODED + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > MAX_DECODED {
        return Err(format!(
            "larger than {} MiB once decoded",
            MAX_DECODED / (1024 * 1024)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] = b"{\"hello\": \"world\", \"n\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn each_coding_and_a_chain_decode() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(TEXT).unwrap();
        let zlib = z.finish().unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(TEXT).unwrap();
        let raw_deflate = d.finish().unwrap();
        let mut br = Vec::new();
        brotli::BrotliCompress(&mut &TEXT[..], &mut br, &Default::default()).unwrap();
        let zstd =
            ruzstd::encoding::compress_to_vec(TEXT, ruzstd::encoding::CompressionLevel::Fastest);
        for (coding, body) in [
            ("gzip", gzip(TEXT)),
            ("X-GZIP", gzip(TEXT)),
            ("deflate", zlib),
            ("deflate", raw_deflate),
            ("br", br),
            ("zstd", zstd),
            // Applied gzip first, then br: undone br first.
            ("gzip, identity, br", {
                let mut out = Vec::new();
                brotli::BrotliCompress(&mut &gzip(TEXT)[..], &mut out, &Default::default())
                    .unwrap();
                out
            }),
        ] {
            let got = decode_body(coding.as_bytes(), &body).unwrap();
            assert_eq!(got.as_deref(), Some(TEXT), "{coding}");
        }
    }

    #[test]
    fn identity_and_unknown_codings_leave_the_body() {
        assert_eq!(decode_body(b"identity", TEXT), Ok(None));
        assert_eq!(decode_body(b"", TEXT), Ok(None));
        assert_eq!(decode_body(b"compress", TEXT), Ok(None));
        assert_eq!(decode_body(b"gzip, snappy", &gzip(TEXT)), Ok(None));
    }

    #[test]
    fn corrupt_bodies_are_clear_errors() {
        let mut cut = gzip(TEXT);
        cut.truncate(cut.len() / 2);
        for (coding, body) in [
            ("gzip", b"not gzip at all".to_vec()),
            ("gzip", cut),
            ("deflate", b"\xff\xff\xff".to_vec()),
            ("br", b"\xff\xff\xff\xff not brotli".to_vec()),
            ("zstd", b"not zstd".to_vec()),
        ] {
            let err = decode_body(coding.as_bytes(), &body).unwrap_err();
            let want = format!("invalid {coding} response body: ");
            assert!(err.starts_with(&want), "{coding}: {err}");
        }
    }
}
