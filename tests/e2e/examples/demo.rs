//! `cargo xtask demo`: keda-rs scaling an application 0 → N → 0 from a Redis list, on the local control
//! plane, watched live in the terminal.
//!
//! 1. installs the chart charts/keda (release `keda`, namespace `keda`) with helm; kwok only pretends to
//!    run its pods, so the real `keda operator`, `keda metrics-apiserver` and `keda admission-webhooks`
//!    run here instead and the chart's Services point at them ([`keda_e2e::ChartProcesses`]);
//! 2. starts a local `redis-server` on this network namespace's loopback;
//! 3. deploys examples/example-app with values_demo.yaml (a Redis list trigger, minReplicaCount 0) into
//!    namespace `keda-demo`;
//! 4. pushes jobs onto the list; every ready replica of the app "processes" a job every two seconds, so
//!    the list drains faster the more replicas there are;
//! 5. prints every change of the Deployment's replicas and the Events of the ScaledObject and HPA that
//!    explain it, and stops on its own once the app is back at 0 replicas.
//!
//! Ctrl-C (or SIGTERM, SIGHUP) at any point, or an error, uninstalls the app and the chart and stops the processes and Redis;
//! the control plane stays up. Run it inside the cluster's network namespace (`cargo xtask demo` does).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use keda_e2e::{ChartProcesses, client, cluster_scoped_lock, free_port, kubectl, root};
use kube::api::ListParams;
use kube::{Api, Client};

const KEDA_NAMESPACE: &str = "keda";
const KEDA_RELEASE: &str = "keda";
const APP_NAMESPACE: &str = "keda-demo";
const APP_RELEASE: &str = "example-app";
const APP: &str = "example-app";
const SCALED_OBJECT: &str = "example-app-redis-queue-scaler";
const LIST: &str = "jobs";
const JOBS: usize = 100;
/// Seconds one replica takes per job.
const SECONDS_PER_JOB: f64 = 2.0;
/// The whole demo gives up after this long (it normally takes 2–3 minutes).
const OVERALL: Duration = Duration::from_secs(480);

/// What exists and must be cleaned up, filled in as the demo goes.
#[derive(Default)]
struct Installed {
    lock: Option<std::fs::File>,
    chart: bool,
    processes: Option<ChartProcesses>,
    redis: Option<Child>,
    app: bool,
}

type Shared = Arc<Mutex<Installed>>;

fn with<T>(shared: &Shared, f: impl FnOnce(&mut Installed) -> T) -> T {
    match shared.lock() {
        Ok(mut g) => f(&mut g),
        Err(poisoned) => f(&mut poisoned.into_inner()),
    }
}

fn say(start: Instant, text: &str) {
    println!("[{:>4.0}s] {text}", start.elapsed().as_secs_f64());
}

