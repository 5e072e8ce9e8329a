//! Status writes of ScaledObjects and ScaledJobs. Both a kind's reconciler and its poll loop change an
//! object's status; each object has one in-memory copy of the status this operator owns, changed under a
//! per-object lock and written with server-side apply only when it really changed (no read-modify-write
//! round trip per poll). One store type serves both kinds ([`OwnedStatus`]).

use std::collections::HashMap;
use std::sync::Arc;

use keda_api::common::{Condition, initial_conditions};
use keda_api::scaled_job::{ScaledJob, ScaledJobStatus};
use keda_api::{ScaledObject, ScaledObjectStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::error::Error;

pub const FIELD_MANAGER: &str = "keda-operator";

/// Sets a condition; returns whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> bool {
    if conditions.is_empty() {
        *conditions = initial_conditions();
    }
    let wanted = Condition {
        r#type: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
    };
    match conditions.iter_mut().find(|c| c.r#type == type_) {
        Some(c) if *c == wanted => false,
        Some(c) => {
            *c = wanted;
            true
        }
        None => {
            conditions.push(wanted);
            true
        }
    }
}

pub fn condition<'a>(status: &'a ScaledObjectStatus, type_: &str) -> Option<&'a Condition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
}

/// A kind whose status this operator owns.
pub trait OwnedStatus:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    type Status: Clone + PartialEq + Default + Serialize + Send + Sync + 'static;
    fn status(&self) -> Option<&Self::Status>;
    fn conditions_mut(status: &mut Self::Status) -> &mut Option<Vec<Condition>>;
}

impl OwnedStatus for ScaledObject {
    type Status = ScaledObjectStatus;
    fn status(&self) -> Option<&ScaledObjectStatus> {
        self.status.as_ref()
    }
    fn conditions_mut(status: &mut ScaledObjectStatus) -> &mut Option<Vec<Condition>> {
        &mut status.conditions
    }
}

impl OwnedStatus for ScaledJob {
    type Status = ScaledJobStatus;
    fn status(&self) -> Option<&ScaledJobStatus> {
        self.status.as_ref()
    }
    fn conditions_mut(status: &mut ScaledJobStatus) -> &mut Option<Vec<Condition>> {
        &mut status.conditions
    }
}

/// The status last written for one object, with the uid of the object it was written to (None until
/// first used), behind its own lock.
type StatusSlot<S> = Arc<Mutex<Option<(String, S)>>>;
/// (namespace, name) → the object's slot.
type Slots<S> = std::sync::Mutex<HashMap<(String, String), StatusSlot<S>>>;

/// Per-object status copies. An entry is dropped by the object's cleanup ([`StatusStore::forget`]) and, for
/// objects deleted without it (finalizer removed by hand, deleted while another replica led), by
/// [`StatusStore::retain`] against the watch cache ([`forget_deleted`]). A copy belongs to one uid: an
/// object re-created under the same name starts from its own status, not the old object's.
pub struct StatusStore<K: OwnedStatus> {
    entries: Slots<K::Status>,
}

impl<K: OwnedStatus> Default for StatusStore<K> {
    fn default() -> Self {
        StatusStore {
            entries: Default::default(),
        }
    }
}

impl<K: OwnedStatus> StatusStore<K> {
    fn entry(&self, ns: &str, name: &str) -> StatusSlot<K::Status> {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.entry((ns.to_owned(), name.to_owned()))
            .or_default()
            .clone()
    }

    pub fn forget(&self, ns: &str, name: &str) {
        if let Ok(mut m) = self.entries.lock() {
            m.remove(&(ns.to_owned(), name.to_owned()));
        }
    }

