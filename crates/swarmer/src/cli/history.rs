//! The run history's flags: where it is kept (`--history`, `--no-history`),
//! the baseline a run is compared to and how far it may move
//! (`--baseline`, `--max-regression`), and the `swarmer history`
//! subcommand that reads it. Kept apart from `cli` so the two evolve
//! without touching each other.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Flags of a run (standalone or master) about its history.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Where finished runs are recorded: a SQLite file, or a
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB URL for a shared database.
    /// Default: $XDG_STATE_HOME/swarmer/history.db, else
    /// ~/.local/state/swarmer/history.db.
    #[arg(long, env = "SWARMER_HISTORY", value_name = "PATH|URL")]
    pub history: Option<String>,
    /// Record nothing.
    #[arg(long, env = "SWARMER_NO_HISTORY", conflicts_with = "history")]
    pub no_history: bool,
    /// Compare the run to a baseline: a history id, `last` or
    /// `last-passed` (of the same script), or a --json output file of an
    /// earlier run.
    #[arg(
        long,
        env = "SWARMER_BASELINE",
        value_name = "ID|last|last-passed|FILE.json"
    )]
    pub baseline: Option<String>,
    /// How far the run may move from the baseline before it fails (exit 3):
    /// e.g. p95=10%,rps=-5%,fail_ratio=+0.5% (a positive limit caps a rise,
    /// a negative one a fall; fail_ratio moves by percentage points).
    #[arg(long, env = "SWARMER_MAX_REGRESSION", value_name = "LIMITS")]
    pub max_regression: Option<String>,
}

/// `swarmer history ...`: read the recorded runs.
#[derive(Debug, Args)]
pub struct HistoryCommand {
    #[command(subcommand)]
    pub action: HistoryAction,
    /// The history to read (default: the same as a run's).
    #[arg(long, global = true, env = "SWARMER_HISTORY", value_name = "PATH|URL")]
    pub history: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// The recorded runs, newest first.
    List {
        /// Only the runs of this script (its file name).
        #[arg(long)]
        script: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One run: its figures per entry, its checks and its profile.
    Show { id: i64 },
    /// Two runs side by side: per-entry deltas with percent change (B against A).
    Compare { a: i64, b: i64 },
}

/// What `--baseline` names, before any store is opened.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineSpec {
    Id(i64),
    Last,
    LastPassed,
    File(PathBuf),
}

impl BaselineSpec {
    pub fn parse(text: &str) -> BaselineSpec {
        match text.trim() {
            "last" => BaselineSpec::Last,
            "last-passed" => BaselineSpec::LastPassed,
            t => match t.parse::<i64>() {
                Ok(id) => BaselineSpec::Id(id),
                Err(_) => BaselineSpec::File(PathBuf::from(t)),
            },
        }
    }
}
