//! Reading swarmer's Kubernetes manifests as a test sees them: YAML
//! documents, dotted paths into them, the kustomize base assembled the way
//! kustomize would (its resources plus the objects its generators make),
//! and the swarmer flags a container sets. Shared by k8s_manifests.rs (the
//! base and the overlays) and helm_chart.rs (the chart against the base);
//! each uses part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::Value;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

pub fn base_dir() -> PathBuf {
    let dir = repo_root().join("deploy/kubernetes/base");
    dir.canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every YAML document of a file (a file may hold several, split by `---`).
pub fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The value at a dotted path: `spec.template.spec`, with numbers indexing
/// sequences (`containers.0`).
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, key| match key.parse::<usize>() {
            Ok(i) if v.is_sequence() => v.get(i),
            _ => v.get(key),
        })
}

pub fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

pub fn seq_at<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("a list of strings").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
                    };
                    (k.as_str().expect("string keys").to_owned(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One Kubernetes object and the file it came from, for messages.
#[derive(Clone, Debug)]
pub struct Obj {
    pub file: String,
    pub value: Value,
}

impl Obj {
    pub fn kind(&self) -> &str {
        str_at(&self.value, "kind")
            .unwrap_or_else(|| panic!("an object in {} has no kind", self.file))
    }
    pub fn name(&self) -> &str {
        str_at(&self.value, "metadata.name")
            .unwrap_or_else(|| panic!("an object in {} has no metadata.name", self.file))
    }
    pub fn at(&self, path: &str) -> Option<&Value> {
        at(&self.value, path)
    }
}

/// What kustomize builds from the base: its resource files and the
/// ConfigMaps and Secrets of its generators (with the keys they will hold).
pub struct Base {
    pub objects: Vec<Obj>,
    pub config_maps: BTreeMap<String, BTreeSet<String>>,
    pub secrets: BTreeMap<String, BTreeSet<String>>,
}

pub fn kustomization(dir: &Path) -> Value {
    kustomization_of_kind(dir, "Kustomization")
}

/// A `kustomization.yaml` of the given kind (`Kustomization` or `Component`).
pub fn kustomization_of_kind(dir: &Path, kind: &str) -> Value {
    let path = dir.join("kustomization.yaml");
    assert!(path.is_file(), "{} is missing", path.display());
    let mut docs = documents(&path);
    assert_eq!(docs.len(), 1, "{} must hold one document", path.display());
    let k = docs.remove(0);
    assert_eq!(str_at(&k, "kind"), Some(kind), "{}", path.display());
    k
}

/// `key=path` or `path` in a generator's `files`: the file and its key.
pub fn generator_file(entry: &str) -> (String, String) {
    match entry.split_once('=') {
        Some((key, path)) => (key.to_owned(), path.to_owned()),
        None => {
            let key = Path::new(entry).file_name().unwrap().to_string_lossy();
            (key.into_owned(), entry.to_owned())
        }
    }
}

/// The keys of a kustomize env file (`KEY=value` lines, `#` comments).
pub fn env_file_keys(path: &Path) -> BTreeSet<String> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once('=')
                .unwrap_or_else(|| panic!("{}: `{l}` is not KEY=value", path.display()))
                .0
                .to_owned()
        })
        .collect()
}

/// The keys a config/secret generator entry produces, checking that every
/// file it reads exists.
pub fn generator_keys(dir: &Path, generator: &Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for entry in strings(generator.get("files")) {
        let (key, file) = generator_file(&entry);
        let path = dir.join(&file);
        assert!(
            path.is_file(),
            "generator file {} does not exist",
            path.display()
        );
        keys.insert(key);
    }
    for literal in strings(generator.get("literals")) {
        let (key, _) = literal
            .split_once('=')
            .unwrap_or_else(|| panic!("literal `{literal}` is not KEY=value"));
        keys.insert(key.to_owned());
    }
    for env in strings(generator.get("envs")) {
        keys.extend(env_file_keys(&dir.join(env)));
    }
    keys
}

