//! The Jobs of a ScaledJob, without IO: the Job object built from `jobTargetRef`, which of the labelled
//! Jobs count as running and pending, which finished Jobs the history limits remove, which Jobs a rollout
//! deletes, and whether the ScaledJob is paused. The operator feeds these from its watch caches.
//!
//! Semantics are upstream v2.20.2's (`pkg/scaling/executor/scale_jobs.go`,
//! `controllers/keda/scaledjob_controller.go`); where upstream leaves an order unspecified (failed Jobs
//! carry no `completionTime`) the choice made here is named on the function.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use keda_api::ScaledJob;
use keda_api::consts::{annotations, labels};
use keda_api::scaled_job::{PropagationPolicy, RolloutStrategy, ScaledJobSpec};

use crate::Error;

/// `restartPolicy` given to a Job template that sets none: a Job refuses `Always`, the API default.
pub const DEFAULT_RESTART_POLICY: &str = "OnFailure";

/// The label the Job controller puts on a Job's pods (the legacy key upstream selects pods by).
pub const JOB_NAME_LABEL: &str = "job-name";

/// One Job to create for `sj`, as upstream generates it: name generated from `<sj>-`, the default
/// `app.kubernetes.io/*` and `scaledjob.keda.sh/name` labels overridden by the ScaledJob's own labels
/// (minus those named in `scaledjob.keda.sh/job-excluded-labels`, split on commas without trimming), the
/// `scaledjob.keda.sh/generation` annotation overridden by the ScaledJob's annotations, `jobTargetRef` as
/// the spec (pod template labelled with the ScaledJob's name, `restartPolicy` `OnFailure` when unset) and
/// the ScaledJob as controlling owner. `version` is the `app.kubernetes.io/version` label.
pub fn job_for(sj: &ScaledJob, version: &str) -> Result<Job, Error> {
    let name = sj.metadata.name.clone().ok_or(Error::MissingMetadata {
        kind: "ScaledJob",
        field: "name",
    })?;
    let uid = sj.metadata.uid.clone().ok_or(Error::MissingMetadata {
        kind: "ScaledJob",
        field: "uid",
    })?;
    let generate_name = format!("{name}-");

    let mut job_labels: BTreeMap<String, String> = [
        (labels::APP_NAME, name.as_str()),
        (labels::APP_VERSION, version),
        (labels::APP_PART_OF, name.as_str()),
        (labels::APP_MANAGED_BY, labels::MANAGED_BY_OPERATOR),
        (labels::SCALED_JOB_NAME, name.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let sj_annotations = sj.metadata.annotations.clone().unwrap_or_default();
    let excluded: Vec<&str> = sj_annotations
        .get(annotations::JOB_EXCLUDED_LABELS)
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    for (k, v) in sj.metadata.labels.iter().flatten() {
        if !excluded.contains(&k.as_str()) {
            job_labels.insert(k.clone(), v.clone());
        }
    }

    let mut job_annotations = BTreeMap::from([(
        annotations::SCALED_JOB_GENERATION.to_owned(),
        sj.metadata.generation.unwrap_or(0).to_string(),
    )]);
    job_annotations.extend(sj_annotations);

    let mut spec: JobSpec = sj.spec.job_target_ref.clone();
    let template_meta = spec.template.metadata.get_or_insert_with(Default::default);
    template_meta.generate_name = Some(generate_name.clone());
    template_meta
        .labels
        .get_or_insert_with(Default::default)
        .insert(labels::SCALED_JOB_NAME.to_owned(), name.clone());
    let pod_spec = spec.template.spec.get_or_insert_with(Default::default);
    if pod_spec.restart_policy.as_deref().is_none_or(str::is_empty) {
        pod_spec.restart_policy = Some(DEFAULT_RESTART_POLICY.to_owned());
    }

    Ok(Job {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: sj.metadata.namespace.clone(),
            labels: Some(job_labels),
            annotations: Some(job_annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: keda_api::API_VERSION.to_owned(),
                kind: "ScaledJob".to_owned(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// How a Job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Complete,
    Failed,
}

/// The first `Complete` or `Failed` condition with status `True`; `None` while the Job is unfinished
/// (suspended, without pods, or with only `FailureTarget`/`SuccessCriteriaMet` so far).
pub fn finished(job: &Job) -> Option<Finished> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(Finished::Complete),
            "Failed" => Some(Finished::Failed),
            _ => None,
        })
}

/// Whether an unfinished Job counts as pending, judged from its pods. Without `pendingPodConditions`:
/// none of its pods is `Running` or `Succeeded` (no pods at all is pending). With them: no single pod
/// has every listed condition type at `True` (a list with a duplicate entry can never be met, as
/// upstream compares the number of distinct fulfilled types with the list's length).
pub fn is_pending(pods: &[&Pod], pending_pod_conditions: &[String]) -> bool {
    if pending_pod_conditions.is_empty() {
        return !pods.iter().any(|p| {
            matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Running" | "Succeeded")
            )
        });
    }
    !pods.iter().any(|p| {
        let fulfilled: std::collections::BTreeSet<&str> = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.status == "True" && pending_pod_conditions.contains(&c.type_))
            .map(|c| c.type_.as_str())
            .collect();
        fulfilled.len() == pending_pod_conditions.len()
    })
}

/// Running (unfinished) and pending Jobs of a ScaledJob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobCounts {
    pub running: i64,
    pub pending: i64,
}