fn run_ok(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn helm(args: &[&str]) -> Result<String> {
    run_ok(Command::new("helm").args(args))
}

fn redis_cli(port: u16, args: &[&str]) -> Result<String> {
    Ok(run_ok(
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
    )?
    .trim()
    .to_owned())
}

fn start_redis(shared: &Shared, start: Instant) -> Result<u16> {
    use std::os::unix::process::CommandExt;
    let port = free_port("127.0.0.1")?;
    let log = root().join("target/keda-e2e-logs/demo-redis.log");
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::File::create(&log)?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .context(
            "starting redis-server (Debian package redis-server; `cargo xtask test` installs it)",
        )?;
    with(shared, |i| i.redis = Some(child));
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis_cli(port, &["ping"]).ok().as_deref() != Some("PONG") {
        if Instant::now() > deadline {
            bail!(
                "redis-server did not answer on 127.0.0.1:{port} (log: {})",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    say(
        start,
        &format!("redis-server listening on 127.0.0.1:{port}"),
    );
    Ok(port)
}

/// Prints the Events about the ScaledObject and its HPA that it has not printed yet.
struct EventPrinter {
    seen: BTreeSet<(String, String)>,
}

impl EventPrinter {
    async fn print_new(&mut self, client: &Client, start: Instant) -> Result<()> {
        let events: Api<Event> = Api::namespaced(client.clone(), APP_NAMESPACE);
        let mut list = events.list(&ListParams::default()).await?.items;
        list.sort_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
        });
        for e in list {
            let kind = e.involved_object.kind.as_deref().unwrap_or_default();
            let name = e.involved_object.name.as_deref().unwrap_or_default();
            let ours = match kind {
                "ScaledObject" => name == SCALED_OBJECT,
                "HorizontalPodAutoscaler" => name.strip_prefix("keda-hpa-") == Some(SCALED_OBJECT),
                _ => false,
            };
            if !ours {
                continue;
            }
            let key = (
                e.metadata.uid.clone().unwrap_or_default(),
                e.metadata.resource_version.clone().unwrap_or_default(),
            );
            if !self.seen.insert(key) {
                continue;
            }
            let who = if kind == "ScaledObject" {
                "ScaledObject"
            } else {
                "HPA"
            };
            let warning = if e.type_.as_deref() == Some("Warning") {
                " (warning)"
            } else {
                ""
            };
            say(
                start,
                &format!(
                    "  {who} {}{warning}: {}",
                    e.reason.as_deref().unwrap_or_default(),
                    without_selector(e.message.as_deref().unwrap_or_default().trim())
                ),
            );
        }
        Ok(())
    }
}

/// The HPA controller names an external metric with its Go-printed label selector
/// (`s0-redis-jobs(&LabelSelector{MatchLabels:…})`); the metric name says enough.
fn without_selector(message: &str) -> String {
    match (message.find("(&LabelSelector{"), message.find("},}) ")) {
        (Some(a), Some(b)) if b > a => format!("{}{}", &message[..a], &message[b + 4..]),
        _ => message.to_owned(),
    }
}

/// (spec.replicas, status.readyReplicas) of the app's Deployment.
async fn replicas(deployments: &Api<Deployment>) -> Result<(i32, i32)> {
    let d = deployments.get(APP).await?;
    Ok((
        d.spec.and_then(|s| s.replicas).unwrap_or(0),
        d.status.and_then(|s| s.ready_replicas).unwrap_or(0),
    ))
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    /// Deployed with 1 replica; KEDA takes it to 0 while the list is empty.
    SettleAtZero,
    /// Jobs pushed; replicas process them.
    Working,
    /// The list is empty; waiting for HPA and KEDA to take the app back to 0.
    Draining,
}

async fn demo(shared: Shared, start: Instant) -> Result<()> {
    let client = client().await?;
    let chart = root().join("charts/keda");
    let app_chart = root().join("examples/example-app");
    let values = app_chart.join("values_demo.yaml");

    say(
        start,
        "waiting for the cluster-scoped lock (held while an e2e test owns the APIService or webhooks)",
    );
    let lock = tokio::task::spawn_blocking(cluster_scoped_lock).await??;
    with(&shared, |i| i.lock = Some(lock));

    say(
        start,
        "helm upgrade --install keda charts/keda --namespace keda --create-namespace --wait",
    );
    with(&shared, |i| i.chart = true);
    helm(&[
        "upgrade",
        "--install",
        KEDA_RELEASE,
        &chart.display().to_string(),
        "--namespace",
        KEDA_NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        "180s",
    ])?;

    // A fresh application namespace (a previous run killed with SIGKILL may have left one).
    let _ = kubectl(
        &[
            "delete",
            "namespace",
            APP_NAMESPACE,
            "--ignore-not-found",
            "--timeout=120s",
        ],
        None,
    )?;
    keda_e2e::kubectl_ok(&["create", "namespace", APP_NAMESPACE], None)?;

    say(
        start,
        "starting keda operator, metrics-apiserver and admission-webhooks here in place of the chart's pods",
    );
    let mut processes = ChartProcesses::start(KEDA_NAMESPACE, Some(APP_NAMESPACE)).await?;
    let answer = processes
        .wait_external_metrics_api(Duration::from_secs(90))
        .await;
    let logs = format!(
        "process logs: {}",
        std::fs::canonicalize(root().join("target/keda-e2e-logs"))?.display()
    );
    with(&shared, |i| i.processes = Some(processes));
    answer?;
    say(
        start,
        "kubectl get --raw /apis/external.metrics.k8s.io/v1beta1 answers through the chart's APIService and Service",
    );
    say(start, &logs);

    let port = start_redis(&shared, start)?;

    say(
        start,
        &format!(
            "helm install example-app examples/example-app -f values_demo.yaml --namespace {APP_NAMESPACE} (redis trigger on list {LIST:?}, minReplicaCount 0)"
        ),
    );
    with(&shared, |i| i.app = true);
    helm(&[
        "upgrade",
        "--install",
        APP_RELEASE,
        &app_chart.display().to_string(),
        "--namespace",
        APP_NAMESPACE,
        "--values",
        &values.display().to_string(),
        "--set",
        &format!("keda.scaledObject[0].triggers[0].metadata.address=127.0.0.1:{port}"),
        "--wait",
        "--timeout",
        "120s",
    ])?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), APP_NAMESPACE);
    let mut events = EventPrinter {
        seen: BTreeSet::new(),
    };
    let mut phase = Phase::SettleAtZero;
    let mut phase_since = Instant::now();
    let (mut last, _) = replicas(&deployments).await?;
    let mut peak = last;
    let mut path = vec![last];
    say(
        start,
        &format!(
            "Deployment {APP}: {last} replica(s); the list is empty, so KEDA should take it to 0"
        ),
    );
    let mut credit = 0.0_f64;
    let mut last_report = Instant::now();
    let tick = Duration::from_millis(500);
    loop {
        tokio::time::sleep(tick).await;
        if start.elapsed() > OVERALL {
            bail!("the demo did not finish within {OVERALL:?} (phase {phase:?})");
        }
        if let Some(p) = with(&shared, |i| {
            i.processes.as_mut().map(|p| p.check_running().err())
        })
        .flatten()
        {
            return Err(p);
        }
        events.print_new(&client, start).await?;
        let (now, ready) = replicas(&deployments).await?;
        let length: usize = redis_cli(port, &["llen", LIST])?.parse().unwrap_or(0);
        if now != last {
            say(
                start,
                &format!("replicas {last} → {now}   (jobs waiting: {length})"),
            );
            last = now;
            peak = peak.max(now);
            path.push(now);
            last_report = Instant::now();
        }
        match phase {
            Phase::SettleAtZero => {
                if now == 0 {
                    let jobs: Vec<String> = (1..=JOBS).map(|n| format!("job-{n}")).collect();
                    let mut args = vec!["rpush", LIST];
                    args.extend(jobs.iter().map(String::as_str));
                    redis_cli(port, &args)?;
                    say(
                        start,
                        &format!(
                            "pushed {JOBS} jobs onto Redis list {LIST:?}; each ready replica takes one every {SECONDS_PER_JOB:.0} s"
                        ),
                    );
                    phase = Phase::Working;
                    phase_since = Instant::now();
                } else if phase_since.elapsed() > Duration::from_secs(120) {
                    bail!("KEDA did not take {APP} to 0 replicas within 120 s");
                }
            }
            Phase::Working => {
                credit += f64::from(ready.min(now).max(0)) * tick.as_secs_f64() / SECONDS_PER_JOB;
                let take = credit.floor() as usize;
                if take > 0 && length > 0 {
                    credit -= take as f64;
                    let take = take.min(length).to_string();
                    redis_cli(port, &["lpop", LIST, &take])?;
                }
                if length == 0 {
                    say(start, "the list is empty: all jobs processed");
                    phase = Phase::Draining;
                    phase_since = Instant::now();
                }
            }
            Phase::Draining => {
                if now == 0 {
                    let shown: Vec<String> = path.iter().map(i32::to_string).collect();
                    say(
                        start,
                        &format!(
                            "back at 0 replicas. Replicas went {} (peak {peak}) in {:.0} s",
                            shown.join(" → "),
                            start.elapsed().as_secs_f64()
                        ),
                    );
                    // The last Events (KEDAScaleTargetDeactivated) may trail the scale by a moment.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    events.print_new(&client, start).await?;
                    return Ok(());
                }
            }
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            say(
                start,
                &format!("… {now} replica(s), {ready} ready, jobs waiting: {length}"),
            );
            last_report = Instant::now();
        }
    }
}

