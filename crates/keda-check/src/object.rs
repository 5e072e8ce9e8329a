//! The one pipeline that checks a KEDA object against the objects it refers to: the structural rules
//! ([`crate::rules`]), the advice that needs only the object ([`crate::advice::scale_down_window`]), the
//! scale target's container env, every trigger's authentication resolved as the operator resolves it, and
//! every trigger through the registry's parse ([`crate::parse`]). The admission webhook calls it with a
//! live cluster as the source, `keda lint` with a set of manifests; only what each can see differs
//! ([`Sight`]), never the rules.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::PodSpec;
use keda_api::common::AuthenticationRefKind;
use keda_api::trigger_auth::{IdentityOwner, PodIdentityProvider, TriggerAuthenticationSpec};
use keda_api::{ScaleTriggers, ScaledJob, ScaledObject};
use keda_resolver::{
    Lookup, ObjectRef, ObjectSource, ResolveError, ResolvedAuth, ResolvedEnv, Resolver,
};
use keda_scalers::{MetricSpec, ScalerError};

use crate::finding::{Finding, Severity, codes};
use crate::{advice, parse, rules};

/// What the checker can see of the objects an object refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sight {
    /// A set of manifests (`keda lint`): what the set holds is the truth, so a failed resolution is an
    /// error; what it does not hold is assumed to exist, with an `assumed-reference` warning.
    Manifests,
    /// A live cluster read with the admission webhook's identity, which reads authentication objects but
    /// no Secrets, ConfigMaps or ServiceAccounts: a missing authentication object or a refused `filePath`
    /// is an error; any other failed resolution (a Secret that may be created later, an API error) is a
    /// warning, and unreadable objects are assumed without a warning (they are unreadable by design).
    Cluster,
}

/// The scale target as far as the checker can see it.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Its pod template's spec.
    Seen(&'a PodSpec),
    /// Not in the input, not readable, or of a kind whose pod template is unknown: its env counts as
    /// present and unchecked.
    Unseen,
}

/// What the operator's parse says about one trigger that parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedTrigger {
    /// Its HPA metric.
    pub metric: MetricSpec,
    /// The threshold its value must exceed to be active, for threshold-activated scalers.
    pub activation_threshold: Option<f64>,
}

/// Checks objects with a resolver over `S`.
pub struct Checker<'r, S> {
    pub resolver: &'r Resolver<S>,
    pub sight: Sight,
    /// `keda lint --queue-length`: report the Jobs each ScaledJob would create if every trigger reported
    /// this queue with no Job running.
    pub queue_length: Option<f64>,
}

