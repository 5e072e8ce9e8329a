//! Where a scaler learns the endpoints behind a Kubernetes Service: the Service's EndpointSlices, reduced
//! to what scalers read. `metrics-api` with `aggregateFromKubeServiceEndpoints` asks for them on every
//! poll.
//!
//! The operator puts a [`KubeServiceEndpoints`] (feature `kube`) into
//! [`BuildContext::service_endpoints`](crate::BuildContext::service_endpoints); processes without API access
//! (`keda lint`, the webhook) leave it empty, and tests bring their own [`ServiceEndpoints`].

/// One EndpointSlice of a Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSlice {
    /// `ports[].port` in order; `None` where a port entry has no number.
    pub ports: Vec<Option<i32>>,
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of an [`EndpointSlice`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// IP addresses (or FQDNs, for an FQDN slice) as written in the slice.
    pub addresses: Vec<String>,
    /// `conditions.ready`; `None` when the slice does not say (Kubernetes reads that as ready).
    pub ready: Option<bool>,
}

/// Lists the EndpointSlices of a Service.
#[async_trait::async_trait]
pub trait ServiceEndpoints: Send + Sync {
    /// The EndpointSlices in `namespace` labelled `kubernetes.io/service-name=<service>`, in the order
    /// the source gives them. An error is a message saying what failed.
    async fn endpoint_slices(
        &self,
        namespace: &str,
        service: &str,
    ) -> Result<Vec<EndpointSlice>, String>;
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[cfg(feature = "kube")]
pub use kube_source::KubeServiceEndpoints;

#[cfg(feature = "kube")]
mod kube_source {
    use k8s_openapi::api::discovery::v1 as discovery;
    use kube::Api;
    use kube::api::ListParams;

    use super::{Endpoint, EndpointSlice, SERVICE_NAME_LABEL, ServiceEndpoints};

    /// [`ServiceEndpoints`] from the Kubernetes API: one LIST of `discovery.k8s.io/v1` EndpointSlices
    /// per call, selected by [`SERVICE_NAME_LABEL`] and served from the API server's watch cache
    /// (`resourceVersion=0`), so a poll costs no etcd read. Needs `list` on `endpointslices`.
    #[derive(Clone)]
    pub struct KubeServiceEndpoints {
        client: kube::Client,
    }

    impl KubeServiceEndpoints {
        pub fn new(client: kube::Client) -> KubeServiceEndpoints {
            KubeServiceEndpoints { client }
        }
    }

    #[async_trait::async_trait]
    impl ServiceEndpoints for KubeServiceEndpoints {
        async fn endpoint_slices(
            &self,
            namespace: &str,
            service: &str,
        ) -> Result<Vec<EndpointSlice>, String> {
            let api: Api<discovery::EndpointSlice> =
                Api::namespaced(self.client.clone(), namespace);
            let params = ListParams::default()
                .labels(&format!("{SERVICE_NAME_LABEL}={service}"))
                .match_any();
            let list = api.list(&params).await.map_err(|e| {
                format!("listing the EndpointSlices of Service {namespace}/{service}: {e}")
            })?;
            Ok(list.items.into_iter().map(from_kube).collect())
        }
    }

    fn from_kube(slice: discovery::EndpointSlice) -> EndpointSlice {
        EndpointSlice {
            ports: slice
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.port)
                .collect(),
            endpoints: slice
                .endpoints
                .into_iter()
                .map(|e| Endpoint {
                    addresses: e.addresses,
                    ready: e.conditions.and_then(|c| c.ready),
                })
                .collect(),
        }
    }
}
