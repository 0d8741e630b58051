//! Paths of script routes under `/api/v1/ext`: literal segments and
//! `{name}` captures, e.g. `/ranking` or `/endpoint/{name}`.
//!
//! The first segment may not be `views` or `actions`: those paths are the
//! extension API's own, and a script route there would be unreachable.

use std::collections::BTreeMap;

/// Paths the extension API serves itself.
const RESERVED: [&str; 2] = ["views", "actions"];

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Capture(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// As declared, e.g. "/endpoint/{name}".
    pub text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("the path must start with /".into());
        };
        if rest.is_empty() {
            return Err(
                "the path needs a name after / (/api/v1/ext itself lists the extensions)".into(),
            );
        }
        let mut segments = Vec::new();
        for part in rest.split('/') {
            segments.push(segment(part)?);
        }
        if let Some(Segment::Literal(first)) = segments.first()
            && RESERVED.contains(&first.as_str())
        {
            return Err(format!(
                "paths starting with /{first} are reserved for the extension API"
            ));
        }
        let mut names: Vec<&str> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Capture(n) => Some(n.as_str()),
                Segment::Literal(_) => None,
            })
            .collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err("a capture name is used twice".into());
        }
        Ok(Pattern {
            text: text.to_string(),
            segments,
        })
    }

    /// The captures when `path` ("/endpoint/x", already percent-decoded
    /// per segment by [`split_path`]) fits this pattern.
    pub fn matches(&self, segments: &[String]) -> Option<BTreeMap<String, String>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut params = BTreeMap::new();
        for (mine, given) in self.segments.iter().zip(segments) {
            match mine {
                Segment::Literal(l) if l == given => {}
                Segment::Literal(_) => return None,
                Segment::Capture(name) => {
                    params.insert(name.clone(), given.clone());
                }
            }
        }
        Some(params)
    }

    /// Two patterns that match exactly the same paths.
    pub fn same_shape(&self, other: &Pattern) -> bool {
        self.segments.len() == other.segments.len()
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| match pair {
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Capture(_), Segment::Capture(_)) => true,
                    _ => false,
                })
    }
}

fn segment(part: &str) -> Result<Segment, String> {
    if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        let ok = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        return if ok {
            Ok(Segment::Capture(name.to_string()))
        } else {
            Err(format!("{{{name}}} is not a valid capture name"))
        };
    }
    let ok = !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if ok {
        Ok(Segment::Literal(part.to_string()))
    } else {
        Err(format!(
            "segment {part:?} must be letters, digits, - . _ ~ or a {{name}} capture"
        ))
    }
}

/// "/endpoint/a%20b" → ["endpoint", "a b"]; `None` for a path that does
/// not start with / or is not valid percent-encoded UTF-8.
pub fn split_path(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    rest.split('/').map(percent_decode).collect()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        split_path(p).unwrap()
    }

    #[test]
    fn literal_and_capture_routes() {
        let p = Pattern::parse("/endpoint/{name}").unwrap();
        let m = p.matches(&segs("/endpoint/a%20b")).unwrap();
        assert_eq!(m["name"], "a b");
        assert!(p.matches(&segs("/endpoint")).is_none());
        assert!(p.matches(&segs("/other/x")).is_none());
        let r = Pattern::parse("/ranking").unwrap();
        assert!(r.matches(&segs("/ranking")).is_some());
        assert!(r.matches(&segs("/ranking/")).is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "ranking", "/", "/views/x", "/actions", "/a b", "/{1x}", "/{a}/{a}", "/a//b",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        let a = Pattern::parse("/a/{x}").unwrap();
        assert!(a.same_shape(&Pattern::parse("/a/{y}").unwrap()));
        assert!(!a.same_shape(&Pattern::parse("/a/b").unwrap()));
    }
}
