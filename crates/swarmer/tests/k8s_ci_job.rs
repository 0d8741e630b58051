//! The ci-job overlay (`deploy/kubernetes/overlays/ci-job`) runs one load
//! test as a CI step: a headless master Job and a Job of workers. These
//! tests check what makes that step end with the verdict and never hang or
//! leave load behind: the master waits for exactly the workers the worker
//! Job runs, neither Job retries the test, deadlines end the workers after
//! the master, the reports land on a volume, and no pod holds API rights.
//! Like k8s_manifests.rs they read the files, without a cluster.

mod k8s;

use std::time::Duration;

use k8s::*;
use serde_yaml_ng::Value;

/// A strategic merge patch as Kubernetes applies it to objects whose lists
/// have no merge key (as the NetworkPolicy rules the ci-job overlay
/// patches): mappings merge, everything else is replaced.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Mapping(t), Value::Mapping(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// What `kubectl kustomize overlays/ci-job` makes of the base (less the
/// objects its `$patch: delete` patches remove, with its other patches
/// merged) plus its own resources.
fn ci_job_objects() -> Vec<Obj> {
    let dir = repo_root().join("deploy/kubernetes/overlays/ci-job");
    let k = kustomization(&dir);
    let mut objects = load_base().objects;
    for p in seq_at(&k, "patches") {
        let file = str_at(p, "path").expect("patches are files");
        for patch in documents(&dir.join(file)) {
            let (kind, name) = (
                str_at(&patch, "kind").unwrap(),
                str_at(&patch, "metadata.name"),
            );
            let is_target = |o: &Obj| o.kind() == kind && Some(o.name()) == name;
            if str_at(&patch, "$patch") == Some("delete") {
                objects.retain(|o| !is_target(o));
                continue;
            }
            assert!(
                at(&patch, "spec.template").is_none(),
                "{file}: this model merges no pod templates (their lists have merge keys)"
            );
            let target = objects
                .iter_mut()
                .find(|o| is_target(o))
                .unwrap_or_else(|| panic!("{file} patches nothing"));
            merge(&mut target.value, &patch);
        }
    }
    for r in strings(k.get("resources")) {
        let path = dir.join(&r);
        if path.is_file() {
            objects.extend(documents(&path).into_iter().map(|value| Obj {
                file: format!("overlays/ci-job/{r}"),
                value,
            }));
        }
    }
    objects
}

/// The one object of `kind` whose container runs `swarmer <role_flag>`.
fn running<'a>(objects: &'a [Obj], kind: &str, role_flag: &str) -> &'a Obj {
    let found: Vec<&Obj> = objects
        .iter()
        .filter(|o| o.kind() == kind)
        .filter(|o| {
            containers(o)
                .iter()
                .any(|c| args(c).iter().any(|a| a == role_flag))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} running `swarmer {role_flag}`"
    );
    found[0]
}

