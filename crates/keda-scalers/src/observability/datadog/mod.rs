//! `datadog`: a metric query through the Datadog API (`GET https://api.<site>/api/v1/query`), or a
//! `DatadogMetric` read through the Datadog Cluster Agent's external metrics API
//! (`useClusterAgentProxy: "true"`).
//!
//! Two upstream quirks are kept on purpose: the deprecated metadata `type` (`average`/`global`) is
//! validated but the HPA target type comes from the trigger's `metricType` only; and a `targetValue` (or
//! `queryValue`) of exactly -1 counts as missing.
//!
//! One module per concern: `config` (the trigger's settings, parsed and checked as upstream does),
//! `request` (the URLs and requests of both modes), `response` (a value from an answer) and `client`
//! (the scaler: its HTTP client, one request per sample).

mod client;
mod config;
mod request;
mod response;

pub use config::{Aggregator, ApiMode, ClusterAgentMode, DatadogConfig, Mode, parse, parse_config};
pub use response::{api_value, cluster_agent_value};

pub const TRIGGER_TYPE: &str = "datadog";

/// Sites the Datadog API client pinned by upstream (datadog-api-client-go v1.16.0) accepts for `site`.
pub const DATADOG_SITES: &[&str] = &[
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ddog-gov.com",
];
