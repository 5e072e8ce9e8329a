//! ScaledJob on the local control plane: a real `keda operator` (watching only the test's namespace)
//! creates Jobs from a metrics-api trigger whose value the test sets, the real Job controller runs them,
//! and kwok plays their pods (`hack/kwok-stages.yaml`: Running at once, Succeeded after 2 s or after the
//! `keda-rs.dev/run-for` annotation, Failed with `keda-rs.dev/outcome: fail`). A pod whose nodeSelector
//! matches no node stays Pending (the scheduler cannot place it).
//!
//! Every test name starts with `scaled_job_`, so `cargo xtask e2e scaled_job` runs exactly these.

use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::batch::v1::Job;
use keda_api::ScaledJob;
use keda_e2e::{
    KedaProcess, MetricServer, apply, client, ensure_crds, events_with_reason, kubectl_ok,
    namespace, wait_for,
};
use kube::Api;
use kube::api::{DeleteParams, ListParams};

const T: Duration = Duration::from_secs(60);

/// A ScaledJob reading `url` (field `value`, one Job per unit: targetValue 1), polled every second.
/// `extra_spec` is indented two spaces (spec fields); `pod_annotations` go onto the Job's pods.
fn scaled_job(name: &str, url: &str, extra_spec: &str, pod_extra: &str) -> String {
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: {name}
  labels: {{team: shop}}
spec:
  pollingInterval: 1
{extra_spec}  jobTargetRef:
    backoffLimit: 0
    template:
      metadata:
        annotations: {{keda-rs.dev/run-for: "5m"}}
      spec:
{pod_extra}        containers: [{{name: worker, image: example/worker:1}}]
  triggers:
  - type: metrics-api
    metadata: {{url: "{url}", valueLocation: value, targetValue: "1"}}
"#
    )
}

/// Deletes the test's namespace when the test ends (pass or fail): its Jobs' pods run for minutes and
/// would otherwise fill the kwok node (110 pods) for later runs.
struct DeleteNamespace(String);

