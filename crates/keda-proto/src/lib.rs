//! Generated gRPC code for `proto/metrics.proto` (package `api`): the operator serves
//! [`api::metrics_service_server::MetricsService`], the metrics API server calls it through
//! [`api::metrics_service_client::MetricsServiceClient`]. Also a few helpers both sides need to build
//! the Kubernetes-shaped values (canonical quantities, timestamps).
//!
//! Also `proto/externalscaler.proto` (package `externalscaler`, upstream's contract with external
//! scalers): the `external` and `external-push` scalers call
//! [`externalscaler::external_scaler_client::ExternalScalerClient`]; the server side exists for tests
//! and for anyone writing an external scaler in Rust.

use std::time::{SystemTime, UNIX_EPOCH};

/// Everything generated from `proto/metrics.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod api {
    tonic::include_proto!("api");
}

/// Everything generated from `proto/externalscaler.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod externalscaler {
    tonic::include_proto!("externalscaler");
}

pub use api::metrics_service_client::MetricsServiceClient;
pub use api::metrics_service_server::{MetricsService, MetricsServiceServer};
pub use api::{
    ExternalMetricValue, ExternalMetricValueList, ListMeta, Quantity, ScaledObjectRef, Time,
};

/// Fully qualified gRPC service name, as in metric labels (`grpc_service`).
pub const METRICS_SERVICE_NAME: &str = "api.MetricsService";
/// The one method of [`METRICS_SERVICE_NAME`].
pub const GET_METRICS_METHOD: &str = "GetMetrics";

/// The canonical Kubernetes string of a quantity of `milli` thousandths, in the decimal SI format
/// (what `resource.NewMilliQuantity(milli, DecimalSI).String()` prints): `20000` → `"20"`,
/// `1500` → `"1500m"`, `20_000_000` → `"20k"`, `0` → `"0"`.
pub fn milli_quantity_string(milli: i64) -> String {
    if milli == 0 {
        return "0".to_owned();
    }
    // Strip trailing zeros into the exponent (starting at 10^-3), then bring the exponent back to a
    // multiple of three, which is what the SI suffixes can express.
    let mut mantissa = i128::from(milli);
    let mut exponent: i32 = -3;
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exponent += 1;
    }
    match exponent.rem_euclid(3) {
        1 => {
            mantissa *= 10;
            exponent -= 1;
        }
        2 => {
            mantissa *= 100;
            exponent -= 2;
        }
        _ => {}
    }
    let suffix = match exponent {
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        e => return format!("{mantissa}e{e}"),
    };
    format!("{mantissa}{suffix}")
}

/// A metric value as the operator reports it: rounded to thousandths, like upstream's milli-quantities.
/// Non-finite values become 0.
pub fn quantity_from_f64(value: f64) -> Quantity {
    let milli = if value.is_finite() {
        (value * 1000.0)
            .round()
            .clamp(i64::MIN as f64, i64::MAX as f64) as i64
    } else {
        0
    };
    Quantity {
        string: milli_quantity_string(milli),
    }
}

/// A meta/v1 Time in whole seconds (what Kubernetes keeps).
pub fn time_from_system(at: SystemTime) -> Time {
    let seconds = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    Time { seconds, nanos: 0 }
}

