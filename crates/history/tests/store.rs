//! The store against both real backends: one test body over a SQLite file
//! and a PostgreSQL server started here; plus a corrupt SQLite file.

#[path = "support/postgres.rs"]
mod postgres;

use history::{Check, EntryFigures, Interval, Location, Profile, RunRecord, ScaleEvent, Store};
use verdict::CheckKind;

fn entry(method: &str, name: &str, p95_ms: f64, rps: f64) -> EntryFigures {
    EntryFigures {
        method: method.into(),
        name: name.into(),
        requests: 100,
        failures: 2,
        avg_ms: 10.5,
        min_ms: 1.0,
        max_ms: 99.0,
        p50_ms: 9.0,
        p95_ms,
        p99_ms: 50.0,
        rps,
    }
}

fn run(script: &str, verdict: &str, p95_ms: f64) -> RunRecord {
    RunRecord {
        id: 0,
        started_ms: 1_700_000_000_000,
        ended_ms: 1_700_000_030_000,
        script: script.into(),
        script_hash: history::record::script_hash("return 1"),
        host: "http://127.0.0.1:1".into(),
        profile: Profile {
            kind: "fixed".into(),
            users: 10,
            spawn_rate: 2.0,
            run_time_ms: Some(30_000),
            stages: None,
        },
        verdict: verdict.into(),
        entries: vec![
            entry("GET", "/it's \"quoted\"; DROP TABLE runs", p95_ms, 3.0),
            entry("", "Aggregated", p95_ms, 3.0),
        ],
        checks: vec![Check {
            kind: CheckKind::Regression,
            expr: "p95 <= +10% vs baseline".into(),
            scope: "Aggregated".into(),
            observed: Some(p95_ms),
            op: "<=".into(),
            limit: 33.0,
            unit: "ms".into(),
            ok: verdict == "passed",
        }],
        intervals: vec![Interval {
            time_ms: 1_700_000_001_000,
            users: 10,
            rps: 3.0,
            fail_per_sec: 0.0,
            p50_ms: Some(9.0),
            p95_ms: None,
        }],
        scaling: vec![
            ScaleEvent {
                time_ms: 1_700_000_010_000,
                from: 1,
                to: 3,
                message: "scaled 1 → 3: average worker CPU 91% for 15 s".into(),
                error: None,
            },
            ScaleEvent {
                time_ms: 1_700_000_031_000,
                from: 3,
                to: 1,
                message: "scaled 3 → 1: the run ended".into(),
                error: Some("the API server said 403".into()),
            },
        ],
    }
}

/// What every backend must do, through a store opened twice (the second
/// time as a restarted master would, over the same data).
async fn round_trip(location: Location) {
    let store = Store::open(&location).await.expect("open");
    let first = run("a.lua", "passed", 30.0);
    let id1 = store.record(&first).await.expect("record");
    let id2 = store.record(&run("a.lua", "failed", 40.0)).await.unwrap();
    let id3 = store.record(&run("b.lua", "passed", 20.0)).await.unwrap();
    assert!(id1 < id2 && id2 < id3);
    drop(store);

    let store = Store::open(&location).await.expect("reopen");
    let got = store.get(id1).await.unwrap().expect("run 1 is kept");
    assert_eq!(got, RunRecord { id: id1, ..first });
    assert!(store.get(id3 + 100).await.unwrap().is_none());

    let all = store.list(None, 10).await.unwrap();
    let ids: Vec<_> = all.iter().map(|r| r.id).collect();
    assert_eq!(ids, [id3, id2, id1], "newest first");
    assert_eq!(all[1].p95_ms, 40.0);
    assert_eq!(all[2].scaling, got.scaling, "the list carries the scaling");
    assert_eq!(ScaleEvent::path(&all[2].scaling), "1 → 3");
    let only_a = store.list(Some("a.lua"), 1).await.unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_a[0].id, id2);

    let last = store.latest(Some("a.lua"), false).await.unwrap().unwrap();
    assert_eq!(last.id, id2);
    let passed = store.latest(Some("a.lua"), true).await.unwrap().unwrap();
    assert_eq!(passed.id, id1);
    assert!(store.latest(Some("c.lua"), false).await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_keeps_runs_across_reopen() {
    let dir = std::env::temp_dir().join(format!("swarmer-history-{}", std::process::id()));
    let path = dir.join("nested/history.db");
    let _ = std::fs::remove_dir_all(&dir);
    round_trip(Location::Sqlite(path)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgres_keeps_runs_across_reopen() {
    let Some(pg) = postgres::start() else { return };
    round_trip(Location::parse(&pg.url).unwrap()).await;
    // TLS is built in: a URL that requires it is refused by this
    // plain-text server with a message saying so.
    let tls = format!("{}?sslmode=require", pg.url);
    let err = Store::open(&Location::parse(&tls).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("tls"), "{err}");
}

/// A history written before runs kept their scaling (migration 0001 only)
/// is upgraded in place when opened, and its runs read with none.
#[tokio::test]
async fn an_older_sqlite_history_is_upgraded_and_its_runs_kept() {
    use sqlx::ConnectOptions;
    let dir = std::env::temp_dir().join(format!("swarmer-upgrade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first_only = dir.join("migrations");
    std::fs::create_dir_all(&first_only).unwrap();
    let source = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite/0001_runs.sql"
    );
    std::fs::copy(source, first_only.join("0001_runs.sql")).unwrap();
    let path = dir.join("history.db");
    sqlx::any::install_default_drivers();
    let url = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .to_url_lossy();
    let pool = sqlx::AnyPool::connect(url.as_str()).await.unwrap();
    let old = sqlx::migrate::Migrator::new(first_only.as_path())
        .await
        .unwrap();
    old.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO runs (started_ms, ended_ms, script, script_hash, host, profile, users, \
         requests, failures, rps, p95_ms, verdict, checks, intervals) \
         VALUES (1, 2, 'old.lua', 'h', 'http://x', '{\"kind\":\"fixed\",\"users\":1,\"spawn_rate\":1.0,\"run_time_ms\":null}', \
         1, 5, 0, 1.0, 3.0, 'passed', '[]', '[]')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::open(&Location::Sqlite(path)).await.expect("upgrade");
    let runs = store.list(None, 10).await.unwrap();
    assert_eq!(runs.len(), 1, "the old run is kept");
    let old_run = store.get(runs[0].id).await.unwrap().unwrap();
    assert_eq!(
        (old_run.script.as_str(), old_run.scaling.len()),
        ("old.lua", 0)
    );
    let new_id = store.record(&run("new.lua", "passed", 5.0)).await.unwrap();
    let new_run = store.get(new_id).await.unwrap().unwrap();
    assert_eq!(new_run.scaling.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn corrupt_sqlite_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("swarmer-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&Location::Sqlite(path.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not a database"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://me:secret@127.0.0.1:{port}/db");
    let err = Store::open(&Location::parse(&url).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot open the run history"), "{err}");
    assert!(!err.contains("secret"), "the password is hidden: {err}");
}
