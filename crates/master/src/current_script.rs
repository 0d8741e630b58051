//! The script the master runs now: its text, the files that travel with
//! it, what loading it told (user types) and its bundle hash. The
//! coordinator replaces it (an upload, or the `-f` file edited on disk);
//! handlers read it through [`crate::MasterHandle::script`], so the UI,
//! the forms and the report follow a change without asking the
//! coordinator.

use std::sync::{Arc, RwLock};

use protocol::{BundleFile, ScriptBundle, ScriptHash, ScriptText};
use script::ScriptInfo;

/// One loaded script. Immutable: a change makes a new one.
#[derive(Debug, Clone)]
pub struct CurrentScript {
    pub text: ScriptText,
    /// Uploaded data and `.proto` files, by the path the script names.
    pub files: Vec<BundleFile>,
    pub info: Arc<ScriptInfo>,
    /// The hash workers are sent it by (over text, path and files).
    pub hash: ScriptHash,
}

impl CurrentScript {
    pub fn new(text: ScriptText, files: Vec<BundleFile>, info: ScriptInfo) -> Self {
        let mut bundle = ScriptBundle::from(&text);
        bundle.files = files;
        let hash = bundle.hash();
        Self {
            text,
            files: bundle.files,
            info: Arc::new(info),
            hash,
        }
    }

    /// The bundle workers are sent.
    pub fn bundle(&self) -> ScriptBundle {
        let mut bundle = ScriptBundle::from(&self.text);
        bundle.files = self.files.clone();
        bundle
    }

    /// The file name shown in the UI and kept in the run history.
    pub fn name(&self) -> String {
        std::path::Path::new(&self.text.path)
            .file_name()
            .map_or_else(
                || self.text.path.clone(),
                |n| n.to_string_lossy().into_owned(),
            )
    }
}

/// Shared between the coordinator (the only writer) and every handle.
pub type ScriptCell = Arc<RwLock<Arc<CurrentScript>>>;

pub fn read(cell: &ScriptCell) -> Arc<CurrentScript> {
    // A poisoned lock still holds a whole value: writers only swap an Arc.
    match cell.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

pub fn write(cell: &ScriptCell, script: CurrentScript) {
    let script = Arc::new(script);
    match cell.write() {
        Ok(mut s) => *s = script,
        Err(poisoned) => *poisoned.into_inner() = script,
    }
}
