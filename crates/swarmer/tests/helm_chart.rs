//! The Helm chart in `deploy/helm/swarmer` makes the same objects as the
//! kustomize manifests: with its defaults, those of the base (names, ports,
//! flags, probes, RBAC rules, security settings), and in job mode those of
//! the ci-job overlay's two Jobs.
//!
//! The chart is rendered offline by `deploy/helm/render.py` (helm-python-sdk,
//! Helm's own Go SDK in a PyPI wheel, no helm binary and no cluster) with the
//! values files under `deploy/helm/ci`. Without that package the test is
//! skipped, except under `CI=true`, where it fails: `.ci/run` installs it.

mod k8s;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use k8s::*;
use serde_yaml_ng::{Mapping, Value};

/// Renders the chart with `deploy/helm/ci/<values>.yaml` as the release
/// `swarmer`; None when helm-python-sdk is missing outside CI.
fn render(values: &str) -> Option<Vec<Obj>> {
    let root = repo_root();
    let out = tempfile::tempdir().unwrap();
    let result = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(root.join("deploy/helm/render.py"))
        .arg(root.join("deploy/helm/swarmer"))
        .arg(out.path())
        .arg(root.join(format!("deploy/helm/ci/{values}.yaml")))
        .output();
    let missing = match &result {
        Err(e) => Some(format!("python3 cannot run: {e}")),
        Ok(o) if o.status.code() == Some(2) => Some(String::from_utf8_lossy(&o.stderr).into()),
        Ok(_) => None,
    };
    if let Some(why) = missing {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the chart cannot be rendered under CI=true: {why}"
        );
        eprintln!("SKIPPED: the chart cannot be rendered here ({why})");
        return None;
    }
    let o = result.unwrap();
    assert!(
        o.status.success(),
        "render.py failed for {values}.yaml:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let path = out.path().join(format!("{values}.yaml"));
    Some(
        documents(&path)
            .into_iter()
            .map(|value| Obj {
                file: format!("chart with ci/{values}.yaml"),
                value,
            })
            .collect(),
    )
}

fn ids(objects: &[Obj]) -> BTreeSet<(String, String)> {
    objects
        .iter()
        .map(|o| (o.kind().to_owned(), o.name().to_owned()))
        .collect()
}

/// What must agree between the chart and kustomize: the object without its
/// labels, annotations and the `app.kubernetes.io/instance` selector label
/// (Helm's way of keeping two releases apart), and without the RoleBinding
/// subject's namespace (the chart writes it, kustomize's overlay fills it).
fn comparable(o: &Obj) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Mapping(m) => {
                m.remove("app.kubernetes.io/instance");
                for (_, v) in m.iter_mut() {
                    strip(v);
                }
            }
            Value::Sequence(s) => s.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = o.value.clone();
    let mut meta = Mapping::new();
    meta.insert("name".into(), o.name().into());
    v["metadata"] = Value::Mapping(meta);
    if let Some(t) = v.get_mut("spec").and_then(|s| s.get_mut("template")) {
        t.as_mapping_mut().unwrap().remove("metadata");
    }
    if let Some(subjects) = v.get_mut("subjects").and_then(Value::as_sequence_mut) {
        for s in subjects {
            s.as_mapping_mut().unwrap().remove("namespace");
        }
    }
    strip(&mut v);
    v
}

fn assert_same(ours: &Obj, theirs: &Obj) {
    let (a, b) = (comparable(ours), comparable(theirs));
    assert!(
        a == b,
        "{} {} differs between {} and {}:\n--- {}\n{}\n--- {}\n{}",
        ours.kind(),
        ours.name(),
        ours.file,
        theirs.file,
        ours.file,
        serde_yaml_ng::to_string(&a).unwrap(),
        theirs.file,
        serde_yaml_ng::to_string(&b).unwrap()
    );
}

fn find<'a>(objects: &'a [Obj], kind: &str, name: &str) -> &'a Obj {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn with_its_defaults_the_chart_makes_the_objects_of_the_base() {
    let Some(chart) = render("default") else {
        return;
    };
    let base = load_base();
    let mut expected = ids(&base.objects);
    expected.extend(
        base.config_maps
            .keys()
            .map(|n| ("ConfigMap".into(), n.clone())),
    );
    expected.extend(base.secrets.keys().map(|n| ("Secret".into(), n.clone())));
    assert_eq!(
        ids(&chart),
        expected,
        "the chart's objects (release `swarmer`) must be the base's, under the same names"
    );
    // Everything but the generated ConfigMap and Secret is compared whole:
    // flags, ports, probes, RBAC rules, security settings, resources.
    for o in &base.objects {
        assert_same(find(&chart, o.kind(), o.name()), o);
    }
}

