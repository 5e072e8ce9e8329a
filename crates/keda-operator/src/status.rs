//! Status writes. Both the reconciler and the scale loop change a ScaledObject's status; each object has
//! one in-memory copy of the status this operator owns, changed under a per-object lock and written with
//! server-side apply only when it really changed (no read-modify-write round trip per poll).

use std::collections::HashMap;
use std::sync::Arc;

use keda_api::common::{Condition, initial_conditions};
use keda_api::{ScaledObject, ScaledObjectStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
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

/// The status last written for one object (None until first used), behind its own lock.
type StatusSlot = Arc<Mutex<Option<ScaledObjectStatus>>>;

/// Per-object status copies.
#[derive(Default)]
pub struct StatusStore {
    entries: std::sync::Mutex<HashMap<(String, String), StatusSlot>>,
}

impl StatusStore {
    fn entry(&self, ns: &str, name: &str) -> StatusSlot {
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

    /// Applies `change` to the object's status and writes it if it changed. The first use seeds the copy
    /// from `so.status`. Returns the status after the change.
    pub async fn update(
        &self,
        client: &Client,
        so: &ScaledObject,
        change: impl FnOnce(&mut ScaledObjectStatus),
    ) -> Result<ScaledObjectStatus, Error> {
        let ns = so.namespace().unwrap_or_default();
        let name = so.name_any();
        let entry = self.entry(&ns, &name);
        let mut guard = entry.lock().await;
        let current = guard
            .clone()
            .unwrap_or_else(|| so.status.clone().unwrap_or_default());
        let mut next = current.clone();
        if next.conditions.as_ref().is_none_or(|c| c.is_empty()) {
            next.conditions = Some(initial_conditions());
        }
        change(&mut next);
        if next != current {
            let api: Api<ScaledObject> = Api::namespaced(client.clone(), &ns);
            let body = serde_json::json!({
                "apiVersion": keda_api::API_VERSION,
                "kind": "ScaledObject",
                "status": next,
            });
            api.patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|e| {
                Error::kube(format!("writing the status of ScaledObject {ns}/{name}"), e)
            })?;
        }
        *guard = Some(next.clone());
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
