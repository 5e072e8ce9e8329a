//! Parsing a trigger cannot crash anything: for every registered trigger type, arbitrary metadata,
//! `<key>FromEnv` env and authentication parameters make `parse_trigger` return Ok or Err, never panic,
//! and an accepted trigger's `metric_spec()` does not panic either.
//!
//! Inputs start from a valid trigger (the compliance table's minimal one, or a case of the parse tables in
//! `tests/parse_tables`) and are then mutated: keys drawn from the scaler's own source (every string
//! literal that looks like a key) or made up, values that are huge numbers, NaN, inf, negative, unicode,
//! durations, cron fields, addresses, or several KiB long (up to 64 KiB per input). 256 cases per property
//! (`PROPTEST_CASES` overrides); every case is parsed as every registered type.

use crate::harness;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use keda_scalers::{MetricSpec, TriggerInput, parse_trigger, registered_types};
use proptest::prelude::*;
use proptest::sample::Index;

const MAX_INPUT: usize = 64 * 1024;
const MAX_VALUE: usize = 16 * 1024;

fn config() -> ProptestConfig {
    ProptestConfig {
        // 256 unless `PROPTEST_CASES` says otherwise (for a longer run by hand).
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256),
        // Failures are kept by hand, as regression cases below; nothing is written to the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The scalers' sources: their string literals are the keys (and many of the values) parse looks at.
const SOURCES: &[(&str, &str)] = &[
    (
        "cpu_memory",
        include_str!("../../src/kubernetes/cpu_memory.rs"),
    ),
    ("cron", include_str!("../../src/generic/cron.rs")),
    (
        "metrics_api",
        include_str!("../../src/generic/metrics_api.rs"),
    ),
    (
        "external",
        include_str!("../../src/generic/external/mod.rs"),
    ),
    (
        "external",
        include_str!("../../src/generic/external/channel.rs"),
    ),
    (
        "prometheus",
        include_str!("../../src/observability/prometheus.rs"),
    ),
    (
        "new_relic",
        include_str!("../../src/observability/new_relic.rs"),
    ),
    (
        "datadog",
        include_str!("../../src/observability/datadog/config.rs"),
    ),
    ("http", include_str!("../../src/http.rs")),
    ("workload", include_str!("../../src/kubernetes/workload.rs")),
    ("resource", include_str!("../../src/kubernetes/resource.rs")),
    // A scaler split into a folder contributes every file of it, under the one module name.
    ("redis", include_str!("../../src/databases/redis/mod.rs")),
    (
        "redis",
        include_str!("../../src/databases/redis/connection.rs"),
    ),
    ("redis", include_str!("../../src/databases/redis/client.rs")),
    ("redis", include_str!("../../src/databases/redis/list.rs")),
    (
        "redis_streams",
        include_str!("../../src/databases/redis_streams.rs"),
    ),
    (
        "postgresql",
        include_str!("../../src/databases/postgresql/mod.rs"),
    ),
    (
        "postgresql",
        include_str!("../../src/databases/postgresql/config.rs"),
    ),
    (
        "postgresql",
        include_str!("../../src/databases/postgresql/connection_string.rs"),
    ),
    (
        "postgresql",
        include_str!("../../src/databases/postgresql/tls.rs"),
    ),
    (
        "postgresql",
        include_str!("../../src/databases/postgresql/client.rs"),
    ),
    (
        "postgresql",
        include_str!("../../src/databases/postgresql/scaler.rs"),
    ),
    ("mysql", include_str!("../../src/databases/mysql.rs")),
    (
        "beanstalkd",
        include_str!("../../src/messaging/beanstalkd.rs"),
    ),
    ("activemq", include_str!("../../src/messaging/activemq.rs")),
    (
        "artemis_queue",
        include_str!("../../src/messaging/artemis_queue.rs"),
    ),
    (
        "nats_jetstream",
        include_str!("../../src/messaging/nats_jetstream.rs"),
    ),
    ("nsq", include_str!("../../src/messaging/nsq.rs")),
    (
        "rabbitmq",
        include_str!("../../src/messaging/rabbitmq/mod.rs"),
    ),
    (
        "rabbitmq",
        include_str!("../../src/messaging/rabbitmq/management.rs"),
    ),
    (
        "rabbitmq",
        include_str!("../../src/messaging/rabbitmq/amqp.rs"),
    ),
    ("etcd", include_str!("../../src/databases/etcd.rs")),
    ("kafka", include_str!("../../src/messaging/kafka/config.rs")),
    (
        "apache_kafka",
        include_str!("../../src/messaging/apache_kafka.rs"),
    ),
    ("input", include_str!("../../src/input.rs")),
];

/// Which sources a trigger type reads; a type missing here (a new scaler) gets all of them.
fn sources_of(trigger_type: &str) -> Vec<&'static str> {
    let modules: &[&str] = match trigger_type {
        "cpu" | "memory" => &["cpu_memory"],
        "kubernetes-workload" => &["workload"],
        "kubernetes-resource" => &["resource"],
        "cron" => &["cron"],
        "external" | "external-push" => &["external"],
        "metrics-api" => &["metrics_api", "http"],
        "prometheus" => &["prometheus", "http"],
        "new-relic" => &["new_relic", "http"],
        "datadog" => &["datadog", "http"],
        "redis" | "redis-cluster" | "redis-sentinel" => &["redis"],
        "redis-streams" | "redis-cluster-streams" | "redis-sentinel-streams" => {
            &["redis_streams", "redis"]
        }
        "postgresql" => &["postgresql"],
        "mysql" => &["mysql"],
        "kafka" => &["kafka"],
        "apache-kafka" => &["apache_kafka", "kafka"],
        "beanstalkd" => &["beanstalkd"],
        "rabbitmq" => &["rabbitmq", "http"],
        "activemq" => &["activemq", "http"],
        "artemis-queue" => &["artemis_queue", "http"],
        "nats-jetstream" => &["nats_jetstream", "http"],
        "nsq" => &["nsq", "http"],
        "etcd" => &["etcd"],
        _ => &[],
    };
    SOURCES
        .iter()
        .filter(|(m, _)| modules.is_empty() || modules.contains(m) || *m == "input")
        .map(|(_, src)| *src)
        .collect()
}

