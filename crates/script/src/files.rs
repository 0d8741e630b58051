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
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// The most a script's files may weigh together. They travel in one
/// protocol frame with the script (`protocol::MAX_FRAME_BYTES`, 16 MiB),
/// so the limit leaves room for the script's text and the plan.
pub const MAX_TOTAL_BYTES: u64 = 12 * 1024 * 1024;

/// Why a file cannot be part of a script's files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path:?}: absolute paths are refused; name files relative to the script's folder")]
    Absolute { path: String },
    #[error("{path:?}: the path leaves the script's folder (through \"..\"), which is refused")]
    Escapes { path: String },
    #[error("{path:?}: the path names no file")]
    Empty { path: String },
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

/// `path` relative to the script's folder, `/`-separated, without `.`
/// parts: `./data/../users.csv` is `users.csv`. Absolute paths and paths
/// that climb out of the folder are refused, named.
pub fn normalise(path: &str) -> Result<String, FileError> {
    let p = Path::new(path);
    if p.is_absolute() || path.starts_with('/') || path.starts_with('\\') {
        return Err(FileError::Absolute {
            path: path.to_string(),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().unwrap_or_default()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(FileError::Escapes {
                        path: path.to_string(),
                    });
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(FileError::Absolute {
                    path: path.to_string(),
                });
            }
        }
    }
    if parts.is_empty() {
        return Err(FileError::Empty {
            path: path.to_string(),
        });
    }
    Ok(parts.join("/"))
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
        match self {
            Files::Bundle(set) => set.get(path).cloned().ok_or_else(|| {
                // Refuse a bad path by its own name, not as "not sent".
                match normalise(path) {
                    Err(e) => e,
                    Ok(_) => FileError::NotSent {
                        path: path.to_string(),
                    },
                }
            }),
            Files::Disk { base, read } => {
                let key = normalise(path)?;
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
        assert!(matches!(
            normalise("../secret"),
            Err(FileError::Escapes { .. })
        ));
        assert!(matches!(
            normalise("a/../../secret"),
            Err(FileError::Escapes { .. })
        ));
        assert!(matches!(
            normalise("/etc/passwd"),
            Err(FileError::Absolute { .. })
        ));
        assert!(matches!(normalise("."), Err(FileError::Empty { .. })));
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
        assert!(matches!(files.read("../x"), Err(FileError::Escapes { .. })));
    }
}
