//! Scalers that query a monitoring system: Prometheus and the SaaS APIs of New Relic and Datadog.

#[cfg(feature = "datadog")]
pub mod datadog;
#[cfg(feature = "new-relic")]
pub mod new_relic;
#[cfg(feature = "prometheus")]
pub mod prometheus;
