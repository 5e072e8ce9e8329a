//! Prometheus metrics with upstream's names and labels (`keda_scaler_metrics_value`, …).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use keda_api::consts::prometheus as names;
use keda_kube::metrics::RegistryExt;
use keda_scalers::http::{HttpObserver, HttpOutcome, RequestLabels};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upstream's common label set: `namespace, metric, scaledObject, scaler, triggerIndex, type`.
/// Field names are the label names, hence camelCase.
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalerLabels {
    pub namespace: String,
    pub metric: String,
    pub scaledObject: String,
    pub scaler: String,
    pub triggerIndex: String,
    pub r#type: String,
}

#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub namespace: String,
    pub scaledObject: String,
}

#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub namespace: String,
    pub scaledJob: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerTypeLabels {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub r#type: String,
    pub namespace: String,
}

/// `keda_scaler_empty_upstream_responses_total`, upstream's label set.
#[allow(non_snake_case)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EmptyResponseLabels {
    pub namespace: String,
    pub scaledResource: String,
    pub triggerName: String,
    pub metricName: String,
    pub resourceType: String,
    pub ignoreNullValues: String,
}

/// `keda_scaler_http_requests_total`: who asked, and how the request ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpRequestLabels {
    pub namespace: String,
    pub scaled_resource: String,
    pub scaler: String,
    pub trigger_name: String,
    pub metric_name: String,
    pub status_code: String,
}

/// `keda_scaler_http_request_duration_seconds` without `--enable-high-cardinality-metrics-labels`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpDurationLabels {
    pub scaler: String,
    pub status_code: String,
}

/// Upstream's buckets of `keda_scaler_http_request_duration_seconds` (5 ms to 10 s).
pub const HTTP_DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn http_duration_histogram() -> Histogram {
    Histogram::new(HTTP_DURATION_BUCKETS)
}

/// The KEDA custom resource kinds counted by `keda_resource_registered_total` (its `type` label).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ResourceKind {
    ScaledObject,
    ScaledJob,
    TriggerAuthentication,
    ClusterTriggerAuthentication,
}

impl ResourceKind {
    /// Upstream's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::ScaledObject => "scaled_object",
            ResourceKind::ScaledJob => "scaled_job",
            ResourceKind::TriggerAuthentication => "trigger_authentication",
            ResourceKind::ClusterTriggerAuthentication => "cluster_trigger_authentication",
        }
    }
}

/// Namespace label of cluster-scoped objects, as upstream.
const DEFAULT_NAMESPACE: &str = "default";

fn label_namespace(namespace: &str) -> &str {
    if namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        namespace
    }
}

/// What one registered object adds to the gauges.
#[derive(Clone, Debug, PartialEq)]
struct Registration {
    /// The `namespace` label.
    namespace: String,
    trigger_types: Vec<String>,
}

/// Kind, the object's namespace (empty when cluster-scoped) and name.
type RegistrationKey = (ResourceKind, String, String);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoopLabels {
    pub namespace: String,
    pub r#type: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub git_commit: String,
    pub goversion: String,
    pub goos: String,
    pub goarch: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    pub registry: Registry,
    pub scaler_metrics_value: Family<ScalerLabels, FloatGauge>,
    pub scaler_metrics_latency_seconds: Family<ScalerLabels, FloatGauge>,
    pub scaler_active: Family<ScalerLabels, FloatGauge>,
    pub scaler_detail_errors_total: Family<ScalerLabels, Counter>,
    pub scaled_object_errors_total: Family<ObjectLabels, Counter>,
    pub scaled_object_paused: Family<ObjectLabels, FloatGauge>,
    pub scale_loop_latency_seconds: Family<LoopLabels, FloatGauge>,
    /// Per ScaledJob, the triggers that failed a poll (written by `scaled_job::telemetry`); a poll
    /// without errors creates it at 0, and it is removed with the ScaledJob.
    pub scaled_job_errors_total: Family<JobLabels, Counter>,
    pub trigger_registered_total: Family<TriggerTypeLabels, Gauge>,
    pub resource_registered_total: Family<ResourceLabels, Gauge>,
    pub scaler_http_requests_total: Family<HttpRequestLabels, Counter>,
    pub scaler_empty_upstream_responses_total: Family<EmptyResponseLabels, Counter>,
    pub scaler_http_request_duration_seconds:
        Family<HttpDurationLabels, Histogram, fn() -> Histogram>,
    /// The objects counted in the two `registered_total` gauges, so that re-registering (every
    /// reconcile) or unregistering an object changes them by exactly what it contributed.
    registrations: Mutex<HashMap<RegistrationKey, Registration>>,
    /// The label sets of the per-object counters that carry more than the object's name (HTTP requests,
    /// empty responses), by (namespace, object), so a deleted object's series can be removed.
    object_series: Mutex<HashMap<(String, String), ObjectSeries>>,
}

