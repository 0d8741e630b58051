//! Text that came from a peer, made safe to log or to put in a refusal.
//!
//! A stranger's worker id or version string could carry newlines (forging
//! log lines), terminal escapes, or megabytes; [`printable`] escapes every
//! control character and keeps at most a given number of characters.

/// `text` with control characters escaped (`\n`, `\u{1b}`) and cut to
/// `max_chars` characters, with `…` when something was cut.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars) + 3);
    for (n, c) in text.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters_and_cuts_long_text() {
        assert_eq!(printable("w1", 10), "w1");
        assert_eq!(printable("a\nb\u{1b}[31m", 20), "a\\nb\\u{1b}[31m");
        assert_eq!(printable(&"x".repeat(1000), 5), "xxxxx…");
        assert_eq!(printable("", 5), "");
    }
}
