//! The structural rules of KEDA objects, with upstream's messages: what the admission webhook checks on a
//! ScaledObject, ScaledJob, TriggerAuthentication or ClusterTriggerAuthentication apart from the lookups of
//! other objects and the scalers' own parse. The operator refuses what [`reconcile_refusal`] returns.
//! Upstream stops at the first error; these return every finding, so a caller that wants upstream's
//! single message takes the first error.
//!
//! The `advanced.scalingModifiers.formula` check is here too: the formula is compiled and run once with
//! every trigger at -1 by the formula engine of `keda-core` (upstream's validation), within that
//! engine's limits on length, size and nesting.

use std::collections::BTreeSet;

use keda_api::ScaleTriggers;
use keda_api::scaled_job::ScaledJob;
use keda_api::scaled_object::{FallbackBehavior, ScaledObject};
use keda_api::trigger_auth::{IdentityOwner, PodIdentityProvider, TriggerAuthenticationSpec};
use keda_core::formula;

use crate::finding::{Finding, Severity, codes};

/// Longest label value: the ScaledObject name is a label value, and so is the HPA name.
const MAX_LABEL_VALUE_LENGTH: usize = 63;

fn is_resource_trigger(t: &ScaleTriggers) -> bool {
    t.r#type == "cpu" || t.r#type == "memory"
}

