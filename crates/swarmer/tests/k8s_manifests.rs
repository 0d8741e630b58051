//! The Kubernetes manifests under `deploy/kubernetes` agree with themselves.
//!
//! Nothing here talks to a cluster or the network: the files are parsed as
//! YAML and the base is assembled the way kustomize would assemble it (its
//! `resources` plus the objects its generators make), so that a name or a
//! port changed in one place and not in another fails here, not at
//! `kubectl apply` time. The schema of each object is checked separately by
//! `deploy/check.sh` (`kubernetes-validate --strict`).

mod k8s;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use k8s::*;
use serde_yaml_ng::Value;

#[test]
fn every_base_file_is_listed_and_the_base_has_no_namespace() {
    let dir = base_dir();
    let k = kustomization(&dir);
    for field in ["namespace", "namePrefix", "nameSuffix"] {
        assert!(
            k.get(field).is_none(),
            "base/kustomization.yaml sets {field}: the base must stay namespace-agnostic, and \
             the flags and the Role's resourceNames carry the names literally"
        );
    }
    let listed: BTreeSet<String> = strings(k.get("resources")).into_iter().collect();
    for entry in fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && name != "kustomization.yaml" {
            assert!(
                listed.contains(&name),
                "base/{name} is not in base/kustomization.yaml's resources, so it is never \
                 deployed"
            );
        }
    }
    let base = load_base();
    for o in &base.objects {
        assert!(
            o.at("metadata.namespace").is_none(),
            "{} {} in {} sets a namespace; the overlay chooses it",
            o.kind(),
            o.name(),
            o.file
        );
    }
}

#[test]
fn nothing_is_cluster_wide() {
    let base = load_base();
    for o in &base.objects {
        assert!(
            !matches!(o.kind(), "ClusterRole" | "ClusterRoleBinding"),
            "{} {} in {}: nothing in swarmer needs cluster-wide rights",
            o.kind(),
            o.name(),
            o.file
        );
    }
    for rb in base.all("RoleBinding") {
        assert_eq!(
            str_at(&rb.value, "roleRef.kind"),
            Some("Role"),
            "RoleBinding {} must bind a Role, not a ClusterRole",
            rb.name()
        );
    }
}

