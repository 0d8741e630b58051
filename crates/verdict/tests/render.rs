//! The renderings: the console table, JUnit XML (escaping included) and
//! the JSON shape of a check.

use verdict::render::{junit, table, xml_escape};
use verdict::{Check, CheckKind, Verdict};

fn check(kind: CheckKind, scope: &str, expr: &str, observed: Option<f64>, ok: bool) -> Check {
    Check {
        kind,
        expr: expr.into(),
        scope: scope.into(),
        observed,
        op: "<".into(),
        limit: 300.0,
        unit: "ms".into(),
        ok,
    }
}

fn verdict() -> Verdict {
    Verdict {
        checks: vec![
            check(
                CheckKind::Threshold,
                "Aggregated",
                "p95 < 300ms",
                Some(120.456),
                true,
            ),
            check(
                CheckKind::Threshold,
                "GET /<a&b\"c>'",
                "p99 < 300ms",
                Some(412.0),
                false,
            ),
            check(CheckKind::Regression, "Aggregated", "p95 +10%", None, false),
        ],
    }
}

#[test]
fn the_table_lists_every_check_and_the_outcome() {
    let t = table(&verdict());
    assert!(
        t.contains("p95 < 300ms") && t.contains("120.46 ms") && t.contains("ok"),
        "{t}"
    );
    assert!(t.contains("412 ms") && t.contains("CROSSED"), "{t}");
    assert!(t.contains("regression") && t.contains("no data"), "{t}");
    assert!(t.contains("1 of 3 checks hold: FAILED"), "{t}");
}

#[test]
fn junit_has_one_testcase_per_check_and_failures_with_observed_vs_limit() {
    let xml = junit(&verdict(), "swarmer");
    assert_eq!(xml.matches("<testcase ").count(), 3, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert!(
        xml.contains("<testsuites name=\"swarmer\" tests=\"3\" failures=\"2\">"),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"swarmer.thresholds\" tests=\"2\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"swarmer.regressions\" tests=\"1\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("message=\"observed 412 ms, limit &lt; 300 ms\""),
        "{xml}"
    );
    assert!(
        xml.contains("GET /&lt;a&amp;b&quot;c&gt;&apos;: p99 &lt; 300ms"),
        "{xml}"
    );
    assert!(!xml.contains("<a&b"), "{xml}");
}

#[test]
fn escaping_covers_markup_quotes_and_control_characters() {
    assert_eq!(xml_escape("<&\">'"), "&lt;&amp;&quot;&gt;&apos;");
    assert_eq!(xml_escape("a\u{1}b\nc"), "a\u{FFFD}b&#10;c");
    assert_eq!(xml_escape("é ✓"), "é ✓");
}

#[test]
fn checks_serialize_with_kind_expr_scope_observed_limit_ok() {
    let json = serde_json::to_value(&verdict().checks[1]).unwrap();
    assert_eq!(json["kind"], "threshold");
    assert_eq!(json["expr"], "p99 < 300ms");
    assert_eq!(json["scope"], "GET /<a&b\"c>'");
    assert_eq!(json["observed"], 412.0);
    assert_eq!(json["limit"], 300.0);
    assert_eq!(json["ok"], false);
    let back: Check = serde_json::from_value(json).unwrap();
    assert_eq!(back, verdict().checks[1]);
    assert!(serde_json::to_value(&verdict().checks[2]).unwrap()["observed"].is_null());
}
