//! ScaledJob status writes: the reconcile and the poll both change it; one in-memory copy per object
//! (per uid) is changed under a per-object lock and written with server-side apply only when it changed,
//! so a poll with nothing new costs no request.

use std::collections::HashMap;
use std::sync::Arc;

use keda_api::common::{Condition, initial_conditions};
use keda_api::scaled_job::{ScaledJob, ScaledJobStatus};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use tokio::sync::Mutex;

use super::Error;

/// The field manager of the operator's status writes (the ScaledObject controller's too).
pub const FIELD_MANAGER: &str = "keda-operator";

type Slot = Arc<Mutex<Option<(String, ScaledJobStatus)>>>;

#[derive(Default)]
pub struct StatusStore {
    entries: std::sync::Mutex<HashMap<(String, String), Slot>>,
}

/// The condition of `type_` in `status`.
pub fn condition<'a>(status: Option<&'a ScaledJobStatus>, type_: &str) -> Option<&'a Condition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
}

impl StatusStore {
    fn entry(&self, ns: &str, name: &str) -> Slot {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
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

    /// The status as this operator last wrote it (or as the object showed it), without writing.
    pub async fn current(&self, sj: &ScaledJob) -> ScaledJobStatus {
        let uid = sj.uid().unwrap_or_default();
        let entry = self.entry(&sj.namespace().unwrap_or_default(), &sj.name_any());
        let guard = entry.lock().await;
        guard
            .as_ref()
            .filter(|(u, _)| *u == uid)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| sj.status.clone().unwrap_or_default())
    }

    /// Applies `change` (conditions initialised first, as upstream) and writes the status if it changed.
    /// Returns the status before and after.
    pub async fn update(
        &self,
        client: &Client,
        sj: &ScaledJob,
        change: impl FnOnce(&mut ScaledJobStatus),
    ) -> Result<(ScaledJobStatus, ScaledJobStatus), Error> {
        let ns = sj.namespace().unwrap_or_default();
        let name = sj.name_any();
        let uid = sj.uid().unwrap_or_default();
        let entry = self.entry(&ns, &name);
        let mut guard = entry.lock().await;
        let current = guard
            .as_ref()
            .filter(|(u, _)| *u == uid)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| sj.status.clone().unwrap_or_default());
        let mut next = current.clone();
        if next.conditions.as_ref().is_none_or(|c| c.is_empty()) {
            next.conditions = Some(initial_conditions());
        }
        change(&mut next);
        if next != current {
            let api: Api<ScaledJob> = Api::namespaced(client.clone(), &ns);
            let body = serde_json::json!({
                "apiVersion": keda_api::API_VERSION,
                "kind": "ScaledJob",
                "status": next,
            });
            api.patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| Error::Kube {
                action: format!("writing the status of ScaledJob {ns}/{name}"),
                source,
            })?;
        }
        *guard = Some((uid, next.clone()));
        Ok((current, next))
    }
}
