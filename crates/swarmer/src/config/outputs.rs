//! The files a headless run writes (`--csv PREFIX`, `--html PATH`,
//! `--junit PATH`), checked
//! before the run starts: a report that cannot be written must not be found
//! out only after an hour of load.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use super::{UsageError, usage};

/// What a headless run leaves behind.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub csv: Option<String>,
    pub csv_full_history: bool,
    pub html: Option<PathBuf>,
    /// The verdict's checks as JUnit XML.
    pub junit: Option<PathBuf>,
    pub json: bool,
    pub only_summary: bool,
}

/// The suffixes of Locust's four CSV files.
pub const CSV_SUFFIXES: [&str; 4] = ["stats", "stats_history", "failures", "exceptions"];

impl Outputs {
    /// Checks that every file can be written, leaving no trace.
    pub fn probe(&self) -> Result<(), UsageError> {
        if let Some(prefix) = &self.csv {
            for suffix in CSV_SUFFIXES {
                let path = PathBuf::from(format!("{prefix}_{suffix}.csv"));
                probe(&path).map_err(|e| usage(format!("--csv {prefix}: {e}")))?;
            }
        }
        if let Some(path) = &self.html {
            probe(path).map_err(|e| usage(format!("--html {}: {e}", path.display())))?;
        }
        if let Some(path) = &self.junit {
            probe(path).map_err(|e| usage(format!("--junit {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// Whether `path` can be written: an existing file is opened for writing
/// (not truncated: its contents stay until the run replaces them); a new
/// one is created and removed again.
fn probe(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{} is a directory", path.display()));
    }
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if path.exists() {
        return OpenOptions::new()
            .write(true)
            .open(path)
            .map(drop)
            .map_err(cannot);
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(cannot)?;
    std::fs::remove_file(path).map_err(cannot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "swarmer-probe-{label}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn writable_paths_pass_and_leave_nothing() {
        let dir = temp_dir("ok");
        let outputs = Outputs {
            csv: Some(dir.join("run").display().to_string()),
            html: Some(dir.join("report.html")),
            ..Outputs::default()
        };
        outputs.probe().unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // An existing file keeps its contents.
        std::fs::write(dir.join("report.html"), "old").unwrap();
        outputs.probe().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("report.html")).unwrap(),
            "old"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn directories_and_missing_folders_are_refused() {
        let dir = temp_dir("bad");
        let html = Outputs {
            html: Some(dir.clone()),
            ..Outputs::default()
        };
        assert!(
            html.probe()
                .unwrap_err()
                .to_string()
                .contains("is a directory")
        );
        let csv = Outputs {
            csv: Some(dir.join("missing/run").display().to_string()),
            ..Outputs::default()
        };
        let e = csv.probe().unwrap_err().to_string();
        assert!(e.starts_with("--csv ") && e.contains("cannot write"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