/// Undoes whatever `demo` got to, in an order that works: the app first (its ScaledObject's finalizer
/// needs the operator), then the processes and Redis, then the chart (its APIService must not outlive
/// the metrics-apiserver), then the lock.
fn clean_up(shared: &Shared) {
    let mut installed = with(shared, std::mem::take);
    if installed.app {
        println!("cleanup: helm uninstall {APP_RELEASE} --namespace {APP_NAMESPACE}");
        if let Err(e) = helm(&[
            "uninstall",
            APP_RELEASE,
            "--namespace",
            APP_NAMESPACE,
            "--wait",
            "--timeout",
            "60s",
        ]) {
            eprintln!("cleanup: {e:#}");
        }
    }
    let _ = kubectl(
        &[
            "delete",
            "namespace",
            APP_NAMESPACE,
            "--ignore-not-found",
            "--wait=false",
        ],
        None,
    );
    if let Some(mut p) = installed.processes.take() {
        println!("cleanup: stopping keda operator, metrics-apiserver and admission-webhooks");
        p.stop();
    }
    if let Some(mut redis) = installed.redis.take() {
        println!("cleanup: stopping redis-server");
        let _ = redis.kill();
        let _ = redis.wait();
    }
    if installed.chart {
        println!("cleanup: helm uninstall {KEDA_RELEASE} --namespace {KEDA_NAMESPACE}");
        if let Err(e) = helm(&[
            "uninstall",
            KEDA_RELEASE,
            "--namespace",
            KEDA_NAMESPACE,
            "--wait",
            "--timeout",
            "120s",
            "--ignore-not-found",
        ]) {
            eprintln!("cleanup: {e:#}");
        }
    }
    drop(installed.lock.take());
}

