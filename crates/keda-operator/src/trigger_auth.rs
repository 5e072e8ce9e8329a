//! TriggerAuthentication and ClusterTriggerAuthentication watches: they keep
//! `keda_resource_registered_total` current (upstream counts them in its TriggerAuthentication
//! controllers), emit upstream's Added/Updated/Deleted Events, and report spec changes so the
//! ScaledObjects that use the object are reconciled at once (their loops then run with the new
//! parameters). The objects themselves are read on demand by `keda-resolver`. They also keep
//! [`AuthStatuses`], each object's `status.scaledobjects` as last seen, so the ScaledObject controller
//! writes that status only when its value changes (not once per reconcile and reference).

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use keda_api::{ClusterTriggerAuthentication, TriggerAuthentication};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::metrics::{Metrics, ResourceKind};

/// A TriggerAuthentication (namespace set) or ClusterTriggerAuthentication whose spec changed or that
/// was deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthChange {
    pub kind: keda_api::common::AuthenticationRefKind,
    pub namespace: Option<String>,
    pub name: String,
}

/// The ScaledObjects (of `all`) that refer to the changed authentication object.
pub fn users(
    all: &[Arc<keda_api::ScaledObject>],
    change: &AuthChange,
) -> Vec<kube::runtime::reflector::ObjectRef<keda_api::ScaledObject>> {
    use keda_api::common::AuthenticationRefKind;
    all.iter()
        .filter(|so| {
            change.kind == AuthenticationRefKind::ClusterTriggerAuthentication
                || so.namespace() == change.namespace
        })
        .filter(|so| {
            so.spec.triggers.iter().any(|t| {
                t.authentication_ref
                    .as_ref()
                    .is_some_and(|r| r.kind() == change.kind && r.name == change.name)
            })
        })
        .map(|so| kube::runtime::reflector::ObjectRef::from_obj(so.as_ref()))
        .collect()
}

type Changes = futures::channel::mpsc::UnboundedSender<AuthChange>;

/// `(kind, namespace ("" for a ClusterTriggerAuthentication), name)`.
type AuthKey = (keda_api::common::AuthenticationRefKind, String, String);

/// `status.scaledobjects` of each watched TriggerAuthentication and ClusterTriggerAuthentication, as the
/// watch last showed it or this operator last wrote it. Entries go with their objects (Delete events, and
/// re-lists for objects deleted while the watch was down).
#[derive(Default)]
pub struct AuthStatuses(std::sync::Mutex<HashMap<AuthKey, Option<String>>>);

impl AuthStatuses {
    fn key(kind: keda_api::common::AuthenticationRefKind, namespace: &str, name: &str) -> AuthKey {
        (kind, namespace.to_owned(), name.to_owned())
    }

    /// Whether `status.scaledobjects` must be written to become `users`: unless it is known to be that
    /// already.
    pub fn needs_write(
        &self,
        kind: keda_api::common::AuthenticationRefKind,
        namespace: &str,
        name: &str,
        users: &str,
    ) -> bool {
        self.0.lock().map_or(true, |m| {
            m.get(&Self::key(kind, namespace, name))
                .is_none_or(|seen| seen.as_deref() != Some(users))
        })
    }

    /// Whether the object is watched (seen and not deleted since).
    pub fn knows(
        &self,
        kind: keda_api::common::AuthenticationRefKind,
        namespace: &str,
        name: &str,
    ) -> bool {
        self.0
            .lock()
            .is_ok_and(|m| m.contains_key(&Self::key(kind, namespace, name)))
    }

