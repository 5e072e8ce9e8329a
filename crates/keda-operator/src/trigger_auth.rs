//! TriggerAuthentication and ClusterTriggerAuthentication watches. For now they only keep
//! `keda_resource_registered_total` current (upstream counts them in its TriggerAuthentication
//! controllers); the objects themselves are read on demand by `keda-resolver`.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use keda_api::{ClusterTriggerAuthentication, TriggerAuthentication};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::metrics::{Metrics, ResourceKind};

/// Counts the TriggerAuthentications of the watched namespaces (`WATCH_NAMESPACE`: empty = all, one
/// namespace, or a comma-separated list) and every ClusterTriggerAuthentication, until the process ends.
pub async fn count(client: Client, watch_namespace: Option<String>, metrics: Arc<Metrics>) {
    let watched: Vec<String> = watch_namespace
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let ta: Api<TriggerAuthentication> = match watched.as_slice() {
        [one] => Api::namespaced(client.clone(), one),
        _ => Api::all(client.clone()),
    };
    let cta: Api<ClusterTriggerAuthentication> = Api::all(client);
    let in_scope = move |ns: &str| watched.is_empty() || watched.iter().any(|w| w == ns);
    futures::join!(
        count_kind(
            ta,
            ResourceKind::TriggerAuthentication,
            metrics.clone(),
            in_scope
        ),
        count_kind(
            cta,
            ResourceKind::ClusterTriggerAuthentication,
            metrics,
            |_| true
        ),
    );
}

async fn count_kind<K>(
    api: Api<K>,
    kind: ResourceKind,
    metrics: Arc<Metrics>,
    in_scope: impl Fn(&str) -> bool,
) where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let mut stream = watcher::watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .boxed();
    // Objects listed since the last (re)start of the watch; the others are gone once the list is done.
    let mut listed: HashSet<(String, String)> = HashSet::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, kind = kind.as_str(), "watch failed; retrying");
                continue;
            }
        };
        apply(&metrics, kind, &in_scope, &mut listed, event);
    }
}

/// One watch event applied to the counts (pure apart from the metrics, for tests).
fn apply<K: Resource>(
    metrics: &Metrics,
    kind: ResourceKind,
    in_scope: &impl Fn(&str) -> bool,
    listed: &mut HashSet<(String, String)>,
    event: Event<K>,
) {
    let key = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
    match event {
        Event::Init => listed.clear(),
        Event::InitApply(o) | Event::Apply(o) => {
            let (ns, name) = key(&o);
            if in_scope(&ns) {
                metrics.register(kind, &ns, &name, &[]);
                listed.insert((ns, name));
            }
        }
        Event::Delete(o) => {
            let (ns, name) = key(&o);
            metrics.unregister(kind, &ns, &name);
        }
        Event::InitDone => {
            metrics.retain_registered(kind, |ns, name| {
                listed.contains(&(ns.to_owned(), name.to_owned()))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ta(ns: &str, name: &str) -> TriggerAuthentication {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": name, "namespace": ns},
            "spec": {}
        }))
        .expect("TriggerAuthentication")
    }

    fn count_in(m: &Metrics, ns: &str) -> Option<String> {
        let prefix = format!(
            r#"keda_resource_registered_total{{type="trigger_authentication",namespace="{ns}"}}"#
        );
        m.encode()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_owned()))
    }

    #[test]
    fn watch_events_keep_the_count() {
        let m = Metrics::default();
        let kind = ResourceKind::TriggerAuthentication;
        let scope = |ns: &str| ns != "elsewhere";
        let mut listed = HashSet::new();
        for e in [
            Event::Init,
            Event::InitApply(ta("a", "one")),
            Event::InitApply(ta("a", "two")),
            Event::InitApply(ta("elsewhere", "x")),
            Event::InitDone,
            Event::Apply(ta("a", "two")),
            Event::Apply(ta("b", "three")),
        ] {
            apply(&m, kind, &scope, &mut listed, e);
        }
        assert_eq!(count_in(&m, "a").as_deref(), Some("2"));
        assert_eq!(count_in(&m, "b").as_deref(), Some("1"));
        assert_eq!(count_in(&m, "elsewhere"), None);
        apply(&m, kind, &scope, &mut listed, Event::Delete(ta("a", "one")));
        assert_eq!(count_in(&m, "a").as_deref(), Some("1"));
        // A re-list that no longer has "two" (deleted while the watch was down) forgets it.
        for e in [
            Event::Init,
            Event::InitApply(ta("b", "three")),
            Event::InitDone,
        ] {
            apply(&m, kind, &scope, &mut listed, e);
        }
        assert_eq!(count_in(&m, "a").as_deref(), Some("0"));
        assert_eq!(count_in(&m, "b").as_deref(), Some("1"));
    }
}
