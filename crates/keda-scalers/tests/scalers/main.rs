//! Every scaler test in one test binary: parse tables, the conformance harness, fuzzed parses and the
//! real-backend tests (one module per scaler). One binary links the crate and its dependencies once
//! instead of once per file, which keeps CI's disk and link time small.

#[path = "../parse_tables/harness.rs"]
mod harness;
#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "external")]
#[path = "../support/external_server.rs"]
mod external_server;
#[cfg(feature = "kafka")]
#[path = "../support/kafka_broker.rs"]
mod kafka_broker;
#[cfg(feature = "rabbitmq")]
#[path = "../support/rabbitmq_server.rs"]
mod rabbitmq_server;

mod activemq;
mod artemis_queue;
mod beanstalkd;
mod compliance;
mod conformance_http;
mod datadog;
mod etcd;
#[cfg(feature = "external")]
mod external;
mod kafka;
mod kubernetes_resource;
mod kubernetes_workload;
mod metrics_api_http;
mod metrics_api_service_endpoints;
mod mysql;
mod nats_jetstream;
mod new_relic;
mod nsq;
mod parse_fuzz;
mod postgresql;
mod prometheus;
mod rabbitmq;
mod redis;
mod redis_streams;
mod scaler_tls;
mod timeouts;