/// The plain string literals of a source file (a rough scan: escapes end a literal's use).
fn literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let lit = &after[..end];
        if !lit.contains('\\') && !lit.contains('\n') && lit.len() <= 120 {
            out.push(lit.to_owned());
        }
        rest = &after[end + 1..];
    }
    out
}

/// The literals passed first to the functions that read or name a field (`field("x")`, `.alias("x")`,
/// `.get("x")`, `error("x", …)`): the keys parse reads.
fn keys_read(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    for call in ["field(", "alias(", "get(", "error(", "config_error("] {
        let mut rest = src;
        while let Some(at) = rest.find(call) {
            let after = rest[at + call.len()..].trim_start();
            if let Some(lit) = after.strip_prefix('"')
                && let Some(end) = lit.find('"')
                && looks_like_key(&lit[..end])
            {
                out.push(lit[..end].to_owned());
            }
            rest = &rest[at + call.len()..];
        }
    }
    out
}

fn looks_like_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// A valid trigger to start from, and what a trigger type can be fed.
#[derive(Clone, Debug)]
struct Seed {
    trigger_type: String,
    metadata: BTreeMap<String, String>,
    auth: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

struct Corpus {
    types: Vec<&'static str>,
    seeds: Vec<Seed>,
    /// Per type: the keys its parse reads (from its source) and those of its seeds.
    keys: BTreeMap<&'static str, Vec<String>>,
    /// Per type: every key-like literal of its sources (enum values, JSON fields… and keys).
    words: BTreeMap<&'static str, Vec<String>>,
    /// Literals of all sources (enum values, defaults, schemes…), used as values.
    values: Vec<String>,
}

fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The compliance table's minimal valid triggers.
fn minimal(trigger_type: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    type Pairs = &'static [(&'static str, &'static str)];
    let (md, auth): (Pairs, Pairs) = match trigger_type {
        "cpu" | "memory" => (&[("value", "50")], &[]),
        "kubernetes-workload" => (&[("podSelector", "app=demo"), ("value", "1")], &[]),
        "kubernetes-resource" => (
            &[
                ("resourceKind", "ConfigMap"),
                ("resourceName", "scaling"),
                ("key", "threshold"),
                ("targetValue", "10"),
            ],
            &[],
        ),
        "cron" => (
            &[
                ("timezone", "UTC"),
                ("start", "0 9 * * *"),
                ("end", "0 18 * * *"),
                ("desiredReplicas", "3"),
            ],
            &[],
        ),
        "metrics-api" => (
            &[
                ("url", "http://api.example/m"),
                ("valueLocation", "v"),
                ("targetValue", "5"),
            ],
            &[],
        ),
        "prometheus" => (
            &[
                ("serverAddress", "http://prometheus:9090"),
                ("query", "up"),
                ("threshold", "5"),
            ],
            &[],
        ),
        "new-relic" => (
            &[
                ("nrql", "SELECT count(*) FROM Transaction"),
                ("threshold", "70"),
            ],
            &[("queryKey", "k"), ("account", "1234567")],
        ),
        "datadog" => (
            &[("query", "avg:system.cpu.user{*}"), ("queryValue", "7")],
            &[("apiKey", "a"), ("appKey", "b")],
        ),
        "redis" => (&[("address", "redis:6379"), ("listName", "jobs")], &[]),
        "redis-cluster" | "redis-sentinel" => (
            &[
                ("addresses", "redis-0:6379"),
                ("listName", "jobs"),
                ("sentinelMaster", "mymaster"),
            ],
            &[],
        ),
        "redis-streams" => (
            &[
                ("address", "redis:6379"),
                ("stream", "s"),
                ("consumerGroup", "g"),
            ],
            &[],
        ),
        "redis-cluster-streams" | "redis-sentinel-streams" => (
            &[
                ("addresses", "redis-0:6379"),
                ("stream", "s"),
                ("consumerGroup", "g"),
                ("sentinelMaster", "mymaster"),
            ],
            &[],
        ),
        "postgresql" => (
            &[("query", "select 1"), ("targetQueryValue", "5")],
            &[("connection", "host=db user=u dbname=d sslmode=disable")],
        ),
        "mysql" => (
            &[("query", "select 1"), ("queryValue", "5")],
            &[("connectionString", "u:p@tcp(db:3306)/d")],
        ),
        "artemis-queue" => (
            &[
                ("managementEndpoint", "artemis:8161"),
                ("queueName", "jobs"),
                ("brokerName", "broker"),
                ("brokerAddress", "jobs"),
            ],
            &[("username", "admin"), ("password", "admin")],
        ),
        "activemq" => (
            &[
                ("managementEndpoint", "activemq:8161"),
                ("destinationName", "jobs"),
                ("brokerName", "localhost"),
            ],
            &[("username", "admin"), ("password", "admin")],
        ),
        "beanstalkd" => (
            &[
                ("server", "beanstalkd:11300"),
                ("tube", "jobs"),
                ("value", "5"),
            ],
            &[],
        ),
        "nats-jetstream" => (
            &[
                ("natsServerMonitoringEndpoint", "nats:8222"),
                ("account", "$G"),
                ("stream", "s"),
                ("consumer", "c"),
            ],
            &[],
        ),
        "nsq" => (
            &[
                ("nsqLookupdHTTPAddresses", "nsqlookupd:4161"),
                ("topic", "t"),
                ("channel", "c"),
            ],
            &[],
        ),
        "etcd" => (
            &[
                ("endpoints", "etcd:2379"),
                ("watchKey", "length"),
                ("value", "5"),
            ],
            &[],
        ),
        _ => (&[], &[]),
    };
    (pairs(md), pairs(auth))
}

fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let types: Vec<&'static str> = registered_types().collect();
        let mut seeds: Vec<Seed> = types
            .iter()
            .map(|ty| {
                let (metadata, auth) = minimal(ty);
                Seed {
                    trigger_type: (*ty).to_owned(),
                    metadata,
                    auth,
                    env: BTreeMap::new(),
                }
            })
            .collect();
        let dir = format!("{}/tests/parse_tables", env!("CARGO_MANIFEST_DIR"));
        let mut tables: Vec<String> = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| name.ends_with(".yaml"))
                    .collect()
            })
            .unwrap_or_default();
        tables.sort();
        for table in tables {
            seeds.extend(
                harness::load(&table)
                    .into_iter()
                    .filter(|c| types.contains(&c.trigger_type.as_str()))
                    .map(|c| Seed {
                        trigger_type: c.trigger_type,
                        metadata: c.metadata,
                        auth: c.auth,
                        env: c.env,
                    }),
            );
        }
        let mut keys = BTreeMap::new();
        let mut words = BTreeMap::new();
        for ty in &types {
            let mut set: BTreeSet<String> =
                sources_of(ty).into_iter().flat_map(keys_read).collect();
            for seed in seeds.iter().filter(|s| s.trigger_type == *ty) {
                set.extend(seed.metadata.keys().cloned());
                set.extend(seed.auth.keys().cloned());
            }
            keys.insert(*ty, set.into_iter().collect());
            let all: BTreeSet<String> = sources_of(ty)
                .into_iter()
                .flat_map(literals)
                .filter(|l| looks_like_key(l))
                .collect();
            words.insert(*ty, all.into_iter().collect());
        }
        let values: BTreeSet<String> = SOURCES.iter().flat_map(|(_, src)| literals(src)).collect();
        Corpus {
            types,
            seeds,
            keys,
            words,
            values: values.into_iter().collect(),
        }
    })
}