impl<S: ObjectSource> Checker<'_, S> {
    /// A ScaledObject of `namespace` whose scale target is `target`: rules, advice, env, triggers.
    pub async fn scaled_object(
        &self,
        namespace: &str,
        so: &ScaledObject,
        target: Target<'_>,
    ) -> Vec<Finding> {
        self.scaled_object_metrics(namespace, so, target).await.0
    }

    /// [`Checker::scaled_object`], with what the parse says of each trigger that parsed (`None` for the
    /// others), in trigger order: what `keda render` builds the HPA from and `keda simulate` replays.
    pub async fn scaled_object_metrics(
        &self,
        namespace: &str,
        so: &ScaledObject,
        target: Target<'_>,
    ) -> (Vec<Finding>, Vec<Option<ParsedTrigger>>) {
        let mut findings = rules::scaled_object(so);
        findings.extend(advice::scale_down_window(so));
        let scale_target = &so.spec.scale_target_ref;
        let env = self
            .scale_target_env(
                namespace,
                target,
                scale_target.env_source_container_name.as_deref(),
                "spec.scaleTargetRef.envSourceContainerName",
                "spec.scaleTargetRef",
                &mut findings,
            )
            .await;
        let env_used = self.env_used(namespace, &so.spec.triggers).await;
        if matches!(target, Target::Unseen) && env_used && self.sight == Sight::Manifests {
            findings.push(Finding::warning(
                "spec.scaleTargetRef",
                codes::ASSUMED_REFERENCE,
                format!(
                    "{} {namespace}/{} is not in the input: assumed to exist; the env values its containers supply count as present and are not checked",
                    scale_target.kind(),
                    scale_target.name
                ),
            ));
        }
        let pod_spec = match target {
            Target::Seen(p) => Some(p),
            Target::Unseen => None,
        };
        let metrics = self
            .triggers(
                namespace,
                &so.spec.triggers,
                &env,
                pod_spec,
                env_used,
                "spec.scaleTargetRef",
                &mut findings,
            )
            .await;
        (findings, metrics)
    }

    /// A ScaledJob of `namespace`: rules, env of its job template, triggers.
    pub async fn scaled_job(&self, namespace: &str, sj: &ScaledJob) -> Vec<Finding> {
        let mut findings = rules::scaled_job(sj);
        findings.extend(advice::scaled_job_bounds(sj));
        let empty = PodSpec::default();
        let pod_spec = sj
            .spec
            .job_target_ref
            .template
            .spec
            .as_ref()
            .unwrap_or(&empty);
        let env = self
            .scale_target_env(
                namespace,
                Target::Seen(pod_spec),
                sj.spec.env_source_container_name.as_deref(),
                "spec.envSourceContainerName",
                "spec.jobTargetRef.template.spec",
                &mut findings,
            )
            .await;
        let env_used = self.env_used(namespace, &sj.spec.triggers).await;
        let metrics = self
            .triggers(
                namespace,
                &sj.spec.triggers,
                &env,
                Some(pod_spec),
                env_used,
                "spec.jobTargetRef",
                &mut findings,
            )
            .await;
        if let Some(queue) = self.queue_length {
            let targets: Vec<Option<f64>> = metrics
                .iter()
                .map(|m| match m {
                    Some(ParsedTrigger {
                        metric: MetricSpec::External { target, .. },
                        ..
                    }) => Some(*target),
                    _ => None,
                })
                .collect();
            findings.push(projection(sj, queue, &targets));
        }
        findings
    }

    /// The severity of a failed resolution, by what the checker sees.
    fn resolve_severity(&self, e: &ResolveError) -> Severity {
        match (self.sight, e) {
            (Sight::Manifests, _) => Severity::Error,
            (
                Sight::Cluster,
                ResolveError::AuthenticationNotFound { .. } | ResolveError::FilePath { .. },
            ) => Severity::Error,
            (Sight::Cluster, _) => Severity::Warning,
        }
    }

    /// The env of the scale target's container, as the operator resolves it. Upstream resolves no env
    /// for a target without containers.
    async fn scale_target_env(
        &self,
        namespace: &str,
        target: Target<'_>,
        container: Option<&str>,
        container_field: &str,
        target_field: &str,
        findings: &mut Vec<Finding>,
    ) -> ResolvedEnv {
        let pod_spec = match target {
            Target::Unseen => return ResolvedEnv::unknown(),
            Target::Seen(p) if p.containers.is_empty() => return ResolvedEnv::default(),
            Target::Seen(p) => p,
        };
        match self
            .resolver
            .container_env(namespace, pod_spec, container)
            .await
        {
            Ok(env) => env,
            Err(e) => {
                let field = match e {
                    ResolveError::ContainerNotFound { .. } => container_field,
                    _ => target_field,
                };
                findings.push(Finding {
                    severity: self.resolve_severity(&e),
                    field: field.to_owned(),
                    code: e.category(),
                    message: format!("resolving the env of the scale target: {e}"),
                });
                ResolvedEnv::unknown()
            }
        }
    }

    /// Whether resolving the triggers reads the scale target's pod spec (`<key>FromEnv`, a
    /// TriggerAuthentication's `env`, or a pod identity taken from the workload).
    async fn env_used(&self, namespace: &str, triggers: &[ScaleTriggers]) -> bool {
        for trigger in triggers {
            if trigger.metadata.keys().any(|k| k.ends_with("FromEnv")) {
                return true;
            }
            if self
                .auth_spec(namespace, trigger)
                .await
                .is_some_and(|spec| reads_pod_spec(&spec))
            {
                return true;
            }
        }
        false
    }

    /// The authentication spec a trigger refers to, when the source has it.
    async fn auth_spec(
        &self,
        namespace: &str,
        trigger: &ScaleTriggers,
    ) -> Option<TriggerAuthenticationSpec> {
        let r = trigger.authentication_ref.as_ref()?;
        let source = &self.resolver.source;
        let lookup = match r.kind() {
            AuthenticationRefKind::TriggerAuthentication => {
                source.trigger_authentication(namespace, &r.name).await
            }
            AuthenticationRefKind::ClusterTriggerAuthentication => {
                source.cluster_trigger_authentication(&r.name).await
            }
        };
        match lookup {
            Ok(Lookup::Found(spec)) => Some(spec),
            _ => None,
        }
    }

    /// Every trigger: authentication resolved, then the registry's parse with placeholders standing in
    /// for what comes from objects the checker cannot see. A failed resolution does not stop the parse:
    /// the parameters count as unknown, so metadata errors still show. Returns each trigger's HPA metric
    /// and activation threshold when its parse succeeded (`None` otherwise).
    #[allow(clippy::too_many_arguments)]
    async fn triggers(
        &self,
        namespace: &str,
        triggers: &[ScaleTriggers],
        env: &ResolvedEnv,
        pod_spec: Option<&PodSpec>,
        env_used: bool,
        target_field: &str,
        findings: &mut Vec<Finding>,
    ) -> Vec<Option<ParsedTrigger>> {
        let mut targets = Vec::with_capacity(triggers.len());
        let warn_assumed = self.sight == Sight::Manifests;
        let mut warned: BTreeSet<ObjectRef> = BTreeSet::new();
        if env_used && warn_assumed {
            for object in &env.assumed_objects {
                if warned.insert(object.clone()) {
                    findings.push(Finding::warning(
                        target_field,
                        codes::ASSUMED_REFERENCE,
                        format!(
                            "{object} (env of the scale target's container) is not in the input: assumed to exist; the variables it supplies count as present and are not checked"
                        ),
                    ));
                }
            }
        }
        for (i, trigger) in triggers.iter().enumerate() {
            let auth_field = format!("spec.triggers[{i}].authenticationRef");
            let auth = match self
                .resolver
                .auth_params(namespace, trigger, env, pod_spec)
                .await
            {
                Ok(auth) => auth,
                Err(e) => {
                    findings.push(Finding {
                        severity: self.resolve_severity(&e),
                        field: auth_field.clone(),
                        code: e.category(),
                        message: format!("trigger {i} ({}): {e}", trigger.r#type),
                    });
                    ResolvedAuth {
                        incomplete: true,
                        ..Default::default()
                    }
                }
            };
            if warn_assumed {
                for object in &auth.assumed_objects {
                    if !warned.insert(object.clone()) {
                        continue;
                    }
                    let message = if auth.incomplete {
                        format!(
                            "{object} is not in the input: assumed to exist; any parameter it may supply counts as present"
                        )
                    } else {
                        let params: Vec<&str> = auth.assumed.iter().map(String::as_str).collect();
                        format!(
                            "{object} is not in the input: assumed to exist; the parameters it supplies ({}) count as present and are not checked",
                            params.join(", ")
                        )
                    };
                    findings.push(Finding::warning(
                        &auth_field,
                        codes::ASSUMED_REFERENCE,
                        message,
                    ));
                }
            }
            for note in &auth.notes {
                findings.push(Finding::warning(
                    &auth_field,
                    codes::AUTH_NOTE,
                    note.clone(),
                ));
            }
            let files = &self.resolver.file_root;
            let target = std::cell::RefCell::new(None);
            if let Some(e) =
                parse::parse_with_assumptions(i, namespace, trigger, env, &auth, |input| {
                    let config = keda_scalers::parse_trigger_confined(input, files)?;
                    target.replace(Some(ParsedTrigger {
                        metric: config.metric_spec(),
                        activation_threshold: config.activation_threshold(),
                    }));
                    Ok(())
                })
            {
                findings.push(parse_finding(i, &e));
                target.replace(None);
            }
            targets.push(target.into_inner());
        }
        targets
    }
}

