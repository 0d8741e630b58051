//! What a worker needs to run the master's script, and the hash a plan
//! names it by.
//!
//! The text travels once per worker connection (or when it changes):
//! later plans carry only its [`ScriptHash`]. A worker that is handed a
//! hash it does not hold asks for it ([`crate::WorkerMessage::ScriptWanted`]).
//! A bundle is the script plus the files it reads (data files, `.proto`
//! files), so a worker never needs them on its own disk: the master
//! collects them (the script crate's `files` module says which) and a
//! worker reads them only from here.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A script and the files it reads, as the master sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptBundle {
    /// The path on the master, for error messages (`file:line`).
    pub path: String,
    pub code: String,
    /// Files the script names, by the path it names them with.
    #[serde(default)]
    pub files: Vec<BundleFile>,
}

/// One file of a [`ScriptBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// Relative to the script's folder, `/`-separated.
    pub path: String,
    /// As MessagePack binary: a plain `Vec<u8>` would travel as an array
    /// of integers, up to twice the size.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// The SHA-256 of a bundle, in lowercase hex: equal hashes, same bundle.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScriptHash(String);

impl fmt::Display for ScriptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ScriptBundle {
    /// A bundle of the script alone.
    pub fn script(path: &str, code: &str) -> Self {
        Self {
            path: path.to_owned(),
            code: code.to_owned(),
            files: Vec::new(),
        }
    }

    /// Its hash, over every field: a moved script reloads as an edited one.
    pub fn hash(&self) -> ScriptHash {
        let mut sha = Sha256::new();
        // Each part behind its length, so no two bundles hash the same
        // bytes ("ab" + "c" against "a" + "bc").
        let mut part = |bytes: &[u8]| {
            sha.update((bytes.len() as u64).to_le_bytes());
            sha.update(bytes);
        };
        part(self.path.as_bytes());
        part(self.code.as_bytes());
        for file in &self.files {
            part(file.path.as_bytes());
            part(&file.bytes);
        }
        let mut hex = String::with_capacity(64);
        for byte in sha.finalize().iter() {
            let _ = write!(hex, "{byte:02x}");
        }
        ScriptHash(hex)
    }
}

/// The script a plan runs: always its hash, and the bundle itself when the
/// worker may not hold it yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRef {
    pub hash: ScriptHash,
    pub bundle: Option<ScriptBundle>,
}

impl ScriptRef {
    /// The bundle itself, with its hash.
    pub fn sending(bundle: ScriptBundle) -> Self {
        Self {
            hash: bundle.hash(),
            bundle: Some(bundle),
        }
    }

    /// Only the hash of a bundle the worker was sent before.
    pub fn by_hash(hash: ScriptHash) -> Self {
        Self { hash, bundle: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_part_and_tells_their_borders() {
        let a = ScriptBundle::script("a.lua", "return 1");
        assert_eq!(a.hash(), a.clone().hash());
        assert_eq!(a.hash().to_string().len(), 64);
        assert_ne!(a.hash(), ScriptBundle::script("b.lua", "return 1").hash());
        assert_ne!(a.hash(), ScriptBundle::script("a.lua", "return 2").hash());
        assert_ne!(
            ScriptBundle::script("ab", "c").hash(),
            ScriptBundle::script("a", "bc").hash()
        );
        let mut with_file = a.clone();
        with_file.files.push(BundleFile {
            path: "users.csv".into(),
            bytes: b"alice".to_vec(),
        });
        assert_ne!(a.hash(), with_file.hash());
    }
}
