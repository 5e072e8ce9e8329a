//! The validators (one per kind) and the AdmissionReview handling around them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use keda_api::consts::annotations::{TRANSFER_HPA_OWNERSHIP, VALIDATIONS_HPA_OWNERSHIP};
use keda_api::{
    ClusterTriggerAuthentication, ScaleTriggers, ScaledJob, ScaledObject, TriggerAuthentication,
};
use keda_check::advice::{self, Exposure};
use keda_check::{Checker, Finding, Severity, Sight, Target, codes, rules};
use keda_resolver::{ObjectSource, Resolver};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::de::DeserializeOwned;

use crate::cluster::Cluster;
use crate::index::{Index, so_target_key};
use crate::metrics::Metrics;

/// Reason labels (upstream's where there is one) of the rejections this crate adds.
pub mod reasons {
    pub use keda_check::codes::{
        OTHER_SCALED_OBJECT, OTHER_SCALED_OBJECT_HPA, TRIGGER_PARSE, UNKNOWN_TRIGGER_TYPE,
    };
    pub const OTHER_HPA: &str = "other-hpa";
    pub const TRANSFER_OWNERSHIP_MISSING_HPA_NAME: &str = "transfer-ownership-missing-hpa-name";
    pub const MISSING_REQUESTS: &str = "missing-requests";
    pub const SCALE_TO_ZERO_REQUIREMENTS_NOT_MET: &str = "scale-to-zero-requirements-not-met";
    pub const MISSING_REFERENCE: &str = "missing-reference";
    /// A ClusterTriggerAuthentication `filePath` the operator would refuse (outside
    /// `--filepath-auth-root-path`, or on a namespaced TriggerAuthentication).
    pub const INVALID_FILE_PATH: &str = "invalid-file-path";
    /// The request or its object does not decode.
    pub const INVALID_REQUEST: &str = "invalid-request";
}

/// The kind a webhook path validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ScaledObject,
    ScaledJob,
    TriggerAuthentication,
    ClusterTriggerAuthentication,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::ScaledObject,
        Kind::ScaledJob,
        Kind::TriggerAuthentication,
        Kind::ClusterTriggerAuthentication,
    ];

    /// The URL path, as upstream.
    pub fn path(self) -> &'static str {
        match self {
            Kind::ScaledObject => "/validate-keda-sh-v1alpha1-scaledobject",
            Kind::ScaledJob => "/validate-keda-sh-v1alpha1-scaledjob",
            Kind::TriggerAuthentication => "/validate-keda-sh-v1alpha1-triggerauthentication",
            Kind::ClusterTriggerAuthentication => {
                "/validate-keda-sh-v1alpha1-clustertriggerauthentication"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::ScaledObject => "ScaledObject",
            Kind::ScaledJob => "ScaledJob",
            Kind::TriggerAuthentication => "TriggerAuthentication",
            Kind::ClusterTriggerAuthentication => "ClusterTriggerAuthentication",
        }
    }
}

/// The result of one validation: rejections (reason label, message) and warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub errors: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

impl Outcome {
    fn error(&mut self, reason: &str, message: impl Into<String>) {
        self.errors.push((reason.to_owned(), message.into()));
    }

    fn findings(&mut self, findings: Vec<Finding>) {
        for f in findings {
            match f.severity {
                // Upstream's denial for replica bounds says only its message (the rulebook's words are
                // upstream's).
                Severity::Error if f.code == codes::INCORRECT_REPLICAS => {
                    self.error(f.code, f.message)
                }
                Severity::Error => self.error(f.code, format!("{}: {}", f.field, f.message)),
                Severity::Warning => self.warnings.push(format!("{}: {}", f.field, f.message)),
                // Projections are asked for by `keda lint` only.
                Severity::Info => {}
            }
        }
    }

