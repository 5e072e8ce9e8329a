//! Object-level validations that need no cluster: what the admission webhook checks on a ScaledObject,
//! ScaledJob, TriggerAuthentication or ClusterTriggerAuthentication apart from the lookups of other
//! objects (duplicate targets, foreign HPAs, container requests) and the scalers' own parse.
//!
//! The webhook (`keda-webhooks`) and `keda lint` both call these; each finding carries a stable `code`
//! (upstream's webhook reason label where there is one) and the field it is about. Upstream stops at the
//! first error; these return every finding, so a caller that wants upstream's single message takes the
//! first error.
//!
//! Also here: the warnings about the scale target itself ([`workload_warnings`]: the seed guide's
//! graceful-shutdown pitfalls, from the pod template and the Services / Ingresses that expose it) and
//! about the API server's version ([`kubernetes_version`]). `keda lint` feeds them the objects of its
//! input; the webhook the objects it reads from the cluster.
//!
//! The `advanced.scalingModifiers.formula` check is here too: the formula is compiled and run once with
//! every trigger at -1 by the formula engine of `keda-scaling` (upstream's validation), within that
//! engine's limits on length, size and nesting.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use keda_api::ScaleTriggers;
use keda_api::scaled_job::ScaledJob;
use keda_api::scaled_object::{FallbackBehavior, ScaledObject};
use keda_api::trigger_auth::{IdentityOwner, PodIdentityProvider, TriggerAuthenticationSpec};
use keda_scaling::formula;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The object is rejected (webhook) or does not work (lint exit 1).
    Error,
    /// Allowed but probably not what was meant.
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One result of a validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Path of the field in the object, like `spec.minReplicaCount` or `spec.triggers[1].name`.
    pub field: String,
    /// Stable identifier of the rule (see [`codes`]).
    pub code: &'static str,
    pub message: String,
}