/// Counts the labelled Jobs as upstream does: every unfinished Job is running, and also pending when
/// [`is_pending`] says so of the pods `pods_of` returns for it.
pub fn count_jobs<'a>(
    jobs: impl IntoIterator<Item = &'a Job>,
    pods_of: impl Fn(&Job) -> Vec<&'a Pod>,
    pending_pod_conditions: &[String],
) -> JobCounts {
    let mut counts = JobCounts::default();
    for job in jobs {
        if finished(job).is_some() {
            continue;
        }
        counts.running += 1;
        if is_pending(&pods_of(job), pending_pod_conditions) {
            counts.pending += 1;
        }
    }
    counts
}

/// The finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` (default 100 each),
/// oldest first: the completed ones, then the failed ones, as upstream deletes them. Oldest means by
/// `status.completionTime`; Kubernetes sets none on failed Jobs (upstream's order is then unspecified),
/// so here they are ordered by when their `Failed` condition became true, then by creation.
pub fn history_to_delete<'a>(jobs: &[&'a Job], spec: &ScaledJobSpec) -> Vec<&'a Job> {
    let mut completed = Vec::new();
    let mut failed = Vec::new();
    for &job in jobs {
        match finished(job) {
            Some(Finished::Complete) => completed.push(job),
            Some(Finished::Failed) => failed.push(job),
            None => {}
        }
    }
    let mut out = Vec::new();
    for (mut list, limit) in [
        (completed, spec.successful_jobs_history_limit()),
        (failed, spec.failed_jobs_history_limit()),
    ] {
        let keep = usize::try_from(limit).unwrap_or(0);
        if list.len() <= keep {
            continue;
        }
        list.sort_by_key(|j| finish_order_key(j));
        let excess = list.len() - keep;
        out.extend(list.into_iter().take(excess));
    }
    out
}

/// (completionTime or the finishing condition's transition time, creationTimestamp, name) in seconds.
fn finish_order_key(job: &Job) -> (i64, i64, String) {
    let status = job.status.as_ref();
    let finished_at = status
        .and_then(|s| s.completion_time.as_ref())
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
                .and_then(|c| c.last_transition_time.as_ref())
        })
        .map_or(i64::MAX, |t| t.0.as_second());
    let created = job
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(i64::MAX, |t| t.0.as_second());
    (
        finished_at,
        created,
        job.metadata.name.clone().unwrap_or_default(),
    )
}

/// What an update of the ScaledJob does to the Jobs of earlier generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Leave them to finish (`gradual`).
    Gradual,
    /// Delete them, finished or not, with this propagation (the default).
    Immediate { propagation: Propagation },
}