/// Which map a mutation changes.
#[derive(Clone, Copy, Debug)]
enum Target {
    Metadata,
    Auth,
    Env,
}

#[derive(Clone, Debug)]
enum Key {
    /// One of the keys the type's parse reads.
    Known(Index),
    /// Any key-like literal of the type's sources.
    Word(Index),
    /// `<known key>FromEnv`, pointing at one of the env names below.
    FromEnv(Index),
    /// One of a few env var names.
    EnvName(Index),
    Random(String),
}

#[derive(Clone, Debug)]
enum Value {
    /// A literal of the scalers' sources.
    Literal(Index),
    /// An env var name (for `<key>FromEnv`).
    EnvName(Index),
    Text(String),
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(Target, Key, Value),
    Remove(Target, Index),
    Clear(Target),
}

const ENV_NAMES: &[&str] = &["A", "B", "HOST", "PASSWORD", " A ", ""];

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        6 => Just(Target::Metadata),
        2 => Just(Target::Auth),
        1 => Just(Target::Env),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        8 => any::<Index>().prop_map(Key::Known),
        1 => any::<Index>().prop_map(Key::Word),
        2 => any::<Index>().prop_map(Key::FromEnv),
        1 => any::<Index>().prop_map(Key::EnvName),
        1 => any::<String>().prop_map(Key::Random),
    ]
}