#[test]
fn the_chart_holds_the_script_and_the_secret_keys_the_pods_read() {
    let Some(chart) = render("default") else {
        return;
    };
    let base = load_base();
    for (name, keys) in &base.config_maps {
        let cm = find(&chart, "ConfigMap", name);
        let ours: BTreeSet<String> = string_map(cm.at("data")).into_keys().collect();
        assert_eq!(
            &ours, keys,
            "ConfigMap {name} must hold the keys the master reads"
        );
    }
    let script = string_map(find(&chart, "ConfigMap", "swarmer-script").at("data"));
    assert_eq!(
        script["locustfile.lua"],
        read(&base_dir().join("scripts/locustfile.lua")),
        "the chart's default script must be the base's (the quickstart example)"
    );
    assert_eq!(
        read(&repo_root().join("deploy/helm/swarmer/files/locustfile.lua")),
        read(&base_dir().join("scripts/locustfile.lua")),
        "deploy/helm/swarmer/files/locustfile.lua is a copy of the quickstart: refresh it"
    );
    for (name, keys) in &base.secrets {
        let secret = find(&chart, "Secret", name);
        let ours: BTreeSet<String> = string_map(secret.at("data")).into_keys().collect();
        assert_eq!(
            &ours, keys,
            "Secret {name} must hold the keys the pods read"
        );
    }
}

#[test]
fn in_job_mode_the_chart_makes_the_jobs_of_the_ci_job_overlay() {
    let Some(chart) = render("job") else {
        return;
    };
    let dir = repo_root().join("deploy/kubernetes/overlays/ci-job");
    for file in ["master-job.yaml", "worker-job.yaml"] {
        for value in documents(&dir.join(file)) {
            let theirs = Obj {
                file: format!("overlays/ci-job/{file}"),
                value,
            };
            assert_same(find(&chart, theirs.kind(), theirs.name()), &theirs);
        }
    }
    for kind in [
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "Ingress",
        "Deployment",
    ] {
        assert!(
            chart.iter().all(|o| o.kind() != kind),
            "job mode must not make a {kind} (the ci-job overlay removes them)"
        );
    }
}

#[test]
fn every_values_file_keeps_names_flags_and_rbac_in_agreement() {
    for values in ["default", "job", "job-claim", "ingress-auth", "autoscale"] {
        let Some(chart) = render(values) else {
            return;
        };
        check_agreement(values, &chart);
    }
}

/// Within one rendering: the worker Deployment the master scales is the one
/// the Role names, the workers join a Service that reaches the master's
/// worker port, and the script and Secret the pods name are made (or are
/// the existing ones the values name).
fn check_agreement(values: &str, chart: &[Obj]) {
    let pods: Vec<&Obj> = chart
        .iter()
        .filter(|o| matches!(o.kind(), "Deployment" | "Job"))
        .collect();
    let with = |flag: &str| {
        *pods
            .iter()
            .find(|o| args(container(o)).iter().any(|a| a == flag))
            .unwrap_or_else(|| panic!("{values}: nothing runs swarmer {flag}"))
    };
    let (master, worker) = (with("--master"), with("--worker"));
    let (mc, wc) = (container(master), container(worker));
    if let Some(target) = setting(mc, "--worker-deployment") {
        assert_eq!(target, worker.name(), "{values}: --worker-deployment");
        let role = chart.iter().find(|o| o.kind() == "Role").expect("a Role");
        for rule in seq_at(&role.value, "rules") {
            assert_eq!(
                strings(rule.get("resourceNames")),
                [worker.name()],
                "{values}"
            );
        }
        let sa = str_at(pod_spec(master), "serviceAccountName").expect("a ServiceAccount");
        let rb = chart.iter().find(|o| o.kind() == "RoleBinding").unwrap();
        assert_eq!(str_at(&rb.value, "subjects.0.name"), Some(sa), "{values}");
        assert_eq!(
            str_at(&rb.value, "roleRef.name"),
            Some(role.name()),
            "{values}"
        );
    }
    let host = required(wc, "--master-host");
    let svc = find(chart, "Service", &host);
    assert!(
        selects(&string_map(svc.at("spec.selector")), &pod_labels(master)),
        "{values}"
    );
    assert!(
        !selects(&string_map(svc.at("spec.selector")), &pod_labels(worker)),
        "{values}"
    );
    let port = port_number(&required(wc, "--master-port"), "--master-port");
    let sp = seq_at(&svc.value, "spec.ports")
        .iter()
        .find(|p| at(p, "port").and_then(Value::as_u64) == Some(port))
        .unwrap_or_else(|| panic!("{values}: Service {host} has no port {port}"));
    assert_eq!(
        container_port(mc, sp.get("targetPort").unwrap()),
        Some(port_number(
            &required(mc, "--master-bind-port"),
            "--master-bind-port"
        )),
        "{values}: the workers' Service must reach --master-bind-port"
    );
    let script = Path::new(&required(mc, "-f")).to_owned();
    let cm_name = seq_at(pod_spec(master), "volumes")
        .iter()
        .find_map(|v| str_at(v, "configMap.name"))
        .expect("the script volume");
    if let Some(cm) = chart
        .iter()
        .find(|o| o.kind() == "ConfigMap" && o.name() == cm_name)
    {
        let file = script.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            string_map(cm.at("data")).contains_key(&file),
            "{values}: -f {file}"
        );
    }
    for pod in &pods {
        for e in seq_at(container(pod), "env") {
            if let Some(name) = str_at(e, "valueFrom.secretKeyRef.name") {
                let made = chart
                    .iter()
                    .any(|o| o.kind() == "Secret" && o.name() == name);
                let existing = values == "ingress-auth" && name == "swarmer-credentials";
                assert!(
                    made || existing,
                    "{values}: {} reads Secret {name}",
                    pod.name()
                );
            }
        }
    }
}