#[derive(Default)]
struct ObjectSeries {
    http_requests: Vec<HttpRequestLabels>,
    empty_responses: Vec<EmptyResponseLabels>,
}

/// prometheus-client appends `_total` to counters itself, so counters are registered without it.
fn strip_total(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            scaler_metrics_value: registry.new_metric(
                names::SCALER_METRICS_VALUE,
                "The current value for each scaler's metric",
            ),
            scaler_metrics_latency_seconds: registry.new_metric(
                names::SCALER_METRICS_LATENCY_SECONDS,
                "The latency of retrieving current metric from each scaler, in seconds",
            ),
            scaler_active: registry.new_metric(names::SCALER_ACTIVE, "Activity of a Scaler Metric"),
            scaler_detail_errors_total: registry.new_metric(
                strip_total(names::SCALER_DETAIL_ERRORS_TOTAL),
                "The total number of errors encountered for each scaler",
            ),
            scaled_object_errors_total: registry.new_metric(
                strip_total(names::SCALED_OBJECT_ERRORS_TOTAL),
                "Number of scaled object errors",
            ),
            scaled_object_paused: registry.new_metric(
                names::SCALED_OBJECT_PAUSED,
                "Indicates whether a ScaledObject is paused",
            ),
            scale_loop_latency_seconds: registry.new_metric(
                names::INTERNAL_SCALE_LOOP_LATENCY_SECONDS,
                "Total deviation (in seconds) between the expected execution time and the actual execution time for the scaling loop",
            ),
            scaled_job_errors_total: registry.new_metric(
                strip_total(names::SCALED_JOB_ERRORS_TOTAL),
                "Number of scaled job errors",
            ),
            // Gauges keep their `_total` suffix (prometheus-client only appends it to counters).
            trigger_registered_total: registry.new_metric(
                names::TRIGGER_REGISTERED_TOTAL,
                "Total number of triggers per trigger type registered",
            ),
            resource_registered_total: registry.new_metric(
                names::RESOURCE_REGISTERED_TOTAL,
                "Total number of KEDA custom resources per namespace for each custom resource type (CRD) registered",
            ),
            scaler_http_requests_total: registry.new_metric(
                strip_total(names::SCALER_HTTP_REQUESTS_TOTAL),
                "Total number of outbound HTTP requests issued during scaler metric collection",
            ),
            scaler_empty_upstream_responses_total: registry.new_metric(
                strip_total(names::SCALER_EMPTY_UPSTREAM_RESPONSES_TOTAL),
                "Number of times a query returns an empty result",
            ),
            scaler_http_request_duration_seconds: registry.add_metric(
                names::SCALER_HTTP_REQUEST_DURATION_SECONDS,
                "Duration in seconds of outbound HTTP requests issued during scaler metric collection",
                Family::new_with_constructor(http_duration_histogram),
            ),
            registrations: Mutex::default(),
            object_series: Mutex::default(),
            registry: Registry::default(),
        };
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                git_commit: String::new(),
                goversion: "rust".to_owned(),
                goos: std::env::consts::OS.to_owned(),
                goarch: std::env::consts::ARCH.to_owned(),
            })
            .set(1);
        registry.register(
            names::BUILD_INFO,
            "Info metric, with static information about KEDA build",
            build,
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts `name` (and its triggers' types) as registered. Idempotent: registering again replaces what
    /// the object contributed before, so the controller calls it on every reconcile, as upstream.
    pub fn register(
        &self,
        kind: ResourceKind,
        namespace: &str,
        name: &str,
        trigger_types: &[&str],
    ) {
        let Ok(mut regs) = self.registrations.lock() else {
            return;
        };
        let new = Registration {
            namespace: label_namespace(namespace).to_owned(),
            trigger_types: trigger_types
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| (*t).to_owned())
                .collect(),
        };
        let key = (kind, namespace.to_owned(), name.to_owned());
        if let Some(old) = regs.insert(key, new.clone()) {
            self.count(kind, &old, -1);
        }
        self.count(kind, &new, 1);
    }

    /// Stops counting `name`; a no-op for an object that is not registered.
    pub fn unregister(&self, kind: ResourceKind, namespace: &str, name: &str) {
        let Ok(mut regs) = self.registrations.lock() else {
            return;
        };
        if let Some(old) = regs.remove(&(kind, namespace.to_owned(), name.to_owned())) {
            self.count(kind, &old, -1);
        }
    }

    /// Unregisters every object of `kind` for which `keep(namespace, name)` is false (after a re-list);
    /// `namespace` is the object's own, empty for cluster-scoped objects.
    pub fn retain_registered(&self, kind: ResourceKind, keep: impl Fn(&str, &str) -> bool) {
        let gone: Vec<(String, String)> = match self.registrations.lock() {
            Ok(regs) => regs
                .keys()
                .filter(|(k, ns, name)| *k == kind && !keep(ns, name))
                .map(|(_, ns, name)| (ns.clone(), name.clone()))
                .collect(),
            Err(_) => return,
        };
        for (ns, name) in gone {
            self.unregister(kind, &ns, &name);
        }
    }

    fn count(&self, kind: ResourceKind, reg: &Registration, delta: i64) {
        self.resource_registered_total
            .get_or_create(&ResourceLabels {
                r#type: kind.as_str().to_owned(),
                namespace: reg.namespace.clone(),
            })
            .inc_by(delta);
        for t in &reg.trigger_types {
            self.trigger_registered_total
                .get_or_create(&TriggerTypeLabels { r#type: t.clone() })
                .inc_by(delta);
        }
    }

    /// Removes one trigger's series (`keda_scaler_*` with exactly these labels): its ScaledObject or
    /// trigger is gone, so the last value must not be exported as if it were current.
    pub fn remove_scaler_series(&self, labels: &ScalerLabels) {
        self.scaler_metrics_value.remove(labels);
        self.scaler_metrics_latency_seconds.remove(labels);
        self.scaler_active.remove(labels);
        self.scaler_detail_errors_total.remove(labels);
    }

    /// One empty answer of a scaler's backend (upstream counts it on every read, loop or HPA fetch).
    pub fn count_empty_upstream_response(&self, labels: &EmptyResponseLabels) {
        if self
            .scaler_empty_upstream_responses_total
            .get(labels)
            .is_none()
        {
            self.remember_series(&labels.namespace, &labels.scaledResource, |s| {
                s.empty_responses.push(labels.clone())
            });
        }
        self.scaler_empty_upstream_responses_total
            .get_or_create(labels)
            .inc();
    }

    fn remember_series(&self, namespace: &str, object: &str, add: impl FnOnce(&mut ObjectSeries)) {
        if let Ok(mut index) = self.object_series.lock() {
            add(index
                .entry((namespace.to_owned(), object.to_owned()))
                .or_default());
        }
    }

    /// Removes the per-object series of a deleted ScaledObject (errors, paused, loop latency, its scalers'
    /// HTTP requests and empty responses).
    pub fn forget_scaled_object(&self, namespace: &str, name: &str) {
        let series = self
            .object_series
            .lock()
            .ok()
            .and_then(|mut index| index.remove(&(namespace.to_owned(), name.to_owned())))
            .unwrap_or_default();
        for labels in &series.http_requests {
            self.scaler_http_requests_total.remove(labels);
        }
        for labels in &series.empty_responses {
            self.scaler_empty_upstream_responses_total.remove(labels);
        }
        let object = ObjectLabels {
            namespace: namespace.to_owned(),
            scaledObject: name.to_owned(),
        };
        self.scaled_object_errors_total.remove(&object);
        self.scaled_object_paused.remove(&object);
        self.scale_loop_latency_seconds.remove(&LoopLabels {
            namespace: namespace.to_owned(),
            r#type: "scaledobject".to_owned(),
            resource: name.to_owned(),
        });
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Outbound requests of the scalers (`keda_scaler_http_*`), reported by `keda_scalers::http::observe`.
impl HttpObserver for Metrics {
    fn observe(&self, labels: &RequestLabels, outcome: HttpOutcome, duration: Duration) {
        let status_code = outcome.status_code_label();
        self.scaler_http_request_duration_seconds
            .get_or_create(&HttpDurationLabels {
                scaler: labels.scaler.clone(),
                status_code: status_code.clone(),
            })
            .observe(duration.as_secs_f64());
        let request = HttpRequestLabels {
            namespace: labels.namespace.clone(),
            scaled_resource: labels.scaled_resource.clone(),
            scaler: labels.scaler.clone(),
            trigger_name: labels.trigger_name.clone(),
            metric_name: labels.metric_name.clone(),
            status_code,
        };
        if self.scaler_http_requests_total.get(&request).is_none() {
            self.remember_series(&request.namespace, &request.scaled_resource, |s| {
                s.http_requests.push(request.clone())
            });
        }
        self.scaler_http_requests_total
            .get_or_create(&request)
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_upstreams() {
        let m = Metrics::default();
        let labels = ScalerLabels {
            namespace: "default".into(),
            metric: "s0-cron-UTC-0xxxx-10xxxx".into(),
            scaledObject: "web".into(),
            scaler: "cron".into(),
            triggerIndex: "0".into(),
            r#type: "scaledobject".into(),
        };
        m.scaler_metrics_value.get_or_create(&labels).set(4.0);
        m.scaler_detail_errors_total.get_or_create(&labels).inc();
        let text = m.encode();
        assert!(text.contains(
            r#"keda_scaler_metrics_value{namespace="default",metric="s0-cron-UTC-0xxxx-10xxxx",scaledObject="web",scaler="cron",triggerIndex="0",type="scaledobject"} 4.0"#
        ), "{text}");
        assert!(text.contains("keda_scaler_detail_errors_total{"), "{text}");
        assert!(text.contains("keda_build_info{"), "{text}");
    }

    #[test]
    fn series_of_a_deleted_object_are_removed() {
        let m = Metrics::default();
        let labels = |object: &str| ScalerLabels {
            namespace: "shop".into(),
            metric: "s0-metric-api-value".into(),
            scaledObject: object.into(),
            scaler: "metricsAPIScaler".into(),
            triggerIndex: "0".into(),
            r#type: "scaledobject".into(),
        };
        for object in ["gone", "kept"] {
            m.scaler_metrics_value
                .get_or_create(&labels(object))
                .set(1.0);
            m.scaler_active.get_or_create(&labels(object)).set(1.0);
            m.scaler_metrics_latency_seconds
                .get_or_create(&labels(object))
                .set(0.1);
            m.scaler_detail_errors_total
                .get_or_create(&labels(object))
                .inc();
            m.scaled_object_errors_total
                .get_or_create(&ObjectLabels {
                    namespace: "shop".into(),
                    scaledObject: object.into(),
                })
                .inc();
        }
        for object in ["gone", "kept"] {
            m.observe(
                &RequestLabels {
                    namespace: "shop".into(),
                    scaled_resource: object.into(),
                    scaler: "metricsAPIScaler".into(),
                    trigger_name: "".into(),
                    metric_name: "s0-metric-api-value".into(),
                },
                HttpOutcome::Status(200),
                Duration::from_millis(5),
            );
            m.count_empty_upstream_response(&EmptyResponseLabels {
                namespace: "shop".into(),
                scaledResource: object.into(),
                triggerName: "".into(),
                metricName: "s0-prometheus".into(),
                resourceType: "ScaledObject".into(),
                ignoreNullValues: "true".into(),
            });
        }
        m.remove_scaler_series(&labels("gone"));
        m.forget_scaled_object("shop", "gone");
        let text = m.encode();
        assert!(!text.contains(r#"scaledObject="gone""#), "{text}");
        assert!(!text.contains(r#"scaled_resource="gone""#), "{text}");
        assert!(!text.contains(r#"scaledResource="gone""#), "{text}");
        assert_eq!(text.matches(r#"scaledObject="kept""#).count(), 5, "{text}");
        assert_eq!(
            text.matches(r#"scaled_resource="kept""#).count(),
            1,
            "{text}"
        );
        assert_eq!(
            text.matches(r#"scaledResource="kept""#).count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn every_upstream_metric_is_exposed_with_its_type() {
        let m = Metrics::default();
        m.scaled_job_errors_total
            .get_or_create(&JobLabels {
                namespace: "default".into(),
                scaledJob: "jobs".into(),
            })
            .inc();
        m.register(ResourceKind::ScaledObject, "shop", "web", &["cron"]);
        m.count_empty_upstream_response(&EmptyResponseLabels {
            namespace: "shop".into(),
            scaledResource: "web".into(),
            triggerName: "".into(),
            metricName: "s0-prometheus".into(),
            resourceType: "ScaledObject".into(),
            ignoreNullValues: "true".into(),
        });
        m.observe(
            &RequestLabels {
                namespace: "shop".into(),
                scaled_resource: "web".into(),
                scaler: "metrics-api".into(),
                trigger_name: "".into(),
                metric_name: "s0-metric-api-value".into(),
            },
            HttpOutcome::Status(200),
            Duration::from_millis(20),
        );
        let text = m.encode();
        for (name, kind) in [
            (names::SCALED_JOB_ERRORS_TOTAL, "counter"),
            (names::TRIGGER_REGISTERED_TOTAL, "gauge"),
            (names::RESOURCE_REGISTERED_TOTAL, "gauge"),
            (names::SCALER_HTTP_REQUESTS_TOTAL, "counter"),
            (names::SCALER_HTTP_REQUEST_DURATION_SECONDS, "histogram"),
            (names::SCALER_EMPTY_UPSTREAM_RESPONSES_TOTAL, "counter"),
        ] {
            let family = if kind == "counter" {
                strip_total(name)
            } else {
                name
            };
            assert!(
                text.contains(&format!("# TYPE {family} {kind}\n")),
                "{name} as {kind}:\n{text}"
            );
        }
        for line in [
            r#"keda_scaled_job_errors_total{namespace="default",scaledJob="jobs"} 1"#,
            r#"keda_trigger_registered_total{type="cron"} 1"#,
            r#"keda_resource_registered_total{type="scaled_object",namespace="shop"} 1"#,
            r#"keda_scaler_http_requests_total{namespace="shop",scaled_resource="web",scaler="metrics-api",trigger_name="",metric_name="s0-metric-api-value",status_code="200"} 1"#,
            r#"keda_scaler_http_request_duration_seconds_bucket{le="0.025",scaler="metrics-api",status_code="200"} 1"#,
            r#"keda_scaler_http_request_duration_seconds_bucket{le="0.01",scaler="metrics-api",status_code="200"} 0"#,
            r#"keda_scaler_http_request_duration_seconds_count{scaler="metrics-api",status_code="200"} 1"#,
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    fn gauge(m: &Metrics, line_start: &str) -> Option<String> {
        m.encode()
            .lines()
            .find(|l| l.starts_with(line_start))
            .map(|l| l[line_start.len()..].trim().to_owned())
    }

    #[test]
    fn registered_counts_follow_adds_updates_and_removals() {
        let m = Metrics::default();
        let so = |ns: &str| {
            format!(r#"keda_resource_registered_total{{type="scaled_object",namespace="{ns}"}}"#)
        };
        let trig = |t: &str| format!(r#"keda_trigger_registered_total{{type="{t}"}}"#);
        m.register(
            ResourceKind::ScaledObject,
            "a",
            "web",
            &["cron", "metrics-api"],
        );
        m.register(ResourceKind::ScaledObject, "a", "api", &["cron"]);
        m.register(ResourceKind::ScaledObject, "b", "web", &["cron"]);
        assert_eq!(gauge(&m, &so("a")).as_deref(), Some("2"));
        assert_eq!(gauge(&m, &trig("cron")).as_deref(), Some("3"));
        // Every reconcile registers again: nothing is counted twice; a changed trigger list replaces the old.
        m.register(ResourceKind::ScaledObject, "a", "web", &["prometheus"]);
        m.register(ResourceKind::ScaledObject, "a", "web", &["prometheus"]);
        assert_eq!(gauge(&m, &so("a")).as_deref(), Some("2"));
        assert_eq!(gauge(&m, &trig("cron")).as_deref(), Some("2"));
        assert_eq!(gauge(&m, &trig("metrics-api")).as_deref(), Some("0"));
        assert_eq!(gauge(&m, &trig("prometheus")).as_deref(), Some("1"));
        m.unregister(ResourceKind::ScaledObject, "a", "web");
        m.unregister(ResourceKind::ScaledObject, "a", "web");
        m.unregister(ResourceKind::ScaledObject, "a", "never-registered");
        assert_eq!(gauge(&m, &so("a")).as_deref(), Some("1"));
        assert_eq!(gauge(&m, &trig("prometheus")).as_deref(), Some("0"));

        // Authentications: no triggers; cluster-scoped ones count in namespace "default", as upstream.
        m.register(ResourceKind::ClusterTriggerAuthentication, "", "vault", &[]);
        m.register(ResourceKind::TriggerAuthentication, "a", "creds", &[]);
        m.register(ResourceKind::TriggerAuthentication, "a", "other", &[]);
        assert_eq!(
            gauge(&m, r#"keda_resource_registered_total{type="cluster_trigger_authentication",namespace="default"}"#).as_deref(),
            Some("1")
        );
        m.retain_registered(ResourceKind::TriggerAuthentication, |_, name| {
            name == "creds"
        });
        assert_eq!(
            gauge(
                &m,
                r#"keda_resource_registered_total{type="trigger_authentication",namespace="a"}"#
            )
            .as_deref(),
            Some("1")
        );
        assert_eq!(
            gauge(&m, &so("b")).as_deref(),
            Some("1"),
            "other kinds untouched"
        );
    }
}
