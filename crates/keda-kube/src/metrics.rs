//! Registering a process's Prometheus metrics: create the metric, register it with its name and help
//! text, keep the handle that updates it, in one call ([`RegistryExt`]).
//!
//! It lives here rather than in a crate of its own because keda-kube is already the one crate the
//! operator, the metrics API server and the admission webhooks all link, each of them already uses
//! prometheus-client, and the helper is a few lines; it has nothing to do with the Kubernetes API.
//! Names, help texts and labels stay with each process (they are upstream's, byte for byte).

use prometheus_client::registry::{Metric, Registry};

/// Registration that returns the handle to update the registered metric.
pub trait RegistryExt {
    /// A new `M` (a counter or gauge, or a family of them) registered as `name` with `help`.
    fn new_metric<M: Metric + Clone + Default>(&mut self, name: &str, help: &str) -> M;

    /// `metric` (a histogram family with its buckets, a metric set before it is exposed) registered
    /// as `name` with `help`.
    fn add_metric<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M;
}

impl RegistryExt for Registry {
    fn new_metric<M: Metric + Clone + Default>(&mut self, name: &str, help: &str) -> M {
        self.add_metric(name, help, M::default())
    }

    fn add_metric<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        // Metrics are shared handles: the registry's clone and the returned one update the same value.
        self.register(name, help, metric.clone());
        metric
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;

    use super::*;

    #[test]
    fn the_returned_handle_updates_what_is_exposed() {
        let mut registry = Registry::default();
        let requests: Counter = registry.new_metric("requests", "Requests served");
        let ready = registry.add_metric("ready", "1 once ready", Gauge::<i64>::default());
        requests.inc();
        ready.set(1);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("# HELP requests Requests served.\n"),
            "{text}"
        );
        assert!(text.contains("requests_total 1\n"), "{text}");
        assert!(text.contains("ready 1\n"), "{text}");
    }
}