    /// The message of a rejection: every error, in order.
    pub fn message(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| {
            self.errors
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// The validators with what they read: the indexes, the resolver (env and authentication objects with
/// GET) and the on-demand reads of workloads and LimitRanges.
pub struct Webhook<S, C> {
    pub index: Arc<Index>,
    pub resolver: Resolver<S>,
    pub cluster: C,
    pub metrics: Metrics,
}

fn is_resource_trigger(t: &ScaleTriggers) -> bool {
    t.r#type == "cpu" || t.r#type == "memory"
}

impl<S: ObjectSource, C: Cluster> Webhook<S, C> {
    /// Validates a ScaledObject of `namespace`.
    pub async fn scaled_object(
        &self,
        so: &ScaledObject,
        namespace: &str,
        dry_run: bool,
    ) -> Outcome {
        let mut out = Outcome::default();
        let name = so.metadata.name.as_deref().unwrap_or_default();
        // Other ScaledObjects and HPAs, from the indexes.
        let target = &so.spec.scale_target_ref;
        let target_key = so_target_key(namespace, so);
        let gvk = format!("{}.{}", target.api_version(), target.kind());
        if let Some(other) = self.index.other_scaled_object_for_target(&target_key, name) {
            out.error(
                reasons::OTHER_SCALED_OBJECT,
                format!(
                    "the workload '{}' of type '{gvk}' is already managed by the ScaledObject '{other}'",
                    target.name
                ),
            );
        }
        let hpa_name = so.hpa_name();
        if let Some(other) = self
            .index
            .other_scaled_object_for_hpa(namespace, &hpa_name, name)
        {
            out.error(
                reasons::OTHER_SCALED_OBJECT_HPA,
                format!("the HPA '{hpa_name}' is already managed by the ScaledObject '{other}'"),
            );
        }
        let annotations = so.metadata.annotations.as_ref();
        let annotation = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
        if annotation(VALIDATIONS_HPA_OWNERSHIP) != Some("false") {
            let transfer = annotation(TRANSFER_HPA_OWNERSHIP) == Some("true");
            let configured_name = so
                .spec
                .advanced
                .as_ref()
                .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
                .and_then(|c| c.name.as_deref())
                .filter(|n| !n.is_empty());
            for hpa in self.index.hpas_for_target(&target_key) {
                if hpa.owner_scaled_object.as_deref() == Some(name) {
                    continue;
                }
                if transfer {
                    match configured_name {
                        None => {
                            out.error(
                                reasons::TRANSFER_OWNERSHIP_MISSING_HPA_NAME,
                                format!(
                                    "the workload '{}' of type '{gvk}' is already managed by the hpa '{}' and scaledobject.keda.sh/transfer-hpa-ownership is set, but spec.advanced.horizontalPodAutoscalerConfig.name is missing: set it to '{}'",
                                    target.name, hpa.name, hpa.name
                                ),
                            );
                            continue;
                        }
                        Some(n) if n == hpa.name => continue,
                        Some(_) => {}
                    }
                }
                out.error(
                    reasons::OTHER_HPA,
                    format!(
                        "the workload '{}' of type '{gvk}' is already managed by the hpa '{}'",
                        target.name, hpa.name
                    ),
                );
            }
        }

        // The scale target, read on demand (Deployments and StatefulSets). A failed read never rejects.
        let template = match self
            .cluster
            .pod_template(namespace, target.kind(), &target.name)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                out.warnings.push(format!("spec.scaleTargetRef: {e}"));
                None
            }
        };
        let pod_spec = template.as_ref().and_then(|t| t.spec.as_ref());
        if !dry_run {
            self.check_resources(so, namespace, pod_spec, &mut out)
                .await;
        }
        if let Some(t) = &template {
            self.workload_warnings(namespace, target.kind(), &target.name, t, &mut out)
                .await;
        }
        self.server_version_warning(&mut out);

        // The one pipeline `keda lint` runs too: rules (with scalingModifiers: the formula compiled and
        // run once, as upstream's webhook does), advice, env, authentication and every trigger's parse.
        // The env is known only for the kinds whose pod template is read.
        let known_target = matches!(target.kind(), "Deployment" | "StatefulSet");
        let seen = match pod_spec {
            Some(p) if known_target => Target::Seen(p),
            _ => Target::Unseen,
        };
        let findings = self.checker().scaled_object(namespace, so, seen).await;
        out.findings(findings);
        out
    }

    /// The scale target's graceful-shutdown warnings (as `keda lint`), as `<Kind> <name> <field>: …`.
    /// The Services and Ingresses of the namespace are listed only when the ALB check can fire; a failed
    /// list just leaves the ALB warning out.
    async fn workload_warnings(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        template: &PodTemplateSpec,
        out: &mut Outcome,
    ) {
        let Some(pod) = template.spec.as_ref() else {
            return;
        };
        let exposure = if advice::alb_check_applies(pod) {
            self.cluster.exposure(namespace).await.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "reading what exposes the scale target");
                Exposure::default()
            })
        } else {
            Exposure::default()
        };
        let no_labels = BTreeMap::new();
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref())
            .unwrap_or(&no_labels);
        for f in advice::workload_warnings(namespace, labels, pod, &exposure) {
            out.warnings
                .push(format!("{kind} {name} {}: {}", f.field, f.message));
        }
    }

    /// The warning about an API server outside the supported Kubernetes versions.
    fn server_version_warning(&self, out: &mut Outcome) {
        if let Some((major, minor)) = self.cluster.server_version()
            && let Some(f) = advice::kubernetes_version(&major, &minor)
        {
            out.warnings.push(f.message);
        }
    }

    /// cpu/memory triggers: containers need requests (or limits, or a LimitRange default), and scale to
    /// zero needs another trigger.
    async fn check_resources(
        &self,
        so: &ScaledObject,
        namespace: &str,
        pod_spec: Option<&PodSpec>,
        out: &mut Outcome,
    ) {
        let resource_triggers: Vec<&ScaleTriggers> = so
            .spec
            .triggers
            .iter()
            .filter(|t| is_resource_trigger(t))
            .collect();
        if resource_triggers.is_empty() {
            return;
        }
        if resource_triggers.len() == so.spec.triggers.len()
            && so.spec.min_replica_count.unwrap_or(0) == 0
        {
            out.error(
                reasons::SCALE_TO_ZERO_REQUIREMENTS_NOT_MET,
                "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)",
            );
        }
        let Some(pod_spec) = pod_spec else { return };
        let mut defaults: Option<BTreeSet<String>> = None;
        for t in resource_triggers {
            let resource = t.r#type.as_str();
            let only = t
                .metadata
                .get("containerName")
                .map(String::as_str)
                .filter(|c| !c.is_empty());
            for c in pod_spec
                .containers
                .iter()
                .filter(|c| only.is_none_or(|n| n == c.name))
            {
                let has = c.resources.as_ref().is_some_and(|r| {
                    [&r.requests, &r.limits]
                        .into_iter()
                        .flatten()
                        .any(|m| m.contains_key(resource))
                });
                if has {
                    continue;
                }
                if defaults.is_none() {
                    defaults = Some(
                        self.cluster
                            .limit_range_defaults(namespace)
                            .await
                            .unwrap_or_default(),
                    );
                }
                if defaults.as_ref().is_some_and(|d| d.contains(resource)) {
                    continue;
                }
                out.error(
                    reasons::MISSING_REQUESTS,
                    format!(
                        "the scaledobject has a {resource} trigger but the container {} doesn't have the {resource} request defined",
                        c.name
                    ),
                );
            }
        }
    }

    /// Validates a ScaledJob of `namespace`: its triggers.
    pub async fn scaled_job(&self, sj: &ScaledJob, namespace: &str) -> Outcome {
        let mut out = Outcome::default();
        out.findings(self.checker().scaled_job(namespace, sj).await);
        self.server_version_warning(&mut out);
        out
    }

    /// A spec change under the immediate rollout deletes the ScaledJob's Jobs, running ones too: say how
    /// many before it happens (a failed count still warns, without the number).
    async fn rollout_warning(&self, sj: &ScaledJob, namespace: &str, out: &mut Outcome) {
        if !advice::immediate_rollout(sj) {
            return;
        }
        let name = sj.metadata.name.as_deref().unwrap_or_default();
        let jobs = match self.cluster.scaled_job_jobs(namespace, name).await {
            Ok(0) => return,
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(error = %e, "counting the Jobs of a ScaledJob");
                None
            }
        };
        out.findings(advice::rollout_deletes_jobs(sj, jobs).into_iter().collect());
    }

    fn checker(&self) -> Checker<'_, S> {
        Checker {
            resolver: &self.resolver,
            sight: Sight::Cluster,
            queue_length: None,
        }
    }

    /// Handles one AdmissionReview body for `kind`; never fails: a body or object that does not decode
    /// is a denied review.
    pub async fn review(&self, kind: Kind, body: &[u8]) -> AdmissionReview<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return AdmissionResponse::invalid(format!(
                    "the request body is not an AdmissionReview: {e}"
                ))
                .into_review();
            }
        };
        let request: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(r) => r,
            Err(e) => {
                return AdmissionResponse::invalid(format!(
                    "the AdmissionReview has no request: {e}"
                ))
                .into_review();
            }
        };
        let response = AdmissionResponse::from(&request);
        let response = match self.admit(kind, &request).await {
            Ok(outcome) => {
                let mut response = match outcome.message() {
                    Some(m) => response.deny(m),
                    None => response,
                };
                if !outcome.warnings.is_empty() {
                    response.warnings = Some(outcome.warnings);
                }
                response
            }
            Err(message) => response.deny(message),
        };
        response.into_review()
    }

    async fn admit(
        &self,
        kind: Kind,
        request: &AdmissionRequest<DynamicObject>,
    ) -> Result<Outcome, String> {
        let namespace = request.namespace.as_deref().unwrap_or_default();
        let action = match request.operation {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Connect => "connect",
        };
        if !matches!(request.operation, Operation::Create | Operation::Update) {
            return Ok(Outcome::default());
        }
        let Some(object) = &request.object else {
            return Err(format!("the request has no {}", kind.name()));
        };
        if request.operation == Operation::Update
            && let Some(old) = &request.old_object
            && only_removes_finalizer(old, object)
        {
            return Ok(Outcome::default());
        }
        let spec_unchanged = request.operation == Operation::Update
            && request
                .old_object
                .as_ref()
                .is_some_and(|old| old.data.get("spec") == object.data.get("spec"));
        match kind {
            Kind::ScaledObject => {
                self.metrics.validation(namespace, action);
                let mut outcome = match decode::<ScaledObject>(kind, object) {
                    Ok(so) => self.scaled_object(&so, namespace, request.dry_run).await,
                    Err(m) => Outcome {
                        errors: vec![(reasons::INVALID_REQUEST.to_owned(), m)],
                        warnings: vec![],
                    },
                };
                if spec_unchanged {
                    admit_unchanged_spec(kind, &mut outcome);
                }
                if let Some((reason, _)) = outcome.errors.first() {
                    self.metrics.error(namespace, action, reason);
                }
                Ok(outcome)
            }
            Kind::ScaledJob => {
                let sj = decode::<ScaledJob>(kind, object)?;
                let mut outcome = self.scaled_job(&sj, namespace).await;
                if spec_unchanged {
                    admit_unchanged_spec(kind, &mut outcome);
                } else if request.operation == Operation::Update {
                    self.rollout_warning(&sj, namespace, &mut outcome).await;
                }
                Ok(outcome)
            }
            Kind::TriggerAuthentication => {
                let ta = decode::<TriggerAuthentication>(kind, object)?;
                Ok(trigger_authentication(&ta.spec))
            }
            Kind::ClusterTriggerAuthentication => {
                let cta = decode::<ClusterTriggerAuthentication>(kind, object)?;
                Ok(trigger_authentication(&cta.spec))
            }
        }
    }
}

