//! keda-rs operator: the ScaledObject controller, one scale loop per object, the HPAs it owns, leader
//! election, health and Prometheus endpoints. `keda operator` is a thin wrapper around [`run`].

pub mod certs;
pub mod error;
pub mod grpc_tls;
pub mod hpa_watch;
pub mod leader;
pub mod metrics;
pub mod metrics_service;
pub mod scale_loop;
pub mod scaled_job;
pub mod scaled_object;
pub mod status;
pub mod target;
pub mod trigger_auth;
pub mod triggers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};

pub use error::Error;

/// Version written into HPA labels (`app.kubernetes.io/version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Settings of the operator process (flags and environment, as upstream where they exist).
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Namespace KEDA runs in: the leader Lease lives here and ClusterTriggerAuthentication objects are read from it.
    pub namespace: String,
    /// Only watch these namespaces (`WATCH_NAMESPACE`, comma-separated; empty = all).
    pub watch_namespace: Option<String>,
    /// Only watch (and so reconcile) the ScaledObjects, and the HPAs made for them, with these labels
    /// (`WATCH_LABEL_SELECTOR`; `None` = all). The HPAs carry their ScaledObject's labels.
    pub watch_label_selector: Option<kube::core::Selector>,
    /// Only watch and use the TriggerAuthentications and ClusterTriggerAuthentications with these labels
    /// (`WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH`; `None` = all); another one is taken as missing.
    pub trigger_auth_label_selector: Option<kube::core::Selector>,
    /// Client-side limit of the operator's API requests (`--kube-api-qps`, `--kube-api-burst`; `None`:
    /// none). The leader election's requests are not counted, so a busy operator still renews its Lease.
    pub kube_api_rate: Option<keda_kube::RateLimit>,
    pub leader_elect: bool,
    /// Lease name (`--leader-election-id`, default `operator.keda.sh`).
    pub lease_name: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// This replica's identity in the Lease (pod name).
    pub identity: String,
    pub metrics_bind_address: SocketAddr,
    pub health_probe_bind_address: SocketAddr,
    /// `KEDA_HTTP_DEFAULT_TIMEOUT`: the timeout of HTTP scalers whose trigger sets none.
    pub scaler_timeout: Duration,
    /// ScaledObject reconciles in parallel (`KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES`).
    pub max_reconciles: u16,
    /// Where the gRPC metrics service listens (leader only), and the directory with `ca.crt`,
    /// `tls.crt` and `tls.key` for its mutual TLS. `None` disables it.
    pub metrics_service: Option<(SocketAddr, std::path::PathBuf)>,
    /// Issue and renew the certificates in Secret `kedaorg-certs` (leader only); the gRPC service then
    /// uses them directly instead of the directory.
    pub cert_rotation: Option<certs::CertConfig>,
    /// `--filepath-auth-root-path`: the only directory tenant-named files (TLS files, Unix sockets, a
    /// ClusterTriggerAuthentication's `filePath`) are opened under; unset opens none.
    pub file_root: keda_scalers::files::FileRoot,
    /// Whom scalers' TLS connections trust (system store, bundled roots, `--ca-dir`) and which TLS they
    /// speak (`KEDA_HTTP_MIN_TLS_VERSION`, `KEDA_HTTP_TLS_CIPHER_LIST`).
    pub scaler_tls: Arc<keda_scalers::tls::ScalerTls>,
    /// `false` with `KEDA_HTTP_DISABLE_KEEP_ALIVE=true`: scaler HTTP connections are not reused.
    pub http_keep_alive: bool,
    /// TLS versions and suites of the gRPC metrics service (`KEDA_SERVICE_MIN_TLS_VERSION`,
    /// `KEDA_SERVICE_TLS_CIPHER_LIST`).
    pub service_tls: keda_scalers::tls::TlsProtocols,
}

/// What the ScaledObject reconciles and scale loops share. The gRPC metrics service reads a few of the
/// same parts through its own [`metrics_service::MetricsSource`].
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub targets: Arc<target::TargetResolver>,
    pub statuses: status::StatusStore<ScaledObject>,
    pub loops: Arc<scale_loop::ScaleLoops>,
    pub build: Arc<keda_scalers::BuildContext>,
    pub metrics: Arc<metrics::Metrics>,
    /// Who publishes Events (a fresh `Recorder` per Event: kube's keeps every Event it sent in a cache
    /// that is only pruned when the next one is sent, ≈3 KiB per object at steady state).
    pub reporter: Reporter,
    pub scaled_objects: Store<ScaledObject>,
    pub resolver: keda_resolver::Resolver<keda_resolver::KubeSource>,
    /// `status.scaledobjects` of the authentication objects, from their watch: written only on change.
    pub auth_statuses: Arc<trigger_auth::AuthStatuses>,
    /// The `ScalingActive` condition of each HPA this operator made, from the HPA watch (no GET per poll).
    pub hpas: Arc<HpaHealthMap>,
    /// `spec.replicas` of Deployments and StatefulSets, from a watch (no `/scale` read per poll).
    pub replicas: Arc<target::ReplicaCounts>,
}