pub fn load_base() -> Base {
    let dir = base_dir();
    let k = kustomization(&dir);
    let resources = strings(k.get("resources"));
    assert!(!resources.is_empty(), "the base lists no resources");

    let mut objects = Vec::new();
    for file in &resources {
        let path = dir.join(file);
        assert!(
            path.is_file(),
            "base/kustomization.yaml lists {file}, but {} does not exist",
            path.display()
        );
        for value in documents(&path) {
            objects.push(Obj {
                file: format!("base/{file}"),
                value,
            });
        }
    }

    let mut config_maps = BTreeMap::new();
    for g in seq_at(&k, "configMapGenerator") {
        let name = str_at(g, "name").expect("a configMapGenerator has a name");
        config_maps.insert(name.to_owned(), generator_keys(&dir, g));
    }
    let mut secrets = BTreeMap::new();
    for g in seq_at(&k, "secretGenerator") {
        let name = str_at(g, "name").expect("a secretGenerator has a name");
        secrets.insert(name.to_owned(), generator_keys(&dir, g));
    }
    Base {
        objects,
        config_maps,
        secrets,
    }
}

/// The components under deploy/kubernetes/components: each directory and
/// the objects its resources hold. Overlays include them with `components:`.
pub fn components() -> Vec<(PathBuf, Vec<Obj>)> {
    let root = repo_root().join("deploy/kubernetes/components");
    let Ok(entries) = fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let k = kustomization_of_kind(&dir, "Component");
        let mut objects = Vec::new();
        for file in strings(k.get("resources")) {
            let path = dir.join(&file);
            assert!(
                path.is_file(),
                "component {name} lists {file}, which does not exist"
            );
            for value in documents(&path) {
                objects.push(Obj {
                    file: format!("components/{name}/{file}"),
                    value,
                });
            }
        }
        found.push((dir.canonicalize().unwrap(), objects));
    }
    found
}

/// Every Deployment swarmer ships: the base's and the components'.
pub fn all_deployments(base: &Base) -> Vec<Obj> {
    let mut all: Vec<Obj> = base.all("Deployment").into_iter().cloned().collect();
    for (_, objects) in components() {
        all.extend(objects.into_iter().filter(|o| o.kind() == "Deployment"));
    }
    all
}

/// The patch files of a kustomization (overlay or component) exist, and
/// each patches an object of the base or of `own`, and only containers it
/// already has (a misspelt container name would add a second container).
pub fn check_patches(what: &str, dir: &Path, k: &Value, base: &Base, own: &[Obj]) {
    for p in seq_at(k, "patches") {
        let file = str_at(p, "path").unwrap_or_else(|| panic!("{what}: patches are files"));
        let path = dir.join(file);
        assert!(path.is_file(), "{what}: patch {file} does not exist");
        for patch in documents(&path) {
            let patch = Obj {
                file: file.to_owned(),
                value: patch,
            };
            let target = base
                .find(patch.kind(), patch.name())
                .or_else(|| {
                    own.iter()
                        .find(|o| o.kind() == patch.kind() && o.name() == patch.name())
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{what}: {file} patches {} {}, which does not exist",
                        patch.kind(),
                        patch.name()
                    )
                });
            for c in seq_at(&patch.value, "spec.template.spec.containers") {
                let cname = str_at(c, "name").unwrap();
                assert!(
                    containers(target)
                        .iter()
                        .any(|t| str_at(t, "name") == Some(cname)),
                    "{what}: {file} patches container {cname}, which {} does not have \
                     (the patch would add a second container)",
                    target.name()
                );
            }
        }
    }
}

