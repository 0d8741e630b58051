//! The run history's part of the config: where runs are recorded, the
//! baseline a headless run is compared to and the regression limits, all
//! checked before anything starts. A baseline file is read here (a file
//! that is not a swarmer JSON stops the run before it begins); a baseline
//! in the history needs the store, which `recording` opens next.

use history::{EntryFigures, Location, RegressionLimit};

use super::{UsageError, usage};
use crate::cli::{BaselineSpec, HistoryArgs};

pub struct HistorySetup {
    /// None: `--no-history` (or no home directory to keep it in).
    pub location: Option<Location>,
    /// The location is the per-user default, not asked for: one that
    /// cannot be opened (a read-only home in a container) turns the history
    /// off with a warning instead of refusing to run.
    pub default_location: bool,
    pub baseline: Option<Baseline>,
    /// `--max-regression`: empty without it.
    pub limits: Vec<RegressionLimit>,
}

pub enum Baseline {
    /// A run of the history: by id, or the newest (passed) of the script.
    Stored(BaselineSpec),
    /// A `--json` output of an earlier run, already read.
    File {
        path: String,
        entries: Vec<EntryFigures>,
    },
}

/// The history flags resolved; `headless` because only a headless run is
/// compared to a baseline (a UI run has no end the flags could judge).
pub fn resolve(args: &HistoryArgs, headless: bool) -> Result<HistorySetup, UsageError> {
    let default_location = args.history.is_none() && !args.no_history;
    let location = match (&args.history, args.no_history) {
        (_, true) => None,
        (Some(text), false) => Some(Location::parse(text).map_err(|e| usage(e.to_string()))?),
        (None, false) => Location::default_for_user(),
    };
    let limits = match &args.max_regression {
        Some(text) => RegressionLimit::parse_list(text).map_err(|e| usage(e.to_string()))?,
        None => Vec::new(),
    };
    let Some(text) = &args.baseline else {
        if !limits.is_empty() {
            return Err(usage(
                "--max-regression needs --baseline (ID, last, last-passed or a --json file) \
                 to compare to",
            ));
        }
        return Ok(HistorySetup {
            default_location,
            location,
            baseline: None,
            limits,
        });
    };
    if !headless {
        return Err(usage(
            "--baseline and --max-regression judge a --headless run; in the web UI, compare \
             runs in the History tab",
        ));
    }
    let baseline = match BaselineSpec::parse(text) {
        BaselineSpec::File(path) => {
            let entries = history::baseline::from_file(&path).map_err(|e| usage(e.to_string()))?;
            Baseline::File {
                path: path.display().to_string(),
                entries,
            }
        }
        stored if location.is_none() => {
            return Err(usage(format!(
                "--baseline {text}: names a run of the history, which is off (--no-history \
                 or no $HOME); give --history PATH|URL or a --json file ({stored:?})"
            )));
        }
        stored => Baseline::Stored(stored),
    };
    Ok(HistorySetup {
        default_location,
        location,
        baseline: Some(baseline),
        limits,
    })
}