/// The Jobs a ScaledJob creates on its first two polls when every trigger reports `queue` and no Job
/// ran before (the first poll's Jobs still running at the second, none pending), by
/// keda-core's count (upstream's math): per trigger `min(queue / target, Max')`, the triggers combined by
/// `multipleScalersCalculation`, then the scaling strategy. Triggers whose target is unknown (a parse
/// error) are left out, as a failing scaler is.
fn projection(sj: &ScaledJob, queue: f64, targets: &[Option<f64>]) -> Finding {
    use keda_core::scaled_job as math;
    let spec = &sj.spec;
    let max = math::max_replica_count(spec);
    let min = math::min_replica_count(spec);
    let scalers: Vec<math::ScalerMetrics> = targets
        .iter()
        .flatten()
        .map(|t| math::scaler_metrics(&[queue], &[Some(*t)], queue > 0.0, max))
        .collect();
    let activity = math::combine_scalers(
        &scalers,
        spec.scaling_strategy
            .as_ref()
            .and_then(|s| s.multiple_scalers_calculation),
        min,
        max,
    );
    let first = math::jobs_to_create(sj, &activity, 0, 0);
    // Below the minimum a poll only tops up to it, so the queue shows on the poll after.
    let second = math::jobs_to_create(sj, &activity, first, 0);
    let strategy = match math::Strategy::from_spec(spec.scaling_strategy.as_ref()) {
        math::Strategy::Default => "default",
        math::Strategy::Custom { .. } => "custom",
        math::Strategy::Accurate => "accurate",
        math::Strategy::Eager => "eager",
    };
    let left_out = targets.iter().filter(|t| t.is_none()).count();
    let note = if left_out > 0 {
        format!("; {left_out} trigger(s) without a known target left out")
    } else {
        String::new()
    };
    Finding {
        severity: Severity::Info,
        field: "spec".to_owned(),
        code: codes::SCALED_JOB_PROJECTION,
        message: format!(
            "a queue of {queue} in each trigger with no Job running creates {first} Job(s) on the first poll and {second} more on the next, once those run ({strategy} strategy; {min} standing Job(s), up to {max} from the queue){note}"
        ),
    }
}

/// Whether an authentication object reads the scale target's pod spec.
fn reads_pod_spec(spec: &TriggerAuthenticationSpec) -> bool {
    spec.env.as_ref().is_some_and(|e| !e.is_empty())
        || spec.pod_identity.as_ref().is_some_and(|p| {
            p.identity_owner == Some(IdentityOwner::Workload)
                || p.provider == PodIdentityProvider::AwsEks
        })
}

/// A parse error as a finding on the field it names.
pub fn parse_finding(i: usize, e: &ScalerError) -> Finding {
    match e {
        ScalerError::UnknownType { .. } => {
            let known: Vec<&str> = keda_scalers::registered_types().collect();
            Finding::error(
                format!("spec.triggers[{i}].type"),
                codes::UNKNOWN_TRIGGER_TYPE,
                format!("{e}; this build supports: {}", known.join(", ")),
            )
        }
        ScalerError::Config { field, .. } => Finding::error(
            format!("spec.triggers[{i}].metadata.{field}"),
            codes::TRIGGER_PARSE,
            e.to_string(),
        ),
        ScalerError::Backend { .. } => Finding::error(
            format!("spec.triggers[{i}]"),
            codes::TRIGGER_PARSE,
            e.to_string(),
        ),
    }
}
