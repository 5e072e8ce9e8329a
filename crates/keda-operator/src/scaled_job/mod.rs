//! The ScaledJob controller and its poll loops.
//!
//! - [`reconcile`]: finalizer, pause, validation (the rules the webhook and `keda lint` apply), trigger
//!   resolution and parse, rollout of Jobs of earlier generations, the poll loop, conditions and Events.
//! - [`poll`]: one loop per ScaledJob: every `pollingInterval` it samples the triggers, counts running and
//!   pending Jobs from the watch index, creates the Jobs the strategy asks for (keda-core's
//!   `scaled_job`), removes finished Jobs beyond the history limits and writes the status if it changed.
//! - [`index`]: the Jobs and their pods, from two label-filtered watches (no request per poll).
//! - [`status`]: the status copy written only on change. [`telemetry`]: the Prometheus series.
//!
//! It takes only what it needs ([`Deps`]), so it does not depend on the ScaledObject controller's state.
//! Only the leader runs it: [`run`] is started once the Lease is held, and the process exits when it is
//! lost; every write goes through the operator's gated client.

pub mod index;
pub mod poll;
pub mod reconcile;
pub mod status;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use keda_api::scaled_job::ScaledJob;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use crate::metrics::Metrics;

/// What the ScaledJob controller needs from the operator.
pub struct Deps {
    /// The operator's client (writes gated by the leader Lease).
    pub client: Client,
    /// Who publishes Events.
    pub reporter: Reporter,
    /// TriggerAuthentication / Secret / env resolution, as for ScaledObjects.
    pub resolver: keda_resolver::Resolver<keda_resolver::KubeSource>,
    /// Shared scaler resources (HTTP clients, timeouts, TLS, the file root for builds).
    pub build: keda_scalers::BuildContext,
    /// `--filepath-auth-root-path` for the triggers' parse.
    pub files: keda_scalers::files::FileRoot,
    pub metrics: Arc<Metrics>,
    /// `app.kubernetes.io/version` of the Jobs created.
    pub version: &'static str,
    /// Which ScaledJobs this process handles.
    pub scope: Scope,
    /// ScaledJob reconciles in parallel (`KEDA_SCALEDJOB_CTRL_MAX_RECONCILES`, default 1 upstream).
    pub max_reconciles: u16,
}

impl Deps {
    /// What the operator process gives the ScaledJob controller: its gated client, metrics and
    /// identity, and a resolver and scaler resources set up as the ScaledObject controller's are (same
    /// settings; separate caches). `KEDA_SCALEDJOB_CTRL_MAX_RECONCILES` sets the reconciles in parallel.
    pub fn for_operator(
        client: Client,
        config: &crate::OperatorConfig,
        metrics: Arc<Metrics>,
    ) -> Deps {
        let max_reconciles = std::env::var("KEDA_SCALEDJOB_CTRL_MAX_RECONCILES")
            .ok()
            .and_then(|v| v.trim().parse::<u16>().ok())
            .unwrap_or(1);
        Deps {
            client: client.clone(),
            reporter: Reporter {
                controller: keda_api::consts::names::OPERATOR_COMPONENT.to_owned(),
                instance: Some(config.identity.clone()),
            },
            resolver: keda_resolver::Resolver::new(
                keda_resolver::KubeSource::new(client.clone())
                    .with_trigger_auth_selector(config.trigger_auth_label_selector.clone()),
                config.namespace.clone(),
            )
            .with_restrict_secret_access(keda_resolver::restrict_secret_access_from_env())
            .with_file_root(config.file_root.clone(), keda_resolver::FileAccess::Read),
            build: keda_scalers::BuildContext {
                timeouts: keda_scalers::TimeoutDefaults {
                    http: config.scaler_timeout,
                },
                service_endpoints: Some(Arc::new(
                    keda_scalers::service_endpoints::KubeServiceEndpoints::new(client.clone()),
                )),
                pods: Some(Arc::new(keda_scalers::pods::KubePods::new(client.clone()))),
                config_data: Some(Arc::new(keda_scalers::config_data::KubeConfigData::new(
                    client,
                ))),
                files: config.file_root.clone(),
                tls: config.scaler_tls.clone(),
                http: keda_scalers::http::HttpClients::default()
                    .with_tls(config.scaler_tls.clone())
                    .with_keep_alive(config.http_keep_alive),
                ..Default::default()
            },
            files: config.file_root.clone(),
            metrics,
            version: crate::VERSION,
            scope: Scope::from_watch_namespace(
                config.watch_namespace.as_deref(),
                config.watch_label_selector.clone(),
            ),
            max_reconciles,
        }
    }
}

/// The operator's watch scope, as for ScaledObjects.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// The single watched namespace (`WATCH_NAMESPACE` without a comma); `None`: all.
    pub namespace: Option<String>,
    /// Several watched namespaces (`WATCH_NAMESPACE` with commas): all are watched, others ignored.
    pub namespaces: Option<Vec<String>>,
    /// `WATCH_LABEL_SELECTOR`.
    pub label_selector: Option<kube::core::Selector>,
}