/// The checks of a ScaledObject: name lengths, replica bounds, fallback, scalingModifiers (the formula
/// compiled and validated), triggers, and the warnings for `pollingInterval` / `cooldownPeriod` that
/// have no effect.
pub fn scaled_object(so: &ScaledObject) -> Vec<Finding> {
    let mut out = Vec::new();
    let spec = &so.spec;
    let name = so.metadata.name.as_deref().unwrap_or_default();

    if name.len() > MAX_LABEL_VALUE_LENGTH {
        out.push(Finding::error(
            "metadata.name",
            codes::NAME_TOO_LONG,
            format!(
                "the name is {} characters long; at most {MAX_LABEL_VALUE_LENGTH} are allowed because it is used as the value of label scaledobject.keda.sh/name",
                name.len()
            ),
        ));
    }
    let hpa_name = so.hpa_name();
    if hpa_name.len() > MAX_LABEL_VALUE_LENGTH {
        out.push(Finding::error(
            "spec.advanced.horizontalPodAutoscalerConfig.name",
            codes::HPA_NAME_TOO_LONG,
            format!(
                "the HPA name {hpa_name:?} is {} characters long; at most {MAX_LABEL_VALUE_LENGTH} are allowed: set spec.advanced.horizontalPodAutoscalerConfig.name or shorten the ScaledObject name",
                hpa_name.len()
            ),
        ));
    }

    out.extend(replica_bounds(so));

    let modifiers = spec.scaling_modifiers();
    if let Some(fallback) = &spec.fallback {
        if fallback.failure_threshold < 0 || fallback.replicas < 0 {
            out.push(Finding::error(
                "spec.fallback",
                codes::INCORRECT_FALLBACK,
                format!(
                    "failureThreshold ({}) and replicas ({}) must both be 0 or more",
                    fallback.failure_threshold, fallback.replicas
                ),
            ));
        }
        if modifiers.is_none() && spec.triggers.iter().all(is_resource_trigger) {
            out.push(Finding::error(
                "spec.fallback",
                codes::INCORRECT_FALLBACK,
                "fallback needs at least one trigger that is not cpu or memory (their metrics come from the resource metrics API, not from KEDA)",
            ));
        }
        if fallback.behavior == FallbackBehavior::ScalingModifiers
            && modifiers
                .and_then(|m| m.formula.as_deref())
                .is_none_or(str::is_empty)
        {
            out.push(Finding::error(
                "spec.fallback.behavior",
                codes::SCALING_MODIFIERS_FALLBACK,
                "fallback behavior scalingModifiers needs advanced.scalingModifiers.formula",
            ));
        }
    }

    if let Some(m) = modifiers {
        let formula = m.formula.as_deref().unwrap_or("");
        let target = m.target.as_deref().unwrap_or("");
        if formula.is_empty() {
            out.push(Finding::error(
                "spec.advanced.scalingModifiers.formula",
                codes::SCALING_MODIFIERS,
                "formula is required when scalingModifiers is set",
            ));
        } else if target.is_empty() {
            out.push(Finding::error(
                "spec.advanced.scalingModifiers.target",
                codes::SCALING_MODIFIERS,
                "target is required when a formula is given",
            ));
        }
        if !target.is_empty()
            && !target
                .parse::<f64>()
                .is_ok_and(|t| t > 0.0 && t.is_finite())
        {
            out.push(Finding::error(
                "spec.advanced.scalingModifiers.target",
                codes::SCALING_MODIFIERS,
                format!("target {target:?} must be a number greater than 0"),
            ));
        }
        if let Some(activation) = m.activation_target.as_deref().filter(|a| !a.is_empty())
            && activation.parse::<f64>().is_err()
        {
            out.push(Finding::error(
                "spec.advanced.scalingModifiers.activationTarget",
                codes::SCALING_MODIFIERS,
                format!("activationTarget {activation:?} is not a number"),
            ));
        }
        if !formula.is_empty()
            && let Err(e) = formula::validate(formula, formula::trigger_names(so))
        {
            out.push(Finding::error(
                formula::FORMULA_FIELD,
                codes::SCALING_MODIFIERS,
                formula_message(&e),
            ));
        }
    }

    out.extend(triggers(&spec.triggers));

    // Upstream's warnings: both settings only matter when KEDA itself scales to zero or to idle (and
    // pollingInterval also when metrics are cached by the scale loop).
    let raw_min = spec.min_replica_count.unwrap_or(0);
    let idle_set = spec.idle_replica_count.is_some();
    let cached = spec.triggers.iter().any(ScaleTriggers::use_cached_metrics);
    if spec.polling_interval.is_some() && raw_min > 0 && !idle_set && !cached {
        out.push(Finding::warning(
            "spec.pollingInterval",
            codes::POLLING_INTERVAL_NO_EFFECT,
            "pollingInterval has no effect here: it only matters with minReplicaCount 0, idleReplicaCount set, or useCachedMetrics (between 1 and max replicas the HPA polls the metrics itself)",
        ));
    }
    if spec.cooldown_period.is_some() && raw_min > 0 && !idle_set {
        out.push(Finding::warning(
            "spec.cooldownPeriod",
            codes::COOLDOWN_WITHOUT_SCALE_TO_ZERO,
            "cooldownPeriod has no effect here: it only delays scaling to zero (minReplicaCount 0) or to idleReplicaCount; scale-in between minReplicaCount and maxReplicaCount is the HPA's (use advanced.horizontalPodAutoscalerConfig.behavior.scaleDown)",
        ));
    }
    out
}

/// What a finding on the formula says: the engine's error, without the field name that the finding
/// carries already (the limit errors start with it).
fn formula_message(e: &keda_core::Error) -> String {
    match e {
        keda_core::Error::InvalidScalingModifiers { reason } => reason
            .strip_prefix(formula::FORMULA_FIELD)
            .and_then(|r| r.strip_prefix(": "))
            .unwrap_or(reason)
            .to_owned(),
        e => e.to_string(),
    }
}

/// The checks of a ScaledJob: its triggers, which may not set `metricType`.
pub fn scaled_job(sj: &ScaledJob) -> Vec<Finding> {
    let mut out = triggers(&sj.spec.triggers);
    for (i, t) in sj.spec.triggers.iter().enumerate() {
        if t.metric_type.as_deref().is_some_and(|m| !m.is_empty()) {
            out.push(Finding::error(
                format!("spec.triggers[{i}].metricType"),
                codes::METRIC_TYPE_IN_SCALED_JOB,
                "metricType cannot be set in ScaledJob triggers",
            ));
        }
    }
    out
}