/// Values parse code has to survive: numbers at and past every limit, non-numbers where numbers go,
/// durations, cron fields, addresses, connection strings, unicode.
const SPECIAL_VALUES: &[&str] = &[
    "",
    " ",
    "0",
    "-0",
    "1",
    "-1",
    "5",
    "0.5",
    "-0.5",
    "1e3",
    "1e308",
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "+Inf",
    "Infinity",
    "1_000",
    "0x10",
    "0b1",
    "1.",
    ".5",
    "1.5.2",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "2147483648",
    "65535",
    "65536",
    "-65536",
    "true",
    "false",
    "TRUE",
    "t",
    "yes",
    "null",
    "5s",
    "-5s",
    "1m30s",
    "1h",
    "250ms",
    "µs",
    "1e400s",
    "99999999999999999999s",
    "18446744073709551615s",
    "18446744073709551615",
    "5124095576030431h",
    "307445734561825861m",
    "1.5h",
    ".s",
    "5x",
    "1e3ms",
    "1..2s",
    "0s",
    "s",
    "* * * * *",
    "*/0 * * * *",
    "60 25 32 13 8",
    "0 0 31 2 *",
    "0 0 30 2 *",
    "@yearly",
    "@every 1s",
    "0 0 * * * * * *",
    "L W # ?",
    "1-0 * * * *",
    "59-0 * * * *",
    "*/99999999999 * * * *",
    "0 0 29 2 1",
    "UTC",
    "Local",
    "Europe/Berlin",
    "Nowhere/City",
    "+99:99",
    "http://",
    "https://[::1",
    "http://x:99999",
    "http://x:65536/",
    "unix:///",
    ":::",
    "a:b:c",
    "[::1]:6379",
    "[::1",
    "redis://",
    "rediss://u:p@h:1/0",
    "host:",
    ":6379",
    "a,b,,c",
    ",",
    "host=db user=u dbname=d sslmode=disable",
    "postgres://u:p@h:99999/d",
    "host=",
    "port=99999999",
    "connect_timeout=99999999999",
    "connect_timeout=-1",
    "u:p@tcp(db:3306)/d?timeout=99999999999h&readTimeout=-1s",
    "u:p@tcp(db:3306)/d?timeout=1e400s",
    "u:p@tcp(:)/",
    "@",
    "%",
    "%zz",
    "{",
    "}",
    "[",
    "]",
    "$.a[",
    "a.b.#",
    "é",
    "🦀",
    "\u{0}",
    "\u{feff}",
    "ǅ",
    "٣",
    "AverageValue",
    "Value",
    "Utilization",
    "0.0000000001",
    "1e-320",
    "-1e-320",
    "4.9e-324",
    "1.7976931348623157e308",
];

