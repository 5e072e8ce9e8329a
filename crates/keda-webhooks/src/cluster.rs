//! What the validators read besides the indexes: the scale target's pod template (GET) and the
//! namespace's LimitRange container defaults (LIST) on demand, the Services, Ingresses and ALB
//! IngressClasses from watches ([`crate::exposure`]), the Jobs of a ScaledJob (LIST of metadata, on a
//! ScaledJob update only), and the API server's version (read once at start).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
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
    /// How many Jobs the ScaledJob `name` owns (label `scaledjob.keda.sh/name`).
    async fn scaled_job_jobs(&self, namespace: &str, name: &str) -> Result<usize, String>;
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

    async fn scaled_job_jobs(&self, namespace: &str, name: &str) -> Result<usize, String> {
        let selector = format!("{}={name}", keda_api::consts::labels::SCALED_JOB_NAME);
        kube::Api::<Job>::namespaced(self.client.clone(), namespace)
            .list_metadata(&kube::api::ListParams::default().labels(&selector))
            .await
            .map(|list| list.items.len())
            .map_err(|e| format!("listing the Jobs of ScaledJob {namespace}/{name}: {e}"))
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
    /// `(namespace, ScaledJob name)` → how many Jobs it owns.
    pub scaled_job_jobs: BTreeMap<(String, String), usize>,
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

    async fn scaled_job_jobs(&self, namespace: &str, name: &str) -> Result<usize, String> {
        Ok(self
            .scaled_job_jobs
            .get(&(namespace.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0))
    }

    fn server_version(&self) -> Option<(String, String)> {
        self.server_version.clone()
    }
}