impl Drop for DeleteNamespace {
    fn drop(&mut self) {
        let _ = kubectl_ok(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

async fn jobs_of(c: &kube::Client, ns: &str, name: &str) -> Result<Vec<Job>> {
    let api: Api<Job> = Api::namespaced(c.clone(), ns);
    Ok(api
        .list(&ListParams::default().labels(&format!("scaledjob.keda.sh/name={name}")))
        .await?
        .items)
}

fn finished_as(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Waits until `cond` holds for the ScaledJob's Jobs; fails with what it saw last.
async fn wait_jobs(
    c: &kube::Client,
    ns: &str,
    name: &str,
    what: &str,
    cond: impl Fn(&[Job]) -> bool,
) -> Result<Vec<Job>> {
    let deadline = std::time::Instant::now() + T;
    loop {
        let jobs = jobs_of(c, ns, name).await?;
        if cond(&jobs) {
            return Ok(jobs);
        }
        if std::time::Instant::now() > deadline {
            let summary: Vec<String> = jobs
                .iter()
                .map(|j| {
                    let conditions: Vec<String> = j
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.clone())
                        .unwrap_or_default()
                        .iter()
                        .map(|c| format!("{}={}", c.type_, c.status))
                        .collect();
                    format!(
                        "{} {:?}",
                        j.metadata.name.clone().unwrap_or_default(),
                        conditions
                    )
                })
                .collect();
            bail!(
                "timed out waiting for {what}: {} Jobs {summary:?}",
                jobs.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The number of Jobs stays `want` for `duration` (several polls).
async fn stays(
    c: &kube::Client,
    ns: &str,
    name: &str,
    want: usize,
    duration: Duration,
) -> Result<()> {
    let deadline = std::time::Instant::now() + duration;
    while std::time::Instant::now() < deadline {
        let n = jobs_of(c, ns, name).await?.len();
        if n != want {
            bail!("expected {want} Jobs to stay, saw {n}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

fn condition(sj: &ScaledJob, type_: &str) -> Option<(String, String)> {
    sj.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn event_notes(ns: &str, reason: &str) -> Result<Vec<String>> {
    let out = kubectl_ok(
        &[
            "get",
            "events",
            "-n",
            ns,
            "--field-selector",
            &format!("reason={reason}"),
            "-o",
            "json",
        ],
        None,
    )?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Default strategy: value N → N Jobs (upstream's Job shape), more when the queue grows by the
/// difference, none when it shrinks; status and finalizer; delete → the finalizer is removed.
#[tokio::test]
async fn scaled_job_default_strategy_creates_the_queue_length_in_jobs() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-default").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let _op = KedaProcess::operator(&ns, "op")?;
    let server = MetricServer::start(4.0).await?;
    apply(
        &ns,
        &scaled_job("worker", &server.url, "  maxReplicaCount: 10\n", ""),
    )?;

    let jobs = wait_jobs(&c, &ns, "worker", "4 Jobs", |j| j.len() == 4).await?;
    stays(&c, &ns, "worker", 4, Duration::from_secs(4)).await?;
    let job = &jobs[0];
    let labels = job.metadata.labels.clone().unwrap_or_default();
    for (k, v) in [
        ("scaledjob.keda.sh/name", "worker"),
        ("app.kubernetes.io/managed-by", "keda-operator"),
        ("app.kubernetes.io/name", "worker"),
        ("team", "shop"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    assert!(
        job.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("worker-"))
    );
    let owner = &job.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("ScaledJob", "worker", Some(true))
    );
    assert_eq!(
        job.metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .get("scaledjob.keda.sh/generation")
            .map(String::as_str),
        Some("1")
    );

    let sjs: Api<ScaledJob> = Api::namespaced(c.clone(), &ns);
    let sj = wait_for(&sjs, "worker", T, |sj| {
        condition(sj, "Ready").is_some_and(|(s, _)| s == "True")
            && condition(sj, "Active").is_some_and(|(s, _)| s == "True")
    })
    .await?;
    assert!(
        sj.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .contains(&"finalizer.keda.sh".to_owned())
    );
    let status = sj.status.clone().unwrap_or_default();
    assert_eq!(status.triggers_types.as_deref(), Some("metrics-api"));
    assert!(status.last_active_time.is_some());
    assert_eq!(
        status
            .triggers_activity
            .unwrap_or_default()
            .get("s0-metric-api-value")
            .map(|a| a.is_active),
        Some(true)
    );
    assert!(events_with_reason(&ns, "KEDAJobsCreated")? >= 1);

    // Queue 6 with 4 running: 2 more. Queue 2: none.
    server.set(Some(6.0));
    wait_jobs(&c, &ns, "worker", "6 Jobs", |j| j.len() == 6).await?;
    server.set(Some(2.0));
    stays(&c, &ns, "worker", 6, Duration::from_secs(4)).await?;

    // Inactive: Active=False with upstream's reason.
    server.set(Some(0.0));
    wait_for(&sjs, "worker", T, |sj| {
        condition(sj, "Active") == Some(("False".into(), "ScalerNotActive".into()))
    })
    .await?;

    sjs.delete("worker", &DeleteParams::default()).await?;
    let deadline = std::time::Instant::now() + T;
    while sjs.get_opt("worker").await?.is_some() {
        if std::time::Instant::now() > deadline {
            bail!("the ScaledJob was not deleted: its finalizer stayed");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(events_with_reason(&ns, "ScaledJobDeleted")? >= 1);
    Ok(())
}

/// Succeeded and failed Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are removed.
#[tokio::test]
async fn scaled_job_history_limits_remove_the_oldest_finished_jobs() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-history").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let _op = KedaProcess::operator(&ns, "op")?;

    // Succeeding Jobs: pods exit 0 after 1 s.
    let ok = MetricServer::start(3.0).await?;
    let spec = "  successfulJobsHistoryLimit: 2\n";
    let yaml = scaled_job("ok", &ok.url, spec, "").replace("\"5m\"", "\"1s\"");
    apply(&ns, &yaml)?;
    wait_jobs(&c, &ns, "ok", "3 Jobs", |j| j.len() >= 3).await?;
    ok.set(Some(0.0));
    let jobs = wait_jobs(&c, &ns, "ok", "2 succeeded Jobs kept", |j| {
        j.len() == 2 && j.iter().all(|j| finished_as(j, "Complete"))
    })
    .await?;
    assert_eq!(jobs.len(), 2);

    // Failing Jobs: with the kwok stage the pod exits 1 after 1 s; activeDeadlineSeconds makes them
    // fail anyway on a cluster started before the stage existed.
    let bad = MetricServer::start(2.0).await?;
    let spec = "  failedJobsHistoryLimit: 1\n";
    let yaml = scaled_job("bad", &bad.url, spec, "")
        .replace(
            "{keda-rs.dev/run-for: \"5m\"}",
            "{keda-rs.dev/run-for: \"5m\", keda-rs.dev/outcome: fail}",
        )
        .replace(
            "    backoffLimit: 0\n",
            "    backoffLimit: 0\n    activeDeadlineSeconds: 4\n",
        );
    apply(&ns, &yaml)?;
    wait_jobs(&c, &ns, "bad", "2 Jobs", |j| j.len() >= 2).await?;
    bad.set(Some(0.0));
    wait_jobs(&c, &ns, "bad", "1 failed Job kept", |j| {
        j.len() == 1 && finished_as(&j[0], "Failed")
    })
    .await?;
    Ok(())
}

/// Jobs whose pods stay Pending count as running (default) and as pending (accurate): no duplicates
/// however many polls pass.
#[tokio::test]
async fn scaled_job_pending_pods_are_counted_and_never_duplicated() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-pending").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let _op = KedaProcess::operator(&ns, "op")?;
    let unschedulable = "        nodeSelector: {keda-rs.dev/no-such-node: \"true\"}\n";

    let server = MetricServer::start(3.0).await?;
    apply(
        &ns,
        &scaled_job(
            "stuck",
            &server.url,
            "  maxReplicaCount: 10\n",
            unschedulable,
        ),
    )?;
    wait_jobs(&c, &ns, "stuck", "3 Jobs", |j| j.len() == 3).await?;
    stays(&c, &ns, "stuck", 3, Duration::from_secs(5)).await?;
    server.set(Some(5.0));
    wait_jobs(&c, &ns, "stuck", "5 Jobs", |j| j.len() == 5).await?;
    stays(&c, &ns, "stuck", 5, Duration::from_secs(3)).await?;

    // accurate: maxScale - pending while below max: 4 pending of queue 4 → nothing more.
    let acc = MetricServer::start(4.0).await?;
    apply(
        &ns,
        &scaled_job(
            "accurate",
            &acc.url,
            "  maxReplicaCount: 10\n  scalingStrategy: {strategy: accurate}\n",
            unschedulable,
        ),
    )?;
    wait_jobs(&c, &ns, "accurate", "4 Jobs", |j| j.len() == 4).await?;
    stays(&c, &ns, "accurate", 4, Duration::from_secs(5)).await?;
    Ok(())
}

/// An update under the immediate (default) rollout deletes the running Jobs of the earlier generation
/// and says so; under the gradual rollout they keep running.
#[tokio::test]
async fn scaled_job_rollout_immediate_deletes_and_gradual_keeps_running_jobs() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-rollout").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let _op = KedaProcess::operator(&ns, "op")?;
    let server = MetricServer::start(2.0).await?;

    apply(
        &ns,
        &scaled_job("imm", &server.url, "  maxReplicaCount: 10\n", ""),
    )?;
    let before = wait_jobs(&c, &ns, "imm", "2 Jobs", |j| j.len() == 2).await?;
    let old: Vec<String> = before
        .iter()
        .filter_map(|j| j.metadata.name.clone())
        .collect();
    apply(
        &ns,
        &scaled_job("imm", &server.url, "  maxReplicaCount: 9\n", ""),
    )?;
    // The old generation's Jobs go; the next poll creates 2 from the new spec.
    wait_jobs(&c, &ns, "imm", "2 new Jobs", |j| {
        j.len() == 2
            && j.iter().all(|j| {
                !old.contains(&j.metadata.name.clone().unwrap_or_default())
                    && j.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("scaledjob.keda.sh/generation"))
                        .map(String::as_str)
                        == Some("2")
            })
    })
    .await?;
    let notes = event_notes(&ns, "ScaledJobRolloutCleanupCompleted")?;
    assert!(
        notes.iter().any(|n| n.starts_with(
            "Deleted 2 jobs owned by the previous version of the scaledJob: 2 of them were still running"
        )),
        "{notes:?}"
    );

    let spec = "  maxReplicaCount: 10\n  rollout: {strategy: gradual}\n";
    apply(&ns, &scaled_job("grad", &server.url, spec, ""))?;
    let before = wait_jobs(&c, &ns, "grad", "2 Jobs", |j| j.len() == 2).await?;
    let spec = "  maxReplicaCount: 9\n  rollout: {strategy: gradual}\n";
    apply(&ns, &scaled_job("grad", &server.url, spec, ""))?;
    stays(&c, &ns, "grad", 2, Duration::from_secs(4)).await?;
    let after = jobs_of(&c, &ns, "grad").await?;
    let names = |j: &[Job]| -> Vec<String> {
        let mut n: Vec<String> = j.iter().filter_map(|j| j.metadata.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&before), names(&after), "gradual keeps running Jobs");
    Ok(())
}

/// The paused annotation stops Job creation (Paused=True) and unpausing resumes it.
#[tokio::test]
async fn scaled_job_pause_stops_and_unpause_resumes_job_creation() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-pause").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let _op = KedaProcess::operator(&ns, "op")?;
    let server = MetricServer::start(1.0).await?;
    apply(&ns, &scaled_job("p", &server.url, "", ""))?;
    wait_jobs(&c, &ns, "p", "1 Job", |j| j.len() == 1).await?;
    kubectl_ok(
        &[
            "annotate",
            "-n",
            &ns,
            "scaledjob/p",
            "autoscaling.keda.sh/paused=true",
        ],
        None,
    )?;
    let sjs: Api<ScaledJob> = Api::namespaced(c.clone(), &ns);
    wait_for(&sjs, "p", T, |sj| {
        condition(sj, "Paused") == Some(("True".into(), "ScaledJobPaused".into()))
    })
    .await?;
    server.set(Some(3.0));
    stays(&c, &ns, "p", 1, Duration::from_secs(4)).await?;
    kubectl_ok(
        &[
            "annotate",
            "-n",
            &ns,
            "scaledjob/p",
            "autoscaling.keda.sh/paused-",
        ],
        None,
    )?;
    wait_jobs(&c, &ns, "p", "3 Jobs", |j| j.len() == 3).await?;
    let sj = sjs.get("p").await?;
    assert_eq!(
        condition(&sj, "Paused"),
        Some(("False".into(), "ScaledJobUnpaused".into()))
    );
    Ok(())
}

/// With nothing to do — an idle ScaledJob (queue 0) and a busy one whose Jobs already run — polls send
/// no API request at all (Jobs and pods come from watches; status, `lastActiveTime` included, is written
/// only on change). Only the Lease renewals and the watches remain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaled_job_polls_send_no_request_when_nothing_changes() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-writes").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let dir = keda_e2e::root().join("target/keda-e2e-apicount").join(&ns);
    let counter = keda_e2e::apicount::ApiCounter::start(&dir, "operator").await?;
    let _op = KedaProcess::operator_with_env(
        &ns,
        "op",
        "127.0.0.1:0",
        &[],
        &[("KUBECONFIG", counter.kubeconfig.as_str())],
    )?;
    let idle = MetricServer::start(0.0).await?;
    let busy = MetricServer::start(2.0).await?;
    apply(&ns, &scaled_job("idle", &idle.url, "", ""))?;
    apply(&ns, &scaled_job("busy", &busy.url, "", ""))?;
    let sjs: Api<ScaledJob> = Api::namespaced(c.clone(), &ns);
    wait_for(&sjs, "idle", T, |sj| {
        condition(sj, "Active").is_some_and(|(s, _)| s == "False")
    })
    .await?;
    wait_jobs(&c, &ns, "busy", "2 Jobs", |j| j.len() == 2).await?;
    wait_for(&sjs, "busy", T, |sj| {
        condition(sj, "Ready") == Some(("True".into(), "ScaledJobReady".into()))
            && condition(sj, "Active").is_some_and(|(s, _)| s == "True")
    })
    .await?;
    // Let the last writes of the start settle, then count over 8 polls of each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counted = |snapshot: keda_e2e::apicount::Counts| -> Vec<((String, String), f64)> {
        snapshot
            .into_iter()
            .filter(|((verb, resource), _)| {
                verb != "WATCH" && resource != "leases.coordination.k8s.io"
            })
            .collect()
    };
    let before = counted(counter.tally.snapshot());
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = counted(counter.tally.snapshot());
    assert_eq!(before, after, "requests sent by 16 idle polls");
    assert_eq!(jobs_of(&c, &ns, "busy").await?.len(), 2);
    Ok(())
}

/// eager: the queue counts only messages nobody has taken, so while it stays at 3 every poll adds up to 3
/// more Jobs, until `maxReplicaCount`; the default strategy stops at the queue length.
#[tokio::test]
async fn scaled_job_eager_fills_up_to_max_while_the_queue_stays() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-eager").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let _op = KedaProcess::operator(&ns, "op")?;
    let server = MetricServer::start(3.0).await?;
    apply(
        &ns,
        &scaled_job(
            "eager",
            &server.url,
            "  maxReplicaCount: 7\n  scalingStrategy: {strategy: eager}\n",
            "",
        ),
    )?;
    apply(
        &ns,
        &scaled_job("default", &server.url, "  maxReplicaCount: 7\n", ""),
    )?;
    wait_jobs(&c, &ns, "eager", "7 Jobs", |j| j.len() == 7).await?;
    stays(&c, &ns, "eager", 7, Duration::from_secs(3)).await?;
    stays(&c, &ns, "default", 3, Duration::from_secs(1)).await?;
    Ok(())
}

async fn scrape(port: u16) -> Result<String> {
    Ok(reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?)
}

/// A failing trigger: Ready=False `TriggerError` while inactive, `PartialTriggerError` when
/// minReplicaCount keeps it active, one `KEDAScalerFailed` Event, `keda_scaled_job_errors_total` and the
/// per-trigger series with upstream's labels; a spec the rules refuse (metricType) is
/// `ScaledJobCheckFailed` and creates nothing; deleting the ScaledJob removes its series.
#[tokio::test]
async fn scaled_job_trigger_errors_are_reported_as_upstream() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "sj-errors").await?;
    let _cleanup = DeleteNamespace(ns.clone());
    let port = keda_e2e::free_port("127.0.0.1")?;
    let _op = KedaProcess::operator_with(&ns, "op", &format!("127.0.0.1:{port}"), &[])?;
    let server = MetricServer::start(1.0).await?;
    apply(&ns, &scaled_job("flaky", &server.url, "", ""))?;
    wait_jobs(&c, &ns, "flaky", "1 Job", |j| j.len() == 1).await?;
    let text = scrape(port).await?;
    let series = format!(
        r#"keda_scaler_metrics_value{{namespace="{ns}",metric="s0-metric-api-value",scaledObject="flaky",scaler="metricsAPIScaler",triggerIndex="0",type="scaledjob"}} 1.0"#
    );
    assert!(text.contains(&series), "{series} missing in\n{text}");
    assert!(
        text.contains(&format!(
            r#"keda_scaled_job_errors_total{{namespace="{ns}",scaledJob="flaky"}} 0"#
        )),
        "{text}"
    );

    server.set(None);
    let sjs: Api<ScaledJob> = Api::namespaced(c.clone(), &ns);
    wait_for(&sjs, "flaky", T, |sj| {
        condition(sj, "Ready") == Some(("False".into(), "TriggerError".into()))
    })
    .await?;
    assert_eq!(events_with_reason(&ns, "KEDAScalerFailed")?, 1);
    let text = scrape(port).await?;
    assert!(
        !text.contains(&format!(
            r#"keda_scaled_job_errors_total{{namespace="{ns}",scaledJob="flaky"}} 0"#
        )),
        "the error counter moved: {text}"
    );

    apply(
        &ns,
        &scaled_job("flaky", &server.url, "  minReplicaCount: 1\n", ""),
    )?;
    wait_for(&sjs, "flaky", T, |sj| {
        condition(sj, "Ready") == Some(("Unknown".into(), "PartialTriggerError".into()))
    })
    .await?;

    let refused = scaled_job("refused", &server.url, "", "").replace(
        "targetValue: \"1\"}",
        "targetValue: \"1\"}\n    metricType: Value",
    );
    apply(&ns, &refused)?;
    let sj = wait_for(&sjs, "refused", T, |sj| {
        condition(sj, "Ready") == Some(("False".into(), "ScaledJobCheckFailed".into()))
    })
    .await?;
    assert_eq!(
        condition(&sj, "Active"),
        Some(("Unknown".into(), "UnknownState".into()))
    );
    assert!(jobs_of(&c, &ns, "refused").await?.is_empty());

    sjs.delete("flaky", &DeleteParams::default()).await?;
    let deadline = std::time::Instant::now() + T;
    loop {
        let text = scrape(port).await?;
        if !text.contains("scaledObject=\"flaky\"") && !text.contains("scaledJob=\"flaky\"") {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("series of the deleted ScaledJob remain:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
