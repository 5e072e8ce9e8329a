//! Prometheus metrics of the metrics API server, served on `--metrics-bind-address` (`/metrics`).
//!
//! - `apiserver_request_total{verb,group,version,resource,code}` and
//!   `apiserver_request_duration_seconds{verb,group,version,resource}`: requests served on the secure port.
//! - `keda_internal_metricsservice_grpc_client_{started_total,handled_total,handling_seconds}` with
//!   `grpc_type, grpc_service, grpc_method` (+ `grpc_code`): the calls to the operator, named as upstream's
//!   gRPC client metrics.
//! - `keda_internal_metricsservice_grpc_client_connected` (keda-rs): 1 while the operator answers probes.

use std::time::Duration;

use http::{Method, StatusCode};
use keda_kube::metrics::RegistryExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::api::{GROUP, Kind, VERSION};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub grpc_type: String,
    pub grpc_service: String,
    pub grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcCodeLabels {
    pub grpc_type: String,
    pub grpc_service: String,
    pub grpc_method: String,
    pub grpc_code: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

const REQUEST_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upstream's gRPC client histogram buckets.
const GRPC_BUCKETS: [f64; 14] = [
    0.001, 0.01, 0.1, 0.3, 0.6, 1.0, 3.0, 6.0, 9.0, 20.0, 30.0, 60.0, 90.0, 120.0,
];

fn request_histogram() -> Histogram {
    Histogram::new(REQUEST_BUCKETS)
}

fn grpc_histogram() -> Histogram {
    Histogram::new(GRPC_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily<DurationLabels>,
    pub grpc_started: Family<GrpcLabels, Counter>,
    pub grpc_handled: Family<GrpcCodeLabels, Counter>,
    pub grpc_handling: HistogramFamily<GrpcLabels>,
    pub grpc_connected: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = registry.new_metric(
            "apiserver_request",
            "Requests served, by verb, group, version, resource and HTTP code",
        );
        let request_duration: HistogramFamily<DurationLabels> = registry.add_metric(
            "apiserver_request_duration_seconds",
            "Time to answer a request, by verb, group, version and resource",
            Family::new_with_constructor(request_histogram),
        );
        let grpc = registry.sub_registry_with_prefix("keda_internal_metricsservice");
        let grpc_started = grpc.new_metric("grpc_client_started", "RPCs started by the client");
        let grpc_handled = grpc.new_metric(
            "grpc_client_handled",
            "RPCs completed by the client, by gRPC status code",
        );
        let grpc_handling: HistogramFamily<GrpcLabels> = grpc.add_metric(
            "grpc_client_handling_seconds",
            "Response latency of RPCs until the client got the answer",
            Family::new_with_constructor(grpc_histogram),
        );
        let grpc_connected = grpc.new_metric(
            "grpc_client_connected",
            "1 while the operator's metrics service answers, else 0 (keda-rs)",
        );
        Metrics {
            registry,
            requests,
            request_duration,
            grpc_started,
            grpc_handled,
            grpc_handling,
            grpc_connected,
        }
    }
}

/// gRPC code names as Go spells them (the label values upstream's dashboards use).
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

impl Metrics {
    pub fn observe_request(&self, kind: Kind, method: &Method, code: StatusCode, took: Duration) {
        let (verb, group, version, resource) = match kind {
            Kind::ExternalMetric => ("LIST", GROUP, VERSION, "externalmetrics"),
            Kind::Discovery => ("GET", "", "", ""),
            Kind::Probe => ("GET", "", "", "probe"),
            Kind::Other => (method.as_str(), "", "", ""),
        };
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.into(),
                group: group.into(),
                version: version.into(),
                resource: resource.into(),
                code: code.as_u16().to_string(),
            })
            .inc();
        self.request_duration
            .get_or_create(&DurationLabels {
                verb: verb.into(),
                group: group.into(),
                version: version.into(),
                resource: resource.into(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn observe_grpc(&self, method: &str, code: tonic::Code, took: Duration) {
        let labels = GrpcLabels {
            grpc_type: "unary".into(),
            grpc_service: keda_proto::METRICS_SERVICE_NAME.into(),
            grpc_method: method.into(),
        };
        self.grpc_handling
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.grpc_handled
            .get_or_create(&GrpcCodeLabels {
                grpc_type: labels.grpc_type,
                grpc_service: labels.grpc_service,
                grpc_method: labels.grpc_method,
                grpc_code: grpc_code_name(code).into(),
            })
            .inc();
    }

    pub fn grpc_started(&self, method: &str) {
        self.grpc_started
            .get_or_create(&GrpcLabels {
                grpc_type: "unary".into(),
                grpc_service: keda_proto::METRICS_SERVICE_NAME.into(),
                grpc_method: method.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_exposition() {
        let m = Metrics::default();
        m.grpc_started("GetMetrics");
        m.observe_grpc("GetMetrics", tonic::Code::Ok, Duration::from_millis(2));
        m.observe_request(
            Kind::ExternalMetric,
            &Method::GET,
            StatusCode::OK,
            Duration::from_micros(300),
        );
        let text = m.encode();
        for want in [
            "keda_internal_metricsservice_grpc_client_started_total{grpc_type=\"unary\",grpc_service=\"api.MetricsService\",grpc_method=\"GetMetrics\"} 1",
            "keda_internal_metricsservice_grpc_client_handled_total{grpc_type=\"unary\",grpc_service=\"api.MetricsService\",grpc_method=\"GetMetrics\",grpc_code=\"OK\"} 1",
            "keda_internal_metricsservice_grpc_client_handling_seconds_bucket",
            "apiserver_request_total{verb=\"LIST\",group=\"external.metrics.k8s.io\",version=\"v1beta1\",resource=\"externalmetrics\",code=\"200\"} 1",
            "keda_internal_metricsservice_grpc_client_connected 0",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
