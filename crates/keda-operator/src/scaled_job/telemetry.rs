//! The Prometheus series upstream exports for ScaledJobs, written into the operator's registry: the
//! per-trigger `keda_scaler_*` series with `type="scaledjob"` (the object label keeps upstream's key
//! `scaledObject`), `keda_scaled_job_errors_total{namespace,scaledJob}`,
//! `keda_internal_scale_loop_latency_seconds{type="scaledjob"}` and the `registered_total` gauges
//! (`type="scaled_job"`). Unlike upstream, a deleted ScaledJob's series are removed with its loop.

use crate::metrics::{JobLabels, LoopLabels, Metrics, ResourceKind, ScalerLabels};

/// The `type` label of ScaledJob series.
pub const SCALED_JOB_TYPE: &str = "scaledjob";

/// The per-trigger label set of one trigger of a ScaledJob.
pub fn scaler_labels(
    namespace: &str,
    scaled_job: &str,
    metric: &str,
    scaler: &str,
    trigger_index: usize,
) -> ScalerLabels {
    ScalerLabels {
        namespace: namespace.to_owned(),
        metric: metric.to_owned(),
        scaledObject: scaled_job.to_owned(),
        scaler: scaler.to_owned(),
        triggerIndex: trigger_index.to_string(),
        r#type: SCALED_JOB_TYPE.to_owned(),
    }
}

pub fn job_labels(namespace: &str, scaled_job: &str) -> JobLabels {
    JobLabels {
        namespace: namespace.to_owned(),
        scaledJob: scaled_job.to_owned(),
    }
}

/// One trigger's successful sample.
pub fn record_sample(m: &Metrics, labels: &ScalerLabels, value: f64, active: bool, latency: f64) {
    m.scaler_metrics_value.get_or_create(labels).set(value);
    m.scaler_metrics_latency_seconds
        .get_or_create(labels)
        .set(latency);
    m.scaler_active
        .get_or_create(labels)
        .set(if active { 1.0 } else { 0.0 });
    let _ = m.scaler_detail_errors_total.get_or_create(labels);
}

/// One trigger's failed sample (after the retry). Upstream only creates the detail counter for
/// ScaledJobs; it counts here, as it does for ScaledObjects.
pub fn record_failure(m: &Metrics, labels: &ScalerLabels, namespace: &str, scaled_job: &str) {
    m.scaler_detail_errors_total.get_or_create(labels).inc();
    m.scaler_active.get_or_create(labels).set(0.0);
    m.scaled_job_errors_total
        .get_or_create(&job_labels(namespace, scaled_job))
        .inc();
}

/// Creates the ScaledJob's error counter at 0 (its rate is then defined before any error).
pub fn touch_errors(m: &Metrics, namespace: &str, scaled_job: &str) {
    let _ = m
        .scaled_job_errors_total
        .get_or_create(&job_labels(namespace, scaled_job));
}

/// How late a poll woke up.
pub fn record_loop_latency(m: &Metrics, namespace: &str, scaled_job: &str, seconds: f64) {
    m.scale_loop_latency_seconds
        .get_or_create(&LoopLabels {
            namespace: namespace.to_owned(),
            r#type: SCALED_JOB_TYPE.to_owned(),
            resource: scaled_job.to_owned(),
        })
        .set(seconds);
}

/// Counts the ScaledJob in `keda_resource_registered_total` and its triggers in
/// `keda_trigger_registered_total` (idempotent per object).
pub fn register(m: &Metrics, namespace: &str, scaled_job: &str, trigger_types: &[&str]) {
    m.register(
        ResourceKind::ScaledJob,
        namespace,
        scaled_job,
        trigger_types,
    );
}

/// Removes everything the ScaledJob added: its registration, error counter, loop latency and the
/// per-trigger series in `series`.
pub fn forget(m: &Metrics, namespace: &str, scaled_job: &str, series: &[ScalerLabels]) {
    m.unregister(ResourceKind::ScaledJob, namespace, scaled_job);
    m.scaled_job_errors_total
        .remove(&job_labels(namespace, scaled_job));
    m.scale_loop_latency_seconds.remove(&LoopLabels {
        namespace: namespace.to_owned(),
        r#type: SCALED_JOB_TYPE.to_owned(),
        resource: scaled_job.to_owned(),
    });
    for labels in series {
        m.remove_scaler_series(labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_upstreams_names_and_labels() {
        let m = Metrics::default();
        let labels = scaler_labels("ns", "sj", "s0-metric-api-value", "metricsAPIScaler", 0);
        record_sample(&m, &labels, 7.0, true, 0.01);
        touch_errors(&m, "ns", "sj");
        record_failure(&m, &labels, "ns", "sj");
        register(&m, "ns", "sj", &["metrics-api"]);
        let text = m.encode();
        for want in [
            r#"keda_scaler_metrics_value{namespace="ns",metric="s0-metric-api-value",scaledObject="sj",scaler="metricsAPIScaler",triggerIndex="0",type="scaledjob"} 7.0"#,
            r#"keda_scaled_job_errors_total{namespace="ns",scaledJob="sj"} 1"#,
            r#"keda_resource_registered_total{type="scaled_job",namespace="ns"} 1"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        forget(&m, "ns", "sj", &[labels]);
        let text = m.encode();
        assert!(!text.contains("scaledJob=\"sj\""), "{text}");
        assert!(!text.contains("scaledObject=\"sj\""), "{text}");
    }
}