impl Finding {
    pub fn error(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    pub fn warning(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// The stable codes of the findings of this module.
pub mod codes {
    pub const INCORRECT_REPLICAS: &str = "incorrect-replicas";
    pub const INCORRECT_FALLBACK: &str = "incorrect-fallback";
    pub const SCALING_MODIFIERS: &str = "scaling-modifiers";
    pub const SCALING_MODIFIERS_FALLBACK: &str = "scaling-modifiers-fallback";
    pub const INCORRECT_TRIGGERS: &str = "incorrect-triggers";
    pub const NAME_TOO_LONG: &str = "name-too-long";
    pub const HPA_NAME_TOO_LONG: &str = "hpa-name-too-long";
    pub const METRIC_TYPE_IN_SCALED_JOB: &str = "metric-type-in-scaled-job";
    pub const INVALID_POD_IDENTITY: &str = "invalid-pod-identity";
    pub const INVALID_OAUTH2: &str = "invalid-oauth2";
    /// Warning: `pollingInterval` is set but nothing uses it.
    pub const POLLING_INTERVAL_NO_EFFECT: &str = "polling-interval-no-effect";
    /// Warning: `cooldownPeriod` is set but the target never scales to zero or to idle.
    pub const COOLDOWN_WITHOUT_SCALE_TO_ZERO: &str = "cooldown-without-scale-to-zero";
    /// Warning: a workload's `terminationGracePeriodSeconds` does not cover a container's preStop sleep.
    pub const GRACE_PERIOD_SHORTER_THAN_PRESTOP: &str = "grace-period-shorter-than-prestop";
    /// Warning: pods behind an AWS ALB with `terminationGracePeriodSeconds` below its 60 s idle timeout.
    pub const ALB_GRACE_PERIOD: &str = "alb-grace-period";
    /// Warning: the API server's Kubernetes version is outside the supported window.
    pub const UNSUPPORTED_KUBERNETES_VERSION: &str = "unsupported-kubernetes-version";
}

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
fn formula_message(e: &keda_scaling::Error) -> String {
    match e {
        keda_scaling::Error::InvalidScalingModifiers { reason } => reason
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

// ---------------------------------------------------------------------------------------------------
// Workload warnings (the seed guide's graceful-shutdown pitfalls) and the Kubernetes version window

/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: i64 = 30;
/// The AWS ALB's default idle timeout.
pub const ALB_IDLE_TIMEOUT_SECONDS: i64 = 60;
/// The AWS Load Balancer Controller's IngressClass controller name.
pub const ALB_CONTROLLER: &str = "ingress.k8s.aws/alb";
/// The legacy annotation that names an Ingress's class.
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Prefix of the AWS Load Balancer Controller's Ingress annotations.
pub const ALB_ANNOTATION_PREFIX: &str = "alb.ingress.kubernetes.io/";

/// A Service as the workload warnings see it: what its selector picks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    pub selector: BTreeMap<String, String>,
}

impl ServiceInfo {
    pub fn from_service(svc: &Service) -> Self {
        ServiceInfo {
            namespace: svc.metadata.namespace.clone().unwrap_or_default(),
            name: svc.metadata.name.clone().unwrap_or_default(),
            selector: svc
                .spec
                .as_ref()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default(),
        }
    }
}

/// An Ingress as the workload warnings see it: its class, whether AWS ALB annotations are set, and the
/// Services it sends traffic to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.ingressClassName`, else the `kubernetes.io/ingress.class` annotation.
    pub class: Option<String>,
    /// An `alb.ingress.kubernetes.io/*` annotation is set.
    pub alb_annotated: bool,
    /// Names of the backend Services (default backend and every path).
    pub backends: BTreeSet<String>,
}

impl IngressInfo {
    /// From the parts of an Ingress of any API version.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        class_name: Option<&str>,
        annotations: &BTreeMap<String, String>,
        backends: BTreeSet<String>,
    ) -> Self {
        let class = class_name
            .or_else(|| {
                annotations
                    .get(INGRESS_CLASS_ANNOTATION)
                    .map(String::as_str)
            })
            .map(str::to_owned);
        IngressInfo {
            namespace: namespace.into(),
            name: name.into(),
            class,
            alb_annotated: annotations
                .keys()
                .any(|k| k.starts_with(ALB_ANNOTATION_PREFIX)),
            backends,
        }
    }

    /// From a `networking.k8s.io/v1` Ingress.
    pub fn from_ingress(ing: &Ingress) -> Self {
        let spec = ing.spec.as_ref();
        let mut backends = BTreeSet::new();
        let mut add = |b: &IngressBackend| {
            if let Some(s) = &b.service {
                backends.insert(s.name.clone());
            }
        };
        if let Some(b) = spec.and_then(|s| s.default_backend.as_ref()) {
            add(b);
        }
        for rule in spec.and_then(|s| s.rules.as_ref()).into_iter().flatten() {
            for path in rule.http.iter().flat_map(|h| h.paths.iter()) {
                add(&path.backend);
            }
        }
        IngressInfo::new(
            ing.metadata.namespace.clone().unwrap_or_default(),
            ing.metadata.name.clone().unwrap_or_default(),
            spec.and_then(|s| s.ingress_class_name.as_deref()),
            &ing.metadata.annotations.clone().unwrap_or_default(),
            backends,
        )
    }

    /// An ALB Ingress by its annotations or by class `alb` (the controller's default name); an Ingress
    /// of another class is one when that class is in `alb_classes`.
    pub fn is_alb(&self, alb_classes: &BTreeSet<String>) -> bool {
        self.alb_annotated
            || self
                .class
                .as_deref()
                .is_some_and(|c| c == "alb" || alb_classes.contains(c))
    }

    /// Whether [`IngressInfo::is_alb`] depends on the IngressClasses (a class other than `alb`, no ALB
    /// annotation): a caller that reads them from the cluster can skip the read otherwise.
    pub fn needs_class_lookup(&self) -> bool {
        !self.alb_annotated && self.class.as_deref().is_some_and(|c| c != "alb")
    }
}

/// The objects through which a workload's pods may be exposed: Services, Ingresses, and the names of the
/// IngressClasses whose controller is [`ALB_CONTROLLER`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    pub services: Vec<ServiceInfo>,
    pub ingresses: Vec<IngressInfo>,
    pub alb_classes: BTreeSet<String>,
}

impl Exposure {
    /// The ALB Ingress of `namespace` and its Service that selects pods labelled `pod_labels`, if any.
    pub fn alb_exposure(
        &self,
        namespace: &str,
        pod_labels: &BTreeMap<String, String>,
    ) -> Option<(&IngressInfo, &str)> {
        for ingress in &self.ingresses {
            if ingress.namespace != namespace || !ingress.is_alb(&self.alb_classes) {
                continue;
            }
            for svc in &self.services {
                let selects = !svc.selector.is_empty()
                    && svc
                        .selector
                        .iter()
                        .all(|(k, v)| pod_labels.get(k) == Some(v));
                if svc.namespace == ingress.namespace
                    && selects
                    && ingress.backends.contains(&svc.name)
                {
                    return Some((ingress, svc.name.as_str()));
                }
            }
        }
        None
    }
}

/// `terminationGracePeriodSeconds` of a pod, with Kubernetes' default.
pub fn termination_grace_seconds(pod: &PodSpec) -> i64 {
    pod.termination_grace_period_seconds
        .unwrap_or(DEFAULT_GRACE_SECONDS)
}

/// Whether the ALB warning of [`workload_warnings`] can fire for `pod` (its grace period is below the
/// ALB idle timeout): a caller that reads Services and Ingresses from the cluster can skip the read
/// otherwise.
pub fn alb_check_applies(pod: &PodSpec) -> bool {
    termination_grace_seconds(pod) < ALB_IDLE_TIMEOUT_SECONDS
}

/// The graceful-shutdown warnings about a workload (Deployment, StatefulSet, …) of `namespace` whose pod
/// template has labels `pod_labels` and spec `pod`: a `terminationGracePeriodSeconds` that does not cover
/// the longest preStop sleep, and one below the ALB idle timeout when an ALB Ingress reaches the pods
/// through a Service of `exposure`. Fields are the workload's (`spec.template.spec.…`).
pub fn workload_warnings(
    namespace: &str,
    pod_labels: &BTreeMap<String, String>,
    pod: &PodSpec,
    exposure: &Exposure,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let grace_field = "spec.template.spec.terminationGracePeriodSeconds";
    let grace = termination_grace_seconds(pod);
    let grace_text = match pod.termination_grace_period_seconds {
        Some(g) => format!("{g}"),
        None => format!("{DEFAULT_GRACE_SECONDS} (the default)"),
    };
    let longest = pod
        .containers
        .iter()
        .filter_map(|c| prestop_sleep_seconds(c).map(|s| (c, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((c, sleep)) = longest
        && (grace as f64) <= sleep
    {
        out.push(Finding::warning(
            grace_field,
            codes::GRACE_PERIOD_SHORTER_THAN_PRESTOP,
            format!(
                "terminationGracePeriodSeconds {grace_text} is not longer than the preStop sleep of container {:?} ({sleep} s): on scale-in the kubelet kills the container before the hook ends; set it above the sleep plus the application's shutdown time",
                c.name
            ),
        ));
    }
    if grace < ALB_IDLE_TIMEOUT_SECONDS
        && let Some((ingress, service)) = exposure.alb_exposure(namespace, pod_labels)
    {
        out.push(Finding::warning(
            grace_field,
            codes::ALB_GRACE_PERIOD,
            format!(
                "the pods are behind the AWS ALB Ingress {}/{} (Service {service}); terminationGracePeriodSeconds {grace_text} is below the ALB's {ALB_IDLE_TIMEOUT_SECONDS} s idle timeout, so pods removed on scale-in can drop connections the ALB still uses (502): set it to at least {ALB_IDLE_TIMEOUT_SECONDS}",
                ingress.namespace, ingress.name
            ),
        ));
    }
    out
}

/// Seconds a container's preStop hook sleeps: the `sleep` action, `sleep N` as the command, or the
/// `sleep N` steps of a `sh -c` script.
pub fn prestop_sleep_seconds(c: &Container) -> Option<f64> {
    let pre_stop = c.lifecycle.as_ref()?.pre_stop.as_ref()?;
    if let Some(s) = &pre_stop.sleep {
        return Some(s.seconds as f64);
    }
    let command = pre_stop.exec.as_ref()?.command.as_ref()?;
    let program = command.first()?.rsplit('/').next().unwrap_or("");
    match program {
        "sleep" => command.get(1).and_then(|a| sleep_duration(a)),
        "sh" | "bash" | "ash" | "dash" | "zsh" => {
            let script = command
                .iter()
                .position(|a| a.starts_with('-') && a.contains('c'))
                .and_then(|i| command.get(i + 1))?;
            sleep_in_script(script)
        }
        _ => None,
    }
}

/// Total of the `sleep N` commands of a shell script.
fn sleep_in_script(script: &str) -> Option<f64> {
    let tokens: Vec<&str> = script
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut total = None;
    for pair in tokens.windows(2) {
        if pair[0].rsplit('/').next() == Some("sleep")
            && let Some(s) = sleep_duration(pair[1])
        {
            total = Some(total.unwrap_or(0.0) + s);
        }
    }
    total
}

/// A `sleep` argument: seconds, optionally with an s/m/h/d suffix (GNU sleep).
fn sleep_duration(arg: &str) -> Option<f64> {
    let arg = arg.trim().trim_matches(|c| c == '"' || c == '\'');
    let (number, factor) = match arg.char_indices().last()? {
        (i, 's') => (&arg[..i], 1.0),
        (i, 'm') => (&arg[..i], 60.0),
        (i, 'h') => (&arg[..i], 3600.0),
        (i, 'd') => (&arg[..i], 86400.0),
        _ => (arg, 1.0),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n * factor)
}

/// The Kubernetes minor versions (of 1.x) keda-rs supports. Decision: upstream KEDA v2.20 supports
/// 1.32–1.34 (its compatibility table: N-2..N for the newest Kubernetes at its release); keda-rs keeps
/// that window and adds the version its own control plane tests run against (1.35), so the window is
/// 1.32–1.35. Move both ends together when the pinned Kubernetes of `hack/` moves.
pub const SUPPORTED_KUBERNETES_MINORS: std::ops::RangeInclusive<u32> = 32..=35;

/// A warning when the API server's version (`major`, `minor` as `/version` reports them, e.g. "1" and
/// "33+") is outside [`SUPPORTED_KUBERNETES_MINORS`]; `None` inside it or when the version does not
/// parse.
pub fn kubernetes_version(major: &str, minor: &str) -> Option<Finding> {
    let major: u32 = major.trim().parse().ok()?;
    let digits: String = minor.chars().take_while(char::is_ascii_digit).collect();
    let minor: u32 = digits.parse().ok()?;
    let (lo, hi) = (
        *SUPPORTED_KUBERNETES_MINORS.start(),
        *SUPPORTED_KUBERNETES_MINORS.end(),
    );
    if major == 1 && SUPPORTED_KUBERNETES_MINORS.contains(&minor) {
        return None;
    }
    Some(Finding::warning(
        "",
        codes::UNSUPPORTED_KUBERNETES_VERSION,
        format!(
            "the Kubernetes server version {major}.{minor} is outside the versions this KEDA supports (1.{lo}–1.{hi}): scaling may misbehave; upgrade Kubernetes or use a KEDA release that supports it"
        ),
    ))
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

    #[test]
    fn prestop_sleeps() {
        let cases: &[(&str, Option<f64>)] = &[
            ("{name: a}", None),
            (
                "{name: a, lifecycle: {preStop: {exec: {command: [sleep, '50']}}}}",
                Some(50.0),
            ),
            (
                "{name: a, lifecycle: {preStop: {exec: {command: [/bin/sleep, 1m]}}}}",
                Some(60.0),
            ),
            (
                "{name: a, lifecycle: {preStop: {exec: {command: [/bin/sh, -c, 'sleep 20 && nginx -s quit; sleep 5']}}}}",
                Some(25.0),
            ),
            (
                "{name: a, lifecycle: {preStop: {sleep: {seconds: 45}}}}",
                Some(45.0),
            ),
            (
                "{name: a, lifecycle: {preStop: {exec: {command: [sleep, infinity]}}}}",
                None,
            ),
            (
                "{name: a, lifecycle: {preStop: {httpGet: {port: 80, path: /drain}}}}",
                None,
            ),
        ];
        for (yaml, want) in cases {
            let c: Container = serde_yaml_ng::from_str(yaml).expect("container");
            assert_eq!(prestop_sleep_seconds(&c), *want, "{yaml}");
        }
    }

    fn alb_exposure(ingress_yaml: &str) -> Exposure {
        let svc: Service = serde_yaml_ng::from_str(
            "metadata: {name: api, namespace: shop}\nspec: {selector: {app: api}}\n",
        )
        .expect("Service");
        let ing: Ingress = serde_yaml_ng::from_str(ingress_yaml).expect("Ingress");
        Exposure {
            services: vec![ServiceInfo::from_service(&svc)],
            ingresses: vec![IngressInfo::from_ingress(&ing)],
            alb_classes: BTreeSet::new(),
        }
    }

    #[test]
    fn graceful_shutdown_warnings_table() {
        let labels = BTreeMap::from([("app".to_owned(), "api".to_owned())]);
        let template = |grace: &str, sleep: u32| -> PodSpec {
            serde_yaml_ng::from_str(&format!(
                "{grace}\ncontainers: [{{name: api, lifecycle: {{preStop: {{sleep: {{seconds: {sleep}}}}}}}}}]\n"
            ))
            .expect("pod spec")
        };
        let alb_annotated = "metadata: {name: api, namespace: shop, annotations: {alb.ingress.kubernetes.io/scheme: internet-facing}}\nspec: {rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}]}}]}\n";
        let alb_legacy_class = "metadata: {name: api, namespace: shop, annotations: {kubernetes.io/ingress.class: alb}}\nspec: {defaultBackend: {service: {name: api, port: {number: 80}}}}\n";
        let nginx = "metadata: {name: api, namespace: shop}\nspec: {ingressClassName: nginx, defaultBackend: {service: {name: api, port: {number: 80}}}}\n";
        let cases: &[(&str, u32, &str, &[&str])] = &[
            (
                "terminationGracePeriodSeconds: 30",
                30,
                alb_annotated,
                &[
                    codes::GRACE_PERIOD_SHORTER_THAN_PRESTOP,
                    codes::ALB_GRACE_PERIOD,
                ],
            ),
            (
                "dnsPolicy: ClusterFirst",
                30,
                alb_legacy_class,
                &[
                    codes::GRACE_PERIOD_SHORTER_THAN_PRESTOP,
                    codes::ALB_GRACE_PERIOD,
                ],
            ),
            (
                "terminationGracePeriodSeconds: 45",
                30,
                alb_annotated,
                &[codes::ALB_GRACE_PERIOD],
            ),
            (
                "terminationGracePeriodSeconds: 30",
                30,
                nginx,
                &[codes::GRACE_PERIOD_SHORTER_THAN_PRESTOP],
            ),
            ("terminationGracePeriodSeconds: 90", 30, alb_annotated, &[]),
        ];
        for (grace, sleep, ingress, want) in cases {
            let got: Vec<&str> = workload_warnings(
                "shop",
                &labels,
                &template(grace, *sleep),
                &alb_exposure(ingress),
            )
            .into_iter()
            .map(|f| f.code)
            .collect();
            assert_eq!(got, *want, "{grace} {ingress}");
        }
        // Another namespace's Ingress does not expose the pods.
        assert!(
            workload_warnings(
                "other",
                &labels,
                &template("terminationGracePeriodSeconds: 45", 0),
                &alb_exposure(alb_annotated)
            )
            .is_empty()
        );
        // A class served by the ALB controller counts once it is known.
        let mut exposure = alb_exposure(nginx);
        assert!(exposure.ingresses[0].needs_class_lookup());
        exposure.alb_classes.insert("nginx".into());
        assert_eq!(
            workload_warnings(
                "shop",
                &labels,
                &template("terminationGracePeriodSeconds: 45", 0),
                &exposure
            )
            .len(),
            1
        );
    }

    #[test]
    fn kubernetes_version_window() {
        for (major, minor, warns) in [
            ("1", "31", true),
            ("1", "32", false),
            ("1", "34", false),
            ("1", "35+", false),
            ("1", "36", true),
            ("2", "0", true),
            ("x", "y", false),
        ] {
            assert_eq!(
                kubernetes_version(major, minor).is_some(),
                warns,
                "{major}.{minor}"
            );
        }
    }
}
