//! What the validators read on demand (not watched): the scale target's pod template and the
//! namespace's LimitRange container defaults.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{LimitRange, PodSpec};

/// Reads of single objects the validators need.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// The pod template of a Deployment or StatefulSet (`None`: other kinds, or not found).
    async fn pod_template(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodSpec>, String>;
    /// Resources (`cpu`, `memory`) that a LimitRange of the namespace gives containers by default.
    async fn limit_range_defaults(&self, namespace: &str) -> Result<BTreeSet<String>, String>;
}

/// [`Cluster`] over the API server.
pub struct KubeCluster {
    pub client: kube::Client,
}

#[async_trait::async_trait]
impl Cluster for KubeCluster {
    async fn pod_template(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodSpec>, String> {
        let err = |e: kube::Error| format!("reading {kind} {namespace}/{name}: {e}");
        match kind {
            "Deployment" => Ok(
                kube::Api::<Deployment>::namespaced(self.client.clone(), namespace)
                    .get_opt(name)
                    .await
                    .map_err(err)?
                    .and_then(|d| d.spec)
                    .and_then(|s| s.template.spec),
            ),
            "StatefulSet" => Ok(kube::Api::<StatefulSet>::namespaced(
                self.client.clone(),
                namespace,
            )
            .get_opt(name)
            .await
            .map_err(err)?
            .and_then(|d| d.spec)
            .and_then(|s| s.template.spec)),
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
}

/// [`Cluster`] held in memory (tests, benchmarks).
#[derive(Default, Clone)]
pub struct MemoryCluster {
    /// `(namespace, kind, name)` → pod template.
    pub workloads: BTreeMap<(String, String, String), PodSpec>,
    pub limit_range_defaults: BTreeMap<String, BTreeSet<String>>,
}

#[async_trait::async_trait]
impl Cluster for MemoryCluster {
    async fn pod_template(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<PodSpec>, String> {
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
}
