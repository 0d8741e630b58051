//! A verdict as people and CI systems read it: the console table printed
//! at the end of a run, and JUnit XML (one testcase per check) that every
//! CI system renders. The JSON form is the checks' serde form.
//!
//! The XML is written by hand: it is one fixed, flat shape, and every text
//! goes through [`xml_escape`] (tested with `<&">'` and control
//! characters, which XML 1.0 cannot carry at all).

use std::fmt::Write as _;

use crate::check::{Check, CheckKind, Verdict};

/// The summary's table: kind, scope, expression, observed, status.
pub fn table(verdict: &Verdict) -> String {
    let header = ["Check", "Scope", "Expression", "Observed", "Result"];
    let rows: Vec<[String; 5]> = verdict
        .checks
        .iter()
        .map(|c| {
            [
                kind_word(c.kind).to_string(),
                c.scope.clone(),
                c.expr.clone(),
                c.observed_text(),
                c.status().to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            let _ = write!(out, "{sep}{cell:<w$}");
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&header);
    let rule: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    out.push_str(&"-".repeat(rule));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    let crossed = verdict.crossed().count();
    let _ = writeln!(
        out,
        "{} of {} checks hold{}",
        verdict.checks.len() - crossed,
        verdict.checks.len(),
        if crossed == 0 { "" } else { ": FAILED" }
    );
    out
}

fn kind_word(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Threshold => "threshold",
        CheckKind::Regression => "regression",
    }
}

/// JUnit XML: one `<testsuite>` per kind present, one `<testcase>` per
/// check, a `<failure>` with observed vs limit for each that does not hold.
pub fn junit(verdict: &Verdict, suite: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = verdict.crossed().count();
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
        xml_escape(suite),
        verdict.checks.len()
    );
    for kind in [CheckKind::Threshold, CheckKind::Regression] {
        let checks: Vec<&Check> = verdict.checks.iter().filter(|c| c.kind == kind).collect();
        if checks.is_empty() {
            continue;
        }
        let failed = checks.iter().filter(|c| !c.ok).count();
        let name = format!("{suite}.{}s", kind_word(kind));
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\">",
            xml_escape(&name),
            checks.len()
        );
        for c in checks {
            testcase(&mut out, c, &name);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, c: &Check, classname: &str) {
    let name = format!("{}: {}", c.scope, c.expr);
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\"",
        xml_escape(&name),
        xml_escape(classname)
    );
    if c.ok {
        let _ = writeln!(out, ">");
        let _ = writeln!(
            out,
            "      <system-out>{}</system-out>",
            xml_escape(&c.observed_vs_limit())
        );
    } else {
        let _ = writeln!(out, ">");
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"{}\">{}</failure>",
            xml_escape(&c.observed_vs_limit()),
            kind_word(c.kind),
            xml_escape(&format!("{name}: {}", c.observed_vs_limit()))
        );
    }
    out.push_str("    </testcase>\n");
}

/// Text safe in XML content and attribute values. Characters XML 1.0
/// cannot carry (most control characters) become U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Kept in attributes as references, or a parser folds them to spaces.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