/// Values parse code has to survive: numbers at and past every limit, non-numbers where numbers go,
/// durations, cron fields, addresses, connection strings, unicode, and long text.
fn text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(SPECIAL_VALUES.to_vec()).prop_map(str::to_owned);
    let number = prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| format!("{u}s")),
        (
            1..400usize,
            prop::sample::select(vec!["", "s", "ms", "h", ".5", "e9"])
        )
            .prop_map(|(n, suffix)| format!("{}{suffix}", "9".repeat(n))),
    ];
    let long = (any::<String>(), 1..MAX_VALUE).prop_map(|(piece, len)| {
        let piece = if piece.is_empty() {
            "x".to_owned()
        } else {
            piece
        };
        let mut s = piece.repeat(len / piece.len() + 1);
        let mut end = len.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s
    });
    prop_oneof![
        6 => special,
        4 => number,
        2 => any::<String>(),
        1 => long,
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => any::<Index>().prop_map(Value::Literal),
        1 => any::<Index>().prop_map(Value::EnvName),
        6 => text().prop_map(Value::Text),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        8 => (target(), key(), value()).prop_map(|(t, k, v)| Mutation::Set(t, k, v)),
        2 => (target(), any::<Index>()).prop_map(|(t, i)| Mutation::Remove(t, i)),
        1 => target().prop_map(Mutation::Clear),
    ]
}

/// A fuzz case: a seed, the mutations applied to it, and the trigger's other fields.
#[derive(Clone, Debug)]
struct Case {
    /// A registered type, then one of its seeds.
    trigger_type: Index,
    seed: Index,
    mutations: Vec<Mutation>,
    index: usize,
    name: Option<String>,
    metric_type: Option<String>,
}

fn case() -> impl Strategy<Value = Case> {
    let metric_type = prop_oneof![
        Just(None),
        prop::sample::select(vec!["AverageValue", "Value", "Utilization", " Value ", ""])
            .prop_map(|s| Some(s.to_owned())),
        any::<String>().prop_map(Some),
    ];
    let index = prop_oneof![0..10usize, any::<usize>()];
    (
        (any::<Index>(), any::<Index>()),
        prop::collection::vec(mutation(), 0..10),
        index,
        proptest::option::of(any::<String>()),
        metric_type,
    )
        .prop_map(
            |((trigger_type, seed), mutations, index, name, metric_type)| Case {
                trigger_type,
                seed,
                mutations,
                index,
                name,
                metric_type,
            },
        )
}

fn map(seed: &mut Seed, t: Target) -> &mut BTreeMap<String, String> {
    match t {
        Target::Metadata => &mut seed.metadata,
        Target::Auth => &mut seed.auth,
        Target::Env => &mut seed.env,
    }
}