/// `HPAActive` as upstream derives it from the HPA's `ScalingActive` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpaHealth {
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

/// HPA health by (namespace, HPA name).
pub type HpaHealthMap = std::sync::Mutex<std::collections::HashMap<(String, String), HpaHealth>>;

/// upstream's `getHPAHealth`: `None` while the HPA has not reported `ScalingActive` (the condition is
/// then left as it was).
pub fn hpa_health(hpa: &HorizontalPodAutoscaler) -> Option<HpaHealth> {
    use keda_api::consts::condition_reasons;
    let c = hpa
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "ScalingActive")?;
    let message = c.message.clone().unwrap_or_default();
    let reason = c.reason.clone().unwrap_or_default();
    Some(if c.status == "True" {
        HpaHealth {
            status: "True",
            reason: condition_reasons::HPA_ACTIVE.to_owned(),
            message: "HPA is actively scaling".to_owned(),
        }
    } else if reason == condition_reasons::HPA_SCALING_DISABLED {
        // KEDA scaled the target to zero; the HPA disables itself there.
        HpaHealth {
            status: "True",
            reason,
            message,
        }
    } else {
        HpaHealth {
            status: "False",
            reason: if reason.is_empty() {
                condition_reasons::HPA_METRICS_UNAVAILABLE.to_owned()
            } else {
                reason
            },
            message: format!("HPA is not actively scaling: {message}"),
        }
    })
}

impl Context {
    /// The HPAActive condition for `so`, from the watched state of its HPA.
    pub fn hpa_health(&self, ns: &str, so: &ScaledObject) -> Option<HpaHealth> {
        let name = so
            .status
            .as_ref()
            .and_then(|s| s.hpa_name.clone())
            .unwrap_or_else(|| so.hpa_name());
        self.hpas.lock().ok()?.get(&(ns.to_owned(), name)).cloned()
    }

    /// Publishes an Event about `so`; failures are logged, never fatal.
    pub async fn event(
        &self,
        so: &ScaledObject,
        type_: EventType,
        reason: &str,
        note: String,
        action: &str,
    ) {
        let ev = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(e) = Recorder::new(self.client.clone(), self.reporter.clone())
            .publish(&ev, &scaled_object::object_ref(so))
            .await
        {
            tracing::warn!(error = %e, reason, "publishing an Event failed");
        }
    }

    /// The env and authentication parameters each trigger's parse step reads.
    pub async fn resolve_triggers(
        &self,
        so: &ScaledObject,
        pod_spec: Option<&k8s_openapi::api::core::v1::PodSpec>,
    ) -> Result<Vec<triggers::ResolvedTrigger>, String> {
        let ns = so.namespace().unwrap_or_default();
        let env = match pod_spec {
            Some(spec) => self
                .resolver
                .container_env(
                    &ns,
                    spec,
                    so.spec
                        .scale_target_ref
                        .env_source_container_name
                        .as_deref(),
                )
                .await
                .map_err(|e| format!("resolving the environment of the scale target: {e}"))?,
            None => Default::default(),
        };
        let mut out = Vec::new();
        for (i, t) in so.spec.triggers.iter().enumerate() {
            let auth = self
                .resolver
                .auth_params(&ns, t, &env, pod_spec)
                .await
                .map_err(|e| format!("trigger {i} ({}): {e}", t.r#type))?;
            out.push(triggers::ResolvedTrigger {
                env: env.vars.clone(),
                auth_params: auth.params,
            });
        }
        Ok(out)
    }
}

/// Serves `/healthz` and `/readyz` on the probe address. Every replica is ready once its ScaledObject cache
/// has synced, leader or not (as upstream: a standby is Ready, so a rolling update can proceed while
/// another replica holds the Lease).
async fn serve_health(addr: SocketAddr, ready: Arc<AtomicBool>) -> Result<(), Error> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Serve {
            what: "health probes",
            addr: addr.to_string(),
            source,
        })?;
    axum::serve(listener, app)
        .await
        .map_err(|source| Error::Serve {
            what: "health probes",
            addr: addr.to_string(),
            source,
        })
}

