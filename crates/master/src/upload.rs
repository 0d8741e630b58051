//! A script sent to the master to replace the running one
//! (`PUT /api/v1/script`): the checks on what was sent (sizes, paths,
//! encodings) and the load that must succeed before anything changes.
//!
//! Every refusal names the problem and the file; nothing is changed by a
//! refused upload, since this module only builds a [`CurrentScript`] that
//! the caller then hands to the coordinator.

use std::collections::BTreeMap;

use base64::Engine as _;
use protocol::{BundleFile, ScriptText};
use script::ScriptSource;
use serde::Deserialize;

use script::files::{PathError, normalise};

use crate::current_script::CurrentScript;

/// The largest script text accepted.
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;
/// The largest single file accepted.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The most the script and its files may weigh together: the bundle
/// travels in one protocol frame (16 MiB at most), with room to spare.
pub const MAX_TOTAL_BYTES: usize = 8 * 1024 * 1024;
/// The most files one upload may carry.
pub const MAX_FILES: usize = 100;
/// The largest request body: the total above, base64-encoded, plus JSON.
pub const MAX_BODY_BYTES: usize = MAX_TOTAL_BYTES / 3 * 4 + 64 * 1024;

/// `{"name": "shop.lua", "text": "...", "files": {"data/users.csv": "..."}}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    pub name: String,
    pub text: String,
    #[serde(default)]
    pub files: BTreeMap<String, UploadFile>,
}

/// A file's content: UTF-8 text as a JSON string, or any bytes as
/// `{"base64": "..."}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UploadFile {
    Text(String),
    Binary { base64: String },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UploadError {
    #[error(
        "the request body is not UTF-8 (byte {0}): send text files as JSON strings and binary files as {{\"base64\": \"...\"}}"
    )]
    NotUtf8(usize),
    #[error("the request body is not a script upload: {0}")]
    Json(String),
    #[error("{what} is {bytes} bytes; the limit is {limit} bytes")]
    TooLarge {
        what: String,
        bytes: usize,
        limit: usize,
    },
    #[error("{count} files; the limit is {MAX_FILES}")]
    TooManyFiles { count: usize },
    /// Refused by the script crate's path rules (`script::files::normalise`),
    /// the same that govern what a script reads.
    #[error("{0}")]
    BadPath(#[from] PathError),
    #[error("file {path:?} names the same file as {other:?}")]
    SamePath { path: String, other: String },
    #[error("file {path:?}: its base64 does not decode: {problem}")]
    BadBase64 { path: String, problem: String },
    /// Checked with the script's own `file:line`.
    #[error("the script does not load: {0}")]
    Load(String),
}

impl UploadError {
    /// Too big (413) rather than malformed (400) or not loading (422).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            UploadError::TooLarge { .. } | UploadError::TooManyFiles { .. }
        )
    }
}

/// Parses a JSON body into an [`Upload`], telling bad encodings apart.
pub fn parse(body: &[u8]) -> Result<Upload, UploadError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(UploadError::NotUtf8(e.valid_up_to()));
    }
    serde_json::from_slice(body).map_err(|e| UploadError::Json(e.to_string()))
}

