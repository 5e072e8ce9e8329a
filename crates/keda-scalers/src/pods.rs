//! Where a scaler learns which pods of a namespace a label selector matches, reduced to what scalers
//! read. `kubernetes-workload` asks on every poll.
//!
//! The operator puts a [`KubePods`] (feature `kube`) into [`BuildContext::pods`](crate::BuildContext::pods);
//! processes without API access (`keda lint`, the webhook) leave it empty, and tests bring their own
//! [`Pods`].
//!
//! Why one LIST per poll and no watch: upstream reads pods through controller-runtime's cached client,
//! which watches and keeps every Pod of the cluster in memory as soon as one `kubernetes-workload`
//! trigger exists, so the operator grows with pods it never counts (kedacore/keda#7728). A LIST scoped to
//! the trigger's namespace and selector costs one request per poll and keeps nothing between polls; the
//! API server answers it from its watch cache (`resourceVersion=0`), not from etcd. A metadata-only list
//! would be smaller still but carries neither the phase nor the node, which the count needs.

/// One pod, as counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodSummary {
    /// `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`); `None` when unset.
    pub phase: Option<String>,
    /// `spec.nodeName`; `None` while the pod is not scheduled.
    pub node_name: Option<String>,
}

/// Lists pods by label selector.
#[async_trait::async_trait]
pub trait Pods: Send + Sync {
    /// The pods of `namespace` that `selector` matches (a label selector as the API's `labelSelector`
    /// parameter takes it; empty: every pod). A source may leave out pods in phase `Succeeded` or
    /// `Failed`, which no caller counts. An error is a message saying what failed.
    async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<PodSummary>, String>;
}

/// `status.phase` values of pods that have finished: never counted.
pub const FINISHED_PHASES: [&str; 2] = ["Succeeded", "Failed"];

#[cfg(feature = "kube")]
pub use kube_source::KubePods;

#[cfg(feature = "kube")]
mod kube_source {
    use kube::api::ListParams;
    use kube::core::Request;
    use serde::Deserialize;

    use super::{FINISHED_PHASES, PodSummary, Pods};

    /// [`Pods`] from the Kubernetes API: one LIST of the namespace's pods per call, with the label
    /// selector and a field selector leaving out finished pods, served from the API server's watch
    /// cache. Only the phase and node name of each pod are decoded; the rest of each object is skipped
    /// while reading the answer. Needs `list` on `pods`.
    #[derive(Clone)]
    pub struct KubePods {
        client: kube::Client,
    }

    impl KubePods {
        pub fn new(client: kube::Client) -> KubePods {
            KubePods { client }
        }
    }

    /// The parts of a PodList the count reads; serde skips every other field.
    #[derive(Deserialize)]
    struct PodList {
        #[serde(default)]
        items: Vec<Pod>,
    }

    #[derive(Deserialize)]
    struct Pod {
        #[serde(default)]
        spec: Option<Spec>,
        #[serde(default)]
        status: Option<Status>,
    }

    #[derive(Deserialize)]
    struct Spec {
        #[serde(default, rename = "nodeName")]
        node_name: Option<String>,
    }

    #[derive(Deserialize)]
    struct Status {
        #[serde(default)]
        phase: Option<String>,
    }

    #[async_trait::async_trait]
    impl Pods for KubePods {
        async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<PodSummary>, String> {
            let fields = FINISHED_PHASES
                .iter()
                .map(|p| format!("status.phase!={p}"))
                .collect::<Vec<_>>()
                .join(",");
            let params = ListParams::default()
                .labels(selector)
                .fields(&fields)
                .match_any();
            let request = Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
                .list(&params)
                .map_err(|e| format!("building the pod list request: {e}"))?;
            let list: PodList = self.client.request(request).await.map_err(|e| {
                format!("listing the pods of namespace {namespace} matching {selector:?}: {e}")
            })?;
            Ok(list
                .items
                .into_iter()
                .map(|p| PodSummary {
                    phase: p.status.and_then(|s| s.phase),
                    node_name: p.spec.and_then(|s| s.node_name),
                })
                .collect())
        }
    }
}
