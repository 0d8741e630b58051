//! `.proto` files compiled in pure Rust (protox): from the script's files
//! (`files.rs`, so a worker compiles what the master sent), once per core
//! and set of files, into a descriptor pool that messages are built from.
//! An error names the proto's file and line, as protox gives it.

use std::collections::HashMap;
use std::rc::Rc;

use prost_reflect::{DescriptorPool, MethodDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::lua_env::LuaEnv;

/// Which protos to compile, and where their imports are looked up
/// (folders relative to the script's; the script's own folder last).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProtoSet {
    pub protos: Vec<String>,
    pub import_paths: Vec<String>,
}

/// Compiled pools of one core, by the set they were compiled from.
pub type PoolCache = HashMap<ProtoSet, DescriptorPool>;

/// Opens protos (and their imports) through the script's files.
struct ScriptFiles {
    shared: Rc<LuaEnv>,
    roots: Vec<String>,
}

impl FileResolver for ScriptFiles {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        for root in &self.roots {
            let path = match root.as_str() {
                "" => name.to_string(),
                r => format!("{}/{name}", r.trim_end_matches('/')),
            };
            match self.shared.files.find(&path) {
                Ok(Some(bytes)) => {
                    let text = std::str::from_utf8(&bytes).map_err(|_| {
                        protox::Error::new(format!("{path}: the file is not UTF-8 text"))
                    })?;
                    return File::from_source(name, text);
                }
                Ok(None) => {}
                Err(e) => return Err(protox::Error::new(e.to_string())),
            }
        }
        Err(protox::Error::file_not_found(name))
    }
}

/// The pool of `set`, compiled on first use on this core.
pub fn pool(shared: &Rc<LuaEnv>, set: &ProtoSet) -> Result<DescriptorPool, String> {
    if let Some(pool) = shared.protos.borrow().get(set) {
        return Ok(pool.clone());
    }
    let pool = compile(shared, set)?;
    shared.protos.borrow_mut().insert(set.clone(), pool.clone());
    Ok(pool)
}

fn compile(shared: &Rc<LuaEnv>, set: &ProtoSet) -> Result<DescriptorPool, String> {
    let mut roots = set.import_paths.clone();
    roots.push(String::new());
    let mut chain = ChainFileResolver::new();
    chain.add(ScriptFiles {
        shared: shared.clone(),
        roots,
    });
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    for proto in &set.protos {
        compiler.open_file(proto).map_err(|e| shown(&e))?;
    }
    Ok(compiler.descriptor_pool())
}

/// protox's error with its `file:line:column:` where it has one.
fn shown(e: &protox::Error) -> String {
    let debug = format!("{e:?}");
    // The debug form leads with the place for parse and check errors;
    // others are one line either way.
    if debug.lines().count() == 1 {
        debug
    } else {
        e.to_string()
    }
}

/// Compiles one proto named in `swarmer.files` while the script loads, so
/// a broken one fails the load with its file and line. Imports that are
/// not found are left to the connect that names their import paths.
pub fn check(shared: &Rc<LuaEnv>, path: &str) -> Result<(), String> {
    let dir = match path.rfind('/') {
        Some(i) => path[..i].to_string(),
        None => String::new(),
    };
    let name = path[dir.len()..].trim_start_matches('/').to_string();
    let set = ProtoSet {
        protos: vec![name],
        import_paths: vec![dir],
    };
    match compile(shared, &set) {
        Ok(_) => Ok(()),
        Err(e) if e.contains("not found") => Ok(()),
        Err(e) => Err(e),
    }
}

/// `pkg.Service/Method` in `pool`, or an error naming what the protos
/// define instead.
pub fn method(pool: &DescriptorPool, full: &str) -> Result<MethodDescriptor, String> {
    let Some((service, method)) = full.trim_start_matches('/').split_once('/') else {
        return Err(format!(
            "{full:?}: name the method as \"package.Service/Method\""
        ));
    };
    let Some(svc) = pool.get_service_by_name(service) else {
        let known: Vec<String> = pool.services().map(|s| s.full_name().to_string()).collect();
        return Err(format!(
            "unknown service {service}; the protos define: {}",
            if known.is_empty() {
                "no service".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let found = svc.methods().find(|m| m.name() == method);
    found.ok_or_else(|| {
        let known: Vec<String> = svc.methods().map(|m| m.name().to_string()).collect();
        format!(
            "unknown method {method} of {service}; it has: {}",
            known.join(", ")
        )
    })
}
