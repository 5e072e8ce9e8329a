//! The webhook's Prometheus metrics, named as upstream's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

pub const VALIDATIONS_TOTAL: &str = "keda_webhook_scaled_object_validations";
pub const VALIDATION_ERRORS_TOTAL: &str = "keda_webhook_scaled_object_validation_errors";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValidationLabels {
    pub namespace: String,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub namespace: String,
    pub action: String,
    pub reason: String,
}

#[derive(Clone, Default)]
pub struct Metrics {
    pub validations: Family<ValidationLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
}

impl Metrics {
    /// Registers the metrics (the `_total` suffix is added by the encoder).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            VALIDATIONS_TOTAL,
            "Total number of ScaledObject validations",
            self.validations.clone(),
        );
        registry.register(
            VALIDATION_ERRORS_TOTAL,
            "Total number of ScaledObject validation errors",
            self.errors.clone(),
        );
    }

    pub fn validation(&self, namespace: &str, action: &str) {
        self.validations
            .get_or_create(&ValidationLabels {
                namespace: namespace.to_owned(),
                action: action.to_owned(),
            })
            .inc();
    }

    pub fn error(&self, namespace: &str, action: &str, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                namespace: namespace.to_owned(),
                action: action.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }
}