/// Ctrl-C, or SIGTERM / SIGHUP (a closed terminal, `timeout`): any of them stops the demo with a cleanup.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(mut term), Ok(mut hup)) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let start = Instant::now();
    let shared: Shared = Arc::default();
    let mut task = tokio::spawn(demo(shared.clone(), start));
    let result = tokio::select! {
        r = &mut task => match r {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("the demo task failed: {e}")),
        },
        () = stop_signal() => {
            println!("\nInterrupted: cleaning up (this takes a few seconds).");
            task.abort();
            // Wait until the task has really stopped, so it cannot install anything after the cleanup.
            let _ = (&mut task).await;
            Err(anyhow::anyhow!("interrupted"))
        }
    };
    let cleaner = shared.clone();
    tokio::task::spawn_blocking(move || clean_up(&cleaner)).await?;
    let logs = root().join("target/keda-e2e-logs");
    let logs: PathBuf = std::fs::canonicalize(&logs).unwrap_or(logs);
    println!(
        "\nThe local control plane is still running. Look around with:\n  cargo xtask cluster exec -- kubectl get ns\n\
         Stop it with:\n  cargo xtask cluster down\n(process logs: {})",
        logs.display()
    );
    match result {
        Err(e) if e.to_string() == "interrupted" => std::process::exit(130),
        other => other,
    }
}