/// Deletion propagation of rolled-out Jobs: upstream's values for `DeleteOptions.propagationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
}

impl Propagation {
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Background => "Background",
            Propagation::Foreground => "Foreground",
        }
    }
}

/// The rollout of `spec`: the deprecated `rolloutStrategy` wins over `rollout.strategy` when set;
/// anything but `gradual` is immediate; only `rollout.propagationPolicy: foreground` changes the
/// background default.
pub fn rollout(spec: &ScaledJobSpec) -> Rollout {
    let strategy = spec
        .rollout_strategy
        .or_else(|| spec.rollout.as_ref().and_then(|r| r.strategy));
    match strategy {
        Some(RolloutStrategy::Gradual) => Rollout::Gradual,
        _ => Rollout::Immediate {
            propagation: match spec.rollout.as_ref().and_then(|r| r.propagation_policy) {
                Some(PropagationPolicy::Foreground) => Propagation::Foreground,
                _ => Propagation::Background,
            },
        },
    }
}

/// The Jobs an immediate rollout deletes: those whose `scaledjob.keda.sh/generation` annotation is
/// missing or differs from `generation` (finished ones included, as upstream).
pub fn outdated_jobs<'a>(jobs: &[&'a Job], generation: i64) -> Vec<&'a Job> {
    let current = generation.to_string();
    jobs.iter()
        .copied()
        .filter(|j| {
            j.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(annotations::SCALED_JOB_GENERATION))
                != Some(&current)
        })
        .collect()
}

