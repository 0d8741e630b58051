//! The run history: every finished run recorded in a real database (an
//! embedded SQLite file by default, PostgreSQL for a shared one), read back
//! by `swarmer history`, the web API and `--baseline`, and turned into
//! regression checks by `--max-regression`.
//!
//! Modules: [`record`] the data kept of a run, [`location`] where it is
//! kept, [`store`] the database (sqlx, one migration set per backend, bound
//! parameters only), [`compare`] per-entry deltas between two runs,
//! [`baseline`] a baseline read from an earlier `--json` file, and
//! [`regression`] the `--max-regression` limits and their checks.

#![forbid(unsafe_code)]

pub mod baseline;
pub mod compare;
pub mod location;
pub mod record;
pub mod regression;
pub mod store;

pub use compare::{Comparison, EntryDelta};
pub use location::Location;
pub use record::{
    AGGREGATED, Check, EntryFigures, Interval, Profile, RunRecord, RunSummary, ScaleEvent,
};
pub use regression::{RegressionLimit, regression_checks};
pub use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// `--history` names something that cannot be a store.
    #[error("{0}")]
    Location(String),
    /// The database cannot be opened or migrated (unreachable server, bad
    /// credentials, a file that is not a SQLite database).
    #[error("cannot open the run history at {location}: {source}")]
    Open {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    /// A query failed on an open store (e.g. the server went away).
    #[error("run history ({location}): {source}")]
    Query {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    /// A stored row that does not decode (written by a newer swarmer?).
    #[error("run history ({location}): run {id} is unreadable: {why}")]
    Corrupt {
        location: String,
        id: i64,
        why: String,
    },
    /// A baseline that is not a run: a bad id, a file that is not a
    /// swarmer `--json` output.
    #[error("{0}")]
    Baseline(String),
    /// A `--max-regression` that does not parse.
    #[error("--max-regression: {0}")]
    Limit(String),
}