/// The maps a case describes, for the seed's trigger type.
fn build(case: &Case) -> Seed {
    let corpus = corpus();
    let trigger_type = *case.trigger_type.get(&corpus.types);
    let of_type: Vec<&Seed> = corpus
        .seeds
        .iter()
        .filter(|s| s.trigger_type == trigger_type)
        .collect();
    // Every type has its minimal seed (checked by `the_corpus_covers_every_registered_type`).
    let mut seed = case.seed.get(&of_type).to_owned().clone();
    let no_keys = Vec::new();
    let keys = corpus
        .keys
        .get(seed.trigger_type.as_str())
        .unwrap_or(&no_keys);
    let words = corpus
        .words
        .get(seed.trigger_type.as_str())
        .unwrap_or(&no_keys);
    let pick = |list: &[String], i: &Index| -> String {
        if list.is_empty() {
            String::new()
        } else {
            i.get(list).clone()
        }
    };
    for m in &case.mutations {
        match m {
            Mutation::Set(t, k, v) => {
                let k = match k {
                    Key::Known(i) => pick(keys, i),
                    Key::Word(i) => pick(words, i),
                    Key::FromEnv(i) => format!("{}FromEnv", pick(keys, i)),
                    Key::EnvName(i) => (*i.get(ENV_NAMES)).to_owned(),
                    Key::Random(s) => s.clone(),
                };
                let v = match v {
                    Value::Literal(i) => pick(&corpus.values, i),
                    Value::EnvName(i) => (*i.get(ENV_NAMES)).to_owned(),
                    Value::Text(s) => s.clone(),
                };
                map(&mut seed, *t).insert(k, v);
            }
            Mutation::Remove(t, i) => {
                let m = map(&mut seed, *t);
                if !m.is_empty() {
                    let key = i.get(&m.keys().cloned().collect::<Vec<_>>()).clone();
                    m.remove(&key);
                }
            }
            Mutation::Clear(t) => map(&mut seed, *t).clear(),
        }
    }
    // At most 64 KiB in all: drop values from the largest down.
    let size = |s: &Seed| -> usize {
        [&s.metadata, &s.auth, &s.env]
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum()
    };
    while size(&seed) > MAX_INPUT {
        let largest = [&mut seed.metadata, &mut seed.auth, &mut seed.env]
            .into_iter()
            .flat_map(|m| m.values_mut())
            .max_by_key(|v| v.len());
        if let Some(v) = largest {
            v.clear();
        }
    }
    seed
}