async fn serve_metrics(addr: SocketAddr, metrics: Arc<metrics::Metrics>) -> Result<(), Error> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let m = metrics.clone();
            async move {
                // Encoding thousands of series takes milliseconds: off the runtime's workers, so a
                // scrape never delays the scale loops' ticks.
                let body = tokio::task::spawn_blocking(move || m.encode())
                    .await
                    .unwrap_or_default();
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Serve {
            what: "metrics",
            addr: addr.to_string(),
            source,
        })?;
    axum::serve(listener, app)
        .await
        .map_err(|source| Error::Serve {
            what: "metrics",
            addr: addr.to_string(),
            source,
        })
}

/// Runs the operator until SIGTERM/SIGINT (then stops writing and releases the leader Lease), or until
/// leadership is lost (an error: the process should exit, as upstream's does).
///
/// Every replica serves its probes and `/metrics` and keeps the ScaledObject cache; only the leader runs
/// the controller, the scale loops, certificate rotation and the gRPC metrics service. All API writes go
/// through a client gated by the Lease ([`leader::WriteGate`]).
pub async fn run(config: OperatorConfig) -> Result<(), Error> {
    let kube_config = kube::Config::infer().await.map_err(|e| {
        Error::kube(
            "connecting to the Kubernetes API",
            kube::Error::InferConfig(e),
        )
    })?;
    let lease_config = leader::LeaseConfig {
        namespace: config.namespace.clone(),
        name: config.lease_name.clone(),
        identity: config.identity.clone(),
        lease_duration: config.lease_duration,
        renew_deadline: config.renew_deadline,
        retry_period: config.retry_period,
    };
    let gate = if config.leader_elect {
        lease_config.validate().map_err(Error::Invalid)?;
        leader::WriteGate::closed()
    } else {
        leader::WriteGate::open()
    };
    let mut elector = match config.leader_elect {
        true => Some(leader::LeaderElector::new(
            leader::lease_client(kube_config.clone())?,
            lease_config,
            gate.clone(),
        )),
        false => None,
    };
    let client = leader::gated_client(kube_config, &gate, config.kube_api_rate)?;
    let ready = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(metrics::Metrics::default());
    tokio::spawn({
        let (addr, ready) = (config.health_probe_bind_address, ready.clone());
        async move {
            if let Err(e) = serve_health(addr, ready).await {
                tracing::error!(error = %e, "health server stopped");
            }
        }
    });
    tokio::spawn({
        let (addr, m) = (config.metrics_bind_address, metrics.clone());
        async move {
            if let Err(e) = serve_metrics(addr, m).await {
                tracing::error!(error = %e, "metrics server stopped");
            }
        }
    });

    let so_api: Api<ScaledObject> = match config
        .watch_namespace
        .as_deref()
        .filter(|n| !n.is_empty() && !n.contains(','))
    {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let hpa_api: Api<HorizontalPodAutoscaler> = match config
        .watch_namespace
        .as_deref()
        .filter(|n| !n.is_empty() && !n.contains(','))
    {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    // The ScaledObject cache runs on every replica, so a standby is Ready and takes over with a warm
    // cache. Its changes reach the controller only while this replica leads; on becoming leader every
    // cached object is reconciled once (`reconcile_all_on` below).
    // The cached ScaledObjects are kept without managedFields: nothing here reads them, and as JSON trees
    // they are a large part of an object's memory. (Annotations stay: the HPA copies them, as upstream.)
    let (store, writer) = kube::runtime::reflector::store();
    let leading = Arc::new(AtomicBool::new(false));
    let (changes_tx, changes) = futures::channel::mpsc::unbounded();
    let so_watch = with_labels(
        watcher::Config::default().any_semantic(),
        config.watch_label_selector.as_ref(),
    );
    tokio::spawn({
        let leading = leading.clone();
        watcher(so_api, so_watch)
            .default_backoff()
            .modify(|so: &mut ScaledObject| so.managed_fields_mut().clear())
            .reflect(writer)
            .touched_objects()
            .predicate_filter(scaled_object::reconcile_fingerprint, Default::default())
            .for_each(move |change| {
                // The watcher retries on its own; a failing list or watch is worth a line in the log,
                // since until the first list succeeds this replica is not Ready.
                if let Err(e) = &change {
                    tracing::warn!(error = %e, "watching ScaledObjects");
                }
                if leading.load(Ordering::SeqCst) {
                    let _ = changes_tx.unbounded_send(change);
                }
                futures::future::ready(())
            })
    });
    // Only this task waits on the store: kube's `Store::wait_until_ready` wakes a single waiter (a
    // oneshot keeps the last waker), so a second waiter — the leader path below — could leave this one
    // asleep and the replica never Ready. Everyone else waits on `synced`.
    let (synced_tx, mut synced) = tokio::sync::watch::channel(None::<bool>);
    tokio::spawn({
        let (store, ready) = (store.clone(), ready.clone());
        async move {
            let ok = store.wait_until_ready().await.is_ok();
            if ok {
                ready.store(true, Ordering::SeqCst);
                tracing::info!("ScaledObject cache synced: ready");
            }
            let _ = synced_tx.send(Some(ok));
        }
    });

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    if let Some(e) = elector.as_mut() {
        tokio::select! {
            () = e.acquire() => {}
            () = &mut shutdown => return Ok(()),
        }
    }
    tokio::select! {
        r = synced.wait_for(Option::is_some) => {
            if !matches!(r.as_deref(), Ok(Some(true))) {
                return Err(Error::Invalid("the ScaledObject cache stopped".into()));
            }
        }
        () = &mut shutdown => {
            if let Some(e) = elector.as_mut() {
                e.release().await;
            }
            return Ok(());
        }
    }
    leading.store(true, Ordering::SeqCst);
    // ScaledJobs: their own controller, Job watch and loops, on the leader only.
    tokio::spawn(scaled_job::run(scaled_job::Deps::for_operator(
        client.clone(),
        &config,
        metrics.clone(),
    )));
    let hpas: Arc<HpaHealthMap> = Arc::default();
    let controller = Controller::for_stream(changes, store.clone()).with_config(
        kube::runtime::controller::Config::default().concurrency(config.max_reconciles),
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        reporter: Reporter {
            controller: keda_api::consts::names::OPERATOR_COMPONENT.to_owned(),
            instance: Some(config.identity.clone()),
        },
        config: config.clone(),
        targets: Default::default(),
        statuses: Default::default(),
        loops: Default::default(),
        // KEDA_HTTP_DEFAULT_TIMEOUT bounds HTTP scalers without a timeout of their own; every other
        // scaler is bounded by its own timeouts (keda_scalers::timeouts).
        build: Arc::new(keda_scalers::BuildContext {
            timeouts: keda_scalers::TimeoutDefaults {
                http: config.scaler_timeout,
            },
            // metrics-api's aggregateFromKubeServiceEndpoints lists EndpointSlices through it.
            service_endpoints: Some(Arc::new(
                keda_scalers::service_endpoints::KubeServiceEndpoints::new(client.clone()),
            )),
            // kubernetes-workload lists the pods of its namespace and selector through it, per poll.
            pods: Some(Arc::new(keda_scalers::pods::KubePods::new(client.clone()))),
            // kubernetes-resource reads its ConfigMap or Secret key through it, one GET per poll.
            config_data: Some(Arc::new(keda_scalers::config_data::KubeConfigData::new(
                client.clone(),
            ))),
            files: config.file_root.clone(),
            tls: config.scaler_tls.clone(),
            http: keda_scalers::http::HttpClients::default()
                .with_tls(config.scaler_tls.clone())
                .with_keep_alive(config.http_keep_alive),
            ..Default::default()
        }),
        metrics,
        scaled_objects: store,
        resolver: keda_resolver::Resolver::new(
            keda_resolver::KubeSource::new(client.clone())
                .with_trigger_auth_selector(config.trigger_auth_label_selector.clone()),
            config.namespace.clone(),
        )
        .with_restrict_secret_access(keda_resolver::restrict_secret_access_from_env())
        .with_file_root(config.file_root.clone(), keda_resolver::FileAccess::Read),
        auth_statuses: Arc::default(),
        hpas: hpas.clone(),
        replicas: Arc::default(),
    });
    ctx.replicas.clone().watch(
        client.clone(),
        config
            .watch_namespace
            .clone()
            .filter(|n| !n.is_empty() && !n.contains(',')),
    );
    // A changed TriggerAuthentication or ClusterTriggerAuthentication reconciles the ScaledObjects
    // that use it, so new parameters reach their loops at once.
    let (auth_changes_tx, auth_changes) = futures::channel::mpsc::unbounded();
    tokio::spawn(trigger_auth::count(
        client.clone(),
        config.watch_namespace.clone(),
        config.trigger_auth_label_selector.clone(),
        ctx.metrics.clone(),
        auth_changes_tx,
        ctx.auth_statuses.clone(),
    ));
    // Status copies of ScaledObjects deleted without our cleanup are dropped.
    tokio::spawn(status::forget_deleted(ctx.clone(), Duration::from_secs(60)));
    let watched: Option<Vec<String>> = config
        .watch_namespace
        .as_deref()
        .filter(|n| n.contains(','))
        .map(|n| {
            n.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        });
    let users_store = ctx.scaled_objects.clone();
    let run_controller = controller
        .owns_stream(hpa_watch::owned_hpa_changes(
            hpa_api,
            hpas,
            config.watch_label_selector.as_ref(),
        ))
        .reconcile_on(
            auth_changes.flat_map(move |changed: trigger_auth::AuthChange| {
                futures::stream::iter(trigger_auth::users(&users_store.state(), &changed))
            }),
        )
        // Everything cached before this replica led (the changes seen meanwhile were not forwarded).
        .reconcile_all_on(futures::stream::once(futures::future::ready(())))
        .shutdown_on_signal()
        .run(
            move |so: Arc<ScaledObject>, ctx: Arc<Context>| {
                let watched = watched.clone();
                async move {
                    if let Some(list) = &watched
                        && !list
                            .iter()
                            .any(|n| Some(n.as_str()) == so.namespace().as_deref())
                    {
                        return Ok(kube::runtime::controller::Action::await_change());
                    }
                    scaled_object::reconcile(so, ctx).await
                }
            },
            scaled_object::error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile error");
            }
        });
    let issued = match &config.cert_rotation {
        Some(cc) => Some(certs::ensure(&client, cc).await?),
        None => None,
    };
    let mut grpc_tls = None;
    // Only the leader serves the gRPC metrics service (upstream's server is a leader-election runnable):
    // a standby does not listen, so a connection the Service sends there is refused and the metrics API
    // server connects again (docs/ARCHITECTURE.md, "Decisions").
    if let Some((addr, dir)) = config.metrics_service.clone() {
        let initial = match &issued {
            Some(b) => Ok(metrics_service::TlsMaterial::from(b)),
            None => metrics_service::TlsMaterial::from_dir(&dir).map_err(|e| e.to_string()),
        };
        match initial.and_then(|m| grpc_tls::ReloadingTls::new(&m, dir, config.service_tls.clone()))
        {
            Ok(tls) => {
                let tls = Arc::new(tls);
                tokio::spawn(tls.clone().watch_files());
                grpc_tls = Some(tls.clone());
                let source = Arc::new(metrics_service::MetricsSource {
                    client: client.clone(),
                    scaled_objects: ctx.scaled_objects.clone(),
                    loops: ctx.loops.clone(),
                    targets: ctx.targets.clone(),
                    build: ctx.build.clone(),
                    metrics: ctx.metrics.clone(),
                });
                tokio::spawn(async move {
                    if let Err(e) = metrics_service::serve(source, addr, tls).await {
                        tracing::error!(error = %e, "gRPC metrics service stopped");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "no usable certificates: the gRPC metrics service is not started");
            }
        }
    }
    if let Some(cc) = &config.cert_rotation {
        // Renewals reach our own server at once; the other processes see them through the mounted Secret.
        tokio::spawn(certs::rotate(
            client.clone(),
            cc.clone(),
            Duration::from_secs(12 * 3600),
            move |bundle| {
                if let Some(tls) = &grpc_tls
                    && let Err(e) = tls.set(&metrics_service::TlsMaterial::from(bundle))
                {
                    tracing::error!(error = %e, "renewed certificates are not usable");
                }
            },
        ));
    }
    tracing::info!("keda-rs operator started");

    match elector.as_mut() {
        Some(e) => {
            tokio::select! {
                () = run_controller => {}
                () = e.hold() => {
                    tracing::error!("lost leadership: no more writes; exiting so a standby takes over");
                    return Err(Error::Lease("lost the leader Lease".into()));
                }
                () = &mut shutdown => {}
            }
            // Writes stop before the Lease is released, so the next leader never overlaps with us.
            e.release().await;
        }
        None => {
            tokio::select! {
                () = run_controller => {}
                () = &mut shutdown => {}
            }
        }
    }
    tracing::info!("keda-rs operator stopped");
    Ok(())
}

/// `config` restricted to the objects `selector` selects (as upstream's cache does with
/// `WATCH_LABEL_SELECTOR`: the others never reach this process).
pub fn with_labels(
    config: watcher::Config,
    selector: Option<&kube::core::Selector>,
) -> watcher::Config {
    match selector {
        Some(s) => config.labels_from(s),
        None => config,
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