    /// Records a successful write.
    pub fn written(
        &self,
        kind: keda_api::common::AuthenticationRefKind,
        namespace: &str,
        name: &str,
        users: String,
    ) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(Self::key(kind, namespace, name), Some(users));
        }
    }

    /// Objects known (for tests).
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One watch event: the status it shows, or the object gone. `relisted` collects the objects of a
    /// re-list; when it is done the others are forgotten.
    fn observe<K: Resource + AuthStatusOf>(
        &self,
        kind: keda_api::common::AuthenticationRefKind,
        relisted: &mut HashSet<(String, String)>,
        event: &Event<K>,
    ) {
        let Ok(mut m) = self.0.lock() else {
            return;
        };
        let name_of = |o: &K| (o.namespace().unwrap_or_default(), o.name_any());
        match event {
            Event::Init => relisted.clear(),
            Event::InitApply(o) | Event::Apply(o) => {
                let (ns, name) = name_of(o);
                if matches!(event, Event::InitApply(_)) {
                    relisted.insert((ns.clone(), name.clone()));
                }
                m.insert((kind, ns, name), o.scaled_objects().map(str::to_owned));
            }
            Event::Delete(o) => {
                let (ns, name) = name_of(o);
                m.remove(&(kind, ns, name));
            }
            Event::InitDone => {
                m.retain(|(k, ns, name), _| {
                    *k != kind || relisted.contains(&(ns.clone(), name.clone()))
                });
                relisted.clear();
            }
        }
    }
}

/// `status.scaledobjects` of an authentication object.
pub trait AuthStatusOf {
    fn scaled_objects(&self) -> Option<&str>;
}

impl AuthStatusOf for TriggerAuthentication {
    fn scaled_objects(&self) -> Option<&str> {
        self.status.as_ref()?.scaled_objects.as_deref()
    }
}

impl AuthStatusOf for ClusterTriggerAuthentication {
    fn scaled_objects(&self) -> Option<&str> {
        self.status.as_ref()?.scaled_objects.as_deref()
    }
}

/// Counts the TriggerAuthentications of the watched namespaces (`WATCH_NAMESPACE`: empty = all, one
/// namespace, or a comma-separated list) and every ClusterTriggerAuthentication, of those `selector`
/// selects (`WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH`), reports their changes on `changes` and keeps
/// `statuses`, until the process ends.
pub async fn count(
    client: Client,
    watch_namespace: Option<String>,
    selector: Option<kube::core::Selector>,
    metrics: Arc<Metrics>,
    changes: Changes,
    statuses: Arc<AuthStatuses>,
) {
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
    let cta: Api<ClusterTriggerAuthentication> = Api::all(client.clone());
    let in_scope = move |ns: &str| watched.is_empty() || watched.iter().any(|w| w == ns);
    futures::join!(
        count_kind(
            ta,
            ResourceKind::TriggerAuthentication,
            metrics.clone(),
            in_scope,
            selector.as_ref(),
            (client.clone(), changes.clone(), statuses.clone()),
        ),
        count_kind(
            cta,
            ResourceKind::ClusterTriggerAuthentication,
            metrics,
            |_| true,
            selector.as_ref(),
            (client, changes, statuses),
        ),
    );
}

async fn count_kind<K>(
    api: Api<K>,
    kind: ResourceKind,
    metrics: Arc<Metrics>,
    in_scope: impl Fn(&str) -> bool,
    selector: Option<&kube::core::Selector>,
    (client, changes, statuses): (Client, Changes, Arc<AuthStatuses>),
) where
    K: Resource + AuthStatusOf + Clone + Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    let ref_kind = if kind == ResourceKind::ClusterTriggerAuthentication {
        keda_api::common::AuthenticationRefKind::ClusterTriggerAuthentication
    } else {
        keda_api::common::AuthenticationRefKind::TriggerAuthentication
    };
    let mut relisted = HashSet::new();
    let mut generations: HashMap<(String, String), i64> = HashMap::new();
    let config = crate::with_labels(watcher::Config::default().any_semantic(), selector);
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
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
        statuses.observe(ref_kind, &mut relisted, &event);
        if let Some((change, reason, note)) = spec_change(kind, &mut generations, &event) {
            publish(&client, &event, reason, note).await;
            let _ = changes.unbounded_send(change);
        }
        apply(&metrics, kind, &in_scope, &mut listed, event);
    }
}