/// Validates a TriggerAuthentication or ClusterTriggerAuthentication spec.
pub fn trigger_authentication(spec: &keda_api::TriggerAuthenticationSpec) -> Outcome {
    let mut out = Outcome::default();
    out.findings(rules::trigger_authentication(spec));
    out
}

fn decode<T: DeserializeOwned>(kind: Kind, object: &DynamicObject) -> Result<T, String> {
    let value = serde_json::to_value(object)
        .map_err(|e| format!("the {} does not encode: {e}", kind.name()))?;
    serde_json::from_value(value).map_err(|e| format!("the {} does not decode: {e}", kind.name()))
}

/// The rejection reasons of upstream KEDA v2.20.2's ScaledObject webhook, which it makes on an update as
/// on a create (`RecordScaledObjectValidatingErrors` in `apis/keda/v1alpha1/scaledobject_webhook.go`), and
/// an object that does not decode.
const UPSTREAM_SCALED_OBJECT_REASONS: &[&str] = &[
    codes::INCORRECT_REPLICAS,
    codes::NAME_TOO_LONG,
    codes::HPA_NAME_TOO_LONG,
    codes::INCORRECT_FALLBACK,
    codes::SCALING_MODIFIERS,
    codes::SCALING_MODIFIERS_FALLBACK,
    codes::INCORRECT_TRIGGERS,
    reasons::OTHER_SCALED_OBJECT,
    reasons::OTHER_SCALED_OBJECT_HPA,
    reasons::OTHER_HPA,
    reasons::TRANSFER_OWNERSHIP_MISSING_HPA_NAME,
    reasons::MISSING_REQUESTS,
    reasons::SCALE_TO_ZERO_REQUIREMENTS_NOT_MET,
    reasons::INVALID_REQUEST,
];
/// Upstream's ScaledJob webhook only runs `verifyTriggers`.
const UPSTREAM_SCALED_JOB_REASONS: &[&str] = &[codes::INCORRECT_TRIGGERS, reasons::INVALID_REQUEST];

