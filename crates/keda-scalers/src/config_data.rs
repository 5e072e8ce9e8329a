//! Where a scaler reads one key of a ConfigMap or Secret. `kubernetes-resource` asks on every poll.
//!
//! The operator puts a [`KubeConfigData`] (feature `kube`) into
//! [`BuildContext::config_data`](crate::BuildContext::config_data); processes without API access leave it
//! empty, and tests bring their own [`ConfigData`].
//!
//! Why a GET per poll: upstream reads these objects through its cached client, which watches every
//! ConfigMap and Secret of the cluster once one is read (the memory problem of kedacore/keda#7728 for
//! pods); one GET of the named object keeps nothing between polls and needs only `get`, which the chart
//! already grants for `secretTargetRef`.

/// Which kind of object holds the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

impl ConfigKind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        }
    }
}

/// Reads keys of ConfigMaps and Secrets.
#[async_trait::async_trait]
pub trait ConfigData: Send + Sync {
    /// The value of `key` in `data` of the `kind` object `namespace/name` (a Secret's bytes as UTF-8);
    /// `Ok(None)` when the object exists without that key. An error is a message saying what failed.
    async fn value(
        &self,
        kind: ConfigKind,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, String>;
}

#[cfg(feature = "kube")]
pub use kube_source::KubeConfigData;

#[cfg(feature = "kube")]
mod kube_source {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kube::Api;

    use super::{ConfigData, ConfigKind};

    /// [`ConfigData`] from the Kubernetes API: one GET of the named object per call. Needs `get` on
    /// `configmaps` or `secrets`.
    #[derive(Clone)]
    pub struct KubeConfigData {
        client: kube::Client,
    }

    impl KubeConfigData {
        pub fn new(client: kube::Client) -> KubeConfigData {
            KubeConfigData { client }
        }
    }

    #[async_trait::async_trait]
    impl ConfigData for KubeConfigData {
        async fn value(
            &self,
            kind: ConfigKind,
            namespace: &str,
            name: &str,
            key: &str,
        ) -> Result<Option<String>, String> {
            let failed =
                |e: kube::Error| format!("error getting {} {namespace}/{name}: {e}", kind.as_str());
            match kind {
                ConfigKind::ConfigMap => {
                    let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
                    let cm = api.get(name).await.map_err(failed)?;
                    Ok(cm.data.and_then(|mut d| d.remove(key)))
                }
                ConfigKind::Secret => {
                    let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                    let secret = api.get(name).await.map_err(failed)?;
                    Ok(secret
                        .data
                        .and_then(|mut d| d.remove(key))
                        .map(|b| String::from_utf8_lossy(&b.0).into_owned()))
                }
            }
        }
    }
}