#[test]
fn the_role_grants_exactly_the_scaler_rights_on_the_worker_deployment() {
    let base = load_base();
    let worker = base.worker().name().to_owned();
    let master = base.master();
    assert_eq!(
        required(container(master), "--worker-deployment"),
        worker,
        "the master's --worker-deployment must name the worker Deployment"
    );
    assert_eq!(required(container(master), "--scaler"), "kubernetes");

    let roles = base.all("Role");
    assert_eq!(roles.len(), 1, "one Role, for the master's scaler");
    let role = roles[0];
    let mut granted = BTreeSet::new();
    for rule in seq_at(&role.value, "rules") {
        assert!(
            rule.get("nonResourceURLs").is_none(),
            "Role {} grants nonResourceURLs",
            role.name()
        );
        assert_eq!(
            strings(rule.get("apiGroups")),
            ["apps"],
            "Role {}: every rule is about apps/v1 Deployments",
            role.name()
        );
        assert_eq!(
            strings(rule.get("resourceNames")),
            [worker.as_str()],
            "Role {}: every rule must be restricted by resourceNames to the worker Deployment",
            role.name()
        );
        for resource in strings(rule.get("resources")) {
            for verb in strings(rule.get("verbs")) {
                granted.insert((resource.clone(), verb));
            }
        }
    }
    let expected: BTreeSet<(String, String)> = [
        ("deployments/scale", "get"),
        ("deployments/scale", "patch"),
        ("deployments/scale", "update"),
        ("deployments", "get"),
    ]
    .into_iter()
    .map(|(r, v)| (r.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        granted,
        expected,
        "Role {} must grant exactly get/patch/update on deployments/scale and get on \
         deployments",
        role.name()
    );
}

#[test]
fn the_role_is_bound_to_the_service_account_the_master_runs_as() {
    let base = load_base();
    let role = base.all("Role")[0];
    let bindings = base.all("RoleBinding");
    assert_eq!(bindings.len(), 1, "one RoleBinding");
    let rb = bindings[0];
    assert_eq!(str_at(&rb.value, "roleRef.name"), Some(role.name()));
    assert_eq!(
        str_at(&rb.value, "roleRef.apiGroup"),
        Some("rbac.authorization.k8s.io")
    );

    let master = base.master();
    let sa = str_at(pod_spec(master), "serviceAccountName")
        .expect("the master pod names its ServiceAccount");
    assert!(
        base.find("ServiceAccount", sa).is_some(),
        "the master runs as ServiceAccount {sa}, which the base does not create"
    );
    let subjects = seq_at(&rb.value, "subjects");
    assert_eq!(
        subjects.len(),
        1,
        "RoleBinding {} has one subject",
        rb.name()
    );
    assert_eq!(str_at(&subjects[0], "kind"), Some("ServiceAccount"));
    assert_eq!(
        str_at(&subjects[0], "name"),
        Some(sa),
        "RoleBinding {} must bind the ServiceAccount the master pod uses",
        rb.name()
    );
    assert!(
        subjects[0].get("namespace").is_none(),
        "the subject's namespace is filled in by the overlay's `namespace:`"
    );
    assert_ne!(
        at(pod_spec(master), "automountServiceAccountToken").and_then(Value::as_bool),
        Some(false),
        "the master needs its ServiceAccount token to scale"
    );

    let worker = base.worker();
    assert_eq!(
        at(pod_spec(worker), "automountServiceAccountToken").and_then(Value::as_bool),
        Some(false),
        "workers never call the Kubernetes API and must get no token"
    );
    assert_ne!(
        str_at(pod_spec(worker), "serviceAccountName"),
        Some(sa),
        "workers must not run as the master's ServiceAccount"
    );
}

#[test]
fn workers_join_the_master_service_on_the_master_port() {
    let base = load_base();
    let master = base.master();
    let mc = container(master);
    let wc = container(base.worker());
    let bind_port = port_number(&required(mc, "--master-bind-port"), "--master-bind-port");

    let host = required(wc, "--master-host");
    let svc = base.find("Service", &host).unwrap_or_else(|| {
        panic!("workers join --master-host {host}, but no Service has that name")
    });
    assert!(
        selects(&string_map(svc.at("spec.selector")), &pod_labels(master)),
        "Service {host} must select the master pod"
    );
    assert!(
        !selects(
            &string_map(svc.at("spec.selector")),
            &pod_labels(base.worker())
        ),
        "Service {host} must not select the workers"
    );
    let master_port = port_number(&required(wc, "--master-port"), "--master-port");
    let port = seq_at(&svc.value, "spec.ports")
        .iter()
        .find(|p| at(p, "port").and_then(Value::as_u64) == Some(master_port))
        .unwrap_or_else(|| panic!("Service {host} has no port {master_port} (--master-port)"));
    let target = port
        .get("targetPort")
        .unwrap_or_else(|| port.get("port").unwrap());
    assert_eq!(
        container_port(mc, target),
        Some(bind_port),
        "Service {host} port {master_port} must reach the master's --master-bind-port \
         {bind_port}"
    );
}

#[test]
fn the_web_port_agrees_across_flags_probes_services_and_ingress() {
    let base = load_base();
    let master = base.master();
    let mc = container(master);
    let web_port = port_number(&required(mc, "--web-port"), "--web-port");
    let base_path = required(mc, "--web-base-path");
    assert!(
        base_path.starts_with('/') && !base_path.ends_with('/'),
        "--web-base-path `{base_path}` should look like /swarmer"
    );

    for probe in ["readinessProbe", "livenessProbe"] {
        let p = mc
            .get(probe)
            .unwrap_or_else(|| panic!("the master has no {probe}"));
        let path = str_at(p, "httpGet.path").unwrap_or_else(|| panic!("{probe} is not an httpGet"));
        assert!(
            path == "/healthz" || path == format!("{base_path}/healthz"),
            "{probe} asks {path}; the master serves /healthz"
        );
        assert_eq!(
            container_port(mc, at(p, "httpGet.port").unwrap()),
            Some(web_port),
            "{probe} must probe the web port {web_port}"
        );
    }

    let ingresses = base.all("Ingress");
    assert_eq!(ingresses.len(), 1, "one Ingress for the UI");
    let ing = ingresses[0];
    let mut backends = 0;
    for rule in seq_at(&ing.value, "spec.rules") {
        for p in seq_at(rule, "http.paths") {
            backends += 1;
            assert_eq!(
                str_at(p, "path"),
                Some(base_path.as_str()),
                "the Ingress path must be the master's --web-base-path"
            );
            assert_eq!(str_at(p, "pathType"), Some("Prefix"));
            let svc_name = str_at(p, "backend.service.name").expect("a Service backend");
            let svc = base.find("Service", svc_name).unwrap_or_else(|| {
                panic!("the Ingress sends to Service {svc_name}, which does not exist")
            });
            assert!(
                selects(&string_map(svc.at("spec.selector")), &pod_labels(master)),
                "Service {svc_name} must select the master pod"
            );
            let port = seq_at(&svc.value, "spec.ports")
                .iter()
                .find(|sp| {
                    match (
                        at(p, "backend.service.port.name"),
                        at(p, "backend.service.port.number"),
                    ) {
                        (Some(n), _) => sp.get("name") == Some(n),
                        (None, Some(n)) => sp.get("port") == Some(n),
                        _ => false,
                    }
                })
                .unwrap_or_else(|| {
                    panic!("the Ingress's backend port is not a port of Service {svc_name}")
                });
            let target = port
                .get("targetPort")
                .unwrap_or_else(|| port.get("port").unwrap());
            assert_eq!(
                container_port(mc, target),
                Some(web_port),
                "Service {svc_name} must reach the master's --web-port {web_port}"
            );
        }
    }
    assert!(backends > 0, "the Ingress routes nothing");
}

#[test]
fn every_service_and_network_policy_port_exists_on_the_pods_it_selects() {
    let base = load_base();
    let deployments = base.all("Deployment");
    for svc in base.all("Service") {
        let selector = string_map(svc.at("spec.selector"));
        let targets: Vec<&&Obj> = deployments
            .iter()
            .filter(|d| selects(&selector, &pod_labels(d)))
            .collect();
        assert_eq!(
            targets.len(),
            1,
            "Service {} must select exactly one Deployment's pods",
            svc.name()
        );
        for p in seq_at(&svc.value, "spec.ports") {
            let target = p
                .get("targetPort")
                .unwrap_or_else(|| p.get("port").unwrap());
            assert!(
                container_port(container(targets[0]), target).is_some(),
                "Service {} targets port {target:?}, which {} does not declare",
                svc.name(),
                targets[0].name()
            );
        }
    }
    for np in base.all("NetworkPolicy") {
        let selector = string_map(np.at("spec.podSelector.matchLabels"));
        let targets: Vec<&&Obj> = deployments
            .iter()
            .filter(|d| selects(&selector, &pod_labels(d)))
            .collect();
        assert_eq!(
            targets.len(),
            1,
            "NetworkPolicy {} must select one Deployment's pods",
            np.name()
        );
        for rule in seq_at(&np.value, "spec.ingress") {
            for p in seq_at(rule, "ports") {
                let port = p.get("port").expect("a port");
                assert!(
                    container_port(container(targets[0]), port).is_some(),
                    "NetworkPolicy {} opens port {port:?}, which {} does not declare",
                    np.name(),
                    targets[0].name()
                );
            }
        }
    }
}

#[test]
fn the_master_reads_the_script_from_the_generated_config_map() {
    let base = load_base();
    let master = base.master();
    let mc = container(master);
    let script = required(mc, "-f");
    let script = Path::new(&script);
    let (dir, file) = (script.parent().unwrap(), script.file_name().unwrap());

    let mount = seq_at(mc, "volumeMounts")
        .iter()
        .find(|m| str_at(m, "mountPath").map(Path::new) == Some(dir))
        .unwrap_or_else(|| panic!("nothing is mounted at {}", dir.display()));
    let volume_name = str_at(mount, "name").unwrap();
    let volume = seq_at(pod_spec(master), "volumes")
        .iter()
        .find(|v| str_at(v, "name") == Some(volume_name))
        .unwrap_or_else(|| panic!("no volume {volume_name}"));
    let cm = str_at(volume, "configMap.name").expect("the script volume is a ConfigMap");
    let keys = base
        .config_maps
        .get(cm)
        .unwrap_or_else(|| panic!("ConfigMap {cm} is not made by the base's configMapGenerator"));
    assert!(
        keys.contains(&*file.to_string_lossy()),
        "ConfigMap {cm} has no key {}, which -f reads",
        file.to_string_lossy()
    );
}

#[test]
fn the_script_in_the_config_map_is_the_quickstart_example() {
    let root = repo_root();
    let example = root.join("examples/quickstart.lua");
    let copy = base_dir().join("scripts/locustfile.lua");
    assert!(copy.is_file(), "{} is missing", copy.display());
    if !example.is_file() {
        eprintln!(
            "SKIPPED: examples/quickstart.lua does not exist yet, so there is nothing to compare \
             deploy/kubernetes/base/scripts/locustfile.lua with"
        );
        return;
    }
    assert!(
        fs::read(&example).unwrap() == fs::read(&copy).unwrap(),
        "deploy/kubernetes/base/scripts/locustfile.lua differs from examples/quickstart.lua \
         (kustomize cannot read files outside its directory, so the ConfigMap's script is a \
         copy). Refresh it:\n  cp examples/quickstart.lua \
         deploy/kubernetes/base/scripts/locustfile.lua"
    );
}

#[test]
fn every_secret_reference_names_a_generated_key() {
    let base = load_base();
    for d in base.all("Deployment") {
        for c in containers(d) {
            for e in seq_at(c, "env") {
                if let Some(r) = at(e, "valueFrom.secretKeyRef") {
                    let (name, key) = (str_at(r, "name").unwrap(), str_at(r, "key").unwrap());
                    let keys = base.secrets.get(name).unwrap_or_else(|| {
                        panic!(
                            "{} reads Secret {name}, which the base does not generate",
                            d.name()
                        )
                    });
                    assert!(
                        keys.contains(key),
                        "{} reads key {key} of Secret {name}, which has none",
                        d.name()
                    );
                }
            }
        }
    }
    let token = |d: &Obj| {
        seq_at(container(d), "env")
            .iter()
            .find(|e| str_at(e, "name") == Some("SWARMER_CLUSTER_TOKEN"))
            .and_then(|e| at(e, "valueFrom.secretKeyRef"))
            .cloned()
            .unwrap_or_else(|| panic!("{} gets no SWARMER_CLUSTER_TOKEN from a Secret", d.name()))
    };
    assert_eq!(
        token(base.master()),
        token(base.worker()),
        "the master and the workers must read the same cluster token"
    );
}

#[test]
fn workers_are_named_after_their_pod_and_leave_before_they_are_killed() {
    let base = load_base();
    let worker = base.worker();
    let wc = container(worker);
    let id = seq_at(wc, "env")
        .iter()
        .find(|e| str_at(e, "name") == Some("SWARMER_WORKER_ID"))
        .expect("workers set SWARMER_WORKER_ID");
    assert_eq!(
        str_at(id, "valueFrom.fieldRef.fieldPath"),
        Some("metadata.name"),
        "the worker id comes from the pod name (downward API)"
    );

    let stop = parse_duration(&setting(wc, "--stop-timeout").unwrap_or_else(|| "10s".into()));
    let grace = at(pod_spec(worker), "terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(30);
    assert!(
        Duration::from_secs(grace) > stop,
        "terminationGracePeriodSeconds ({grace}s) must exceed --stop-timeout ({stop:?}), or \
         workers are killed before their final report"
    );
    assert!(
        worker.at("spec.replicas").is_none(),
        "the worker Deployment must not set replicas: the master owns the count, and every \
         `kubectl apply` would reset it"
    );

    let master = base.master();
    assert_eq!(
        master.at("spec.replicas").and_then(Value::as_u64),
        Some(1),
        "one master"
    );
    assert_eq!(
        str_at(&master.value, "spec.strategy.type"),
        Some("Recreate"),
        "two masters side by side would split the workers"
    );
}

#[test]
fn pods_run_non_root_read_only_with_limits_and_no_service_links() {
    let base = load_base();
    for d in &all_deployments(&base) {
        let spec = pod_spec(d);
        // The kubelet would inject SWARMER_MASTER_PORT=tcp://... for the
        // swarmer-master Service, which the binary reads as --master-port.
        assert_eq!(
            at(spec, "enableServiceLinks").and_then(Value::as_bool),
            Some(false),
            "{}: Service links would set SWARMER_*_PORT variables the binary reads as flags",
            d.name()
        );
        assert_eq!(
            at(spec, "securityContext.runAsNonRoot").and_then(Value::as_bool),
            Some(true),
            "{} must run as non-root",
            d.name()
        );
        for c in containers(d) {
            let sc = c
                .get("securityContext")
                .expect("a container securityContext");
            assert_eq!(
                at(sc, "readOnlyRootFilesystem").and_then(Value::as_bool),
                Some(true),
                "{}",
                d.name()
            );
            assert_eq!(
                at(sc, "allowPrivilegeEscalation").and_then(Value::as_bool),
                Some(false),
                "{}",
                d.name()
            );
            assert_eq!(
                strings(at(sc, "capabilities.drop")),
                ["ALL"],
                "{}",
                d.name()
            );
            for kind in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    assert!(
                        at(c, &format!("resources.{kind}.{res}")).is_some(),
                        "{} has no {res} {kind}",
                        d.name()
                    );
                }
            }
        }
    }
}