fn u64_at(o: &Obj, path: &str) -> u64 {
    o.at(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{} {} sets no {path}", o.kind(), o.name()))
}

#[test]
fn the_ci_job_master_waits_for_exactly_the_workers_of_the_worker_job() {
    let objects = ci_job_objects();
    for o in &objects {
        assert_ne!(
            o.kind(),
            "Deployment",
            "{} {}: a Deployment would be left running (or restart its workers) after the run",
            o.kind(),
            o.name()
        );
    }
    let master = running(&objects, "Job", "--master");
    let worker = running(&objects, "Job", "--worker");
    let mc = container(master);
    assert!(
        args(mc).iter().any(|a| a == "--headless"),
        "the master Job runs headless"
    );
    let expect: u64 = required(mc, "--expect-workers").parse().expect("a number");
    assert_eq!(
        u64_at(worker, "spec.parallelism"),
        expect,
        "all expected workers run at once"
    );
    assert_eq!(
        u64_at(worker, "spec.completions"),
        expect,
        "the worker Job completes when the workers the master expects have quit"
    );

    let host = required(container(worker), "--master-host");
    let svc = objects
        .iter()
        .find(|o| o.kind() == "Service" && o.name() == host)
        .unwrap_or_else(|| panic!("workers join {host}, which no Service of ci-job is"));
    assert!(
        selects(&string_map(svc.at("spec.selector")), &pod_labels(master)),
        "Service {host} must select the master Job's pod"
    );
    let bind_port = port_number(&required(mc, "--master-bind-port"), "--master-bind-port");
    let master_port = port_number(
        &required(container(worker), "--master-port"),
        "--master-port",
    );
    let port = seq_at(&svc.value, "spec.ports")
        .iter()
        .find(|p| at(p, "port").and_then(Value::as_u64) == Some(master_port))
        .unwrap_or_else(|| panic!("Service {host} has no port {master_port}"));
    assert_eq!(
        container_port(mc, port.get("targetPort").unwrap()),
        Some(bind_port)
    );
}

#[test]
fn the_ci_job_ends_with_a_verdict_and_never_hangs_or_retries() {
    let objects = ci_job_objects();
    let master = running(&objects, "Job", "--master");
    let worker = running(&objects, "Job", "--worker");
    let mc = container(master);
    assert_eq!(
        u64_at(master, "spec.backoffLimit"),
        0,
        "a retry would be a second load test"
    );
    let master_deadline = u64_at(master, "spec.activeDeadlineSeconds");
    let worker_deadline = u64_at(worker, "spec.activeDeadlineSeconds");
    let stop = parse_duration(&required(container(worker), "--stop-timeout"));
    assert!(
        Duration::from_secs(worker_deadline) > Duration::from_secs(master_deadline) + stop,
        "workers must outlive the master's deadline by more than --stop-timeout, or a run near \
         its deadline loses their last reports"
    );
    let max_wait = parse_duration(&required(mc, "--expect-workers-max-wait"));
    assert!(
        max_wait < Duration::from_secs(master_deadline),
        "--expect-workers-max-wait must end before the Job's deadline, so missing workers \
         fail with their own message"
    );
    for job in [master, worker] {
        assert!(u64_at(job, "spec.ttlSecondsAfterFinished") > 0);
        assert_eq!(
            str_at(pod_spec(job), "restartPolicy"),
            Some("Never"),
            "{}",
            job.name()
        );
    }
    assert!(
        setting(mc, "--stages").is_some() || setting(mc, "-t").is_some(),
        "the master needs a profile that ends (--stages or -t), or it runs until the deadline"
    );
    assert!(
        setting(mc, "--threshold").is_some(),
        "the verdict needs thresholds"
    );
}

#[test]
fn the_ci_job_writes_its_reports_to_a_mounted_volume_and_holds_no_api_rights() {
    let objects = ci_job_objects();
    let master = running(&objects, "Job", "--master");
    let mc = container(master);
    let mounts: Vec<&str> = seq_at(mc, "volumeMounts")
        .iter()
        .filter_map(|m| str_at(m, "mountPath"))
        .collect();
    for flag in ["--junit", "--html"] {
        let path = required(mc, flag);
        assert!(
            mounts
                .iter()
                .any(|m| *m != "/scripts" && path.starts_with(&format!("{m}/"))),
            "{flag} {path} is not on a writable volume (the root filesystem is read-only)"
        );
    }
    for kind in ["Role", "RoleBinding", "ServiceAccount", "Ingress"] {
        assert!(
            objects.iter().all(|o| o.kind() != kind),
            "ci-job keeps a {kind}, which a headless run does not use"
        );
    }
    for job in objects.iter().filter(|o| o.kind() == "Job") {
        assert_eq!(
            at(pod_spec(job), "automountServiceAccountToken").and_then(Value::as_bool),
            Some(false),
            "{}: no pod of a headless run calls the Kubernetes API",
            job.name()
        );
    }
    for np in objects.iter().filter(|o| o.kind() == "NetworkPolicy") {
        let selector = string_map(np.at("spec.podSelector.matchLabels"));
        let job = objects
            .iter()
            .find(|o| o.kind() == "Job" && selects(&selector, &pod_labels(o)))
            .unwrap_or_else(|| panic!("NetworkPolicy {} selects no Job's pods", np.name()));
        for rule in seq_at(&np.value, "spec.ingress") {
            for p in seq_at(rule, "ports") {
                let port = p.get("port").unwrap();
                assert!(
                    container_port(container(job), port).is_some(),
                    "NetworkPolicy {} opens {port:?}, which {} does not declare",
                    np.name(),
                    job.name()
                );
            }
        }
    }
}
