//! The files a script reads (`swarmer.data`, `.proto` files, anything named
//! in `swarmer.files { ... }`), by the path the script names them with.
//!
//! The master reads them from disk, relative to the script's folder, and
//! records each one it reads while it loads the script ([`Files::Disk`]);
//! what it recorded travels to the workers with the script, and a worker
//! reads only those ([`Files::Bundle`]), never its own disk. So a script
//! that runs standalone (whose in-process worker also reads the bundle)
//! runs the same on any cluster.
//!
//! [`FileSet`] is the one "path → bytes" lookup: whatever adds files to a
//! bundle (this recording, files uploaded through the web UI) goes through
//! [`FileSet::insert`], which checks the path and the size limit.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The most a script's files may weigh together. They travel in one
/// protocol frame with the script (`protocol::MAX_FRAME_BYTES`, 16 MiB),
/// so the limit leaves room for the script's text and the plan.
pub const MAX_TOTAL_BYTES: u64 = 12 * 1024 * 1024;

/// Why a path cannot name one of a script's files: the one set of path
/// rules, for what a script reads (`swarmer.data`, `require`, protos) and
/// for what an upload carries (`master::upload`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{path:?}: the path is empty; name a file relative to the script's folder")]
    Empty { path: String },
    #[error("{path:?}: the path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong { path: String },
    #[error("{path:?}: the path holds a control character")]
    Control { path: String },
    #[error("{path:?}: the path holds a backslash; separate folders with '/'")]
    Backslash { path: String },
    #[error("{path:?}: absolute paths are refused; name files relative to the script's folder")]
    Absolute { path: String },
    #[error("{path:?}: the path leaves the script's folder (through \"..\"), which is refused")]
    Escapes { path: String },
}

/// The longest path accepted, in bytes: far beyond any real layout, and a
/// bound on what a refusal repeats.
pub const MAX_PATH_BYTES: usize = 1024;

/// Why a file cannot be part of a script's files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(
        "{path:?}: the script's files would weigh {total} bytes with it, above the limit of {limit} bytes ({} MiB)",
        limit / (1024 * 1024)
    )]
    TooLarge {
        path: String,
        total: u64,
        limit: u64,
    },
    #[error("cannot read {path:?} ({}): {source}", full.display())]
    Read {
        path: String,
        full: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path:?} did not come with the script: the master sends the files the script reads while it loads and those named in swarmer.files {{ ... }}; add it there"
    )]
    NotSent { path: String },
}

/// A script's files by their normalised path (relative, `/`-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    files: BTreeMap<String, Arc<[u8]>>,
    total: u64,
}

impl FileSet {
    /// Adds (or replaces) `path`; refuses a path outside the script's
    /// folder or a set that would weigh more than [`MAX_TOTAL_BYTES`].
    pub fn insert(&mut self, path: &str, bytes: Arc<[u8]>) -> Result<(), FileError> {
        let key = normalise(path)?;
        let old = self.files.get(&key).map_or(0, |b| b.len() as u64);
        let total = self.total - old + bytes.len() as u64;
        if total > MAX_TOTAL_BYTES {
            return Err(FileError::TooLarge {
                path: path.to_string(),
                total,
                limit: MAX_TOTAL_BYTES,
            });
        }
        self.files.insert(key, bytes);
        self.total = total;
        Ok(())
    }

    /// The bytes of `path` (any spelling that normalises the same).
    pub fn get(&self, path: &str) -> Option<&Arc<[u8]>> {
        self.files.get(&normalise(path).ok()?)
    }

    /// Every file, by path, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<[u8]>)> {
        self.files.iter().map(|(p, b)| (p.as_str(), b))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Their size together, in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }
}

/// `path` relative to the script's folder, `/`-separated, without `.` or
/// empty parts: `./data//../users.csv` is `users.csv`. Refused, each by
/// name: an empty path (or one that names the folder itself), absolute
/// paths (`/x`, `C:/x`), paths that climb out of the folder through
/// `..`, backslashes (a Windows separator on one machine, a file name
/// character on another), control characters, and paths over
/// [`MAX_PATH_BYTES`].
pub fn normalise(path: &str) -> Result<String, PathError> {
    let shown = || shown_path(path);
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong { path: shown() });
    }
    if path.chars().any(char::is_control) {
        return Err(PathError::Control { path: shown() });
    }
    if path.contains('\\') {
        return Err(PathError::Backslash { path: shown() });
    }
    let drive = path.as_bytes().get(1) == Some(&b':') && path.as_bytes()[0].is_ascii_alphabetic();
    if path.starts_with('/') || drive {
        return Err(PathError::Absolute { path: shown() });
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes { path: shown() });
                }
            }
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty { path: shown() });
    }
    Ok(parts.join("/"))
}

