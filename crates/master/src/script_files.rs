//! The files a script reads, as the master sends them with it: what the
//! script read while it loaded (`script::files`), and the same files read
//! again at each run start so an edited data file (an updated ConfigMap)
//! reaches the workers like an edited script.

use std::path::Path;

use protocol::BundleFile;
use script::files::FileSet;

/// A script's files as a bundle carries them.
pub fn bundle_files(set: &FileSet) -> Vec<BundleFile> {
    set.iter()
        .map(|(path, bytes)| BundleFile {
            path: path.to_string(),
            bytes: bytes.to_vec(),
        })
        .collect()
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
