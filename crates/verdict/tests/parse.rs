//! The expression parser: what it accepts, what it refuses and where it
//! says the problem is, and (proptest) that no input makes it panic.

use proptest::prelude::*;
use verdict::{Comparison, Figure, Scope, Threshold};

fn parse(text: &str) -> Threshold {
    Threshold::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn figures_comparisons_and_units() {
    let t = parse("p95 < 300ms");
    assert_eq!(
        (t.scope.clone(), t.figure, t.op, t.limit),
        (
            Scope::Aggregated,
            Figure::Percentile(95.0),
            Comparison::Lt,
            300.0
        )
    );
    assert_eq!(t.expr, "p95 < 300ms");
    assert_eq!(parse("p99.99<=1s").limit, 1000.0);
    assert_eq!(parse("p99.99<=1s").figure, Figure::Percentile(99.99));
    assert_eq!(parse("p50 >= 0.5 s").limit, 500.0);
    assert_eq!(parse("fail_ratio < 1%").limit, 1.0);
    assert_eq!(parse("fail_ratio < 0.01").limit, 1.0);
    assert_eq!(parse("rps > 100").figure, Figure::Rps);
    assert_eq!(parse("rps > 100/s").limit, 100.0);
    assert_eq!(parse("failures == 0").op, Comparison::Eq);
    assert_eq!(parse("requests > 10").figure, Figure::Requests);
    assert_eq!(
        parse("dropped_iterations == 0").figure,
        Figure::DroppedIterations
    );
    for (text, fig) in [
        ("avg < 1ms", Figure::Avg),
        ("min < 1ms", Figure::Min),
        ("max < 1ms", Figure::Max),
        ("median < 1ms", Figure::Percentile(50.0)),
        ("p100 < 1ms", Figure::Percentile(100.0)),
    ] {
        assert_eq!(parse(text).figure, fig, "{text}");
    }
}

#[test]
fn scopes() {
    assert_eq!(
        parse("GET /item/[id]: p99 < 1s").scope,
        Scope::Named("GET /item/[id]".into())
    );
    assert_eq!(
        parse("  login :failures==0 ").scope,
        Scope::Named("login".into())
    );
    // Names may hold colons: the scope ends at the last one.
    assert_eq!(
        parse("GET http://x:8080/a: avg < 5ms").scope,
        Scope::Named("GET http://x:8080/a".into())
    );
    assert_eq!(parse("Aggregated: avg < 5ms").scope, Scope::Aggregated);
    assert_eq!(
        parse("COUNT orders: requests > 3").scope,
        Scope::Named("COUNT orders".into())
    );
}

fn error(text: &str) -> verdict::ParseError {
    Threshold::parse(text).expect_err(text)
}

#[test]
fn errors_name_the_expression_and_position() {
    let e = error("p95 < 3xx");
    assert_eq!(e.position, 8);
    let shown = e.to_string();
    assert!(
        shown.contains("\"p95 < 3xx\"") && shown.contains("position 8"),
        "{shown}"
    );
    assert!(shown.contains("\"xx\""), "{shown}");
    assert_eq!(error("p95 < 300").position, 10, "a time needs a unit");
    assert!(error("p95 < 300").message.contains("300ms"));
    assert_eq!(error("p101 < 3ms").position, 1);
    assert_eq!(error("p0 < 3ms").position, 1);
    assert_eq!(error("pfoo < 3ms").position, 1);
    assert!(
        error("latency < 3ms")
            .message
            .contains("unknown figure \"latency\"")
    );
    assert_eq!(error("p95 =< 3ms").position, 5);
    assert_eq!(error("p95 3ms").position, 5);
    assert_eq!(error("p95 < ms").position, 7);
    assert!(error("p95 < -3ms").message.contains("negative"));
    assert_eq!(
        error("fail_ratio < 5").position,
        15,
        "a bare ratio above 1: where the % belongs"
    );
    assert!(error("failures < 3ms").message.contains("count"));
    assert_eq!(error("p95 < 3ms extra").position, 11);
    assert_eq!(error("").position, 1);
    assert_eq!(error(": p95 < 3ms").position, 1);
    assert_eq!(error("a:").position, 3);
}

proptest! {
    /// Any text is a parse error or a threshold, never a panic; a
    /// threshold's canonical form parses back to the same threshold.
    #[test]
    fn any_input_is_an_error_or_a_threshold(text in ".{0,40}") {
        if let Ok(t) = Threshold::parse(&text) {
            let again = Threshold::parse(&t.to_string()).expect("canonical form parses");
            prop_assert_eq!((again.scope, again.figure, again.op, again.limit), (t.scope, t.figure, t.op, t.limit));
        }
    }

    /// Near-valid inputs (the grammar's own pieces shuffled) reach deeper.
    #[test]
    fn grammar_pieces_never_panic(
        scope in prop::option::of("[A-Z]{0,4} ?[a-z/:\\[\\]]{0,8}"),
        fig in "(p[0-9.]{0,7}|avg|rps|fail_ratio|failures|x)",
        op in "[<>=!]{0,3}",
        num in "[0-9.+-]{0,6}",
        unit in "(ms|s|%|/s|us|)",
    ) {
        let text = match scope {
            Some(s) => format!("{s}: {fig} {op} {num}{unit}"),
            None => format!("{fig}{op}{num}{unit}"),
        };
        if let Ok(t) = Threshold::parse(&text) {
            let again = Threshold::parse(&t.to_string()).expect("canonical form parses");
            prop_assert_eq!((again.figure, again.op, again.limit), (t.figure, t.op, t.limit));
            prop_assert!(t.limit.is_finite() && t.limit >= 0.0);
        }
    }
}

#[test]
fn the_expression_is_kept_without_its_scope() {
    let t = parse(" GET /a :  p99 < 1s ");
    assert_eq!((t.expr.as_str(), t.scope.name()), ("p99 < 1s", "GET /a"));
    let s = Threshold::parse_scoped("GET /item/[id]", "p99 < 1s").unwrap();
    assert_eq!(s.scope, Scope::Named("GET /item/[id]".into()));
    assert_eq!(s.expr, "p99 < 1s");
    assert_eq!(
        Threshold::parse_scoped("Aggregated", "p99 < 1s")
            .unwrap()
            .scope,
        Scope::Aggregated
    );
    let twice = Threshold::parse_scoped("GET /a", "GET /b: p99 < 1s").unwrap_err();
    assert!(twice.message.contains("twice"), "{twice}");
    assert!(Threshold::parse_scoped(" ", "p99 < 1s").is_err());
}