/// `path` as a refusal shows it: at most 200 characters (the rest is
/// elided); `{:?}` escapes control characters.
fn shown_path(path: &str) -> String {
    const SHOWN_CHARS: usize = 200;
    match path.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => format!("{}…", &path[..at]),
        None => path.to_string(),
    }
}

/// Where one Lua state reads the script's files from.
pub enum Files {
    /// The master (and `swarmer inspect`): from disk under `base`,
    /// recording each file read so it can travel with the script.
    Disk {
        base: PathBuf,
        read: RefCell<FileSet>,
    },
    /// A worker: only the files that came with the script.
    Bundle(Arc<FileSet>),
}

impl Files {
    pub fn new(base: PathBuf, sent: Option<Arc<FileSet>>) -> Self {
        match sent {
            Some(set) => Files::Bundle(set),
            None => Files::Disk {
                base,
                read: RefCell::new(FileSet::default()),
            },
        }
    }

    /// The bytes of `path`, from disk or from the bundle.
    pub fn read(&self, path: &str) -> Result<Arc<[u8]>, FileError> {
        let key = normalise(path)?;
        match self {
            Files::Bundle(set) => set.get(&key).cloned().ok_or_else(|| FileError::NotSent {
                path: path.to_string(),
            }),
            Files::Disk { base, read } => {
                if let Some(bytes) = read.borrow().get(&key) {
                    return Ok(bytes.clone());
                }
                let full = base.join(&key);
                let bytes: Arc<[u8]> = std::fs::read(&full)
                    .map_err(|source| FileError::Read {
                        path: path.to_string(),
                        full,
                        source,
                    })?
                    .into();
                read.borrow_mut().insert(path, bytes.clone())?;
                Ok(bytes)
            }
        }
    }

    /// [`read`](Self::read), with `None` where no such file exists (on
    /// disk) or none came with the script (a bundle): for lookups that try
    /// several places, as `require` and proto imports do. A bad path is
    /// still an error, by its own name.
    pub fn find(&self, path: &str) -> Result<Option<Arc<[u8]>>, FileError> {
        match self.read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(FileError::NotSent { .. }) => Ok(None),
            Err(FileError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The files read from disk so far (none for a bundle: it was sent).
    pub fn recorded(&self) -> FileSet {
        match self {
            Files::Disk { read, .. } => read.borrow().clone(),
            Files::Bundle(_) => FileSet::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_script_folder() {
        assert_eq!(normalise("users.csv").unwrap(), "users.csv");
        assert_eq!(normalise("./data/../users.csv").unwrap(), "users.csv");
        assert_eq!(normalise("proto//a.proto").unwrap(), "proto/a.proto");
        for (path, refused) in [
            ("../secret", "leaves the script's folder (through \"..\")"),
            ("a/../../secret", "leaves the script's folder"),
            ("/etc/passwd", "absolute"),
            ("C:/x", "absolute"),
            ("a\\b", "backslash"),
            ("", "empty"),
            (".", "empty"),
            ("a/..", "empty"),
            ("a\nb", "control character"),
        ] {
            let message = normalise(path).unwrap_err().to_string();
            assert!(message.contains(refused), "{path:?}: {message}");
        }
        let long = "a/".repeat(MAX_PATH_BYTES);
        let message = normalise(&long).unwrap_err().to_string();
        assert!(
            message.contains("longer than 1024 bytes") && message.len() < 400,
            "{message}"
        );
        assert!(matches!(
            normalise("../secret"),
            Err(PathError::Escapes { .. })
        ));
    }

    #[test]
    fn the_set_refuses_what_would_pass_the_limit_and_names_the_file() {
        let mut set = FileSet::default();
        let half: Arc<[u8]> = vec![0u8; (MAX_TOTAL_BYTES / 2) as usize].into();
        set.insert("a.bin", half.clone()).unwrap();
        // Replacing a file counts it once.
        set.insert("./a.bin", half.clone()).unwrap();
        set.insert("b.bin", half.clone()).unwrap();
        assert_eq!(set.total_bytes(), MAX_TOTAL_BYTES);
        let e = set.insert("c.bin", vec![1u8].into()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("\"c.bin\"") && msg.contains("12 MiB"), "{msg}");
        assert_eq!(set.len(), 2);
        assert_eq!(set.get("b.bin").map(|b| b.len()), Some(half.len()));
    }

    #[test]
    fn a_bundle_serves_only_what_was_sent() {
        let mut set = FileSet::default();
        set.insert("data/u.csv", b"a\n1\n".to_vec().into()).unwrap();
        let files = Files::new(PathBuf::from("/nonexistent"), Some(Arc::new(set)));
        assert_eq!(&*files.read("./data/u.csv").unwrap(), b"a\n1\n");
        let e = files.read("other.csv").unwrap_err().to_string();
        assert!(e.contains("did not come with the script"), "{e}");
        assert!(matches!(
            files.read("../x"),
            Err(FileError::Path(PathError::Escapes { .. }))
        ));
        assert!(files.find("other.csv").unwrap().is_none());
    }
}