impl Base {
    pub fn all(&self, kind: &str) -> Vec<&Obj> {
        self.objects.iter().filter(|o| o.kind() == kind).collect()
    }
    pub fn find(&self, kind: &str, name: &str) -> Option<&Obj> {
        self.objects
            .iter()
            .find(|o| o.kind() == kind && o.name() == name)
    }
    /// The one Deployment whose container runs the given role (`--master`).
    pub fn deployment_with(&self, role_flag: &str) -> &Obj {
        let found: Vec<&Obj> = self
            .all("Deployment")
            .into_iter()
            .filter(|d| {
                containers(d)
                    .iter()
                    .any(|c| args(c).iter().any(|a| a == role_flag))
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one Deployment running `swarmer {role_flag}`"
        );
        found[0]
    }
    pub fn master(&self) -> &Obj {
        self.deployment_with("--master")
    }
    pub fn worker(&self) -> &Obj {
        self.deployment_with("--worker")
    }
}

pub fn pod_spec(d: &Obj) -> &Value {
    d.at("spec.template.spec")
        .unwrap_or_else(|| panic!("{} {} has no pod template", d.kind(), d.name()))
}

pub fn containers(d: &Obj) -> &[Value] {
    seq_at(pod_spec(d), "containers")
}

/// The swarmer container of a Deployment (each of ours has exactly one).
pub fn container(d: &Obj) -> &Value {
    let cs = containers(d);
    assert_eq!(cs.len(), 1, "{} should run one container", d.name());
    &cs[0]
}

pub fn args(c: &Value) -> Vec<String> {
    strings(c.get("args"))
}

/// A setting of the swarmer command line, as the binary would see it:
/// `--flag value` or `--flag=value` in the args, else the plain (not
/// `valueFrom`) environment variable `SWARMER_FLAG`.
pub fn setting(c: &Value, flag: &str) -> Option<String> {
    let args = args(c);
    for (i, a) in args.iter().enumerate() {
        if a == flag {
            return Some(
                args.get(i + 1)
                    .unwrap_or_else(|| panic!("{flag} has no value"))
                    .clone(),
            );
        }
        if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            return Some(v.to_owned());
        }
    }
    let var = format!(
        "SWARMER_{}",
        flag.trim_start_matches('-')
            .replace('-', "_")
            .to_uppercase()
    );
    seq_at(c, "env")
        .iter()
        .find(|e| str_at(e, "name") == Some(var.as_str()))
        .and_then(|e| str_at(e, "value"))
        .map(str::to_owned)
}

pub fn required(c: &Value, flag: &str) -> String {
    setting(c, flag).unwrap_or_else(|| panic!("the container does not set {flag}"))
}

pub fn port_number(s: &str, what: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{what} is `{s}`, not a port number"))
}

/// The containerPort a Service targetPort, probe port or NetworkPolicy port
/// designates in a container: by name, or by number if the container
/// declares that number.
pub fn container_port(c: &Value, port: &Value) -> Option<u64> {
    let ports = seq_at(c, "ports");
    match port {
        Value::String(name) => ports
            .iter()
            .find(|p| str_at(p, "name") == Some(name.as_str()))
            .and_then(|p| at(p, "containerPort"))
            .and_then(Value::as_u64),
        Value::Number(n) => ports
            .iter()
            .filter_map(|p| at(p, "containerPort").and_then(Value::as_u64))
            .find(|p| Some(*p) == n.as_u64()),
        _ => None,
    }
}

pub fn pod_labels(d: &Obj) -> BTreeMap<String, String> {
    string_map(d.at("spec.template.metadata.labels"))
}

pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `10s`, `1m30s`, `500ms`: the forms the manifests use for --stop-timeout.
pub fn parse_duration(s: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    assert!(!rest.is_empty(), "empty duration");
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits]
            .parse()
            .unwrap_or_else(|_| panic!("bad duration `{s}`"));
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => Duration::from_millis(n),
            "s" | "" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => panic!("bad duration unit in `{s}`"),
        };
    }
    total
}

pub fn workspace_version() -> String {
    let text = read(&repo_root().join("Cargo.toml"));
    let table: toml::Table = text.parse().expect("Cargo.toml parses");
    table["workspace"]["package"]["version"]
        .as_str()
        .expect("workspace.package.version")
        .to_owned()
}