    /// Keeps the copies of the objects `exists(namespace, name, uid)` says are still there. A copy that is
    /// being written (its lock held) is kept until the next call.
    pub fn retain(&self, exists: impl Fn(&str, &str, &str) -> bool) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        map.retain(|(ns, name), slot| match slot.try_lock() {
            Ok(guard) => match guard.as_ref() {
                Some((uid, _)) => exists(ns, name, uid),
                // Reserved by an update that has not written yet.
                None => true,
            },
            Err(_) => true,
        });
    }

    /// Objects with a status copy (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The status as this operator last wrote it (or as the object showed it), without writing.
    pub async fn current(&self, obj: &K) -> K::Status {
        let uid = obj.uid().unwrap_or_default();
        let entry = self.entry(&obj.namespace().unwrap_or_default(), &obj.name_any());
        let guard = entry.lock().await;
        guard
            .as_ref()
            .filter(|(written_to, _)| *written_to == uid)
            .map(|(_, status)| status.clone())
            .unwrap_or_else(|| obj.status().cloned().unwrap_or_default())
    }

    /// Applies `change` to the object's status (conditions initialised first, as upstream) and writes it
    /// if it changed. The first use seeds the copy from the object's status. Returns the status before
    /// and after the change; the error names the failed write.
    pub async fn change(
        &self,
        client: &Client,
        obj: &K,
        change: impl FnOnce(&mut K::Status),
    ) -> Result<(K::Status, K::Status), (String, kube::Error)> {
        let ns = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        let uid = obj.uid().unwrap_or_default();
        let entry = self.entry(&ns, &name);
        let mut guard = entry.lock().await;
        let current = guard
            .as_ref()
            .filter(|(written_to, _)| *written_to == uid)
            .map(|(_, status)| status.clone())
            .unwrap_or_else(|| obj.status().cloned().unwrap_or_default());
        let mut next = current.clone();
        let conditions = K::conditions_mut(&mut next);
        if conditions.as_ref().is_none_or(|c| c.is_empty()) {
            *conditions = Some(initial_conditions());
        }
        change(&mut next);
        if next != current {
            let kind = K::kind(&());
            let api: Api<K> = Api::namespaced(client.clone(), &ns);
            let body = serde_json::json!({
                "apiVersion": K::api_version(&()),
                "kind": kind,
                "status": next,
            });
            api.patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| (format!("writing the status of {kind} {ns}/{name}"), e))?;
        }
        *guard = Some((uid, next.clone()));
        Ok((current, next))
    }
}

impl StatusStore<ScaledObject> {
    /// [`StatusStore::change`] for the ScaledObject path: the status after the change.
    pub async fn update(
        &self,
        client: &Client,
        so: &ScaledObject,
        change: impl FnOnce(&mut ScaledObjectStatus),
    ) -> Result<ScaledObjectStatus, Error> {
        self.change(client, so, change)
            .await
            .map(|(_, after)| after)
            .map_err(|(action, e)| Error::kube(action, e))
    }
}

/// Every `period`, drops the status copies of ScaledObjects that are no longer in the watch cache (or are
/// there under a new uid), until the process ends.
pub async fn forget_deleted(ctx: Arc<crate::Context>, period: std::time::Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let store = &ctx.scaled_objects;
        ctx.statuses.retain(|ns, name, uid| {
            let key = kube::runtime::reflector::ObjectRef::new(name).within(ns);
            store
                .get(&key)
                .is_some_and(|so| so.uid().as_deref() == Some(uid))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(uid: &str) -> StatusSlot<ScaledObjectStatus> {
        Arc::new(Mutex::new(Some((
            uid.to_owned(),
            ScaledObjectStatus::default(),
        ))))
    }

    #[test]
    fn deleted_and_recreated_objects_leave_no_copy() {
        let store = StatusStore::<ScaledObject>::default();
        {
            let mut map = store.entries.lock().expect("lock");
            for (name, uid) in [("kept", "u1"), ("deleted", "u2"), ("recreated", "u3")] {
                map.insert(("shop".into(), name.into()), slot(uid));
            }
        }
        assert_eq!(store.len(), 3);
        // The watch cache: "deleted" is gone, "recreated" has a new uid.
        let cache = [("kept", "u1"), ("recreated", "u4")];
        store.retain(|ns, name, uid| ns == "shop" && cache.contains(&(name, uid)));
        assert_eq!(store.len(), 1);
        assert!(
            store
                .entries
                .lock()
                .expect("lock")
                .contains_key(&("shop".into(), "kept".into()))
        );
        store.forget("shop", "kept");
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_copy_being_written_is_kept() {
        let store = StatusStore::<ScaledObject>::default();
        let entry = store.entry("shop", "busy");
        *entry.lock().await = Some(("u1".into(), ScaledObjectStatus::default()));
        let _writing = entry.lock().await;
        store.retain(|_, _, _| false);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn set_condition_reports_real_changes_only() {
        let mut c = Vec::new();
        assert!(set_condition(
            &mut c,
            "Ready",
            "True",
            "ScaledObjectReady",
            "ok"
        ));
        assert_eq!(c.len(), 4, "initialised with upstream's four conditions");
        assert!(!set_condition(
            &mut c,
            "Ready",
            "True",
            "ScaledObjectReady",
            "ok"
        ));
        assert!(set_condition(
            &mut c,
            "Ready",
            "False",
            "ScaledObjectCheckFailed",
            "bad"
        ));
        assert!(set_condition(&mut c, "HPAActive", "True", "HPAActive", ""));
        assert_eq!(c.len(), 5);
    }
}
