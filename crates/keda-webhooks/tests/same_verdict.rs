//! One rulebook: the same ScaledObjects through `keda lint`'s pipeline (`keda_check::manifests`) and
//! through the admission webhook as the chart runs it reach the same verdict.

use keda_api::ScaledObject;
use keda_check::manifests::{self, ObjectFinding};
use keda_resolver::Resolver;
use keda_webhooks::MemoryCluster;

/// What every case shares: a Deployment, a TriggerAuthentication whose `apiKey` comes from a Secret (the
/// Secret is in the input, so `keda lint` reads it; the webhook, which reads no Secrets, stands a
/// placeholder in for it).
const CONTEXT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 30
      containers: [{name: app, image: x, env: [{name: REDIS_ADDR, value: 'redis:6379'}]}]
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: team}
stringData: {key: s3cret}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: api-auth, namespace: team}
spec:
  secretTargetRef: [{parameter: apiKey, name: creds, key: key}]
";

fn scaled_object(spec: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: so, namespace: team}}\nspec:\n  scaleTargetRef: {{name: web}}\n  advanced: {{horizontalPodAutoscalerConfig: {{behavior: {{scaleDown: {{stabilizationWindowSeconds: 60}}}}}}}}\n{spec}"
    )
}

const API: &str = "  - type: metrics-api\n    metadata: {url: 'http://api.example/m', valueLocation: v, targetValue: '5', authMode: apiKey}\n    authenticationRef: {name: api-auth}\n";

/// One rulebook: the same ScaledObject, through `keda lint` and through the admission webhook as the
/// chart runs it (TriggerAuthentications read, Secrets not), is accepted by both or refused by both,
/// and every field lint refuses is named in the webhook's denial.
#[tokio::test]
async fn lint_and_the_webhook_reach_the_same_verdict() {
    let cases: &[(&str, String, bool)] = &[
            (
                "apiKey from a Secret",
                scaled_object(&format!("  triggers:\n{API}")),
                true,
            ),
            (
                "env value",
                scaled_object("  triggers:\n  - type: redis\n    metadata: {addressFromEnv: REDIS_ADDR, listName: jobs}\n"),
                true,
            ),
            (
                "env variable the container does not have",
                scaled_object("  triggers:\n  - type: redis\n    metadata: {addressFromEnv: NOPE, listName: jobs}\n"),
                false,
            ),
            (
                "missing field next to Secret-backed parameters",
                scaled_object("  triggers:\n  - type: metrics-api\n    metadata: {url: 'http://api.example/m', targetValue: '5', authMode: apiKey}\n    authenticationRef: {name: api-auth}\n"),
                false,
            ),
            (
                "bad number",
                scaled_object("  triggers:\n  - type: metrics-api\n    metadata: {url: 'http://a/b', valueLocation: v, targetValue: five}\n"),
                false,
            ),
            (
                "missing TriggerAuthentication",
                scaled_object(&format!("  triggers:\n{}", API.replace("api-auth", "nope"))),
                false,
            ),
            (
                "min above max",
                scaled_object(&format!("  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers:\n{API}")),
                false,
            ),
            (
                "idle not below min",
                scaled_object(&format!("  minReplicaCount: 2\n  idleReplicaCount: 2\n  triggers:\n{API}")),
                false,
            ),
            ("no triggers", scaled_object("  triggers: []\n"), false),
            (
                "duplicate trigger names",
                scaled_object(&format!(
                    "  triggers:\n{}{}",
                    API.replace("  - type: metrics-api\n", "  - type: metrics-api\n    name: a\n"),
                    API.replace("  - type: metrics-api\n", "  - type: metrics-api\n    name: a\n")
                )),
                false,
            ),
            (
                "useCachedMetrics on cpu",
                scaled_object("  triggers:\n  - type: cpu\n    metricType: Utilization\n    useCachedMetrics: true\n    metadata: {value: '50'}\n"),
                false,
            ),
            (
                "unknown trigger type",
                scaled_object("  triggers:\n  - type: no-such-scaler\n    metadata: {}\n"),
                false,
            ),
            (
                "formula naming no trigger",
                scaled_object(&format!(
                    "  advanced:\n    scalingModifiers: {{formula: 'x + 1', target: '5'}}\n  triggers:\n{API}"
                ))
                .replace("  advanced: {horizontalPodAutoscalerConfig: {behavior: {scaleDown: {stabilizationWindowSeconds: 60}}}}\n", ""),
                false,
            ),
        ];
    for (name, so, accepted) in cases {
        let text = format!("{CONTEXT}---\n{so}");

        let mut docs = Vec::new();
        manifests::parse_text(name, &text, false, &mut docs).expect("test input parses");
        let lint_errors: Vec<ObjectFinding> =
            manifests::check(docs, "keda", keda_scalers::files::FileRoot::unset(), None)
                .await
                .into_iter()
                .filter(|r| r.is_error() && r.kind == "ScaledObject")
                .collect();

        let mut docs = Vec::new();
        manifests::parse_text(name, &text, false, &mut docs).expect("test input parses");
        let set = manifests::collect(docs);
        let mut cluster = MemoryCluster::default();
        for w in &set.workloads {
            cluster.workloads.insert(
                (
                    w.meta.namespace.clone(),
                    w.meta.kind.clone(),
                    w.meta.name.clone(),
                ),
                k8s_openapi::api::core::v1::PodTemplateSpec {
                    metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        labels: Some(w.pod_labels.clone()),
                        ..Default::default()
                    }),
                    spec: Some(w.pod_spec.clone()),
                },
            );
        }
        let webhook = keda_webhooks::Webhook {
            index: std::sync::Arc::new(keda_webhooks::Index::new()),
            resolver: Resolver::new(keda_resolver::AuthObjectsOnly(set.source), "keda"),
            cluster,
            metrics: keda_webhooks::Metrics::default(),
        };
        let so: ScaledObject = serde_yaml_ng::from_str(so).expect("ScaledObject");
        let outcome = webhook.scaled_object(&so, "team", false).await;

        assert_eq!(
            lint_errors.is_empty(),
            *accepted,
            "{name}: lint: {lint_errors:?}"
        );
        assert_eq!(
            outcome.errors.is_empty(),
            *accepted,
            "{name}: webhook: {:?}",
            outcome.errors
        );
        let denial = outcome.message().unwrap_or_default();
        for e in &lint_errors {
            let said = denial.contains(&e.field) || denial.contains(&e.message);
            assert!(
                said,
                "{name}: lint refuses {e:?}, the webhook says {denial:?}"
            );
        }
    }
}
