//! Scalers that are not tied to one product: a schedule (`cron`), any HTTP endpoint that returns a
//! number (`metrics-api`) and any gRPC server implementing upstream's external scaler contract
//! (`external`, `external-push`).

#[cfg(feature = "cron")]
pub mod cron;
#[cfg(feature = "external")]
pub mod external;
#[cfg(feature = "metrics-api")]
pub mod metrics_api;
