//! The database behind the history, through sqlx's `Any` driver so one set
//! of queries serves SQLite and PostgreSQL (each with its own migrations,
//! embedded by `sqlx::migrate!`). Every value goes in as a bound parameter;
//! the SQL text is constant.

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Row};

use crate::record::{EntryFigures, RunRecord, RunSummary};
use crate::{HistoryError, Location};

/// How long a query waits for a connection: a database that went away
/// must not hold up the end of a run for long.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Concurrent first opens of one SQLite file (two masters, parallel CI
/// jobs) can race to apply the migrations; the loser retries.
const MIGRATE_ATTEMPTS: u32 = 5;

/// An open, migrated history. Cheap to clone (a pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    location: String,
}

impl Store {
    /// Opens (creating if needed) and migrates the history at `location`.
    pub async fn open(location: &Location) -> Result<Store, HistoryError> {
        sqlx::any::install_default_drivers();
        let shown = location.to_string();
        let open_err = |source| HistoryError::Open {
            location: shown.clone(),
            source,
        };
        let (options, migrator) = match location {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| open_err(sqlx::Error::Io(e)))?;
                }
                let url = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .to_url_lossy();
                let options = AnyConnectOptions::from_url(&url).map_err(open_err)?;
                (options, sqlx::migrate!("migrations/sqlite"))
            }
            Location::Postgres(url) => {
                let options = url.parse::<AnyConnectOptions>().map_err(open_err)?;
                (options, sqlx::migrate!("migrations/postgres"))
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        let mut attempt = 1;
        while let Err(e) = migrator.run(&pool).await {
            if attempt >= MIGRATE_ATTEMPTS || !matches!(location, Location::Sqlite(_)) {
                return Err(open_err(e.into()));
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
        }
        Ok(Store {
            pool,
            location: shown,
        })
    }

    /// Where it is, for messages (a URL's password hidden).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn query_err(&self, source: sqlx::Error) -> HistoryError {
        HistoryError::Query {
            location: self.location.clone(),
            source,
        }
    }

    /// Records a run (its `id` is ignored) and returns the id given to it.
    pub async fn record(&self, run: &RunRecord) -> Result<i64, HistoryError> {
        let total = run.aggregated();
        let mut tx = self.pool.begin().await.map_err(|e| self.query_err(e))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (started_ms, ended_ms, script, script_hash, host, profile, users, \
             requests, failures, rps, p95_ms, verdict, checks, intervals, scaling) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
             RETURNING id",
        )
        .bind(run.started_ms)
        .bind(run.ended_ms)
        .bind(&run.script)
        .bind(&run.script_hash)
        .bind(&run.host)
        .bind(to_json(&run.profile))
        .bind(i64::from(run.profile.users))
        .bind(to_i64(total.requests))
        .bind(to_i64(total.failures))
        .bind(total.rps)
        .bind(total.p95_ms)
        .bind(&run.verdict)
        .bind(to_json(&run.checks))
        .bind(to_json(&run.intervals))
        .bind(to_json(&run.scaling))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.query_err(e))?;
        for (position, e) in run.entries.iter().enumerate() {
            sqlx::query(
                "INSERT INTO run_entries (run_id, position, method, name, requests, failures, \
                 avg_ms, min_ms, max_ms, p50_ms, p95_ms, p99_ms, rps) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(id)
            .bind(position as i64)
            .bind(&e.method)
            .bind(&e.name)
            .bind(to_i64(e.requests))
            .bind(to_i64(e.failures))
            .bind(e.avg_ms)
            .bind(e.min_ms)
            .bind(e.max_ms)
            .bind(e.p50_ms)
            .bind(e.p95_ms)
            .bind(e.p99_ms)
            .bind(e.rps)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.query_err(e))?;
        }
        tx.commit().await.map_err(|e| self.query_err(e))?;
        Ok(id)
    }

    /// The newest runs first, at most `limit`; only those of `script` when given.
    pub async fn list(
        &self,
        script: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunSummary>, HistoryError> {
        let rows = sqlx::query(
            "SELECT id, started_ms, ended_ms, script, script_hash, host, profile, requests, \
             failures, rps, p95_ms, verdict, scaling FROM runs \
             WHERE ($1 = '' OR script = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(script.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_err(e))?;
        rows.iter().map(|row| self.summary(row)).collect()
    }

    /// One run with its entries, checks and intervals.
    pub async fn get(&self, id: i64) -> Result<Option<RunRecord>, HistoryError> {
        let row = sqlx::query(
            "SELECT id, started_ms, ended_ms, script, script_hash, host, profile, requests, \
             failures, rps, p95_ms, verdict, scaling, checks, intervals FROM runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_err(e))?;
        let Some(row) = row else { return Ok(None) };
        let summary = self.summary(&row)?;
        let checks = self.decode_json(id, &row, "checks")?;
        let intervals = self.decode_json(id, &row, "intervals")?;
        let entries = self.entries(id).await?;
        Ok(Some(RunRecord {
            id,
            started_ms: summary.started_ms,
            ended_ms: summary.ended_ms,
            script: summary.script,
            script_hash: summary.script_hash,
            host: summary.host,
            profile: summary.profile,
            verdict: summary.verdict,
            entries,
            checks,
            intervals,
            scaling: summary.scaling,
        }))
    }

    /// The newest run of `script` (of any script when None), or the newest
    /// that passed: what `--baseline last` / `last-passed` mean.
    pub async fn latest(
        &self,
        script: Option<&str>,
        passed_only: bool,
    ) -> Result<Option<RunRecord>, HistoryError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE ($1 = '' OR script = $1) \
             AND ($2 = 0 OR verdict = 'passed') ORDER BY id DESC LIMIT 1",
        )
        .bind(script.unwrap_or(""))
        .bind(i64::from(passed_only))
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.query_err(e))?;
        match id {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    async fn entries(&self, id: i64) -> Result<Vec<EntryFigures>, HistoryError> {
        let rows = sqlx::query(
            "SELECT method, name, requests, failures, avg_ms, min_ms, max_ms, p50_ms, p95_ms, \
             p99_ms, rps FROM run_entries WHERE run_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.query_err(e))?;
        rows.iter()
            .map(|r| {
                Ok(EntryFigures {
                    method: r.try_get("method")?,
                    name: r.try_get("name")?,
                    requests: to_u64(r.try_get("requests")?),
                    failures: to_u64(r.try_get("failures")?),
                    avg_ms: r.try_get("avg_ms")?,
                    min_ms: r.try_get("min_ms")?,
                    max_ms: r.try_get("max_ms")?,
                    p50_ms: r.try_get("p50_ms")?,
                    p95_ms: r.try_get("p95_ms")?,
                    p99_ms: r.try_get("p99_ms")?,
                    rps: r.try_get("rps")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(|e| self.query_err(e))
    }

    fn summary(&self, row: &AnyRow) -> Result<RunSummary, HistoryError> {
        let id: i64 = row.try_get("id").map_err(|e| self.query_err(e))?;
        let read = || -> Result<RunSummary, sqlx::Error> {
            Ok(RunSummary {
                id,
                started_ms: row.try_get("started_ms")?,
                ended_ms: row.try_get("ended_ms")?,
                script: row.try_get("script")?,
                script_hash: row.try_get("script_hash")?,
                host: row.try_get("host")?,
                profile: Default::default(),
                requests: to_u64(row.try_get("requests")?),
                failures: to_u64(row.try_get("failures")?),
                rps: row.try_get("rps")?,
                p95_ms: row.try_get("p95_ms")?,
                verdict: row.try_get("verdict")?,
                scaling: Vec::new(),
            })
        };
        let mut summary = read().map_err(|e| self.query_err(e))?;
        summary.profile = self.decode_json(id, row, "profile")?;
        summary.scaling = self.decode_json(id, row, "scaling")?;
        Ok(summary)
    }

    fn decode_json<T: serde::de::DeserializeOwned>(
        &self,
        id: i64,
        row: &AnyRow,
        column: &str,
    ) -> Result<T, HistoryError> {
        let text: String = row.try_get(column).map_err(|e| self.query_err(e))?;
        serde_json::from_str(&text).map_err(|e| HistoryError::Corrupt {
            location: self.location.clone(),
            id,
            why: format!("column {column}: {e}"),
        })
    }
}

/// Serializing the record's own types cannot fail (plain structs, string
/// keys); a failure would be a bug, stored as `null` rather than a panic.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
