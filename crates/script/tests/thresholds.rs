//! `swarmer.thresholds`: expressions are parsed as the script loads, a
//! key scopes them, and a bad one fails the load with file:line.

use script::{ScriptSource, inspect};
use verdict::{Figure, Scope};

const USERS: &str = "local A = swarmer.user { name = 'A' }\nA:task(function() end)\n";

fn load(decl: &str) -> Result<script::ScriptInfo, String> {
    let src = ScriptSource {
        path: "limits.lua".into(),
        code: format!("{USERS}{decl}"),
    };
    inspect(&src).map_err(|e| e.to_string())
}

#[test]
fn list_items_judge_the_total_and_keys_scope_theirs() {
    let info = load(
        "swarmer.thresholds {\n\
           'p95 < 300ms', 'fail_ratio < 1%',\n\
           ['GET /item/[id]'] = { 'p99 < 1s', 'failures == 0' },\n\
           ['COUNT orders'] = 'requests > 10',\n\
         }\n\
         swarmer.thresholds { 'rps > 5' }\n",
    )
    .unwrap();
    let got: Vec<(String, String)> = info
        .thresholds
        .iter()
        .map(|t| (t.scope.name().to_string(), t.expr.clone()))
        .collect();
    let want = [
        ("Aggregated", "p95 < 300ms"),
        ("Aggregated", "fail_ratio < 1%"),
        ("COUNT orders", "requests > 10"),
        ("GET /item/[id]", "p99 < 1s"),
        ("GET /item/[id]", "failures == 0"),
        ("Aggregated", "rps > 5"),
    ];
    assert_eq!(
        got,
        want.map(|(s, e)| (s.to_string(), e.to_string())).to_vec()
    );
    assert_eq!(info.thresholds[3].figure, Figure::Percentile(99.0));
    assert_eq!(info.thresholds[3].limit, 1000.0);
    assert_eq!(
        info.thresholds[3].scope,
        Scope::Named("GET /item/[id]".into())
    );
    assert!(load("").unwrap().thresholds.is_empty());
}

#[test]
fn bad_declarations_fail_the_load_with_file_and_line() {
    let cases = [
        (
            "\n\nswarmer.thresholds { 'p95 < 3xx' }",
            "limits.lua:5: swarmer.thresholds: threshold \"p95 < 3xx\": at position 8: unknown unit \"xx\"",
        ),
        (
            "swarmer.thresholds { ['GET /a'] = { 'latency < 1s' } }",
            "limits.lua:3: swarmer.thresholds: threshold \"latency < 1s\": at position 1: unknown figure",
        ),
        (
            "swarmer.thresholds 'p95 < 1s'",
            "limits.lua:3: swarmer.thresholds expects a table",
        ),
        (
            "swarmer.thresholds { 95 }",
            "limits.lua:3: swarmer.thresholds: an expression must be a string",
        ),
        (
            "swarmer.thresholds { ['GET /a'] = {} }",
            "limits.lua:3: swarmer.thresholds: [\"GET /a\"] must list expressions",
        ),
        (
            "swarmer.thresholds { [true] = 'p95 < 1s' }",
            "limits.lua:3: swarmer.thresholds: keys must be scopes",
        ),
    ];
    for (decl, want) in cases {
        let e = load(decl).expect_err(decl);
        assert!(e.starts_with(want), "{decl}:\n got {e}\nwant {want}");
    }
}
