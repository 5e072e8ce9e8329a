//! ScaledJob status writes: the reconcile and the poll both change it; one in-memory copy per object
//! (per uid) is changed under a per-object lock and written with server-side apply only when it changed,
//! so a poll with nothing new costs no request.

use keda_api::common::Condition;
use keda_api::scaled_job::{ScaledJob, ScaledJobStatus};
use kube::Client;

use super::Error;

/// The ScaledJobs' copies: the operator's one status store ([`crate::status::StatusStore`]).
pub type StatusStore = crate::status::StatusStore<ScaledJob>;

/// The condition of `type_` in `status`.
pub fn condition<'a>(status: Option<&'a ScaledJobStatus>, type_: &str) -> Option<&'a Condition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
}

impl StatusStore {
    /// [`crate::status::StatusStore::change`] for the ScaledJob path: the status before and after.
    pub async fn update(
        &self,
        client: &Client,
        sj: &ScaledJob,
        change: impl FnOnce(&mut ScaledJobStatus),
    ) -> Result<(ScaledJobStatus, ScaledJobStatus), Error> {
        self.change(client, sj, change)
            .await
            .map_err(|(action, source)| Error::Kube { action, source })
    }
}