/// Whether `autoscaling.keda.sh/paused` pauses the ScaledJob: Go's `strconv.ParseBool` of the value,
/// where anything it cannot parse (including the empty string) pauses too.
pub fn is_paused(sj: &ScaledJob) -> bool {
    match sj
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::PAUSED))
    {
        None => false,
        Some(v) => !matches!(v.as_str(), "0" | "f" | "F" | "FALSE" | "false" | "False"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn scaled_job(yaml_metadata: &str, spec_extra: &str) -> ScaledJob {
        serde_yaml_ng::from_str(&format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {yaml_metadata}
spec:
  jobTargetRef: {{template: {{spec: {{containers: [{{name: c, image: busybox}}]}}}}}}
  triggers: [{{type: metrics-api, metadata: {{}}}}]
{spec_extra}
"#
        ))
        .expect("parses")
    }

    /// upstream's `TestGenerateJobs` (reference §10 H).
    #[test]
    fn job_is_built_as_upstream_generates_it() {
        let sj = scaled_job(
            "{name: test, namespace: test, uid: u-1, generation: 0, labels: {test: test}, annotations: {test: test}}",
            "",
        );
        let job = job_for(&sj, "main").expect("builds");
        let want: Job = serde_yaml_ng::from_str(
            r#"
metadata:
  generateName: test-
  namespace: test
  labels:
    app.kubernetes.io/managed-by: keda-operator
    app.kubernetes.io/name: test
    app.kubernetes.io/part-of: test
    app.kubernetes.io/version: main
    scaledjob.keda.sh/name: test
    test: test
  annotations:
    scaledjob.keda.sh/generation: "0"
    test: test
  ownerReferences:
  - {apiVersion: keda.sh/v1alpha1, kind: ScaledJob, name: test, uid: u-1, controller: true, blockOwnerDeletion: true}
spec:
  template:
    metadata:
      generateName: test-
      labels: {scaledjob.keda.sh/name: test}
    spec:
      containers: [{name: c, image: busybox}]
      restartPolicy: OnFailure
"#,
        )
        .expect("parses");
        assert_eq!(job, want);
    }

    #[test]
    fn labels_annotations_and_restart_policy() {
        // (metadata, template extra, label → expected value (None: absent), annotation, restartPolicy)
        let sj = scaled_job(
            r#"{name: w, namespace: n, uid: u, generation: 7, labels: {app.kubernetes.io/managed-by: Helm, a: "1", " b": "2", c: "3"}, annotations: {scaledjob.keda.sh/job-excluded-labels: "a, b", scaledjob.keda.sh/generation: "x"}}"#,
            "",
        );
        let job = job_for(&sj, "v").expect("builds");
        let labels = job.metadata.labels.clone().unwrap_or_default();
        let cases = [
            ("app.kubernetes.io/managed-by", Some("Helm")),
            ("a", None),
            // Split without trimming: " b" is excluded, "b" would not be.
            (" b", None),
            ("c", Some("3")),
            ("scaledjob.keda.sh/name", Some("w")),
        ];
        for (key, want) in cases {
            assert_eq!(labels.get(key).map(String::as_str), want, "label {key}");
        }
        let ann = job.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            ann.get("scaledjob.keda.sh/generation").map(String::as_str),
            Some("x"),
            "the ScaledJob's annotations override the generation"
        );
        assert!(ann.contains_key("scaledjob.keda.sh/job-excluded-labels"));

        let kept = scaled_job("{name: w, namespace: n, uid: u, generation: 3}", "");
        let mut kept = kept;
        kept.spec
            .job_target_ref
            .template
            .spec
            .as_mut()
            .expect("spec")
            .restart_policy = Some("Never".into());
        kept.spec.job_target_ref.template.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("team".into(), "x".into())])),
            ..Default::default()
        });
        let job = job_for(&kept, "v").expect("builds");
        let template = job.spec.expect("spec").template;
        assert_eq!(
            template.spec.and_then(|s| s.restart_policy).as_deref(),
            Some("Never")
        );
        assert_eq!(
            template.metadata.and_then(|m| m.labels),
            Some(BTreeMap::from([
                ("scaledjob.keda.sh/name".into(), "w".into()),
                ("team".into(), "x".into())
            ]))
        );
        assert_eq!(
            job.metadata
                .annotations
                .and_then(|a| a.get("scaledjob.keda.sh/generation").cloned())
                .as_deref(),
            Some("3")
        );
        let no_uid = scaled_job("{name: w}", "");
        assert!(matches!(
            job_for(&no_uid, "v"),
            Err(Error::MissingMetadata { field: "uid", .. })
        ));
    }

    fn job(name: &str, conditions: &[(&str, &str)], completed_at: Option<&str>) -> Job {
        let conditions: Vec<serde_json::Value> = conditions
            .iter()
            .map(|(t, s)| serde_json::json!({"type": t, "status": s}))
            .collect();
        let mut status = serde_json::json!({"conditions": conditions});
        if let Some(t) = completed_at {
            status["completionTime"] = serde_json::json!(t);
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": status,
        }))
        .expect("job")
    }

    fn pod(phase: &str, conditions: &[&str]) -> Pod {
        let conditions: Vec<serde_json::Value> = conditions
            .iter()
            .map(|t| serde_json::json!({"type": t, "status": "True"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "status": {"phase": phase, "conditions": conditions},
        }))
        .expect("pod")
    }

    #[test]
    fn finished_jobs() {
        let cases = [
            (vec![], None),
            (vec![("Complete", "True")], Some(Finished::Complete)),
            (vec![("Failed", "True")], Some(Finished::Failed)),
            (vec![("Complete", "False")], None),
            (vec![("FailureTarget", "True")], None),
            (vec![("SuccessCriteriaMet", "True")], None),
            (vec![("Suspended", "True")], None),
            (
                vec![("SuccessCriteriaMet", "True"), ("Complete", "True")],
                Some(Finished::Complete),
            ),
        ];
        for (conditions, want) in cases {
            assert_eq!(
                finished(&job("j", &conditions, None)),
                want,
                "{conditions:?}"
            );
        }
    }

    /// upstream's pending-count tests (reference §10 G): one unfinished Job with these pods.
    #[test]
    fn pending_by_pod_phase_and_conditions() {
        let rp = ["Ready".to_owned(), "PodScheduled".to_owned()];
        let none: [String; 0] = [];
        let cases: Vec<(&[String], Vec<Pod>, bool)> = vec![
            (&none, vec![pod("Succeeded", &[])], false),
            (&none, vec![pod("Running", &[])], false),
            (&none, vec![pod("Failed", &[])], true),
            (&none, vec![pod("Pending", &[])], true),
            (&none, vec![pod("Unknown", &[])], true),
            (&none, vec![], true),
            (&rp, vec![pod("Running", &[])], true),
            (&rp, vec![pod("Running", &["Ready"])], true),
            (&rp, vec![pod("Running", &["PodScheduled"])], true),
            (&rp, vec![pod("Running", &["Ready", "PodScheduled"])], false),
            (
                &rp,
                vec![
                    pod("Running", &["Ready", "PodScheduled"]),
                    pod("Running", &["Ready", "PodScheduled"]),
                ],
                false,
            ),
            (
                &rp,
                vec![
                    pod("Running", &["Ready", "PodScheduled"]),
                    pod("Running", &["Ready"]),
                ],
                false,
            ),
            (
                &rp,
                vec![
                    pod("Running", &["Ready"]),
                    pod("Running", &["PodScheduled"]),
                ],
                true,
            ),
            (
                &rp,
                vec![
                    pod("Running", &[]),
                    pod("Running", &["Ready"]),
                    pod("Running", &["Ready", "PodScheduled"]),
                ],
                false,
            ),
            (
                &rp,
                vec![
                    pod("Running", &[]),
                    pod("Running", &["Ready"]),
                    pod("Running", &["PodScheduled"]),
                ],
                true,
            ),
            // Extra conditions still qualify.
            (
                &rp,
                vec![pod("Running", &["Ready", "PodScheduled", "Initialized"])],
                false,
            ),
            // Empty list: the phase rule.
            (&none, vec![pod("Running", &["Ready"])], false),
        ];
        for (conditions, pods, want) in cases {
            let refs: Vec<&Pod> = pods.iter().collect();
            assert_eq!(
                is_pending(&refs, conditions),
                want,
                "{conditions:?} {pods:?}"
            );
        }
        let duplicated = ["Ready".to_owned(), "Ready".to_owned()];
        assert!(
            is_pending(&[&pod("Running", &["Ready"])], &duplicated),
            "a duplicated entry can never be met"
        );
    }

    #[test]
    fn running_and_pending_counts() {
        let jobs = [
            job("done", &[("Complete", "True")], None),
            job("failed", &[("Failed", "True")], None),
            job("starting", &[], None),
            job("working", &[], None),
            job("retrying", &[("FailureTarget", "True")], None),
        ];
        let running_pod = pod("Running", &[]);
        let counts = count_jobs(
            &jobs,
            |j| match j.metadata.name.as_deref() {
                Some("working") => vec![&running_pod],
                _ => vec![],
            },
            &[],
        );
        assert_eq!(
            counts,
            JobCounts {
                running: 3,
                pending: 2
            }
        );
    }

    fn names(jobs: &[&Job]) -> Vec<String> {
        jobs.iter()
            .map(|j| j.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    fn limits(successful: Option<i32>, failed: Option<i32>) -> ScaledJobSpec {
        let mut sj = scaled_job("{name: w}", "");
        sj.spec.successful_jobs_history_limit = successful;
        sj.spec.failed_jobs_history_limit = failed;
        sj.spec
    }

    /// upstream's cleanup tests (reference §10 F).
    #[test]
    fn history_limits() {
        let at = |hm: &str| format!("2020-01-01T{hm}:00Z");
        let complete = |n: &str, t: &str| job(n, &[("Complete", "True")], Some(&at(t)));
        let failed = |n: &str, t: &str| job(n, &[("Failed", "True")], Some(&at(t)));

        let jobs = [
            complete("name1", "15:37"),
            complete("name2", "15:36"),
            complete("name3", "15:38"),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        assert_eq!(
            names(&history_to_delete(&refs, &limits(Some(2), Some(2)))),
            ["name2"]
        );

        let jobs = [
            complete("s1", "15:37"),
            complete("s2", "15:36"),
            complete("s3", "15:35"),
            failed("f1", "15:37"),
            failed("f2", "15:36"),
            failed("f3", "15:38"),
            job("running", &[], None),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        assert_eq!(
            names(&history_to_delete(&refs, &limits(Some(1), Some(2)))),
            ["s3", "s2", "f2"]
        );
        assert_eq!(
            names(&history_to_delete(&refs, &limits(Some(0), Some(0)))),
            ["s3", "s2", "s1", "f2", "f1", "f3"],
            "limit 0 deletes every finished Job"
        );

        // Defaults (100 each): 101 of each, one older than the rest.
        let mut many = vec![complete("success0", "15:35"), failed("fail101", "15:35")];
        for i in 1..=100 {
            many.push(complete(&format!("success{i}"), "15:40"));
            many.push(failed(&format!("fail{i}"), "15:40"));
        }
        let refs: Vec<&Job> = many.iter().collect();
        assert_eq!(
            names(&history_to_delete(&refs, &limits(None, None))),
            ["success0", "fail101"]
        );

        // Failed Jobs carry no completionTime on a real cluster: ordered by their condition's time.
        let failed_at = |n: &str, t: &str| -> Job {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": n},
                "status": {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": at(t)}]},
            }))
            .expect("job")
        };
        let jobs = [failed_at("late", "15:39"), failed_at("early", "15:31")];
        let refs: Vec<&Job> = jobs.iter().collect();
        assert_eq!(
            names(&history_to_delete(&refs, &limits(None, Some(1)))),
            ["early"]
        );
    }

    #[test]
    fn rollout_strategies() {
        let cases = [
            (
                "",
                Rollout::Immediate {
                    propagation: Propagation::Background,
                },
            ),
            ("  rollout: {strategy: gradual}", Rollout::Gradual),
            (
                "  rollout: {strategy: immediate, propagationPolicy: foreground}",
                Rollout::Immediate {
                    propagation: Propagation::Foreground,
                },
            ),
            (
                "  rollout: {propagationPolicy: background}",
                Rollout::Immediate {
                    propagation: Propagation::Background,
                },
            ),
            // The deprecated field wins when set.
            (
                "  rolloutStrategy: gradual\n  rollout: {strategy: immediate}",
                Rollout::Gradual,
            ),
            (
                "  rolloutStrategy: immediate\n  rollout: {strategy: gradual, propagationPolicy: foreground}",
                Rollout::Immediate {
                    propagation: Propagation::Foreground,
                },
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(
                rollout(&scaled_job("{name: w}", extra).spec),
                want,
                "{extra}"
            );
        }
    }

    #[test]
    fn outdated_jobs_by_generation_annotation() {
        let with_generation = |name: &str, generation: Option<&str>| -> Job {
            let mut j = job(name, &[("Complete", "True")], None);
            j.metadata.annotations = generation.map(|g| {
                BTreeMap::from([("scaledjob.keda.sh/generation".to_owned(), g.to_owned())])
            });
            j
        };
        let jobs = [
            with_generation("current", Some("2")),
            with_generation("older", Some("1")),
            with_generation("pre-2.15", None),
            with_generation("running-current", Some("2")),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        assert_eq!(names(&outdated_jobs(&refs, 2)), ["older", "pre-2.15"]);
    }

    #[test]
    fn paused_annotation_as_go_parse_bool() {
        let cases = [
            (None, false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("T"), true),
            (Some("false"), false),
            (Some("0"), false),
            (Some("F"), false),
            (Some("False"), false),
            (Some("FALSE"), false),
            (Some(""), true),
            (Some("no"), true),
            (Some("yes"), true),
        ];
        for (value, want) in cases {
            let mut sj = scaled_job("{name: w}", "");
            if let Some(v) = value {
                sj.metadata.annotations = Some(BTreeMap::from([(
                    "autoscaling.keda.sh/paused".to_owned(),
                    v.to_owned(),
                )]));
            }
            assert_eq!(is_paused(&sj), want, "{value:?}");
        }
    }
}
