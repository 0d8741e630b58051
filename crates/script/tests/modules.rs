//! `require`: modules are found in the script's folder only; the load
//! records each one it required so it travels in the bundle; a Lua state
//! with a bundle finds them there and never on disk; a module first
//! required at run time, one that escapes the folder, a missing one and
//! one with a syntax error are errors naming the module and file:line.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use script::files::FileSet;
use script::{LuaLimits, RuntimeConfig, ScriptError, ScriptSource};

const MAX: Duration = Duration::from_secs(10);

/// A fresh folder under the system's temporary one, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("swarmer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Folder(dir)
    }

    fn write(&self, path: &str, text: &str) {
        let full = self.0.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    fn script(&self, path: &str) -> ScriptSource {
        ScriptSource::read(&self.0.join(path).to_string_lossy()).unwrap()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SCRIPT: &str = r#"
local helpers = require "helpers"
local auth = require "lib.auth"
local pkg = require "pkg"
local U = swarmer.user { name = "U" }
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
  swarmer.record { type = "mod", name = helpers.greet(auth.user()) .. pkg.name, duration_ms = 1 }
  require "late"
  swarmer.record { type = "late", name = "loaded", duration_ms = 1 }
end)
"#;

fn layout(dir: &Folder) {
    dir.write("s.lua", SCRIPT);
    dir.write(
        "helpers.lua",
        "return { greet = function(n) return 'hi ' .. n end }\n",
    );
    // A module that requires another: both are recorded.
    dir.write(
        "lib/auth.lua",
        "local h = require 'helpers'\nreturn { user = function() return 'bob' end }\n",
    );
    dir.write("pkg/init.lua", "return { name = '+pkg' }\n");
    // On disk but required only at run time, and unrelated.
    dir.write("late.lua", "return {}\n");
    dir.write("other.lua", "error('never loaded')\n");
}

fn bundle(dir: &Folder) -> FileSet {
    let (_, files) = script::inspect_bundle(&dir.script("s.lua"), LuaLimits::default()).unwrap();
    files
}

#[test]
fn modules_required_while_loading_travel_and_run_from_the_bundle() {
    let dir = Folder::new("modules");
    layout(&dir);
    let files = bundle(&dir);
    let paths: Vec<&str> = files.iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["helpers.lua", "lib/auth.lua", "pkg/init.lua"]);

    // A worker: the bundle only, with the folder gone.
    let src = dir.script("s.lua");
    drop(dir);
    assert!(!Path::new(&src.path).exists());
    let config = RuntimeConfig {
        files: Some(Arc::new(files)),
        ..Default::default()
    };
    let stats = run_with_source(&src, config, &[("U", 2)], |s| s.num_requests() >= 2, MAX);
    assert_eq!(count(&stats, "mod", "hi bob+pkg"), (2, 0));
    assert_eq!(count(&stats, "late", "loaded"), (0, 0));
    let errors = exceptions(&stats);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "{}:10: require \"late\": the module did not come with the script (late.lua or late/init.lua)",
            src.path
        )) && errors[0].contains("require it at the script's top level"),
        "{errors:?}"
    );
}

#[test]
fn a_module_named_in_swarmer_files_may_be_required_at_run_time() {
    let dir = Folder::new("modules-late");
    layout(&dir);
    let text = SCRIPT.replace("local U", "swarmer.files { \"late.lua\" }\nlocal U");
    dir.write("s.lua", &text);
    let files = bundle(&dir);
    assert!(files.get("late.lua").is_some());
    let config = RuntimeConfig {
        files: Some(Arc::new(files)),
        ..Default::default()
    };
    let stats = run_with_source(
        &dir.script("s.lua"),
        config,
        &[("U", 1)],
        |s| s.num_requests() >= 2,
        MAX,
    );
    assert_eq!(count(&stats, "late", "loaded"), (1, 0));
}

fn load_error(dir: &Folder, script: &str) -> String {
    match script::inspect(&dir.script(script)) {
        Err(ScriptError::Load { message }) => message,
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn escaping_missing_and_broken_modules_fail_the_load_naming_file_and_line() {
    let dir = Folder::new("modules-bad");
    let at = |file: &str| dir.0.join(file).to_string_lossy().into_owned();
    dir.write("secret.lua", "return {}\n");
    dir.write("inner/up.lua", "\nrequire \"../secret\"\n");
    let message = load_error(&dir, "inner/up.lua");
    assert!(
        message.starts_with(&format!(
            "{}:2: require \"../secret\": the module leaves the script's folder (through \"..\")",
            at("inner/up.lua")
        )),
        "{message}"
    );

    dir.write("missing.lua", "local x = 1\n\n\nrequire \"nope.deep\"\n");
    let message = load_error(&dir, "missing.lua");
    assert!(
        message.starts_with(&format!(
            "{}:4: require \"nope.deep\": no such module in the script's folder (looked for {} and {})",
            at("missing.lua"),
            at("nope/deep.lua"),
            at("nope/deep/init.lua")
        )),
        "{message}"
    );

    dir.write("lib/broken.lua", "local t = {\n  a = = 1,\n}\nreturn t\n");
    dir.write("syntax.lua", "require \"lib.broken\"\n");
    let message = load_error(&dir, "syntax.lua");
    assert!(
        message.starts_with(&format!(
            "{}:1: require \"lib.broken\": {}:2:",
            at("syntax.lua"),
            at("lib/broken.lua")
        )),
        "{message}"
    );

    // An error raised while the module runs names the module's line.
    dir.write("raises.lua", "local x = 1\nerror('no config')\n");
    dir.write("runs.lua", "require 'raises'\n");
    let message = load_error(&dir, "runs.lua");
    assert!(
        message.starts_with(&format!("{}:2: no config", at("raises.lua"))),
        "{message}"
    );
}
