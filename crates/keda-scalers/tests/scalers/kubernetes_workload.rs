//! kubernetes-workload: upstream's parse tables, and what a poll asks the pod source and makes of its
//! answer. The pods themselves come from the real API server in the e2e test
//! (`tests/e2e/tests/kubernetes_workload.rs`), which also checks other namespaces and labels stay out.

#![cfg(feature = "kubernetes-workload")]

use crate::harness;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use keda_scalers::pods::{PodSummary, Pods};
use keda_scalers::{BuildContext, ScalerError, TriggerInput, parse_trigger};
use serde_json::Value;

#[test]
fn parse_table() {
    let n = harness::run("kubernetes_workload.yaml", |input| {
        let c = keda_scalers::kubernetes::workload::parse_config(input)?;
        let mut m = serde_json::Map::new();
        m.insert("podSelector".into(), Value::from(c.pod_selector));
        m.insert("selector".into(), Value::from(c.selector));
        m.insert("namespace".into(), Value::from(c.namespace));
        m.insert("value".into(), Value::from(c.value));
        m.insert("activationValue".into(), Value::from(c.activation_value));
        m.insert("groupByNode".into(), Value::from(c.group_by_node));
        Ok(m)
    });
    assert!(n >= 15, "only {n} cases");
}

/// Answers every listing with its pods, or its error, and records what it was asked.
struct FakePods {
    answer: Result<Vec<PodSummary>, String>,
    asked: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl Pods for FakePods {
    async fn pods(&self, namespace: &str, selector: &str) -> Result<Vec<PodSummary>, String> {
        self.asked
            .lock()
            .expect("lock")
            .push((namespace.to_owned(), selector.to_owned()));
        self.answer.clone()
    }
}

fn running(node: &str) -> PodSummary {
    PodSummary {
        phase: Some("Running".into()),
        node_name: Some(node.into()),
    }
}

async fn sample(
    md: &[(&str, &str)],
    answer: Result<Vec<PodSummary>, String>,
) -> (
    Result<keda_scalers::Sample, ScalerError>,
    Vec<(String, String)>,
) {
    let md: BTreeMap<String, String> = md
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let empty = BTreeMap::new();
    let config = parse_trigger(&TriggerInput {
        index: 0,
        trigger_type: "kubernetes-workload",
        namespace: "team-a",
        name: None,
        metadata: &md,
        resolved_env: &empty,
        auth_params: &empty,
        metric_type: None,
    })
    .expect("parse");
    let source = Arc::new(FakePods {
        answer,
        asked: Mutex::new(Vec::new()),
    });
    let ctx = BuildContext {
        pods: Some(source.clone()),
        ..Default::default()
    };
    let scaler = config.build(&ctx).await.expect("build");
    let result = scaler.sample().await;
    let asked = source.asked.lock().expect("lock").clone();
    (result, asked)
}

#[tokio::test]
async fn a_poll_lists_the_objects_namespace_with_the_normalised_selector() {
    let pods = vec![running("n1"), running("n1"), running("n2")];
    let (got, asked) = sample(
        &[("podSelector", "app in (w1, w2)"), ("value", "1")],
        Ok(pods.clone()),
    )
    .await;
    let got = got.expect("sample");
    assert_eq!(got.value, 3.0);
    assert!(got.active);
    assert_eq!(
        asked,
        vec![("team-a".to_owned(), "app in (w1,w2)".to_owned())]
    );

    let (got, _) = sample(
        &[
            ("podSelector", "app=w"),
            ("value", "1"),
            ("groupByNode", "true"),
        ],
        Ok(pods),
    )
    .await;
    assert_eq!(got.expect("sample").value, 2.0);
}

/// Active strictly above activationValue, as upstream.
#[tokio::test]
async fn activation_is_strictly_above_activation_value() {
    let md = [
        ("podSelector", "app=w"),
        ("value", "1"),
        ("activationValue", "2"),
    ];
    let (two, _) = sample(&md, Ok(vec![running("n"), running("n")])).await;
    let two = two.expect("sample");
    assert_eq!((two.value, two.active), (2.0, false));
    let (three, _) = sample(&md, Ok(vec![running("n"), running("n"), running("n")])).await;
    let three = three.expect("sample");
    assert_eq!((three.value, three.active), (3.0, true));
    let (none, _) = sample(&[("podSelector", "app=w"), ("value", "1")], Ok(vec![])).await;
    let none = none.expect("sample");
    assert_eq!((none.value, none.active), (0.0, false));
}

#[tokio::test]
async fn a_failed_listing_is_a_transient_error_naming_it() {
    let (got, _) = sample(
        &[("podSelector", "app=w"), ("value", "1")],
        Err("pods is forbidden".into()),
    )
    .await;
    let err = got.expect_err("must fail");
    assert!(!err.is_permanent(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("inspecting kubernetes workload") && text.contains("pods is forbidden"),
        "{text}"
    );
}

/// Without API access (keda lint, the webhook) the trigger parses but cannot be built.
#[tokio::test]
async fn without_api_access_the_build_fails_naming_the_trigger() {
    let md: BTreeMap<String, String> = [("podSelector", "app=w"), ("value", "1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let empty = BTreeMap::new();
    let config = parse_trigger(&TriggerInput {
        index: 2,
        trigger_type: "kubernetes-workload",
        namespace: "team-a",
        name: None,
        metadata: &md,
        resolved_env: &empty,
        auth_params: &empty,
        metric_type: None,
    })
    .expect("parse");
    let err = config
        .build(&BuildContext::default())
        .await
        .err()
        .expect("no pod source: the build must fail");
    assert!(
        err.to_string()
            .starts_with("trigger 2 (kubernetes-workload)"),
        "{err}"
    );
}
