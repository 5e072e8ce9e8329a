//! Changes to the HPAs this operator made, as the controller wants them: upstream's managed-by label
//! selects them (an HPA adopted through transfer-hpa-ownership gets it on its first reconcile; unrelated
//! HPAs are never sent to us), the HPA controller's status writes only update `HPAActive` and do not
//! reconcile the ScaledObject again, and a spec, label or annotation change or a deletion does, so an
//! edited or deleted HPA is put back at once.
//!
//! What is remembered per HPA (its fingerprint and `HPAActive`) is forgotten with the HPA: on its Delete
//! event, and, for HPAs deleted while the watch was down (no Delete event ever comes), when the re-list
//! that follows ends without them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::{HpaHealthMap, hpa_health, scaled_object};

/// What the filter keeps per HPA: its fingerprint and `(namespace, name)`, by uid.
#[derive(Default)]
pub struct HpaChanges {
    health: Arc<HpaHealthMap>,
    seen: HashMap<String, (u64, (String, String))>,
    /// The uids listed since the watch (re)started, until the list is done.
    relisting: Option<HashSet<String>>,
}

impl HpaChanges {
    pub fn new(health: Arc<HpaHealthMap>) -> HpaChanges {
        HpaChanges {
            health,
            ..Default::default()
        }
    }

    /// HPAs remembered (for tests).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Applies one watch event; returns the HPA when its ScaledObject must be reconciled.
    pub fn on_event(
        &mut self,
        event: watcher::Event<HorizontalPodAutoscaler>,
    ) -> Option<HorizontalPodAutoscaler> {
        match event {
            watcher::Event::Init => {
                self.relisting = Some(HashSet::new());
                None
            }
            watcher::Event::InitApply(hpa) => {
                if let Some(listed) = self.relisting.as_mut() {
                    listed.insert(hpa.metadata.uid.clone().unwrap_or_default());
                }
                self.applied(hpa)
            }
            watcher::Event::Apply(hpa) => self.applied(hpa),
            watcher::Event::Delete(hpa) => {
                let uid = hpa.metadata.uid.clone().unwrap_or_default();
                let key = name_key(&hpa);
                self.seen.remove(&uid);
                if let Ok(mut map) = self.health.lock() {
                    map.remove(&key);
                }
                Some(hpa)
            }
            watcher::Event::InitDone => {
                let listed = self.relisting.take().unwrap_or_default();
                let mut gone = Vec::new();
                self.seen.retain(|uid, (_, key)| {
                    let keep = listed.contains(uid);
                    if !keep {
                        gone.push(key.clone());
                    }
                    keep
                });
                if let Ok(mut map) = self.health.lock() {
                    for key in &gone {
                        map.remove(key);
                    }
                }
                None
            }
        }
    }

    fn applied(&mut self, hpa: HorizontalPodAutoscaler) -> Option<HorizontalPodAutoscaler> {
        let key = name_key(&hpa);
        if let Ok(mut map) = self.health.lock() {
            match hpa_health(&hpa) {
                Some(h) => {
                    map.insert(key.clone(), h);
                }
                None => {
                    map.remove(&key);
                }
            }
        }
        // HPAs have no metadata.generation: the spec itself is part of the fingerprint.
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            scaled_object::metadata_fingerprint(&hpa.metadata).hash(&mut h);
            serde_json::to_vec(&hpa.spec)
                .unwrap_or_default()
                .hash(&mut h);
            h.finish()
        };
        let uid = hpa.metadata.uid.clone().unwrap_or_default();
        let previous = self.seen.insert(uid, (fingerprint, key));
        (previous.map(|(f, _)| f) != Some(fingerprint)).then_some(hpa)
    }
}

fn name_key(hpa: &HorizontalPodAutoscaler) -> (String, String) {
    (
        hpa.metadata.namespace.clone().unwrap_or_default(),
        hpa.metadata.name.clone().unwrap_or_default(),
    )
}

