//! `require "helpers"`: Lua modules come from the script's files
//! (`files.rs`), never from Lua's own search path.
//!
//! A module name is resolved inside the script's folder only, as Lua's
//! `package.path` of `?.lua;?/init.lua` would: `require "dir.mod"` is
//! `dir/mod.lua` or `dir/mod/init.lua`. On the master the file is read
//! from disk and recorded like any other file the script reads, so it
//! travels in the bundle; a worker finds it in the bundle, never on its
//! own disk. So a module must be required while the script loads (at its
//! top level, or by a module that is): a module first required in a task
//! on a worker was never sent, and the error says so. Bundling every
//! `*.lua` under the folder instead would sweep a folder of unrelated
//! scripts into every run and fail on its size, not on the script.
//!
//! Lua's `require` machinery stays (`package.loaded`, `package.preload`):
//! only the searchers after the preload one are replaced by [`search`].

use std::path::Path;

use mlua::{Function, Lua};

use crate::files::{Files, normalise};
use crate::lua_env::LuaEnv;
use crate::luax::{fault, fix_path};

/// Keeps the preload searcher and puts ours after it: Lua's file and C
/// searchers would read this machine's disk. Lua 5.4 calls them
/// `package.searchers`, LuaJIT `package.loaders`.
const SEARCHERS: &str = r#"
local search = ...
local searchers = package.searchers or package.loaders
local preload = searchers[1]
for i = #searchers, 1, -1 do searchers[i] = nil end
searchers[1] = preload
searchers[2] = search
package.path, package.cpath = "", ""
"#;

/// Makes `require` find modules in the script's files.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let search = lua.create_function(search)?;
    lua.load(SEARCHERS)
        .set_name("=swarmer.require")
        .call::<()>(search)
}

/// The files `name` may be, in the order Lua tries them: `name.lua`,
/// then `name/init.lua`, with `.` (or `/`) between folders. A name that
/// leaves the script's folder or is no module name is refused, named.
pub fn candidates(name: &str) -> Result<[String; 2], String> {
    let refuse = |why: &str| Err(format!("require {name:?}: {why}"));
    if name.is_empty() {
        return refuse("the module name is empty");
    }
    if name.starts_with('/') {
        return refuse(
            "absolute module names are refused; modules are found only inside the script's folder",
        );
    }
    if name.starts_with("..") || name.split('/').any(|part| part == "..") {
        return refuse(
            "the module leaves the script's folder (through \"..\"); modules are found only inside it",
        );
    }
    let parts: Vec<&str> = name.split(['.', '/']).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return refuse("not a module name; name folders with dots between them, as \"dir.mod\"");
    }
    let stem = parts.join("/");
    let mut paths = [format!("{stem}.lua"), format!("{stem}/init.lua")];
    for path in &mut paths {
        *path = normalise(path).map_err(|e| format!("require {name:?}: {e}"))?;
    }
    Ok(paths)
}

/// The searcher: the module's compiled chunk and the path it came from,
/// or an error (raised, so that it names the `require`'s file:line)
/// naming the module and what was tried.
fn search(lua: &Lua, name: String) -> mlua::Result<(Function, String)> {
    let shared = LuaEnv::from_lua(lua)?;
    let paths = candidates(&name).map_err(fault)?;
    for path in &paths {
        let found = shared
            .files
            .find(path)
            .map_err(|e| fault(format!("require {name:?}: {e}")))?;
        let Some(bytes) = found else { continue };
        // Named as the script is, so errors inside it read `dir/mod.lua:3:`.
        let shown = shared.base_dir.join(path).to_string_lossy().into_owned();
        let chunk = lua
            .load(&*bytes)
            .set_name(format!("@{shown}"))
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => {
                    fault(format!("require {name:?}: {}", fix_path(&message, &shown)))
                }
                other => fault(format!("require {name:?}: {other}")),
            })?;
        return Ok((chunk, shown));
    }
    Err(fault(not_found(
        &shared.files,
        &shared.base_dir,
        &name,
        &paths,
    )))
}

fn not_found(files: &Files, base: &Path, name: &str, paths: &[String; 2]) -> String {
    let [file, init] = paths;
    match files {
        Files::Bundle(_) => format!(
            "require {name:?}: the module did not come with the script ({file} or {init}): \
             the master sends the modules the script requires while it loads; \
             require it at the script's top level (or name its file in swarmer.files {{ ... }})"
        ),
        Files::Disk { .. } => {
            let (file, init) = (base.join(file), base.join(init));
            format!(
                "require {name:?}: no such module in the script's folder (looked for {} and {})",
                file.display(),
                init.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_files_inside_the_folder() {
        assert_eq!(
            candidates("helpers").unwrap(),
            ["helpers.lua", "helpers/init.lua"]
        );
        assert_eq!(
            candidates("lib.auth").unwrap(),
            ["lib/auth.lua", "lib/auth/init.lua"]
        );
        assert_eq!(
            candidates("lib/auth").unwrap(),
            ["lib/auth.lua", "lib/auth/init.lua"]
        );
        for (name, refused) in [
            ("../x", "leaves the script's folder (through \"..\")"),
            ("a/../../x", "leaves the script's folder"),
            ("..x", "leaves the script's folder"),
            ("/etc/x", "absolute"),
            ("", "empty"),
            (".x", "not a module name"),
            ("a..b", "not a module name"),
            ("a\\b", "backslash"),
        ] {
            let message = candidates(name).unwrap_err();
            assert!(
                message.starts_with(&format!("require {name:?}: ")) && message.contains(refused),
                "{name:?}: {message}"
            );
        }
    }
}
