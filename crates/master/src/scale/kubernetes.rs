//! The Kubernetes scaler: does what `kubectl scale deployment/NAME
//! --replicas=N` does, through the worker Deployment's `scale` subresource
//! (`autoscaling/v1 Scale`, merge patch), and reads the Deployment's status
//! for its ready replicas.
//!
//! Credentials come from the pod's service account in a cluster and from
//! `KUBECONFIG` or `~/.kube/config` elsewhere; the API server's certificate
//! is always verified. Every failure is turned into a [`ScaleError`] that
//! says in plain words what to fix, since the person reading it is looking
//! at the UI, not at the master's logs.
//!
//! RBAC: the master needs `get`, `patch` and `update` on `deployments/scale`
//! and `get` on `deployments` for the worker Deployment. Detecting an
//! autoscaler that fights manual scaling needs `list` on
//! `horizontalpodautoscalers` (group `autoscaling`) and, with KEDA, on
//! `scaledobjects` (group `keda.sh`); without those rules scaling works and
//! the warning is simply never shown.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, Config};

use super::{BoxFuture, ScaleError, ScaleStatus, Scaler};

/// How long a found (or absent) autoscaler is remembered: the UI asks for
/// the status every few seconds and autoscalers are rarely added.
const AUTOSCALER_CHECK_TTL: Duration = Duration::from_secs(30);
/// A hung API server must come back to the user as an error, not a spinner.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
const FIELD_MANAGER: &str = "swarmer";

pub struct KubernetesScaler {
    client: Client,
    deployment: String,
    namespace: String,
    /// Where the API server is, for "unreachable" messages; unknown for
    /// clients built from a bare service (tests).
    server: Option<String>,
    autoscaler: Mutex<Option<(Instant, Option<String>)>>,
}

impl KubernetesScaler {
    /// A scaler over an existing client. `namespace` defaults to the
    /// client's (the pod's own namespace in a cluster).
    pub fn new(client: Client, deployment: impl Into<String>, namespace: Option<String>) -> Self {
        let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
        KubernetesScaler {
            client,
            deployment: deployment.into(),
            namespace,
            server: None,
            autoscaler: Mutex::new(None),
        }
    }

    /// Finds credentials as kubectl does: `KUBECONFIG` or `~/.kube/config`,
    /// else the in-cluster service account. Does not contact the server.
    pub async fn from_environment(
        deployment: impl Into<String>,
        namespace: Option<String>,
    ) -> Result<Self, ScaleError> {
        let config = Config::infer().await.map_err(|e| {
            ScaleError::Invalid(format!(
                "cannot find Kubernetes credentials (no in-cluster service account, and KUBECONFIG or ~/.kube/config is missing or unusable): {}",
                error_chain(&e)
            ))
        })?;
        Self::from_config(config, deployment, namespace)
    }

