//! What the validators read besides the indexes: the scale target's pod template (GET) and the
//! namespace's LimitRange container defaults (LIST) on demand, the Services, Ingresses and ALB
//! IngressClasses from watches ([`crate::exposure`]), and the API server's version (read once at start).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{LimitRange, PodTemplateSpec};
use keda_check::advice::Exposure;

use crate::exposure::ExposureCache;

/// Reads of single objects the validators need.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// The pod template of a Deployment or StatefulSet (`None`: other kinds, or not found).
    async fn pod_template(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodTemplateSpec>, String>;
    /// Resources (`cpu`, `memory`) that a LimitRange of the namespace gives containers by default.
    async fn limit_range_defaults(&self, namespace: &str) -> Result<BTreeSet<String>, String>;
    /// The Services and Ingresses of the namespace, and the IngressClasses of the AWS Load Balancer
    /// Controller when an Ingress's class needs them (the workload warnings).
    async fn exposure(&self, namespace: &str) -> Result<Exposure, String>;
    /// The API server's `/version` (`major`, `minor`), if known.
    fn server_version(&self) -> Option<(String, String)>;
}

/// [`Cluster`] over the API server.
pub struct KubeCluster {
    pub client: kube::Client,
    /// Services, Ingresses and IngressClasses, fed by [`crate::exposure::run`].
    pub exposure: Arc<ExposureCache>,
    /// `major`, `minor` of the API server's `/version`, read at start (`None`: the read failed).
    pub server_version: Option<(String, String)>,
}

#[async_trait::async_trait]
impl Cluster for KubeCluster {
    async fn pod_template(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodTemplateSpec>, String> {
        let err = |e: kube::Error| format!("reading {kind} {namespace}/{name}: {e}");
        match kind {
            "Deployment" => Ok(
                kube::Api::<Deployment>::namespaced(self.client.clone(), namespace)
                    .get_opt(name)
                    .await
                    .map_err(err)?
                    .and_then(|d| d.spec)
                    .map(|s| s.template),
            ),
            "StatefulSet" => Ok(kube::Api::<StatefulSet>::namespaced(
                self.client.clone(),
                namespace,
            )
            .get_opt(name)
            .await
            .map_err(err)?
            .and_then(|d| d.spec)
            .map(|s| s.template)),
            _ => Ok(None),
        }
    }

    async fn limit_range_defaults(&self, namespace: &str) -> Result<BTreeSet<String>, String> {
        let list = kube::Api::<LimitRange>::namespaced(self.client.clone(), namespace)
            .list(&Default::default())
            .await
            .map_err(|e| format!("listing LimitRanges in {namespace}: {e}"))?;
        let mut out = BTreeSet::new();
        for lr in list.items {
            for limit in lr.spec.iter().flat_map(|s| s.limits.iter()) {
                if limit.type_ != "Container" {
                    continue;
                }
                for m in [&limit.default, &limit.default_request]
                    .into_iter()
                    .flatten()
                {
                    out.extend(m.keys().cloned());
                }
            }
        }
        Ok(out)
    }

    async fn exposure(&self, namespace: &str) -> Result<Exposure, String> {
        self.exposure.exposure(namespace)
    }

    fn server_version(&self) -> Option<(String, String)> {
        self.server_version.clone()
    }
}

/// [`Cluster`] held in memory (tests, benchmarks).
#[derive(Default, Clone)]
pub struct MemoryCluster {
    /// `(namespace, kind, name)` → pod template.
    pub workloads: BTreeMap<(String, String, String), PodTemplateSpec>,
    pub limit_range_defaults: BTreeMap<String, BTreeSet<String>>,
    /// Namespace → its Services, Ingresses and ALB IngressClasses.
    pub exposure: BTreeMap<String, Exposure>,
    pub server_version: Option<(String, String)>,
}

#[async_trait::async_trait]
impl Cluster for MemoryCluster {
    async fn pod_template(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodTemplateSpec>, String> {
        Ok(self
            .workloads
            .get(&(namespace.to_owned(), kind.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn limit_range_defaults(&self, namespace: &str) -> Result<BTreeSet<String>, String> {
        Ok(self
            .limit_range_defaults
            .get(namespace)
            .cloned()
            .unwrap_or_default())
    }

    async fn exposure(&self, namespace: &str) -> Result<Exposure, String> {
        Ok(self.exposure.get(namespace).cloned().unwrap_or_default())
    }

    fn server_version(&self) -> Option<(String, String)> {
        self.server_version.clone()
    }
}