/// The watch of the operator's HPAs through [`HpaChanges`]: the controller's `owns_stream`.
///
/// With `WATCH_LABEL_SELECTOR` (`selector`), only the HPAs that also match it (they carry their
/// ScaledObject's labels): another operator's HPAs never reach this one, as in upstream's cache.
pub fn owned_hpa_changes(
    api: Api<HorizontalPodAutoscaler>,
    health: Arc<HpaHealthMap>,
    selector: Option<&kube::core::Selector>,
) -> impl futures::Stream<Item = Result<HorizontalPodAutoscaler, watcher::Error>> + Send + 'static {
    let mut labels = format!(
        "{}={}",
        keda_api::consts::labels::APP_MANAGED_BY,
        keda_api::consts::labels::MANAGED_BY_OPERATOR
    );
    if let Some(s) = selector {
        labels = format!("{labels},{s}");
    }
    let config = watcher::Config::default().any_semantic().labels(&labels);
    let mut changes = HpaChanges::new(health);
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(e) => changes.on_event(e).map(Ok),
                Err(e) => Some(Err(e)),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use watcher::Event;

    fn hpa(name: &str, uid: &str, min: i32, active: bool) -> HorizontalPodAutoscaler {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "uid": uid},
            "spec": {"minReplicas": min, "maxReplicas": 5,
                     "scaleTargetRef": {"kind": "Deployment", "name": name}},
            "status": {"desiredReplicas": 1, "conditions": [{
                "type": "ScalingActive", "status": if active { "True" } else { "False" },
                "reason": "ValidMetricFound", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        }))
        .expect("HPA")
    }

    fn health_keys(h: &HpaHealthMap) -> Vec<String> {
        let mut keys: Vec<String> = h
            .lock()
            .expect("lock")
            .keys()
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn only_spec_and_metadata_changes_reconcile() {
        let mut c = HpaChanges::new(Arc::default());
        assert!(c.on_event(Event::Init).is_none());
        assert!(
            c.on_event(Event::InitApply(hpa("a", "1", 1, true)))
                .is_some()
        );
        assert!(c.on_event(Event::InitDone).is_none());
        // A status write of the HPA controller: HPAActive follows, no reconcile.
        assert!(c.on_event(Event::Apply(hpa("a", "1", 1, false))).is_none());
        assert_eq!(
            c.health.lock().expect("lock")[&("shop".into(), "a".into())].status,
            "False"
        );
        // An edited spec reconciles.
        assert!(c.on_event(Event::Apply(hpa("a", "1", 2, false))).is_some());
        assert!(c.on_event(Event::Delete(hpa("a", "1", 2, false))).is_some());
        assert!(c.is_empty());
        assert!(health_keys(&c.health).is_empty());
    }

    /// HPAs deleted while the watch was down send no Delete event: the re-list that follows forgets
    /// them (their fingerprint and HPAActive), so nothing grows with objects that are gone.
    #[test]
    fn a_relist_forgets_hpas_deleted_while_the_watch_was_down() {
        let mut c = HpaChanges::new(Arc::default());
        c.on_event(Event::Init);
        for i in 0..100 {
            c.on_event(Event::InitApply(hpa(
                &format!("h{i}"),
                &i.to_string(),
                1,
                true,
            )));
        }
        c.on_event(Event::InitDone);
        assert_eq!(c.len(), 100);
        assert_eq!(health_keys(&c.health).len(), 100);
        // The watch restarts; only h7 is left.
        c.on_event(Event::Init);
        assert!(
            c.on_event(Event::InitApply(hpa("h7", "7", 1, true)))
                .is_none(),
            "unchanged: no reconcile"
        );
        c.on_event(Event::InitDone);
        assert_eq!(c.len(), 1);
        assert_eq!(health_keys(&c.health), vec!["shop/h7"]);
        // A new object with a reused name is a new uid.
        assert!(
            c.on_event(Event::Apply(hpa("h8", "108", 1, true)))
                .is_some()
        );
        assert_eq!(c.len(), 2);
    }
}
