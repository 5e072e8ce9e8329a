//! Checks every registered scaler must pass (like Vector's component compliance harness): a minimal valid
//! trigger parses; the metric name has upstream's `s<index>-` form; Utilization is refused for external
//! metrics; an empty metadata map fails with a permanent error naming a field; parse never does IO (it runs
//! here without any backend); the config names its trigger; HTTP, Redis and SQL triggers report a sample
//! bound; every type has upstream's scaler name for the `scaler` metric label.

use std::collections::BTreeMap;

use keda_scalers::{
    MetricSpec, TimeoutDefaults, TriggerInput, TriggerRef, parse_trigger, registered_types,
    scaler_label, upstream_scaler_name,
};

/// Key/value pairs of a metadata or auth-params map.
type Pairs = Vec<(&'static str, &'static str)>;

/// Minimal valid metadata (and auth params) per trigger type.
fn minimal(trigger_type: &str) -> (Pairs, Pairs) {
    match trigger_type {
        "cpu" | "memory" => (vec![("value", "50")], vec![]),
        "kubernetes-workload" => (vec![("podSelector", "app=demo"), ("value", "1")], vec![]),
        "kubernetes-resource" => (
            vec![
                ("resourceKind", "ConfigMap"),
                ("resourceName", "scaling"),
                ("key", "threshold"),
                ("targetValue", "10"),
            ],
            vec![],
        ),
        "cron" => (
            vec![
                ("timezone", "UTC"),
                ("start", "0 9 * * *"),
                ("end", "0 18 * * *"),
                ("desiredReplicas", "3"),
            ],
            vec![],
        ),
        "external" | "external-push" => (vec![("scalerAddress", "scaler.example:6000")], vec![]),
        "metrics-api" => (
            vec![
                ("url", "http://api.example/m"),
                ("valueLocation", "v"),
                ("targetValue", "5"),
            ],
            vec![],
        ),
        "prometheus" => (
            vec![
                ("serverAddress", "http://prometheus:9090"),
                ("query", "up"),
                ("threshold", "5"),
            ],
            vec![],
        ),
        "new-relic" => (
            vec![
                ("nrql", "SELECT count(*) FROM Transaction"),
                ("threshold", "70"),
            ],
            vec![("queryKey", "k"), ("account", "1234567")],
        ),
        "datadog" => (
            vec![("query", "avg:system.cpu.user{*}"), ("queryValue", "7")],
            vec![("apiKey", "a"), ("appKey", "b")],
        ),
        "redis" => (
            vec![("address", "redis:6379"), ("listName", "jobs")],
            vec![],
        ),
        "redis-cluster" | "redis-sentinel" => (
            vec![
                ("addresses", "redis-0:6379"),
                ("listName", "jobs"),
                ("sentinelMaster", "mymaster"),
            ],
            vec![],
        ),
        "redis-streams" => (
            vec![
                ("address", "redis:6379"),
                ("stream", "s"),
                ("consumerGroup", "g"),
            ],
            vec![],
        ),
        "redis-cluster-streams" | "redis-sentinel-streams" => (
            vec![
                ("addresses", "redis-0:6379"),
                ("stream", "s"),
                ("consumerGroup", "g"),
                ("sentinelMaster", "mymaster"),
            ],
            vec![],
        ),
        "postgresql" => (
            vec![("query", "select 1"), ("targetQueryValue", "5")],
            vec![("connection", "host=db user=u dbname=d sslmode=disable")],
        ),
        "mysql" => (
            vec![("query", "select 1"), ("queryValue", "5")],
            vec![("connectionString", "u:p@tcp(db:3306)/d")],
        ),
        "artemis-queue" => (
            vec![
                ("managementEndpoint", "artemis:8161"),
                ("queueName", "jobs"),
                ("brokerName", "broker"),
                ("brokerAddress", "jobs"),
            ],
            vec![("username", "admin"), ("password", "admin")],
        ),
        "activemq" => (
            vec![
                ("managementEndpoint", "activemq:8161"),
                ("destinationName", "jobs"),
                ("brokerName", "localhost"),
            ],
            vec![("username", "admin"), ("password", "admin")],
        ),
        "beanstalkd" => (
            vec![
                ("server", "beanstalkd:11300"),
                ("tube", "jobs"),
                ("value", "5"),
            ],
            vec![],
        ),
        "nats-jetstream" => (
            vec![
                ("natsServerMonitoringEndpoint", "nats:8222"),
                ("account", "$G"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            vec![],
        ),
        "nsq" => (
            vec![
                ("nsqLookupdHTTPAddresses", "nsqlookupd:4161"),
                ("topic", "t"),
                ("channel", "c"),
            ],
            vec![],
        ),
        "rabbitmq" => (
            vec![("host", "amqp://rabbitmq:5672"), ("queueName", "jobs")],
            vec![],
        ),
        "etcd" => (
            vec![
                ("endpoints", "etcd:2379"),
                ("watchKey", "length"),
                ("value", "5"),
            ],
            vec![],
        ),
        "kafka" | "apache-kafka" => (
            vec![
                ("bootstrapServers", "kafka:9092"),
                ("consumerGroup", "g"),
                ("topic", "t"),
            ],
            vec![],
        ),
        other => panic!("no minimal trigger for {other}: add one to the compliance table"),
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn every_registered_scaler_is_compliant() {
    let types: Vec<&str> = registered_types().collect();
    assert!(types.len() >= 15, "registered: {types:?}");
    let env = BTreeMap::new();
    for ty in types {
        let (md, auth) = minimal(ty);
        let (md, auth) = (map(&md), map(&auth));
        let resource = matches!(ty, "cpu" | "memory");
        let input = |index, metric_type| TriggerInput {
            index,
            trigger_type: ty,
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &env,
            auth_params: &auth,
            metric_type,
        };
        let default_type = if resource { Some("Utilization") } else { None };
        let config = parse_trigger(&input(3, default_type))
            .unwrap_or_else(|e| panic!("{ty}: minimal trigger rejected: {e}"));
        assert_eq!(
            config.trigger(),
            TriggerRef {
                index: 3,
                trigger_type: ty.to_owned()
            }
        );
        let bounds = config.timeouts(&TimeoutDefaults::default());
        let polled = !matches!(ty, "cpu" | "memory" | "cron");
        assert_eq!(bounds.sample.is_some(), polled, "{ty}: {bounds:?}");
        assert!(
            bounds.sample.is_none_or(|d| !d.is_zero()),
            "{ty}: {bounds:?}"
        );
        let name = upstream_scaler_name(ty).unwrap_or_else(|| panic!("{ty}: no upstream name"));
        assert!(
            // Most are unexported (`redisScaler`); a few are not (`BeanstalkdScaler`).
            name.ends_with("Scaler") && name.starts_with(|c: char| c.is_ascii_alphabetic()),
            "{ty}: {name:?} is not a Go scaler struct name"
        );
        match config.metric_spec() {
            MetricSpec::External {
                metric_name,
                target,
                ..
            } => {
                assert!(!resource, "{ty} must be a Resource metric");
                assert!(
                    metric_name.starts_with("s3-"),
                    "{ty}: metric name {metric_name:?} lacks the s<index>- prefix"
                );
                assert!(
                    !metric_name.contains(['/', '.', ':', '%', '(', ')']),
                    "{ty}: {metric_name:?} not normalised"
                );
                assert!(target.is_finite(), "{ty}: target {target}");
            }
            MetricSpec::Resource { resource: r, .. } => assert_eq!(r.as_str(), ty),
        }
        if !resource {
            let err = parse_trigger(&input(0, Some("Utilization")))
                .err()
                .unwrap_or_else(|| panic!("{ty} accepted Utilization"));
            assert_eq!(err.field(), Some("metricType"), "{ty}: {err}");
            assert!(err.is_permanent());
            assert!(
                parse_trigger(&input(0, Some("Value"))).is_ok(),
                "{ty} refused metricType Value"
            );
        }
        let empty = BTreeMap::new();
        let bare = TriggerInput {
            index: 1,
            trigger_type: ty,
            namespace: "default",
            name: None,
            metadata: &empty,
            resolved_env: &env,
            auth_params: &empty,
            metric_type: default_type,
        };
        let err = parse_trigger(&bare)
            .err()
            .unwrap_or_else(|| panic!("{ty} accepted empty metadata"));
        assert!(err.is_permanent(), "{ty}: {err}");
        assert!(
            err.field().is_some(),
            "{ty}: error does not name a field: {err}"
        );
        assert!(
            err.to_string().starts_with(&format!("trigger 1 ({ty})")),
            "{ty}: {err}"
        );
    }
}

#[test]
fn unknown_types_are_permanent_errors() {
    let empty = BTreeMap::new();
    let input = TriggerInput {
        index: 0,
        trigger_type: "no-such-scaler",
        namespace: "default",
        name: None,
        metadata: &empty,
        resolved_env: &empty,
        auth_params: &empty,
        metric_type: None,
    };
    let Err(err) = parse_trigger(&input) else {
        panic!("unknown type accepted")
    };
    assert!(err.is_permanent());
    assert_eq!(err.category(), "unknown-trigger-type");
}

/// Upstream's Go struct for each trigger type: `pkg/scaling/scalers_builder.go` (v2.20.2) maps the type to
/// a constructor, and the constructor in the file named here returns a pointer to the struct. Upstream
/// labels `keda_scaler_*` series with `strings.Replace(fmt.Sprintf("%T", scaler), "*scalers.", "", 1)`
/// when the trigger has no `name` (`pkg/scaling/scale_handler.go`).
const UPSTREAM_SCALER_NAMES: &[(&str, &str)] = &[
    // pkg/scalers/cpu_memory_scaler.go: NewCPUMemoryScaler(corev1.ResourceCPU / ResourceMemory, …)
    ("cpu", "cpuMemoryScaler"),
    ("memory", "cpuMemoryScaler"),
    // pkg/scalers/kubernetes_workload_scaler.go
    ("kubernetes-workload", "kubernetesWorkloadScaler"),
    // pkg/scalers/kubernetes_resource_scaler.go
    ("kubernetes-resource", "kubernetesResourceScaler"),
    // pkg/scalers/cron_scaler.go
    ("cron", "cronScaler"),
    // pkg/scalers/external_scaler.go: NewExternalScaler / NewExternalPushScaler (which embeds it)
    ("external", "externalScaler"),
    ("external-push", "externalPushScaler"),
    // pkg/scalers/metrics_api_scaler.go
    ("metrics-api", "metricsAPIScaler"),
    // pkg/scalers/prometheus_scaler.go
    ("prometheus", "prometheusScaler"),
    // pkg/scalers/newrelic_scaler.go
    ("new-relic", "newrelicScaler"),
    // pkg/scalers/datadog_scaler.go (API and Cluster Agent modes alike)
    ("datadog", "datadogScaler"),
    // pkg/scalers/redis_scaler.go: NewRedisScaler(ctx, isClustered, isSentinel, …)
    ("redis", "redisScaler"),
    ("redis-cluster", "redisScaler"),
    ("redis-sentinel", "redisScaler"),
    // pkg/scalers/redis_streams_scaler.go: NewRedisStreamsScaler(ctx, isClustered, isSentinel, …)
    ("redis-streams", "redisStreamsScaler"),
    ("redis-cluster-streams", "redisStreamsScaler"),
    ("redis-sentinel-streams", "redisStreamsScaler"),
    // pkg/scalers/postgresql_scaler.go
    ("postgresql", "postgreSQLScaler"),
    // pkg/scalers/mysql_scaler.go
    ("mysql", "mySQLScaler"),
    // pkg/scalers/kafka_scaler.go
    ("kafka", "kafkaScaler"),
    // pkg/scalers/apache_kafka_scaler.go
    ("apache-kafka", "apacheKafkaScaler"),
    // pkg/scalers/etcd_scaler.go
    ("etcd", "etcdScaler"),
    // pkg/scalers/nats_jetstream_scaler.go
    ("nats-jetstream", "natsJetStreamScaler"),
    // pkg/scalers/nsq_scaler.go
    ("nsq", "nsqScaler"),
    // pkg/scalers/beanstalkd_scaler.go (an exported struct)
    ("beanstalkd", "BeanstalkdScaler"),
    ("rabbitmq", "rabbitMQScaler"),
    // pkg/scalers/activemq_scaler.go
    ("activemq", "activeMQScaler"),
    // pkg/scalers/artemis_scaler.go
    ("artemis-queue", "artemisScaler"),
];

#[test]
fn upstream_scaler_names_like_upstream() {
    for ty in registered_types() {
        let listed = UPSTREAM_SCALER_NAMES
            .iter()
            .find(|(t, _)| *t == ty)
            .unwrap_or_else(|| panic!("{ty}: add its upstream struct to UPSTREAM_SCALER_NAMES"));
        assert_eq!(upstream_scaler_name(ty), Some(listed.1), "{ty}");
    }
    assert_eq!(upstream_scaler_name("no-such-scaler"), None);
}

#[test]
fn scaler_labels_prefer_the_trigger_name() {
    assert_eq!(scaler_label("prometheus", None), "prometheusScaler");
    assert_eq!(scaler_label("prometheus", Some("")), "prometheusScaler");
    assert_eq!(scaler_label("redis-cluster", Some("orders")), "orders");
    assert_eq!(
        scaler_label("redis-sentinel-streams", None),
        "redisStreamsScaler"
    );
    assert_eq!(scaler_label("no-such-scaler", None), "no-such-scaler");
}

/// `activation_threshold` (what `keda simulate` replays activity with) reports the value each
/// threshold-activated scaler compares its sample against, read from its own activation key (with the
/// extra settings that decide whether the value alone decides activity); scalers with another rule report
/// none.
#[test]
fn activation_thresholds_come_from_each_scalers_own_key() {
    let env = BTreeMap::new();
    // (type, extra metadata, activation key and value, the threshold expected)
    type Case = (
        &'static str,
        Pairs,
        Option<(&'static str, &'static str)>,
        Option<f64>,
    );
    let cases: &[Case] = &[
        (
            "new-relic",
            vec![],
            Some(("activationThreshold", "2.5")),
            Some(2.5),
        ),
        (
            "prometheus",
            vec![],
            Some(("activationThreshold", "2.5")),
            Some(2.5),
        ),
        (
            "metrics-api",
            vec![],
            Some(("activationTargetValue", "2.5")),
            Some(2.5),
        ),
        (
            "kubernetes-workload",
            vec![],
            Some(("activationValue", "2.5")),
            Some(2.5),
        ),
        (
            "kubernetes-resource",
            vec![],
            Some(("activationTargetValue", "2.5")),
            Some(2.5),
        ),
        (
            "datadog",
            vec![],
            Some(("activationQueryValue", "2.5")),
            Some(2.5),
        ),
        ("datadog", vec![], None, Some(0.0)),
        (
            "redis",
            vec![],
            Some(("activationListLength", "3")),
            Some(3.0),
        ),
        ("redis", vec![], None, Some(0.0)),
        (
            "redis-cluster",
            vec![],
            Some(("activationListLength", "3")),
            Some(3.0),
        ),
        (
            "redis-sentinel",
            vec![],
            Some(("activationListLength", "3")),
            Some(3.0),
        ),
        (
            "redis-streams",
            vec![],
            Some(("activationLagCount", "3")),
            Some(3.0),
        ),
        (
            "redis-cluster-streams",
            vec![],
            Some(("activationLagCount", "3")),
            Some(3.0),
        ),
        (
            "redis-sentinel-streams",
            vec![],
            Some(("activationLagCount", "3")),
            Some(3.0),
        ),
        (
            "rabbitmq",
            vec![],
            Some(("activationValue", "2.5")),
            Some(2.5),
        ),
        (
            "rabbitmq",
            vec![("mode", "QueueLength"), ("value", "5")],
            Some(("activationValue", "3")),
            Some(3.0),
        ),
        (
            "rabbitmq",
            vec![
                ("host", "http://rabbitmq:15672/"),
                ("mode", "DeliverGetRate"),
                ("value", "5"),
            ],
            Some(("activationValue", "3")),
            Some(3.0),
        ),
        (
            "rabbitmq",
            vec![
                ("host", "http://rabbitmq:15672/"),
                ("mode", "MessageRate"),
                ("value", "5"),
            ],
            Some(("activationValue", "3")),
            None,
        ),
        (
            "nats-jetstream",
            vec![],
            Some(("activationLagThreshold", "3")),
            Some(3.0),
        ),
        (
            "nsq",
            vec![],
            Some(("activationDepthThreshold", "3")),
            Some(3.0),
        ),
        (
            "activemq",
            vec![],
            Some(("activationTargetQueueSize", "3")),
            Some(3.0),
        ),
        (
            "artemis-queue",
            vec![],
            Some(("activationQueueLength", "3")),
            Some(3.0),
        ),
        // Upstream's default activationQueueLength is 10.
        ("artemis-queue", vec![], None, Some(10.0)),
        (
            "kafka",
            vec![],
            Some(("activationLagThreshold", "3")),
            Some(3.0),
        ),
        (
            "apache-kafka",
            vec![],
            Some(("activationLagThreshold", "3")),
            Some(3.0),
        ),
        // A capped metric (one lagThreshold, 10, per partition) can fall to the threshold.
        (
            "kafka",
            vec![],
            Some(("activationLagThreshold", "10")),
            None,
        ),
        (
            "kafka",
            vec![("allowIdleConsumers", "true")],
            Some(("activationLagThreshold", "10")),
            Some(10.0),
        ),
        (
            "apache-kafka",
            vec![("allowIdleConsumers", "true")],
            Some(("activationLagThreshold", "10")),
            Some(10.0),
        ),
        (
            "kafka",
            vec![("excludePersistentLag", "true")],
            Some(("activationLagThreshold", "3")),
            None,
        ),
        (
            "apache-kafka",
            vec![("excludePersistentLag", "true")],
            Some(("activationLagThreshold", "3")),
            None,
        ),
        (
            "kafka",
            vec![("ensureEvenDistributionOfPartitions", "true")],
            Some(("activationLagThreshold", "3")),
            None,
        ),
        ("cron", vec![], None, None),
        ("cpu", vec![], None, None),
        ("external", vec![], None, None),
    ];
    for (ty, extra, key, want) in cases {
        if !registered_types().any(|t| t == *ty) {
            continue;
        }
        let (md, auth) = minimal(ty);
        let mut md = map(&md);
        md.extend(map(extra));
        if let Some((key, value)) = key {
            md.insert((*key).to_owned(), (*value).to_owned());
        }
        let auth = map(&auth);
        let input = TriggerInput {
            index: 0,
            trigger_type: ty,
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &env,
            auth_params: &auth,
            metric_type: matches!(*ty, "cpu").then_some("Utilization"),
        };
        let config = parse_trigger(&input).unwrap_or_else(|e| panic!("{ty} {md:?}: {e}"));
        assert_eq!(config.activation_threshold(), *want, "{ty} {md:?}");
    }
}