#[test]
fn the_image_tag_is_the_workspace_version_everywhere_it_is_written() {
    let version = workspace_version();
    let image = format!("swarmer:{version}");
    let base = load_base();
    for d in &all_deployments(&base) {
        assert_eq!(
            str_at(container(d), "image"),
            Some(image.as_str()),
            "{} must run {image}: the base's tag is the workspace version, which the docs build",
            d.name()
        );
    }
    let docs = read(&repo_root().join("docs/kubernetes.md"));
    assert!(
        docs.contains(&image),
        "docs/kubernetes.md should build and load {image}, the tag the manifests use"
    );
    let dockerfile = read(&repo_root().join("Dockerfile"));
    let user = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .next_back()
        .expect("the Dockerfile's final stage sets USER");
    let uid = user.split(':').next().unwrap().trim();
    for d in &all_deployments(&base) {
        assert_eq!(
            at(pod_spec(d), "securityContext.runAsUser")
                .and_then(Value::as_u64)
                .map(|u| u.to_string())
                .as_deref(),
            Some(uid),
            "{} must run as the image's user",
            d.name()
        );
    }
}

#[test]
fn overlays_only_refer_to_what_the_base_has() {
    let base = load_base();
    let base_image = str_at(container(base.master()), "image")
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let version = workspace_version();
    let components = components();
    let overlays = repo_root().join("deploy/kubernetes/overlays");
    let mut seen = 0;
    for entry in fs::read_dir(&overlays).expect("deploy/kubernetes/overlays exists") {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        seen += 1;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let k = kustomization(&dir);
        assert!(
            str_at(&k, "namespace").is_some(),
            "overlay {name} must set `namespace:` (the RoleBinding's subject needs one)"
        );
        for field in ["namePrefix", "nameSuffix"] {
            assert!(
                k.get(field).is_none(),
                "overlay {name} sets {field}, which would rename objects but not the flags and \
                 resourceNames that name them"
            );
        }
        let mut includes_base = false;
        let mut own = Vec::new();
        for r in strings(k.get("resources")) {
            let path = dir.join(&r);
            assert!(
                path.is_file() || path.join("kustomization.yaml").is_file(),
                "overlay {name} lists resource {r}, which does not exist"
            );
            if path.is_dir() && path.canonicalize().unwrap() == base_dir() {
                includes_base = true;
            }
            if path.is_file() {
                own.extend(documents(&path).into_iter().map(|value| Obj {
                    file: format!("overlays/{name}/{r}"),
                    value,
                }));
            }
        }
        assert!(includes_base, "overlay {name} does not build on the base");

        check_patches(&format!("overlay {name}"), &dir, &k, &base, &own);
        for c in strings(k.get("components")) {
            let path = dir.join(&c);
            let path = path
                .canonicalize()
                .unwrap_or_else(|_| panic!("overlay {name}: component {c} does not exist"));
            let (_, own) = components
                .iter()
                .find(|(d, _)| *d == path)
                .unwrap_or_else(|| {
                    panic!(
                        "overlay {name}: component {c} is not under deploy/kubernetes/components"
                    )
                });
            let ck = kustomization_of_kind(&path, "Component");
            check_patches(&format!("component {c}"), &path, &ck, &base, own);
        }
        for r in seq_at(&k, "replicas") {
            let d = str_at(r, "name").unwrap();
            assert!(
                base.find("Deployment", d).is_some(),
                "overlay {name}: replicas for unknown {d}"
            );
            assert_ne!(
                d,
                base.master().name(),
                "overlay {name}: the master must stay at one replica"
            );
        }
        for i in seq_at(&k, "images") {
            assert_eq!(
                str_at(i, "name"),
                Some(base_image.as_str()),
                "overlay {name}: `images` must match the base's image name to take effect"
            );
            if let Some(tag) = at(i, "newTag") {
                let tag = serde_yaml_ng::to_string(tag).unwrap();
                assert_eq!(
                    tag.trim().trim_matches('"'),
                    version,
                    "overlay {name}: newTag must be the workspace version, the tag docs/kubernetes.md \
                     builds"
                );
            }
        }
        for g in seq_at(&k, "secretGenerator") {
            let secret = str_at(g, "name").unwrap();
            let base_keys = base.secrets.get(secret).unwrap_or_else(|| {
                panic!("overlay {name}: Secret {secret} is not one of the base's")
            });
            assert_eq!(
                str_at(g, "behavior"),
                Some("replace"),
                "overlay {name}: Secret {secret} must replace the base's placeholders"
            );
            // The env files hold real credentials and are not committed;
            // each comes with a committed .example showing its keys.
            for env in strings(g.get("envs")) {
                let example = dir.join(format!("{env}.example"));
                assert!(
                    example.is_file(),
                    "overlay {name}: {env} needs a committed {env}.example"
                );
                assert_eq!(
                    &env_file_keys(&example),
                    base_keys,
                    "overlay {name}: {env}.example must have the keys the pods read"
                );
            }
        }
    }
    assert!(seen > 0, "no overlay under deploy/kubernetes/overlays");
}

#[test]
fn durations_parse_like_the_command_line() {
    assert_eq!(parse_duration("10s"), Duration::from_secs(10));
    assert_eq!(parse_duration("1m30s"), Duration::from_secs(90));
    assert_eq!(parse_duration("500ms"), Duration::from_millis(500));
}