    /// A scaler over a client built from `config`, with certificate
    /// verification forced on and a bound on how long a reply may take.
    pub fn from_config(
        mut config: Config,
        deployment: impl Into<String>,
        namespace: Option<String>,
    ) -> Result<Self, ScaleError> {
        if config.accept_invalid_certs {
            // Scaling is a control action: a forged API server must not be
            // able to learn the token or fake replies, so this is not honoured.
            tracing::warn!(
                "the kubeconfig asks to skip TLS verification; swarmer verifies the API server's certificate anyway"
            );
            config.accept_invalid_certs = false;
        }
        config.read_timeout = Some(READ_TIMEOUT);
        config.reset_reader_on_write = true;
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| {
            ScaleError::Invalid(format!(
                "cannot set up the Kubernetes client: {}",
                error_chain(&e)
            ))
        })?;
        let mut scaler = KubernetesScaler::new(client, deployment, namespace);
        scaler.server = Some(server);
        Ok(scaler)
    }

    pub fn deployment(&self) -> &str {
        &self.deployment
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn read_status(&self) -> Result<ScaleStatus, ScaleError> {
        let scale = self
            .deployments()
            .get_scale(&self.deployment)
            .await
            .map_err(|e| self.explain(e, "get"))?;
        let desired = scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32;
        let ready = self.ready_replicas().await;
        let warning = self.autoscaler_warning().await;
        Ok(ScaleStatus {
            desired,
            ready,
            warning,
        })
    }

    /// Ready pods, from the Deployment's status. Optional: a Role without
    /// `get` on deployments still lets the user scale.
    async fn ready_replicas(&self) -> Option<u32> {
        match self.deployments().get(&self.deployment).await {
            Ok(d) => Some(d.status.and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32),
            Err(e) => {
                tracing::debug!(
                    "cannot read the worker Deployment's status: {}",
                    error_chain(&e)
                );
                None
            }
        }
    }

    async fn set_replicas(&self, workers: u32) -> Result<(), ScaleError> {
        let replicas = i32::try_from(workers).map_err(|_| {
            ScaleError::Invalid(format!(
                "{workers} workers is more than Kubernetes can represent"
            ))
        })?;
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } }));
        self.deployments()
            .patch_scale(&self.deployment, &params, &patch)
            .await
            .map_err(|e| self.explain(e, "patch"))?;
        tracing::info!(
            "set deployments/scale {}/{} to {replicas} replicas",
            self.namespace,
            self.deployment
        );
        Ok(())
    }

    /// A warning naming any HPA or KEDA ScaledObject that targets the
    /// worker Deployment, remembered for a while.
    async fn autoscaler_warning(&self) -> Option<String> {
        if let Some((at, warning)) = self.autoscaler.lock().unwrap().as_ref()
            && at.elapsed() < AUTOSCALER_CHECK_TTL
        {
            return warning.clone();
        }
        let keda = self.keda_scaled_objects().await;
        let hpas = self.hpas().await;
        let warning = autoscaler_message(&self.deployment, &hpas, &keda);
        *self.autoscaler.lock().unwrap() = Some((Instant::now(), warning.clone()));
        warning
    }

    /// Names of HPAs targeting the Deployment, except those KEDA made.
    async fn hpas(&self) -> Vec<String> {
        let api: Api<HorizontalPodAutoscaler> =
            Api::namespaced(self.client.clone(), &self.namespace);
        match api.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter(|h| {
                    let owned_by_keda = (h.metadata.owner_references.iter().flatten())
                        .any(|o| o.kind == "ScaledObject");
                    let target = &h.spec.scale_target_ref;
                    !owned_by_keda && target.kind == "Deployment" && target.name == self.deployment
                })
                .filter_map(|h| h.metadata.name)
                .collect(),
            Err(e) => {
                // Listing HPAs is an optional RBAC rule; without it, no warning.
                tracing::debug!("cannot list HorizontalPodAutoscalers: {}", error_chain(&e));
                Vec::new()
            }
        }
    }

    /// Names of KEDA ScaledObjects targeting the Deployment. A cluster
    /// without KEDA answers 404, which means "none".
    async fn keda_scaled_objects(&self) -> Vec<String> {
        let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "scaledobjects");
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource);
        match api.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .into_iter()
                .filter(|o| {
                    let target = &o.data["spec"]["scaleTargetRef"];
                    let kind = target["kind"].as_str().unwrap_or("Deployment");
                    kind == "Deployment" && target["name"].as_str() == Some(&self.deployment)
                })
                .filter_map(|o| o.metadata.name)
                .collect(),
            Err(e) => {
                tracing::debug!("cannot list KEDA ScaledObjects: {}", error_chain(&e));
                Vec::new()
            }
        }
    }

    /// Turns a failed `verb` on `deployments/scale` into words that say
    /// what to fix.
    fn explain(&self, error: kube::Error, verb: &str) -> ScaleError {
        let (name, ns) = (&self.deployment, &self.namespace);
        let status = match error {
            kube::Error::Api(status) => status,
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                let server = self.server.as_deref().unwrap_or("the configured address");
                return ScaleError::Unreachable(format!(
                    "cannot reach the Kubernetes API server at {server}: {}",
                    error_chain(&error)
                ));
            }
            other => {
                return ScaleError::Other(format!(
                    "cannot {verb} deployments/scale {name:?}: {}",
                    error_chain(&other)
                ));
            }
        };
        let said = if status.message.is_empty() {
            String::new()
        } else {
            format!(" (the API server said: {})", status.message)
        };
        match status.code {
            403 => ScaleError::Forbidden(format!(
                "the service account cannot {verb} deployments/scale {name:?} in namespace {ns:?}: add a Role rule \
                 {{apiGroups: [\"apps\"], resources: [\"deployments/scale\"], resourceNames: [{name:?}], \
                 verbs: [\"get\",\"patch\",\"update\"]}} and bind it to the master's service account{said}"
            )),
            404 => ScaleError::NotFound(format!(
                "the Deployment {name:?} does not exist in namespace {ns:?}: check --worker-deployment and --namespace{said}"
            )),
            409 => ScaleError::Conflict(format!(
                "the Deployment {name:?} in namespace {ns:?} was changed by someone else at the same time; try again{said}"
            )),
            401 => ScaleError::Other(format!(
                "the Kubernetes API server did not accept the master's credentials (401): check the service account token or kubeconfig{said}"
            )),
            502..=504 => ScaleError::Unreachable(format!(
                "the Kubernetes API server is unavailable ({}){said}",
                status.code
            )),
            code => ScaleError::Other(format!(
                "the Kubernetes API server refused to {verb} deployments/scale {name:?} in namespace {ns:?} ({code}){said}"
            )),
        }
    }
}

fn autoscaler_message(deployment: &str, hpas: &[String], keda: &[String]) -> Option<String> {
    let mut found = Vec::new();
    found.extend(keda.iter().map(|n| format!("the KEDA ScaledObject {n:?}")));
    found.extend(
        hpas.iter()
            .map(|n| format!("the HorizontalPodAutoscaler {n:?}")),
    );
    if found.is_empty() {
        return None;
    }
    Some(format!(
        "{} also scales the Deployment {deployment:?} and will undo manual scaling: \
         pause or remove it to scale from here",
        found.join(" and ")
    ))
}

/// An error with its causes, so "client error (Connect)" also says which
/// certificate or address was the problem.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

impl Scaler for KubernetesScaler {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn status(&self) -> BoxFuture<'_, Result<ScaleStatus, ScaleError>> {
        Box::pin(self.read_status())
    }

    fn scale(&self, workers: u32) -> BoxFuture<'_, Result<(), ScaleError>> {
        Box::pin(self.set_replicas(workers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autoscalers_are_named() {
        assert_eq!(autoscaler_message("w", &[], &[]), None);
        let both = autoscaler_message("w", &["h".into()], &["k".into()]).unwrap();
        assert!(
            both.starts_with("the KEDA ScaledObject \"k\" and the HorizontalPodAutoscaler \"h\"")
        );
        assert!(both.contains("Deployment \"w\""));
    }
}
