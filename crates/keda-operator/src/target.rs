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

/// The two workload kinds whose replica counts are watched instead of read through `/scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum WatchedKind {
    Deployment,
    StatefulSet,
}

impl WatchedKind {
    fn of(resource: &ApiResource) -> Option<WatchedKind> {
        match (
            resource.group.as_str(),
            resource.version.as_str(),
            resource.kind.as_str(),
        ) {
            ("apps", "v1", "Deployment") => Some(WatchedKind::Deployment),
            ("apps", "v1", "StatefulSet") => Some(WatchedKind::StatefulSet),
            _ => None,
        }
    }
}

type ReplicaKey = (WatchedKind, String, String);

/// `spec.replicas` of the Deployments and StatefulSets in the operator's scope, kept from two watches (only
/// the count is kept, not the objects), so a scale loop knows its target's count without a `/scale` read
/// per poll; upstream reads these two kinds from its informer cache as well. Other kinds are read through
/// `/scale`. A count the watch has not delivered yet (not synced, or a target it has not seen) is `None`,
/// and the caller reads `/scale`.
#[derive(Default)]
pub struct ReplicaCounts {
    counts: std::sync::RwLock<HashMap<ReplicaKey, i32>>,
    synced: std::sync::RwLock<std::collections::HashSet<WatchedKind>>,
}

impl ReplicaCounts {
    pub fn get(&self, target: &Target) -> Option<i32> {
        let kind = WatchedKind::of(&target.resource)?;
        if !self.synced.read().ok()?.contains(&kind) {
            return None;
        }
        self.counts
            .read()
            .ok()?
            .get(&(kind, target.namespace.clone(), target.name.clone()))
            .copied()
    }

    /// Applies one watch event of `kind`; `pending` collects a (re)list until it is complete.
    fn apply(
        &self,
        kind: WatchedKind,
        pending: &mut Option<HashMap<ReplicaKey, i32>>,
        event: kube::runtime::watcher::Event<(String, String, Option<i32>)>,
    ) {
        use kube::runtime::watcher::Event;
        let key = |ns: String, name: String| (kind, ns, name);
        match event {
            Event::Init => *pending = Some(HashMap::new()),
            Event::InitApply((ns, name, replicas)) => {
                if let (Some(p), Some(r)) = (pending.as_mut(), replicas) {
                    p.insert(key(ns, name), r);
                }
            }
            Event::InitDone => {
                let fresh = pending.take().unwrap_or_default();
                if let Ok(mut counts) = self.counts.write() {
                    counts.retain(|k, _| k.0 != kind);
                    counts.extend(fresh);
                }
                if let Ok(mut synced) = self.synced.write() {
                    synced.insert(kind);
                }
            }
            Event::Apply((ns, name, replicas)) => {
                if let Ok(mut counts) = self.counts.write() {
                    match replicas {
                        Some(r) => counts.insert(key(ns, name), r),
                        None => counts.remove(&key(ns, name)),
                    };
                }
            }
            Event::Delete((ns, name, _)) => {
                if let Ok(mut counts) = self.counts.write() {
                    counts.remove(&key(ns, name));
                }
            }
        }
    }

    /// Keeps the counts of Deployments and StatefulSets in `namespace` (all namespaces when `None`) until
    /// the process ends.
    pub fn watch(self: std::sync::Arc<Self>, client: Client, namespace: Option<String>) {
        use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
        tokio::spawn(self.clone().follow::<Deployment>(
            client.clone(),
            namespace.clone(),
            WatchedKind::Deployment,
            |d| d.spec.as_ref().and_then(|s| s.replicas),
        ));
        tokio::spawn(self.follow::<StatefulSet>(
            client,
            namespace,
            WatchedKind::StatefulSet,
            |s| s.spec.as_ref().and_then(|s| s.replicas),
        ));
    }

    async fn follow<K>(
        self: std::sync::Arc<Self>,
        client: Client,
        namespace: Option<String>,
        kind: WatchedKind,
        replicas: fn(&K) -> Option<i32>,
    ) where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
        K::DynamicType: Default,
    {
        use futures::StreamExt;
        use kube::ResourceExt;
        use kube::runtime::{WatchStreamExt, watcher};
        let api: Api<K> = match namespace.as_deref() {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let mut pending = None;
        let events = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .map(move |event| {
                let count = |o: K| {
                    (
                        o.namespace().unwrap_or_default(),
                        o.name_any(),
                        replicas(&o),
                    )
                };
                event.map(|e| match e {
                    watcher::Event::Init => watcher::Event::Init,
                    watcher::Event::InitApply(o) => watcher::Event::InitApply(count(o)),
                    watcher::Event::InitDone => watcher::Event::InitDone,
                    watcher::Event::Apply(o) => watcher::Event::Apply(count(o)),
                    watcher::Event::Delete(o) => watcher::Event::Delete(count(o)),
                })
            });
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => self.apply(kind, &mut pending, event),
                Err(e) => tracing::warn!(error = %e, ?kind, "watching replica counts"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;

    fn deployment(name: &str) -> Target {
        Target {
            resource: well_known("apps/v1", "Deployment").expect("well known"),
            name: name.to_owned(),
            namespace: "shop".to_owned(),
            pod_spec: None,
        }
    }

    fn ev(name: &str, replicas: Option<i32>) -> (String, String, Option<i32>) {
        ("shop".to_owned(), name.to_owned(), replicas)
    }

    #[test]
    fn watched_counts_follow_the_watch_and_are_unknown_until_it_is_synced() {
        let counts = ReplicaCounts::default();
        let kind = WatchedKind::Deployment;
        let mut pending = None;
        counts.apply(kind, &mut pending, Event::Init);
        counts.apply(kind, &mut pending, Event::InitApply(ev("web", Some(3))));
        assert_eq!(counts.get(&deployment("web")), None, "not synced yet");
        counts.apply(kind, &mut pending, Event::InitDone);
        assert_eq!(counts.get(&deployment("web")), Some(3));
        assert_eq!(counts.get(&deployment("other")), None, "never seen");

        counts.apply(kind, &mut pending, Event::Apply(ev("web", Some(0))));
        assert_eq!(counts.get(&deployment("web")), Some(0));
        counts.apply(kind, &mut pending, Event::Apply(ev("web", None)));
        assert_eq!(
            counts.get(&deployment("web")),
            None,
            "no count: read /scale"
        );
        counts.apply(kind, &mut pending, Event::Apply(ev("web", Some(2))));
        counts.apply(kind, &mut pending, Event::Delete(ev("web", Some(2))));
        assert_eq!(counts.get(&deployment("web")), None);

        // A relist replaces what the previous list knew: objects deleted meanwhile are forgotten.
        counts.apply(kind, &mut pending, Event::Apply(ev("gone", Some(4))));
        counts.apply(kind, &mut pending, Event::Init);
        counts.apply(kind, &mut pending, Event::InitApply(ev("web", Some(5))));
        assert_eq!(
            counts.get(&deployment("gone")),
            Some(4),
            "old list until done"
        );
        counts.apply(kind, &mut pending, Event::InitDone);
        assert_eq!(counts.get(&deployment("gone")), None);
        assert_eq!(counts.get(&deployment("web")), Some(5));

        // Other kinds are never answered from the watch.
        let custom = Target {
            resource: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("example.com", "v1", "Worker"),
                "workers",
            ),
            ..deployment("web")
        };
        assert_eq!(counts.get(&custom), None);
    }
}