/// A spec change (generation) or a deletion seen in a watch event, with upstream's Event reason and
/// message. The first sight of an object after start is not a change (upstream emits Added when it
/// reconciles a generation-1 object; a restart here stays quiet instead of re-announcing every object).
fn spec_change<K: Resource>(
    kind: ResourceKind,
    generations: &mut HashMap<(String, String), i64>,
    event: &Event<K>,
) -> Option<(AuthChange, &'static str, String)> {
    use keda_api::common::AuthenticationRefKind;
    use keda_api::consts::event_reasons as r;
    let cluster = kind == ResourceKind::ClusterTriggerAuthentication;
    let (o, deleted) = match event {
        Event::Apply(o) | Event::InitApply(o) => (o, false),
        Event::Delete(o) => (o, true),
        Event::Init | Event::InitDone => return None,
    };
    let key = (o.namespace().unwrap_or_default(), o.name_any());
    let generation = o.meta().generation.unwrap_or(0);
    let change = AuthChange {
        kind: if cluster {
            AuthenticationRefKind::ClusterTriggerAuthentication
        } else {
            AuthenticationRefKind::TriggerAuthentication
        },
        namespace: o.namespace(),
        name: o.name_any(),
    };
    if deleted {
        generations.remove(&key);
        let reason = if cluster {
            r::CLUSTER_TRIGGER_AUTHENTICATION_DELETED
        } else {
            r::TRIGGER_AUTHENTICATION_DELETED
        };
        let what = if cluster {
            "ClusterTriggerAuthentication"
        } else {
            "TriggerAuthentication"
        };
        return Some((change, reason, format!("{what} was deleted")));
    }
    let previous = generations.insert(key, generation);
    let (reason, note) = match (previous, event) {
        (Some(p), _) if p == generation => return None,
        (Some(_), _) => {
            if cluster {
                (
                    r::CLUSTER_TRIGGER_AUTHENTICATION_UPDATED,
                    format!("ClusterTriggerAuthentication {} is updated", change.name),
                )
            } else {
                (
                    r::TRIGGER_AUTHENTICATION_UPDATED,
                    format!("ClusterTriggerAuthentication {} is updated", change.name),
                )
            }
        }
        (None, Event::Apply(_)) => {
            if cluster {
                (
                    r::CLUSTER_TRIGGER_AUTHENTICATION_ADDED,
                    "New ClusterTriggerAuthentication configured".to_owned(),
                )
            } else {
                (
                    r::TRIGGER_AUTHENTICATION_ADDED,
                    "New TriggerAuthentication configured".to_owned(),
                )
            }
        }
        (None, _) => return None,
    };
    Some((change, reason, note))
}

