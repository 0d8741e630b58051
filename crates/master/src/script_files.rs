//! The files a script reads, as the master sends them with it: what the
//! script read while it loaded (`script::files`), and the same files read
//! again at each run start so an edited data file (an updated ConfigMap)
//! reaches the workers like an edited script.

use std::path::Path;

use protocol::BundleFile;
use script::files::{FileError, FileSet};

/// A script's files as a bundle carries them.
pub fn bundle_files(set: &FileSet) -> Vec<BundleFile> {
    set.iter()
        .map(|(path, bytes)| BundleFile {
            path: path.to_string(),
            bytes: bytes.to_vec(),
        })
        .collect()
}

/// A bundle's files as the script reads them (an upload's, which the
/// master's own Lua states read instead of its disk, as workers do).
pub fn file_set(files: &[BundleFile]) -> Result<FileSet, FileError> {
    let mut set = FileSet::default();
    for f in files {
        set.insert(&f.path, f.bytes.as_slice().into())?;
    }
    Ok(set)
}

/// `files` as they are on disk now, under the script's folder `dir`. A
/// file that cannot be read keeps its old bytes, as a script that cannot
/// be read keeps its old text.
pub fn reread(files: &[BundleFile], dir: &Path) -> Vec<BundleFile> {
    files
        .iter()
        .map(|f| BundleFile {
            path: f.path.clone(),
            bytes: std::fs::read(dir.join(&f.path)).unwrap_or_else(|_| f.bytes.clone()),
        })
        .collect()
}

/// Whether a Lua module (`require`d, so part of the script's code)
/// differs between `old` and `new`, the same files read at two times.
pub fn modules_changed(old: &[BundleFile], new: &[BundleFile]) -> bool {
    old.iter()
        .zip(new)
        .any(|(a, b)| a.path.ends_with(".lua") && a.bytes != b.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> BundleFile {
        BundleFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn only_a_changed_module_asks_for_a_new_load() {
        let old = [file("users.csv", "a\n"), file("lib/m.lua", "return 1")];
        let data = [file("users.csv", "b\n"), file("lib/m.lua", "return 1")];
        let module = [file("users.csv", "a\n"), file("lib/m.lua", "return 2")];
        assert!(!modules_changed(&old, &old));
        assert!(!modules_changed(&old, &data));
        assert!(modules_changed(&old, &module));
        let set = file_set(&module).unwrap();
        assert_eq!(
            set.get("./lib/m.lua").map(|b| &b[..]),
            Some(&b"return 2"[..])
        );
    }
}
