//! [`ObjectSource`] backed by the API server.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use keda_api::{ClusterTriggerAuthentication, TriggerAuthentication, TriggerAuthenticationSpec};
use kube::Api;

use crate::cache::{DEFAULT_CAPACITY, DEFAULT_TTL, TtlCache};
use crate::{Lookup, ObjectRef, ObjectSource, ResolveError};

type Data = Lookup<BTreeMap<String, String>>;
type Key = (String, String);

/// Reads objects with GET when they are needed, never with a cluster-wide list or watch: Secrets,
/// ConfigMaps and ServiceAccounts through a short-lived cache ([`DEFAULT_TTL`]), TriggerAuthentications
/// and ClusterTriggerAuthentications fresh every time.
pub struct KubeSource {
    client: kube::Client,
    secrets: TtlCache<Key, Data>,
    config_maps: TtlCache<Key, Data>,
    service_accounts: TtlCache<Key, Data>,
}

impl KubeSource {
    pub fn new(client: kube::Client) -> Self {
        Self::with_cache(client, DEFAULT_TTL, DEFAULT_CAPACITY)
    }

    pub fn with_cache(client: kube::Client, ttl: Duration, capacity: usize) -> Self {
        KubeSource {
            client,
            secrets: TtlCache::new(ttl, capacity),
            config_maps: TtlCache::new(ttl, capacity),
            service_accounts: TtlCache::new(ttl, capacity),
        }
    }

    /// Forgets the cached Secrets and ConfigMaps of `namespace`: a scale loop calls it after a scaler
    /// error, before it resolves authentication again, so a rotated credential is read fresh.
    pub fn invalidate_namespace(&self, namespace: &str) {
        self.secrets.invalidate_where(|(ns, _)| ns == namespace);
        self.config_maps.invalidate_where(|(ns, _)| ns == namespace);
    }
}

fn source_error(object: ObjectRef, e: kube::Error) -> ResolveError {
    ResolveError::Source {
        object,
        message: e.to_string(),
    }
}

async fn get<K>(api: Api<K>, object: ObjectRef) -> Result<Option<K>, ResolveError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(&object.name)
        .await
        .map_err(|e| source_error(object, e))
}

#[async_trait::async_trait]
impl ObjectSource for KubeSource {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Data, ResolveError> {
        let key = (namespace.to_owned(), name.to_owned());
        self.secrets
            .get_or_try_fetch(key, || async {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                let secret = get(api, ObjectRef::new("Secret", namespace, name)).await?;
                Ok(match secret {
                    None => Lookup::Missing,
                    Some(s) => Lookup::Found(
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                            .collect(),
                    ),
                })
            })
            .await
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<Data, ResolveError> {
        let key = (namespace.to_owned(), name.to_owned());
        self.config_maps
            .get_or_try_fetch(key, || async {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
                let cm = get(api, ObjectRef::new("ConfigMap", namespace, name)).await?;
                Ok(match cm {
                    None => Lookup::Missing,
                    Some(cm) => Lookup::Found(cm.data.unwrap_or_default()),
                })
            })
            .await
    }

    async fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        let api: Api<TriggerAuthentication> = Api::namespaced(self.client.clone(), namespace);
        let ta = get(
            api,
            ObjectRef::new("TriggerAuthentication", namespace, name),
        )
        .await?;
        Ok(match ta {
            None => Lookup::Missing,
            Some(ta) => Lookup::Found(ta.spec),
        })
    }

    async fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        let api: Api<ClusterTriggerAuthentication> = Api::all(self.client.clone());
        let cta = get(
            api,
            ObjectRef::cluster("ClusterTriggerAuthentication", name),
        )
        .await?;
        Ok(match cta {
            None => Lookup::Missing,
            Some(cta) => Lookup::Found(cta.spec.0),
        })
    }

    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Data, ResolveError> {
        let key = (namespace.to_owned(), name.to_owned());
        self.service_accounts
            .get_or_try_fetch(key, || async {
                let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
                let sa = get(api, ObjectRef::new("ServiceAccount", namespace, name)).await?;
                Ok(match sa {
                    None => Lookup::Missing,
                    Some(sa) => Lookup::Found(sa.metadata.annotations.unwrap_or_default()),
                })
            })
            .await
    }
}