/// Checks sizes and paths and decodes the files, without running anything.
/// Paths are kept normalised (`./data//u.csv` is `data/u.csv`), as the
/// script's files are keyed.
pub fn check(upload: Upload) -> Result<(ScriptText, Vec<BundleFile>), UploadError> {
    let name = normalise(&upload.name)?;
    if upload.text.len() > MAX_SCRIPT_BYTES {
        return Err(UploadError::TooLarge {
            what: format!("the script {:?}", upload.name),
            bytes: upload.text.len(),
            limit: MAX_SCRIPT_BYTES,
        });
    }
    if upload.files.len() > MAX_FILES {
        return Err(UploadError::TooManyFiles {
            count: upload.files.len(),
        });
    }
    let mut total = upload.text.len();
    // Normalised path → the path as sent, to name both of a clash.
    let mut seen = BTreeMap::from([(name.clone(), upload.name.clone())]);
    let mut files = Vec::with_capacity(upload.files.len());
    for (sent, content) in upload.files {
        let path = normalise(&sent)?;
        if let Some(other) = seen.insert(path.clone(), sent.clone()) {
            return Err(UploadError::SamePath { path: sent, other });
        }
        let bytes = match content {
            UploadFile::Text(text) => text.into_bytes(),
            UploadFile::Binary { base64 } => base64::engine::general_purpose::STANDARD
                .decode(base64.trim())
                .map_err(|e| UploadError::BadBase64 {
                    path: sent.clone(),
                    problem: e.to_string(),
                })?,
        };
        if bytes.len() > MAX_FILE_BYTES {
            return Err(UploadError::TooLarge {
                what: format!("file {sent:?}"),
                bytes: bytes.len(),
                limit: MAX_FILE_BYTES,
            });
        }
        total += bytes.len();
        if total > MAX_TOTAL_BYTES {
            return Err(UploadError::TooLarge {
                what: "the script with its files".into(),
                bytes: total,
                limit: MAX_TOTAL_BYTES,
            });
        }
        files.push(BundleFile { path, bytes });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    // The uploaded files travel beside the text (`CurrentScript::files`).
    let text = ScriptText {
        path: name,
        code: upload.text,
        files: Vec::new(),
    };
    Ok((text, files))
}

/// Checks an upload and loads its script, as the master would at the
/// start of a run: the [`CurrentScript`] it would become, or why not.
/// Runs the script's top level, so call it off the async threads.
pub fn load(upload: Upload) -> Result<CurrentScript, UploadError> {
    let (text, files) = check(upload)?;
    let src = ScriptSource {
        path: text.path.clone(),
        code: text.code.clone(),
    };
    // The script reads the uploaded files, never the master's disk, as
    // the workers will.
    let set =
        crate::script_files::file_set(&files).map_err(|e| UploadError::Load(e.to_string()))?;
    let info = script::inspect_sent(&src, script::LuaLimits::default(), set.into())
        .map_err(|e| UploadError::Load(e.to_string()))?;
    Ok(CurrentScript::new(text, files, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(name: &str, files: &[(&str, UploadFile)]) -> Upload {
        Upload {
            name: name.into(),
            text: "return 1".into(),
            files: files
                .iter()
                .map(|(p, f)| (p.to_string(), f.clone()))
                .collect(),
        }
    }

    fn text(s: &str) -> UploadFile {
        UploadFile::Text(s.into())
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused_by_name() {
        for (path, problem) in [
            ("../x.csv", "leaves the script's folder (through \"..\")"),
            ("data/../../x", "leaves the script's folder"),
            ("/etc/passwd", "absolute"),
            ("C:/x", "absolute"),
            ("a\\b", "backslash"),
            ("", "empty"),
            ("a/..", "empty"),
            ("a\nb", "control"),
        ] {
            let err = check(upload("s.lua", &[(path, text("x"))])).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, UploadError::BadPath(_)),
                "{path:?}: {message}"
            );
            assert!(message.contains(problem), "{path:?}: {message}");
        }
        // Two spellings of one file, or a file spelled as the script.
        for (path, other) in [("./s.lua", "s.lua"), ("data//u.csv", "data/u.csv")] {
            let files = [("data/u.csv", text("a")), (path, text("b"))];
            let message = check(upload("s.lua", &files)).unwrap_err().to_string();
            assert!(message.contains(&format!("{other:?}")), "{message}");
        }
        assert!(check(upload("../s.lua", &[])).is_err());
        let (script, files) = check(upload("./s.lua", &[("data//users.csv", text("a"))])).unwrap();
        assert_eq!(script.path, "s.lua");
        assert_eq!(files[0].path, "data/users.csv");
    }

    #[test]
    fn sizes_over_the_limits_are_refused() {
        let big = "x".repeat(MAX_FILE_BYTES + 1);
        let err = check(upload("s.lua", &[("big.csv", text(&big))])).unwrap_err();
        assert!(err.is_too_large());
        assert!(err.to_string().contains("big.csv"), "{err}");
        let mut script = upload("s.lua", &[]);
        script.text = "x".repeat(MAX_SCRIPT_BYTES + 1);
        assert!(check(script).unwrap_err().is_too_large());
        let half = "x".repeat(MAX_FILE_BYTES);
        let many: Vec<_> = (0..3).map(|i| (format!("f{i}"), text(&half))).collect();
        let many: Vec<(&str, UploadFile)> =
            many.iter().map(|(p, f)| (p.as_str(), f.clone())).collect();
        assert!(check(upload("s.lua", &many)).unwrap_err().is_too_large());
    }

    #[test]
    fn binary_files_come_as_base64_and_bodies_must_be_utf8() {
        let bin = UploadFile::Binary {
            base64: "AP8=".into(),
        };
        let (_, files) = check(upload("s.lua", &[("a.bin", bin)])).unwrap();
        assert_eq!(files[0].bytes, vec![0, 255]);
        let bad = UploadFile::Binary {
            base64: "!!".into(),
        };
        assert!(matches!(
            check(upload("s.lua", &[("a.bin", bad)])),
            Err(UploadError::BadBase64 { .. })
        ));
        assert_eq!(
            parse(b"{\"name\": \"s.lua\", \"text\": \"\xff\"}").unwrap_err(),
            UploadError::NotUtf8(27)
        );
        let parsed =
            parse(br#"{"name":"s.lua","text":"t","files":{"a":"x","b":{"base64":"AA=="}}}"#)
                .unwrap();
        assert_eq!(parsed.files.len(), 2);
    }

    #[test]
    fn a_script_that_does_not_load_says_where() {
        let mut broken = upload("shop.lua", &[]);
        broken.text = "local x = \nswarmer.user {".into();
        let message = load(broken).unwrap_err().to_string();
        assert!(message.contains("shop.lua:"), "{message}");
    }
}