/// The replica bounds, with upstream's arithmetic and messages (`CheckReplicaCountBoundsAreValid`): a set
/// minReplicaCount counts as the HPA's minimum (0 becomes 1), an unset one as 0.
pub fn replica_bounds(so: &ScaledObject) -> Vec<Finding> {
    let spec = &so.spec;
    let mut out = Vec::new();
    let min = if spec.min_replica_count.is_some() {
        spec.hpa_min_replicas()
    } else {
        0
    };
    let max = spec.max_replica_count();
    if min > max {
        out.push(Finding::error(
            "spec.minReplicaCount",
            codes::INCORRECT_REPLICAS,
            format!("MinReplicaCount={min} must be less than MaxReplicaCount={max}"),
        ));
    }
    if let Some(idle) = spec.idle_replica_count
        && idle >= min
    {
        out.push(Finding::error(
            "spec.idleReplicaCount",
            codes::INCORRECT_REPLICAS,
            format!("IdleReplicaCount={idle} must be less than MinReplicaCount={min}"),
        ));
    }
    out
}

/// What the operator's reconcile refuses a ScaledObject for (Ready=False), in upstream's order: the
/// replica bounds, then the triggers. The webhook and `keda lint` report the same findings among
/// others, so all three agree on these rules and their words.
pub fn reconcile_refusal(so: &ScaledObject) -> Option<Finding> {
    replica_bounds(so)
        .into_iter()
        .chain(triggers(&so.spec.triggers))
        .find(|f| f.severity == Severity::Error)
}