/// One item of a `GetMetrics` answer: `metric_name` (as asked for, e.g. `s0-metric-api-value`) with
/// `value`, sampled at `at`; no labels, no window.
pub fn external_metric_value(metric_name: &str, value: f64, at: SystemTime) -> ExternalMetricValue {
    ExternalMetricValue {
        metric_name: metric_name.to_owned(),
        metric_labels: Default::default(),
        timestamp: Some(time_from_system(at)),
        window: None,
        value: Some(quantity_from_f64(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn canonical_quantities() {
        for (milli, want) in [
            (0, "0"),
            (20_000, "20"),
            (1_500, "1500m"),
            (500, "500m"),
            (1, "1m"),
            (10, "10m"),
            (100_000, "100"),
            (1_000_000, "1k"),
            (20_000_000, "20k"),
            (1_500_000_000, "1500k"),
            (-2_000, "-2"),
            (-1_500, "-1500m"),
            (7_000_000_000_000, "7G"),
        ] {
            assert_eq!(milli_quantity_string(milli), want, "milli {milli}");
        }
        assert_eq!(quantity_from_f64(20.0).string, "20");
        assert_eq!(quantity_from_f64(2.5).string, "2500m");
        assert_eq!(quantity_from_f64(0.0004).string, "0");
        assert_eq!(quantity_from_f64(f64::NAN).string, "0");
    }

    #[test]
    fn field_numbers_match_the_upstream_wire_format() {
        // ScaledObjectRef{name=1, namespace=2, metricName=3}: tag bytes 0x0a, 0x12, 0x1a.
        let r = ScaledObjectRef {
            name: "a".into(),
            namespace: "b".into(),
            metric_name: "c".into(),
        };
        assert_eq!(
            r.encode_to_vec(),
            [0x0a, 1, b'a', 0x12, 1, b'b', 0x1a, 1, b'c']
        );
        // ExternalMetricValue: metricName=1, timestamp=3 (Time{seconds=1}), window=4, value=5 (Quantity{string=1}).
        let v = ExternalMetricValue {
            metric_name: "m".into(),
            metric_labels: Default::default(),
            timestamp: Some(Time {
                seconds: 1,
                nanos: 0,
            }),
            window: Some(2),
            value: Some(Quantity { string: "3".into() }),
        };
        assert_eq!(
            v.encode_to_vec(),
            [
                0x0a, 1, b'm', 0x1a, 2, 0x08, 1, 0x20, 2, 0x2a, 3, 0x0a, 1, b'3'
            ]
        );
        let list = ExternalMetricValueList {
            metadata: Some(ListMeta::default()),
            items: vec![v.clone()],
        };
        let back =
            ExternalMetricValueList::decode(list.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(back.items, vec![v]);
    }

    #[test]
    fn external_scaler_messages_match_the_upstream_wire_format() {
        use externalscaler::{GetMetricsRequest, MetricSpec, MetricValue};
        // ScaledObjectRef{name=1, namespace=2, scalerMetadata=3 (map entry: key=1, value=2)}.
        let r = externalscaler::ScaledObjectRef {
            name: "a".into(),
            namespace: "b".into(),
            scaler_metadata: [("k".to_owned(), "v".to_owned())].into(),
        };
        assert_eq!(
            r.encode_to_vec(),
            [
                0x0a, 1, b'a', 0x12, 1, b'b', 0x1a, 6, 0x0a, 1, b'k', 0x12, 1, b'v'
            ]
        );
        // MetricSpec{metricName=1, targetSize=2 (varint), targetSizeFloat=3 (double)}.
        let spec = MetricSpec {
            metric_name: "m".into(),
            target_size: 5,
            target_size_float: 1.5,
        };
        let mut want = vec![0x0a, 1, b'm', 0x10, 5, 0x19];
        want.extend(1.5f64.to_le_bytes());
        assert_eq!(spec.encode_to_vec(), want);
        // MetricValue has the same shape; GetMetricsRequest{scaledObjectRef=1, metricName=2}.
        let v = MetricValue {
            metric_name: "m".into(),
            metric_value: 2,
            metric_value_float: 0.0,
        };
        assert_eq!(v.encode_to_vec(), [0x0a, 1, b'm', 0x10, 2]);
        let req = GetMetricsRequest {
            scaled_object_ref: None,
            metric_name: "m".into(),
        };
        assert_eq!(req.encode_to_vec(), [0x12, 1, b'm']);
    }

    #[test]
    fn helpers_build_an_item() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_900);
        let v = external_metric_value("s0-metric-api-value", 42.0, at);
        assert_eq!(v.timestamp.map(|t| t.seconds), Some(1_700_000_000));
        assert_eq!(v.value.map(|q| q.string).as_deref(), Some("42"));
    }
}
