//! Advice: warnings about the seed guide's pitfalls that are not rule violations. The scale target's
//! graceful shutdown ([`workload_warnings`]: preStop sleeps against `terminationGracePeriodSeconds`, pods
//! behind an AWS ALB), the API server's Kubernetes version ([`kubernetes_version`]) and a ScaledObject
//! without a scale-down stabilization window ([`scale_down_window`]). `keda lint` feeds them the objects
//! of its input; the webhook the objects it reads from the cluster.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};

use keda_api::ScaledObject;
use keda_api::scaled_job::{RolloutStrategy, ScaledJob};
use keda_core::scaled_job::{max_replica_count, min_replica_count};

use crate::finding::{Finding, codes};

/// A ScaledObject with event triggers and no scale-down stabilization window: the HPA's default decides,
/// and a noisy metric makes the replica count flap (the guide sets 600 s).
pub fn scale_down_window(so: &ScaledObject) -> Option<Finding> {
    let window = so
        .spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|c| c.behavior.as_ref())
        .and_then(|b| b.scale_down.as_ref())
        .and_then(|d| d.stabilization_window_seconds);
    let only_resource = so
        .spec
        .triggers
        .iter()
        .all(|t| t.r#type == "cpu" || t.r#type == "memory");
    (window.is_none() && !so.spec.triggers.is_empty() && !only_resource).then(|| {
        Finding::warning(
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds",
            codes::NO_SCALE_DOWN_STABILIZATION,
            "no scale-down stabilization window is set, so the HPA's default (300 s) decides how fast replicas drop after a burst; with a noisy event metric the replica count flaps: set it explicitly (the guide uses 600)",
        )
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

/// Whether a change of the ScaledJob's spec deletes the Jobs of its previous version: the deprecated
/// `rolloutStrategy`, when set, wins over `rollout.strategy`; anything but `gradual` is immediate.
pub fn immediate_rollout(sj: &ScaledJob) -> bool {
    let strategy = sj
        .spec
        .rollout_strategy
        .or_else(|| sj.spec.rollout.as_ref().and_then(|r| r.strategy));
    strategy != Some(RolloutStrategy::Gradual)
}

/// The immediate rollout, said before it bites: any change of the spec (even `maxReplicaCount` or
/// `pollingInterval`) deletes every Job of the previous version, running or finished. `jobs`: how many
/// Jobs this change would delete, when the caller knows.
pub fn rollout_deletes_jobs(sj: &ScaledJob, jobs: Option<usize>) -> Option<Finding> {
    if !immediate_rollout(sj) {
        return None;
    }
    let what = match jobs {
        Some(n) => format!("this change deletes the {n} Job(s) of the previous version"),
        None => "a change of the spec (any field, even maxReplicaCount or pollingInterval) deletes every Job of the previous version".to_owned(),
    };
    Some(Finding::warning(
        "spec.rollout.strategy",
        codes::ROLLOUT_DELETES_JOBS,
        format!(
            "{what}, running or finished, because the rollout is immediate (the default): set spec.rollout.strategy: gradual to let running Jobs finish with their old spec"
        ),
    ))
}

/// Replica bounds of a ScaledJob that do not mean what they seem to: `minReplicaCount` above
/// `maxReplicaCount` (both become max, so up to twice max Jobs run), or no `maxReplicaCount` next to a
/// minimum (100 queue-driven Jobs on top of the standing ones). The numbers are the effective ones.
pub fn scaled_job_bounds(sj: &ScaledJob) -> Option<Finding> {
    let spec = &sj.spec;
    let min = spec.min_replica_count.filter(|m| *m > 0)?;
    let standing = min_replica_count(spec);
    let queue_driven = max_replica_count(spec);
    let total = standing + queue_driven;
    let (field, why) = match spec.max_replica_count {
        Some(max) if min > max => (
            "spec.minReplicaCount",
            format!("minReplicaCount ({min}) is above maxReplicaCount ({max})"),
        ),
        None => (
            "spec.maxReplicaCount",
            format!("maxReplicaCount is unset next to minReplicaCount ({min})"),
        ),
        Some(_) => return None,
    };
    Some(Finding::warning(
        field,
        codes::SCALED_JOB_BOUNDS,
        format!(
            "{why}: {standing} standing Job(s) plus up to {queue_driven} from the queue, {total} in all"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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

#[cfg(test)]
mod scaled_job_tests {
    use super::*;

    fn sj(spec: &str) -> ScaledJob {
        serde_yaml_ng::from_str(&format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {{name: j}}\nspec:\n  jobTargetRef: {{template: {{spec: {{containers: [{{name: c, image: x}}]}}}}}}\n  triggers: [{{type: cron, metadata: {{}}}}]\n{spec}"
        ))
        .expect("ScaledJob")
    }

    #[test]
    fn rollout_table() {
        // (spec lines, immediate): the deprecated field wins when set; only gradual keeps Jobs.
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("  rollout: {strategy: immediate}\n", true),
            ("  rollout: {strategy: gradual}\n", false),
            ("  rollout: {propagationPolicy: foreground}\n", true),
            ("  rolloutStrategy: gradual\n", false),
            (
                "  rolloutStrategy: immediate\n  rollout: {strategy: gradual}\n",
                true,
            ),
            (
                "  rolloutStrategy: gradual\n  rollout: {strategy: immediate}\n",
                false,
            ),
        ];
        for (spec, immediate) in cases {
            let j = sj(spec);
            assert_eq!(immediate_rollout(&j), *immediate, "{spec}");
            assert_eq!(
                rollout_deletes_jobs(&j, None).is_some(),
                *immediate,
                "{spec}"
            );
        }
        let f = rollout_deletes_jobs(&sj(""), Some(4)).expect("warning");
        assert_eq!(f.code, codes::ROLLOUT_DELETES_JOBS);
        assert!(f.message.contains("deletes the 4 Job(s)"), "{}", f.message);
    }

    #[test]
    fn bounds_table() {
        // (spec lines, the numbers the warning gives, or None): upstream's effective bounds.
        let cases: &[(&str, Option<&str>)] = &[
            ("", None),
            ("  minReplicaCount: 2\n  maxReplicaCount: 10\n", None),
            ("  maxReplicaCount: 10\n", None),
            ("  minReplicaCount: 0\n", None),
            (
                "  minReplicaCount: 5\n  maxReplicaCount: 3\n",
                Some("3 standing Job(s) plus up to 3 from the queue, 6 in all"),
            ),
            (
                "  minReplicaCount: 5\n",
                Some("5 standing Job(s) plus up to 100 from the queue, 105 in all"),
            ),
        ];
        for (spec, said) in cases {
            let found = scaled_job_bounds(&sj(spec));
            match (said, found) {
                (None, None) => {}
                (Some(s), Some(f)) => {
                    assert!(f.message.ends_with(s), "{spec}: {}", f.message);
                    assert_eq!(f.code, codes::SCALED_JOB_BOUNDS);
                }
                (want, got) => panic!("{spec}: want {want:?}, got {got:?}"),
            }
        }
    }
}
