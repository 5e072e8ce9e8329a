//! Prometheus metrics with upstream's names and labels (`keda_scaler_metrics_value`, …).

use std::sync::atomic::AtomicU64;

use keda_api::consts::prometheus as names;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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
}

/// prometheus-client appends `_total` to counters itself, so counters are registered without it.
fn strip_total(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            scaler_metrics_value: Family::default(),
            scaler_metrics_latency_seconds: Family::default(),
            scaler_active: Family::default(),
            scaler_detail_errors_total: Family::default(),
            scaled_object_errors_total: Family::default(),
            scaled_object_paused: Family::default(),
            scale_loop_latency_seconds: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            names::SCALER_METRICS_VALUE,
            "The current value for each scaler's metric",
            m.scaler_metrics_value.clone(),
        );
        registry.register(
            names::SCALER_METRICS_LATENCY_SECONDS,
            "The latency of retrieving current metric from each scaler, in seconds",
            m.scaler_metrics_latency_seconds.clone(),
        );
        registry.register(
            names::SCALER_ACTIVE,
            "Activity of a Scaler Metric",
            m.scaler_active.clone(),
        );
        registry.register(
            strip_total(names::SCALER_DETAIL_ERRORS_TOTAL),
            "The total number of errors encountered for each scaler",
            m.scaler_detail_errors_total.clone(),
        );
        registry.register(
            strip_total(names::SCALED_OBJECT_ERRORS_TOTAL),
            "Number of scaled object errors",
            m.scaled_object_errors_total.clone(),
        );
        registry.register(
            names::SCALED_OBJECT_PAUSED,
            "Indicates whether a ScaledObject is paused",
            m.scaled_object_paused.clone(),
        );
        registry.register(
            names::INTERNAL_SCALE_LOOP_LATENCY_SECONDS,
            "Total deviation (in seconds) between the expected execution time and the actual execution time for the scaling loop",
            m.scale_loop_latency_seconds.clone(),
        );
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
    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
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
}
