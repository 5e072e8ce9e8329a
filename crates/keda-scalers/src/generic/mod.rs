//! Scalers that are not tied to one product: a schedule (`cron`) and any HTTP endpoint that returns a
//! number (`metrics-api`).

#[cfg(feature = "cron")]
pub mod cron;
#[cfg(feature = "metrics-api")]
pub mod metrics_api;