/// An UPDATE that leaves the spec of a ScaledObject or ScaledJob as it is (labels, annotations such as
/// `autoscaling.keda.sh/paused`, owners) is never refused for a reason upstream's webhook does not have:
/// an object upstream KEDA admitted whose trigger type or authentication keda-rs cannot run yet (unknown
/// trigger type, a parse error, an unsupported provider, a missing authentication object, a refused file
/// path) stays editable after the upgrade. keda-rs's own rejections become warnings saying so (the
/// operator keeps such a ScaledObject at Ready=False and does not scale it); upstream's stay rejections.
fn admit_unchanged_spec(kind: Kind, outcome: &mut Outcome) {
    let (upstream, consequence) = match kind {
        Kind::ScaledObject => (
            UPSTREAM_SCALED_OBJECT_REASONS,
            "keda-rs does not scale this ScaledObject until its spec is fixed: it stays Ready=False naming the reason",
        ),
        Kind::ScaledJob => (
            UPSTREAM_SCALED_JOB_REASONS,
            "keda-rs cannot run this ScaledJob's triggers as they are",
        ),
        Kind::TriggerAuthentication | Kind::ClusterTriggerAuthentication => return,
    };
    let (kept, admitted): (Vec<_>, Vec<_>) = std::mem::take(&mut outcome.errors)
        .into_iter()
        .partition(|(reason, _)| upstream.contains(&reason.as_str()));
    outcome.errors = kept;
    outcome.warnings.extend(admitted.into_iter().map(|(_, m)| {
        format!("{m} (admitted because this update leaves the spec unchanged; {consequence})")
    }));
}

/// An update whose spec is unchanged and that drops finalizers (the object is on its way out).
fn only_removes_finalizer(old: &DynamicObject, new: &DynamicObject) -> bool {
    let count = |o: &DynamicObject| o.metadata.finalizers.as_ref().map_or(0, Vec::len);
    old.data.get("spec") == new.data.get("spec") && count(new) < count(old)
}
