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
    /// `WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH`: an authentication object it does not select is missing.
    trigger_auth_selector: Option<kube::core::Selector>,
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
            trigger_auth_selector: None,
            secrets: TtlCache::new(ttl, capacity),
            config_maps: TtlCache::new(ttl, capacity),
            service_accounts: TtlCache::new(ttl, capacity),
        }
    }

    /// TriggerAuthentications and ClusterTriggerAuthentications whose labels `selector` does not select
    /// are taken as missing, as upstream's operator, whose cache never holds them, finds them missing
    /// (`WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH`).
    pub fn with_trigger_auth_selector(mut self, selector: Option<kube::core::Selector>) -> Self {
        self.trigger_auth_selector = selector;
        self
    }

    /// Whether the authentication object with `labels` may be used.
    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        use kube::core::SelectorExt;
        match &self.trigger_auth_selector {
            Some(s) => s.matches(labels.unwrap_or(&BTreeMap::new())),
            None => true,
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
            Some(ta) if self.selects(ta.metadata.labels.as_ref()) => Lookup::Found(ta.spec),
            _ => Lookup::Missing,
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
            Some(cta) if self.selects(cta.metadata.labels.as_ref()) => Lookup::Found(cta.spec.0),
            _ => Lookup::Missing,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose API server answers every GET with `object`.
    fn answering(object: serde_json::Value) -> kube::Client {
        let body = object.to_string();
        let svc = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            let body = body.clone();
            async move {
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body.into_bytes()))
            }
        });
        kube::Client::new(svc, "default")
    }

    fn auth(kind: &str, labels: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": kind,
            "metadata": {"name": "creds", "namespace": "shop", "labels": labels},
            "spec": {"secretTargetRef": [{"parameter": "password", "name": "s", "key": "k"}]}
        })
    }

    #[tokio::test]
    async fn authentication_objects_outside_the_selector_are_missing() {
        let shard = keda_kube_selector("shard=a");
        for (labels, found) in [
            (serde_json::json!({"shard": "a"}), true),
            (serde_json::json!({"shard": "b"}), false),
            (serde_json::json!({}), false),
        ] {
            let ta = KubeSource::new(answering(auth("TriggerAuthentication", labels.clone())))
                .with_trigger_auth_selector(Some(shard.clone()));
            let got = ta.trigger_authentication("shop", "creds").await;
            assert_eq!(matches!(got, Ok(Lookup::Found(_))), found, "{labels}");
            let cta = KubeSource::new(answering(auth(
                "ClusterTriggerAuthentication",
                labels.clone(),
            )))
            .with_trigger_auth_selector(Some(shard.clone()));
            let got = cta.cluster_trigger_authentication("creds").await;
            assert_eq!(matches!(got, Ok(Lookup::Found(_))), found, "{labels}");
        }
        let all = KubeSource::new(answering(auth(
            "TriggerAuthentication",
            serde_json::json!({}),
        )));
        assert!(matches!(
            all.trigger_authentication("shop", "creds").await,
            Ok(Lookup::Found(_))
        ));
    }

    fn keda_kube_selector(s: &str) -> kube::core::Selector {
        let (k, v) = s.split_once('=').unwrap_or((s, ""));
        kube::core::Selector::from_iter([(k.to_owned(), v.to_owned())])
    }
}
