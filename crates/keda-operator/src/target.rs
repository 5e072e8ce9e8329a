//! The scale target: any resource exposing `/scale`, found through discovery (Deployment and StatefulSet
//! without a round trip), read and written through its `/scale` subresource.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::autoscaling::v1::Scale;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

use keda_api::common::GroupVersionKindResource;

use crate::error::Error;

/// Upstream's messages, which users and tests match on.
pub const TARGET_MISSING: &str = "Target resource doesn't exist";
pub const TARGET_NO_SCALE: &str = "Target resource doesn't expose /scale subresource";

/// Discovery results per (apiVersion, kind), so each kind is looked up once.
#[derive(Default)]
pub struct TargetResolver {
    cache: Mutex<HashMap<(String, String), ApiResource>>,
}

/// A resolved target and its current `/scale`.
#[derive(Clone, Debug)]
pub struct Target {
    pub resource: ApiResource,
    pub name: String,
    pub namespace: String,
    /// `spec.template.spec` when the target has a pod template (for `*FromEnv` and `env` auth).
    /// Boxed and dropped before the scale loop gets the target: only trigger resolution reads it.
    pub pod_spec: Option<Box<k8s_openapi::api::core::v1::PodSpec>>,
}

impl Target {
    pub fn gvkr(&self) -> GroupVersionKindResource {
        GroupVersionKindResource {
            group: self.resource.group.clone(),
            version: self.resource.version.clone(),
            kind: self.resource.kind.clone(),
            resource: self.resource.plural.clone(),
        }
    }

    fn api(&self, client: &Client) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), &self.namespace, &self.resource)
    }

    /// Current replicas from `/scale` (`spec.replicas`, 0 when unset).
    pub async fn get_scale(&self, client: &Client) -> Result<Scale, Error> {
        self.api(client).get_scale(&self.name).await.map_err(|e| {
            Error::kube(
                format!(
                    "reading /scale of {} {}/{}",
                    self.resource.kind, self.namespace, self.name
                ),
                e,
            )
        })
    }

    pub async fn current_replicas(&self, client: &Client) -> Result<i32, Error> {
        Ok(self
            .get_scale(client)
            .await?
            .spec
            .and_then(|s| s.replicas)
            .unwrap_or(0))
    }

    /// Pods of the target that are Running and Ready (upstream counts them this way for a `Value`
    /// fallback): the `/scale` selector, then a list of the matching pods. Only a Value-type metric in
    /// fallback needs this, so it is read on demand.
    pub async fn ready_pods(&self, client: &Client) -> Result<i32, Error> {
        use k8s_openapi::api::core::v1::Pod;
        let selector = self
            .get_scale(client)
            .await?
            .status
            .and_then(|s| s.selector)
            .unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(client.clone(), &self.namespace);
        let list = pods
            .list(&kube::api::ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                Error::kube(
                    format!(
                        "listing the pods of {} {}/{}",
                        self.resource.kind, self.namespace, self.name
                    ),
                    e,
                )
            })?;
        let ready = list
            .items
            .iter()
            .filter(|p| {
                let status = p.status.as_ref();
                status.and_then(|s| s.phase.as_deref()) == Some("Running")
                    && status
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                        .is_some_and(|c| c.status == "True")
            })
            .count();
        Ok(i32::try_from(ready).unwrap_or(i32::MAX))
    }

    /// Writes `spec.replicas` through `/scale`.
    pub async fn scale_to(&self, client: &Client, replicas: i32) -> Result<(), Error> {
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.api(client)
            .patch_scale(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                Error::kube(
                    format!(
                        "scaling {} {}/{} to {replicas}",
                        self.resource.kind, self.namespace, self.name
                    ),
                    e,
                )
            })?;
        Ok(())
    }
}

fn well_known(api_version: &str, kind: &str) -> Option<ApiResource> {
    let plural = match (api_version, kind) {
        ("apps/v1", "Deployment") => "deployments",
        ("apps/v1", "StatefulSet") => "statefulsets",
        ("apps/v1", "ReplicaSet") => "replicasets",
        _ => return None,
    };
    Some(ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    })
}

impl TargetResolver {
    async fn api_resource(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, String> {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(ar) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(ar);
        }
        let ar = match well_known(api_version, kind) {
            Some(ar) => ar,
            None => {
                let (group, version) = match api_version.split_once('/') {
                    Some((g, v)) => (g, v),
                    None => ("", api_version),
                };
                let gvk = GroupVersionKind::gvk(group, version, kind);
                let (ar, _caps) = kube::discovery::pinned_kind(client, &gvk).await.map_err(
                    |e| {
                        format!(
                            "{TARGET_MISSING}: {api_version} {kind} is not served by the API: {e}"
                        )
                    },
                )?;
                ar
            }
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(key, ar.clone());
        }
        Ok(ar)
    }

    /// Finds the target and checks that it exists and exposes `/scale`. The error string is the
    /// condition message (upstream's wording first).
    pub async fn resolve(
        &self,
        client: &Client,
        namespace: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<(Target, i32), String> {
        let resource = self.api_resource(client, api_version, kind).await?;
        let mut target = Target {
            resource,
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            pod_spec: None,
        };
        let api = target.api(client);
        match api.get_opt(name).await {
            Ok(Some(obj)) => {
                target.pod_spec = obj
                    .data
                    .pointer("/spec/template/spec")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .map(Box::new);
            }
            Ok(None) => return Err(TARGET_MISSING.to_owned()),
            Err(e) => return Err(format!("{TARGET_MISSING}: {e}")),
        }
        match api.get_scale(name).await {
            Ok(scale) => {
                let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
                Ok((target, replicas))
            }
            Err(kube::Error::Api(e)) if e.code == 404 => Err(TARGET_NO_SCALE.to_owned()),
            Err(e) => Err(format!("{TARGET_NO_SCALE}: {e}")),
        }
    }
}