impl Scope {
    /// From `WATCH_NAMESPACE` as the operator reads it (empty or unset: all namespaces).
    pub fn from_watch_namespace(
        watch_namespace: Option<&str>,
        label_selector: Option<kube::core::Selector>,
    ) -> Scope {
        let w = watch_namespace.map(str::trim).filter(|n| !n.is_empty());
        let (namespace, namespaces) = match w {
            Some(n) if n.contains(',') => (
                None,
                Some(
                    n.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                ),
            ),
            Some(n) => (Some(n.to_owned()), None),
            None => (None, None),
        };
        Scope {
            namespace,
            namespaces,
            label_selector,
        }
    }

    fn includes(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == namespace))
    }
}

/// What the controller and the loops share.
pub struct JobsContext {
    pub deps: Deps,
    pub scaled_jobs: Store<ScaledJob>,
    pub index: Arc<index::JobIndex>,
    pub statuses: status::StatusStore,
    pub loops: poll::JobScaleLoops,
}

impl JobsContext {
    /// Publishes an Event about `sj`; failures are logged, never fatal. (A fresh `Recorder` each time, as
    /// the ScaledObject controller does: kube's keeps every Event it sent.)
    pub async fn event(
        &self,
        sj: &ScaledJob,
        type_: EventType,
        reason: &str,
        note: String,
        action: &str,
    ) {
        // events.k8s.io/v1 refuses an action longer than 128 characters.
        let action: String = action.chars().take(128).collect();
        let ev = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action,
            secondary: None,
        };
        if let Err(e) = Recorder::new(self.deps.client.clone(), self.deps.reporter.clone())
            .publish(&ev, &sj.object_ref(&()))
            .await
        {
            tracing::warn!(error = %e, reason, "publishing an Event failed");
        }
    }
}

/// Errors of a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    /// A stable label for logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Finalizer(_) => "finalizer",
        }
    }
}

/// What a reconcile depends on: generation, the paused annotation, finalizers and deletion. Status
/// writes (ours, every poll that changes something) and other metadata edits do not reconcile again; a
/// poll reads labels and annotations from the cache each time.
pub fn reconcile_fingerprint(sj: &ScaledJob) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sj.metadata.generation.hash(&mut h);
    sj.annotations()
        .get(keda_api::consts::annotations::PAUSED)
        .hash(&mut h);
    sj.metadata.finalizers.hash(&mut h);
    sj.metadata.deletion_timestamp.is_some().hash(&mut h);
    sj.metadata.uid.hash(&mut h);
    Some(h.finish())
}

fn error_policy(sj: Arc<ScaledJob>, error: &Error, _ctx: Arc<JobsContext>) -> Action {
    tracing::warn!(namespace = ?sj.namespace(), name = %sj.name_any(), category = error.category(), %error, "ScaledJob reconcile failed");
    Action::requeue(Duration::from_secs(10))
}

/// Runs the ScaledJob controller until the process ends. Call it on the leader only.
pub async fn run(deps: Deps) {
    let index = Arc::new(index::JobIndex::default());
    index.watch(deps.client.clone(), deps.scope.namespace.as_deref());
    let api: Api<ScaledJob> = match deps.scope.namespace.as_deref() {
        Some(ns) => Api::namespaced(deps.client.clone(), ns),
        None => Api::all(deps.client.clone()),
    };
    let mut config = watcher::Config::default().any_semantic();
    if let Some(s) = &deps.scope.label_selector {
        config = config.labels_from(s);
    }
    let (store, writer) = kube::runtime::reflector::store();
    let changes = watcher(api, config)
        .default_backoff()
        .modify(|sj: &mut ScaledJob| sj.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects()
        .predicate_filter(reconcile_fingerprint, Default::default());
    // The rollout and the first polls read the Jobs: start once they are listed.
    index.wait_synced().await;
    tracing::info!("ScaledJob controller started");
    let concurrency = deps.max_reconciles.max(1);
    let ctx = Arc::new(JobsContext {
        deps,
        scaled_jobs: store.clone(),
        index,
        statuses: Default::default(),
        loops: Default::default(),
    });
    Controller::for_stream(changes, store)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .run(reconcile::reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "ScaledJob reconcile error");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_watch_namespace() {
        let one = Scope::from_watch_namespace(Some("a"), None);
        assert_eq!(one.namespace.as_deref(), Some("a"));
        assert!(
            one.includes("b"),
            "a single namespace is filtered by the watch itself"
        );
        let many = Scope::from_watch_namespace(Some("a, b"), None);
        assert_eq!(many.namespace, None);
        assert!(many.includes("b") && !many.includes("c"));
        let all = Scope::from_watch_namespace(Some(" "), None);
        assert!(all.namespace.is_none() && all.includes("x"));
    }

    #[test]
    fn status_writes_do_not_reconcile_again() {
        let mut sj: ScaledJob = serde_yaml_ng::from_str(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {name: a, generation: 1}\nspec:\n  jobTargetRef: {template: {}}\n  triggers: [{type: cron, metadata: {}}]\n",
        )
        .expect("parses");
        let base = reconcile_fingerprint(&sj);
        sj.status = Some(Default::default());
        sj.metadata.labels = Some([("x".to_owned(), "y".to_owned())].into());
        assert_eq!(reconcile_fingerprint(&sj), base);
        sj.metadata.annotations =
            Some([("autoscaling.keda.sh/paused".to_owned(), "true".to_owned())].into());
        assert_ne!(reconcile_fingerprint(&sj), base);
    }
}