/// Parses `seed`'s maps as `trigger_type` with `case`'s other fields; panics only if parse or
/// metric_spec does (or an error does not name its trigger).
fn parse_as(trigger_type: &str, seed: &Seed, case: &Case) {
    let input = TriggerInput {
        index: case.index,
        trigger_type,
        namespace: "default",
        name: case.name.as_deref(),
        metadata: &seed.metadata,
        resolved_env: &seed.env,
        auth_params: &seed.auth,
        metric_type: case.metric_type.as_deref(),
    };
    match parse_trigger(&input) {
        Ok(config) => {
            if let MetricSpec::External { metric_name, .. } = config.metric_spec() {
                let prefix = format!("s{}-", case.index);
                assert!(
                    metric_name.starts_with(&prefix),
                    "{trigger_type}: {metric_name}"
                );
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains(trigger_type), "{trigger_type}: {message}");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// A mutated valid trigger, parsed as its own type and as every other registered type.
    #[test]
    fn parse_never_panics(case in case()) {
        let seed = build(&case);
        parse_as(&seed.trigger_type, &seed, &case);
        for ty in &corpus().types {
            parse_as(ty, &seed, &case);
        }
    }

    /// Maps of nothing but made-up keys and values (up to 64 KiB), parsed as every type.
    #[test]
    fn random_maps_never_panic(
        mut metadata in prop::collection::btree_map(any::<String>(), text(), 0..12),
        auth in prop::collection::btree_map(any::<String>(), text(), 0..4),
        case in case(),
    ) {
        let size: usize = metadata.iter().chain(&auth).map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_INPUT {
            metadata.clear();
        }
        let seed = Seed { trigger_type: String::new(), metadata, auth, env: BTreeMap::new() };
        for ty in &corpus().types {
            parse_as(ty, &seed, &case);
        }
    }
}

/// Every registered type has a seed and keys to fuzz with.
#[test]
fn the_corpus_covers_every_registered_type() {
    let corpus = corpus();
    assert!(corpus.types.len() >= 15, "{:?}", corpus.types);
    for ty in &corpus.types {
        let seed = corpus
            .seeds
            .iter()
            .find(|s| s.trigger_type == *ty)
            .unwrap_or_else(|| panic!("no seed for {ty}"));
        assert!(
            corpus
                .keys
                .get(ty)
                .is_some_and(|k| k.len() >= seed.metadata.len()),
            "{ty}: keys {:?}",
            corpus.keys.get(ty)
        );
    }
    assert!(
        corpus.seeds.len() > corpus.types.len(),
        "the parse tables were not read"
    );
}

/// Every known key of every type, set to every special value — in the metadata, through
/// `<key>FromEnv`, and in the auth params — on top of the type's minimal trigger: the deterministic
/// complement of the random cases, which rarely hit one given key with one given value.
#[test]
fn every_known_key_takes_every_special_value() {
    let corpus = corpus();
    let case = Case {
        trigger_type: any_index(),
        seed: any_index(),
        mutations: Vec::new(),
        index: 7,
        name: None,
        metric_type: None,
    };
    let mut parses = 0;
    let mut panics = Vec::new();
    for ty in &corpus.types {
        let (metadata, auth) = minimal(ty);
        let base = Seed {
            trigger_type: (*ty).to_owned(),
            metadata,
            auth,
            env: BTreeMap::new(),
        };
        for key in &corpus.keys[ty] {
            for value in SPECIAL_VALUES {
                for target in [Target::Metadata, Target::Auth, Target::Env] {
                    let mut seed = base.clone();
                    match target {
                        Target::Metadata => {
                            seed.metadata.insert(key.clone(), (*value).to_owned());
                        }
                        Target::Auth => {
                            seed.auth.insert(key.clone(), (*value).to_owned());
                        }
                        Target::Env => {
                            seed.metadata.remove(key);
                            seed.metadata
                                .insert(format!("{key}FromEnv"), "A".to_owned());
                            seed.env.insert("A".to_owned(), (*value).to_owned());
                        }
                    }
                    let parse = std::panic::AssertUnwindSafe(|| parse_as(ty, &seed, &case));
                    if std::panic::catch_unwind(parse).is_err() {
                        panics.push(format!("{ty}: {key} = {value:?} in {target:?}"));
                    }
                    parses += 1;
                }
            }
        }
    }
    assert!(
        panics.is_empty(),
        "parse panicked for:\n{}",
        panics.join("\n")
    );
    assert!(parses > 10_000, "{parses}");
}

fn any_index() -> Index {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    any::<Index>()
        .new_tree(&mut TestRunner::deterministic())
        .map(|t| t.current())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Inputs the fuzzer found panicking, kept as cases: each is now a configuration error naming its field.
#[test]
fn regressions() {
    let cases: &[(&str, &str, &str)] = &[
        // `Duration::from_secs_f64` panicked past `Duration::MAX` (input.rs, Go duration strings).
        ("prometheus", "timeout", "99999999999999999999s"),
        ("metrics-api", "timeout", "18446744073709551615s"),
        ("datadog", "timeout", "5124095576030431h"),
        ("prometheus", "timeout", "307445734561825861m"),
    ];
    let env = BTreeMap::new();
    for (ty, key, value) in cases {
        if !corpus().types.contains(ty) {
            continue;
        }
        let (mut metadata, auth) = minimal(ty);
        metadata.insert((*key).to_owned(), (*value).to_owned());
        let input = TriggerInput {
            index: 0,
            trigger_type: ty,
            namespace: "default",
            name: None,
            metadata: &metadata,
            resolved_env: &env,
            auth_params: &auth,
            metric_type: None,
        };
        match parse_trigger(&input) {
            Ok(config) => panic!("{ty}: {key} = {value:?} accepted: {config:?}"),
            Err(e) => {
                assert_eq!(e.field(), Some(*key), "{ty}: {e}");
                assert!(e.is_permanent(), "{ty}: {e}");
            }
        }
    }
}