async fn publish<K: Resource>(client: &Client, event: &Event<K>, reason: &str, note: String)
where
    K::DynamicType: Default,
{
    use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
    let (Event::Apply(o) | Event::InitApply(o) | Event::Delete(o)) = event else {
        return;
    };
    let reporter = Reporter {
        controller: keda_api::consts::names::OPERATOR_COMPONENT.to_owned(),
        instance: None,
    };
    let ev = KubeEvent {
        type_: EventType::Normal,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(e) = Recorder::new(client.clone(), reporter)
        .publish(&ev, &o.object_ref(&K::DynamicType::default()))
        .await
    {
        tracing::debug!(error = %e, reason, "publishing an Event failed");
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
    fn spec_changes_and_deletions_are_reported_once() {
        let kind = ResourceKind::TriggerAuthentication;
        let mut gens = HashMap::new();
        let with_gen = |g: i64| {
            let mut t = ta("a", "auth");
            t.metadata.generation = Some(g);
            t
        };
        // Listed at start: not a change.
        assert!(spec_change(kind, &mut gens, &Event::InitApply(with_gen(3))).is_none());
        // Status write (same generation): not a change.
        assert!(spec_change(kind, &mut gens, &Event::Apply(with_gen(3))).is_none());
        let (change, reason, note) =
            spec_change(kind, &mut gens, &Event::Apply(with_gen(4))).expect("spec change");
        assert_eq!(change.name, "auth");
        assert_eq!(change.namespace.as_deref(), Some("a"));
        assert_eq!(reason, "ClusterTriggerAuthenticationUpdated");
        assert_eq!(note, "ClusterTriggerAuthentication auth is updated");
        let (_, reason, _) =
            spec_change(kind, &mut gens, &Event::Apply(ta("a", "new"))).expect("created");
        assert_eq!(reason, "TriggerAuthenticationAdded");
        let (_, reason, _) =
            spec_change(kind, &mut gens, &Event::Delete(with_gen(4))).expect("deleted");
        assert_eq!(reason, "TriggerAuthenticationDeleted");
    }

    #[test]
    fn a_change_reaches_the_scaled_objects_that_use_it() {
        use keda_api::common::AuthenticationRefKind;
        let so = |ns: &str, name: &str, auth: &str| -> Arc<keda_api::ScaledObject> {
            Arc::new(
                serde_json::from_value(serde_json::json!({
                    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                    "metadata": {"name": name, "namespace": ns},
                    "spec": {"scaleTargetRef": {"name": "w"}, "triggers": [
                        {"type": "redis", "metadata": {}, "authenticationRef": {"name": auth}}]}
                }))
                .expect("ScaledObject"),
            )
        };
        let all = vec![
            so("a", "one", "auth"),
            so("a", "two", "other"),
            so("b", "three", "auth"),
        ];
        let change = AuthChange {
            kind: AuthenticationRefKind::TriggerAuthentication,
            namespace: Some("a".into()),
            name: "auth".into(),
        };
        let got: Vec<String> = users(&all, &change).into_iter().map(|r| r.name).collect();
        assert_eq!(got, vec!["one"]);
    }

    #[test]
    fn statuses_are_known_from_the_watch_and_forgotten_with_their_objects() {
        use keda_api::common::AuthenticationRefKind::TriggerAuthentication as Ta;
        let with_users = |ns: &str, name: &str, users: Option<&str>| {
            let mut t = ta(ns, name);
            t.status = users.map(|u| keda_api::trigger_auth::TriggerAuthenticationStatus {
                scaled_objects: Some(u.to_owned()),
                scaled_jobs: None,
            });
            t
        };
        let s = AuthStatuses::default();
        let mut relisted = HashSet::new();
        // Unknown: written.
        assert!(s.needs_write(Ta, "a", "one", "web"));
        for e in [
            Event::Init,
            Event::InitApply(with_users("a", "one", Some("web"))),
            Event::InitApply(with_users("a", "two", None)),
            Event::InitDone,
        ] {
            s.observe(Ta, &mut relisted, &e);
        }
        assert!(!s.needs_write(Ta, "a", "one", "web"), "already so");
        assert!(s.needs_write(Ta, "a", "one", "api,web"));
        assert!(s.needs_write(Ta, "a", "two", "web"));
        s.written(Ta, "a", "two", "web".into());
        assert!(!s.needs_write(Ta, "a", "two", "web"));
        // Someone else changed it: written again.
        s.observe(
            Ta,
            &mut relisted,
            &Event::Apply(with_users("a", "two", Some(""))),
        );
        assert!(s.needs_write(Ta, "a", "two", "web"));
        s.observe(Ta, &mut relisted, &Event::Delete(ta("a", "two")));
        assert_eq!(s.len(), 1);
        // A re-list without "one" (deleted while the watch was down) forgets it.
        for e in [Event::Init, Event::InitDone] {
            s.observe::<TriggerAuthentication>(Ta, &mut relisted, &e);
        }
        assert!(s.is_empty());
    }

    #[test]
    fn known_objects_are_the_watched_ones() {
        use keda_api::common::AuthenticationRefKind::TriggerAuthentication as Ta;
        let s = AuthStatuses::default();
        let mut relisted = HashSet::new();
        for e in [
            Event::Init,
            Event::InitApply(ta("a", "one")),
            Event::InitDone,
        ] {
            s.observe(Ta, &mut relisted, &e);
        }
        assert!(s.knows(Ta, "a", "one"));
        assert!(!s.knows(Ta, "a", "other-shards"));
        s.observe(Ta, &mut relisted, &Event::Delete(ta("a", "one")));
        assert!(!s.knows(Ta, "a", "one"));
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