/// The checks every trigger list gets, with upstream's messages (`ValidateTriggers`): at least one
/// trigger, no `useCachedMetrics` on cpu, memory and cron, unique names.
pub fn triggers(triggers: &[ScaleTriggers]) -> Vec<Finding> {
    let mut out = Vec::new();
    if triggers.is_empty() {
        out.push(Finding::error(
            "spec.triggers",
            codes::INCORRECT_TRIGGERS,
            "no triggers defined in the ScaledObject/ScaledJob",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, t) in triggers.iter().enumerate() {
        if t.use_cached_metrics() && matches!(t.r#type.as_str(), "cpu" | "memory" | "cron") {
            out.push(Finding::error(
                format!("spec.triggers[{i}].useCachedMetrics"),
                codes::INCORRECT_TRIGGERS,
                format!(
                    "property \"useCachedMetrics\" is not supported for {:?} scaler",
                    t.r#type
                ),
            ));
        }
        if let Some(name) = t.name.as_deref().filter(|n| !n.is_empty())
            && !names.insert(name)
        {
            out.push(Finding::error(
                format!("spec.triggers[{i}].name"),
                codes::INCORRECT_TRIGGERS,
                format!(
                    "triggerName {name:?} is defined multiple times in the ScaledObject/ScaledJob, but it must be unique"
                ),
            ));
        }
    }
    out
}

/// The checks of a TriggerAuthentication or ClusterTriggerAuthentication spec: pod identity fields that
/// go together, and the oauth2 block.
pub fn trigger_authentication(spec: &TriggerAuthenticationSpec) -> Vec<Finding> {
    let mut out = Vec::new();
    let empty = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
    if let Some(id) = &spec.pod_identity {
        let mut bad = |field: &str, message: &str| {
            out.push(Finding::error(
                format!("spec.podIdentity.{field}"),
                codes::INVALID_POD_IDENTITY,
                message,
            ))
        };
        match id.provider {
            PodIdentityProvider::AzureWorkload => {
                if id.identity_id.as_deref() == Some("") {
                    bad("identityId", "identityId must not be empty when it is set");
                }
                if !empty(&id.identity_authority_host) {
                    if empty(&id.identity_tenant_id) {
                        bad(
                            "identityTenantId",
                            "identityTenantId is required when identityAuthorityHost is set",
                        );
                    }
                } else if id.identity_tenant_id.as_deref() == Some("") {
                    bad(
                        "identityTenantId",
                        "identityTenantId must not be empty when it is set",
                    );
                }
            }
            PodIdentityProvider::Aws => {
                if !empty(&id.role_arn) && id.identity_owner == Some(IdentityOwner::Workload) {
                    bad(
                        "roleArn",
                        "roleArn cannot be set when identityOwner is workload (KEDA must own the identity to assume a role)",
                    );
                }
                if !empty(&id.external_id) && empty(&id.role_arn) {
                    bad("externalID", "externalID requires roleArn");
                }
            }
            _ => {}
        }
    }
    if let Some(oauth2) = &spec.oauth2 {
        if oauth2.client_id.is_empty() {
            out.push(Finding::error(
                "spec.oauth2.clientId",
                codes::INVALID_OAUTH2,
                "clientId is required",
            ));
        }
        if !is_http_url(&oauth2.token_url) {
            out.push(Finding::error(
                "spec.oauth2.tokenUrl",
                codes::INVALID_OAUTH2,
                format!(
                    "tokenUrl {:?} must be an http or https URL",
                    oauth2.token_url
                ),
            ));
        }
    }
    out
}

/// `http(s)://host…` with a non-empty host.
fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or("");
        !host.is_empty() && !host.starts_with(':')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so(yaml: &str) -> ScaledObject {
        serde_yaml_ng::from_str(yaml).expect("valid ScaledObject")
    }

    fn codes_of(findings: &[Finding]) -> Vec<(&str, &str)> {
        findings
            .iter()
            .map(|f| (f.field.as_str(), f.code))
            .collect()
    }

    const BASE: &str = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: app}\nspec:\n  scaleTargetRef: {name: app}\n";

    #[test]
    fn object_rules_table() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("  triggers: [{type: cron, metadata: {}}]\n", &[]),
            (
                "  minReplicaCount: 5\n  maxReplicaCount: 2\n  triggers: [{type: cron, metadata: {}}]\n",
                &[("spec.minReplicaCount", codes::INCORRECT_REPLICAS)],
            ),
            (
                // idle must be below min; an unset min counts as 0.
                "  idleReplicaCount: 0\n  triggers: [{type: cron, metadata: {}}]\n",
                &[("spec.idleReplicaCount", codes::INCORRECT_REPLICAS)],
            ),
            (
                // min 0 counts as the HPA minimum 1, so idle 0 is fine.
                "  idleReplicaCount: 0\n  minReplicaCount: 0\n  triggers: [{type: cron, metadata: {}}]\n",
                &[],
            ),
            (
                "  fallback: {failureThreshold: 3, replicas: 2}\n  triggers: [{type: cpu, metricType: Utilization, metadata: {value: '50'}}]\n",
                &[("spec.fallback", codes::INCORRECT_FALLBACK)],
            ),
            (
                "  fallback: {failureThreshold: -1, replicas: 2}\n  triggers: [{type: cron, metadata: {}}]\n",
                &[("spec.fallback", codes::INCORRECT_FALLBACK)],
            ),
            (
                "  fallback: {failureThreshold: 1, replicas: 2, behavior: scalingModifiers}\n  triggers: [{type: cron, metadata: {}}]\n",
                &[("spec.fallback.behavior", codes::SCALING_MODIFIERS_FALLBACK)],
            ),
            (
                "  advanced: {scalingModifiers: {target: '2'}}\n  triggers: [{type: cron, metadata: {}}]\n",
                &[(
                    "spec.advanced.scalingModifiers.formula",
                    codes::SCALING_MODIFIERS,
                )],
            ),
            (
                "  advanced: {scalingModifiers: {formula: 'a + b'}}\n  triggers: [{type: cron, name: a, metadata: {}}, {type: cron, name: b, metadata: {}}]\n",
                &[(
                    "spec.advanced.scalingModifiers.target",
                    codes::SCALING_MODIFIERS,
                )],
            ),
            (
                "  advanced: {scalingModifiers: {formula: 'a', target: '-1'}}\n  triggers: [{type: cron, name: a, metadata: {}}]\n",
                &[(
                    "spec.advanced.scalingModifiers.target",
                    codes::SCALING_MODIFIERS,
                )],
            ),
            (
                "  advanced: {scalingModifiers: {formula: '(a + b) / 2', target: '2', activationTarget: '0.5'}}\n  triggers: [{type: cron, name: a, metadata: {}}, {type: cron, name: b, metadata: {}}]\n",
                &[],
            ),
            (
                "  advanced: {scalingModifiers: {formula: 'a +', target: '2'}}\n  triggers: [{type: cron, name: a, metadata: {}}]\n",
                &[(
                    "spec.advanced.scalingModifiers.formula",
                    codes::SCALING_MODIFIERS,
                )],
            ),
            (
                // cpu and memory triggers are no formula variables.
                "  advanced: {scalingModifiers: {formula: 'a * 2', target: '2'}}\n  triggers: [{type: cpu, name: a, metricType: Utilization, metadata: {value: '50'}}]\n",
                &[(
                    "spec.advanced.scalingModifiers.formula",
                    codes::SCALING_MODIFIERS,
                )],
            ),
            (
                // Fails only when run (with every trigger at -1): `%` on a float.
                "  advanced: {scalingModifiers: {formula: 'a % 2', target: '2'}}\n  triggers: [{type: cron, name: a, metadata: {}}]\n",
                &[(
                    "spec.advanced.scalingModifiers.formula",
                    codes::SCALING_MODIFIERS,
                )],
            ),
            (
                "  advanced: {scalingModifiers: {formula: 'a', target: '2', activationTarget: 'x'}}\n  triggers: [{type: cron, name: a, metadata: {}}]\n",
                &[(
                    "spec.advanced.scalingModifiers.activationTarget",
                    codes::SCALING_MODIFIERS,
                )],
            ),
            (
                // Without a target the formula is still compiled.
                "  advanced: {scalingModifiers: {formula: 'nope'}}\n  triggers: [{type: cron, metadata: {}}]\n",
                &[
                    (
                        "spec.advanced.scalingModifiers.target",
                        codes::SCALING_MODIFIERS,
                    ),
                    (
                        "spec.advanced.scalingModifiers.formula",
                        codes::SCALING_MODIFIERS,
                    ),
                ],
            ),
            (
                "  triggers: [{type: cron, name: a, metadata: {}}, {type: cron, name: a, metadata: {}}]\n",
                &[("spec.triggers[1].name", codes::INCORRECT_TRIGGERS)],
            ),
            (
                "  triggers: [{type: memory, useCachedMetrics: true, metadata: {}}, {type: metrics-api, useCachedMetrics: true, metadata: {}}]\n",
                &[(
                    "spec.triggers[0].useCachedMetrics",
                    codes::INCORRECT_TRIGGERS,
                )],
            ),
            (
                "  triggers: []\n",
                &[("spec.triggers", codes::INCORRECT_TRIGGERS)],
            ),
            (
                // The seed guide's pitfall: cooldown without scale to zero or idle, and polling that the
                // HPA makes irrelevant.
                "  minReplicaCount: 1\n  cooldownPeriod: 300\n  pollingInterval: 15\n  triggers: [{type: cron, metadata: {}}]\n",
                &[
                    ("spec.pollingInterval", codes::POLLING_INTERVAL_NO_EFFECT),
                    ("spec.cooldownPeriod", codes::COOLDOWN_WITHOUT_SCALE_TO_ZERO),
                ],
            ),
            (
                // With idle set both matter; cached metrics keep pollingInterval relevant.
                "  minReplicaCount: 2\n  idleReplicaCount: 0\n  cooldownPeriod: 300\n  pollingInterval: 15\n  triggers: [{type: cron, metadata: {}}]\n",
                &[],
            ),
            (
                "  minReplicaCount: 2\n  pollingInterval: 15\n  triggers: [{type: metrics-api, useCachedMetrics: true, metadata: {}}]\n",
                &[],
            ),
        ];
        for (spec, want) in cases {
            let findings = scaled_object(&so(&format!("{BASE}{spec}")));
            assert_eq!(
                codes_of(&findings),
                *want,
                "for spec:\n{spec}\n{findings:#?}"
            );
        }
    }

    #[test]
    fn formula_findings_carry_the_engines_message() {
        let with = |formula: &str| {
            let yaml = format!(
                "{BASE}  advanced: {{scalingModifiers: {{formula: {formula:?}, target: '2'}}}}\n  triggers: [{{type: cron, name: a, metadata: {{}}}}]\n"
            );
            scaled_object(&so(&yaml))
                .into_iter()
                .filter(|f| f.field == "spec.advanced.scalingModifiers.formula")
                .map(|f| (f.severity, f.message))
                .collect::<Vec<_>>()
        };
        let cases = [
            (
                "a +".to_owned(),
                "formula syntax error at column 4: unexpected end of formula",
            ),
            (
                "a + b".to_owned(),
                "formula refers to unknown trigger \"b\" at column 5",
            ),
            (
                format!("{}a{}", "(".repeat(100), ")".repeat(100)),
                "nesting deeper than 64 levels (at column 65)",
            ),
            (format!("{}a", "-".repeat(3000)), "more than 1024 tokens"),
            ("a+".repeat(3000) + "a", "longer than 4096 bytes (6001)"),
        ];
        for (formula, message) in cases {
            let head: String = formula.chars().take(20).collect();
            assert_eq!(
                with(&formula),
                vec![(Severity::Error, message.to_owned())],
                "{head}"
            );
        }
        assert_eq!(with("a * 2"), vec![]);
    }

    #[test]
    fn name_lengths() {
        let long = "x".repeat(60);
        let obj = so(&format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {long}}}\nspec:\n  scaleTargetRef: {{name: app}}\n  triggers: [{{type: cron, metadata: {{}}}}]\n"
        ));
        assert_eq!(
            codes_of(&scaled_object(&obj)),
            [(
                "spec.advanced.horizontalPodAutoscalerConfig.name",
                codes::HPA_NAME_TOO_LONG
            )]
        );
    }

    #[test]
    fn scaled_jobs_may_not_set_metric_type() {
        let sj: ScaledJob = serde_yaml_ng::from_str(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {name: j}\nspec:\n  jobTargetRef: {template: {spec: {containers: []}}}\n  triggers: [{type: cron, metricType: Value, metadata: {}}]\n",
        )
        .expect("valid ScaledJob");
        assert_eq!(
            codes_of(&scaled_job(&sj)),
            [(
                "spec.triggers[0].metricType",
                codes::METRIC_TYPE_IN_SCALED_JOB
            )]
        );
    }

    #[test]
    fn authentication_rules_table() {
        let cases: &[(&str, &[&str])] = &[
            ("secretTargetRef: [{parameter: a, name: s, key: k}]", &[]),
            (
                "podIdentity: {provider: azure-workload, identityId: ''}",
                &["spec.podIdentity.identityId"],
            ),
            (
                "podIdentity: {provider: azure-workload, identityAuthorityHost: 'https://login'}",
                &["spec.podIdentity.identityTenantId"],
            ),
            (
                "podIdentity: {provider: aws, roleArn: 'arn:x', identityOwner: workload}",
                &["spec.podIdentity.roleArn"],
            ),
            (
                "podIdentity: {provider: aws, externalID: 'e'}",
                &["spec.podIdentity.externalID"],
            ),
            (
                "oauth2: {clientId: '', tokenUrl: 'ftp://x'}",
                &["spec.oauth2.clientId", "spec.oauth2.tokenUrl"],
            ),
            (
                "oauth2: {clientId: c, tokenUrl: 'https://idp.example/token'}",
                &[],
            ),
        ];
        for (spec, want) in cases {
            let spec: TriggerAuthenticationSpec =
                serde_yaml_ng::from_str(spec).expect("valid spec");
            let fields: Vec<String> = trigger_authentication(&spec)
                .into_iter()
                .map(|f| f.field)
                .collect();
            assert_eq!(fields, *want, "{spec:?}");
        }
    }
}
