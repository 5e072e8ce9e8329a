//! Two operators sharded by label (upstream's `WATCH_LABEL_SELECTOR` and
//! `WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH`), in one namespace with their own Leases: each makes the HPAs
//! of, writes the status of, and publishes Events about its own ScaledObjects only, uses only its own
//! TriggerAuthentications, leaves unlabelled objects alone, and hands an object over when it is
//! relabelled.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use keda_api::{ScaledObject, TriggerAuthentication};
use keda_e2e::{
    KedaProcess, MetricServer, apply, client, ensure_crds, free_port, kubectl_ok, namespace,
    wait_for,
};
use kube::Api;
use kube::api::ListParams;

const T: Duration = Duration::from_secs(60);

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: app, image: example/app:1}}]\n"
    )
}

/// A ScaledObject `name` on Deployment `name` with `labels`, one metrics-api trigger authenticated by
/// TriggerAuthentication `auth`.
fn scaled_object(name: &str, labels: &str, url: &str, auth: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  scaleTargetRef: {{name: {name}}}\n  pollingInterval: 1\n  minReplicaCount: 1\n  maxReplicaCount: 3\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"{url}\", valueLocation: value, targetValue: \"10\", authMode: apiKey}}\n    authenticationRef: {{name: {auth}}}\n"
    )
}

fn trigger_auth(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  secretTargetRef:\n  - {{parameter: apiKey, name: api-secret, key: key}}\n"
    )
}

/// An operator of shard `shard`: only objects labelled `shard=<shard>`, Lease `shard-<shard>.keda.sh`,
/// and `extra` flags.
fn operator(ns: &str, shard: &str, metrics_port: u16, extra: &[&str]) -> Result<KedaProcess> {
    let selector = format!("shard={shard}");
    let lease = format!("shard-{shard}.keda.sh");
    let metrics = format!("127.0.0.1:{metrics_port}");
    let identity = format!("op-{shard}");
    let mut args = vec![
        "operator",
        "--leader-elect",
        "--leader-election-id",
        &lease,
        "--metrics-bind-address",
        &metrics,
        "--health-probe-bind-address",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    KedaProcess::start(
        &format!("{ns}-{identity}"),
        &args,
        &[
            ("WATCH_NAMESPACE", ns),
            ("KEDA_CLUSTER_OBJECT_NAMESPACE", ns),
            ("POD_NAME", &identity),
            ("WATCH_LABEL_SELECTOR", &selector),
            ("WATCH_LABEL_SELECTOR_FOR_TRIGGERAUTH", &selector),
        ],
    )
}

fn condition(so: &ScaledObject, type_: &str) -> Option<(String, String)> {
    so.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.r#type == type_)
        .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()))
}

fn ready(so: &ScaledObject) -> bool {
    condition(so, "Ready").is_some_and(|(s, _)| s == "True")
}

/// The instances that published Events about ScaledObject `name`.
async fn reporters(events: &Api<Event>, name: &str) -> Result<Vec<String>> {
    let list = events
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=ScaledObject,involvedObject.name={name}"
        )))
        .await?;
    let mut who: Vec<String> = list
        .items
        .iter()
        .map(|e| e.reporting_instance.clone().unwrap_or_default())
        .collect();
    who.sort();
    who.dedup();
    Ok(who)
}

/// Events are recorded asynchronously, after the status write a test waits for: poll until the
/// reporters satisfy `cond`, and return the last list seen so the caller's assertion shows it.
async fn wait_reporters(
    events: &Api<Event>,
    name: &str,
    cond: impl Fn(&[String]) -> bool,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + T;
    loop {
        let who = reporters(events, name).await?;
        if cond(&who) || Instant::now() > deadline {
            return Ok(who);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn scrape(port: u16) -> Result<String> {
    Ok(reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?)
}

/// Waits until `cond` holds for the operator's `/metrics` text.
async fn wait_metrics(port: u16, what: &str, cond: impl Fn(&str) -> bool) -> Result<()> {
    let deadline = Instant::now() + T;
    loop {
        let text = scrape(port).await.unwrap_or_default();
        if cond(&text) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("/metrics on {port}: {what}\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn has_series(text: &str, object: &str) -> bool {
    let label = format!("scaledObject=\"{object}\"");
    text.lines()
        .any(|l| l.starts_with("keda_scaler_active{") && l.contains(&label))
}

#[tokio::test]
async fn label_sharded_operators_each_own_their_objects() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "shard").await?;
    let server = MetricServer::start_with_key(1.0, Some("s3cret-key")).await?;
    apply(
        &ns,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: api-secret}\nstringData: {key: s3cret-key}\n",
    )?;
    apply(&ns, &trigger_auth("auth-a", "shard: a"))?;
    apply(&ns, &trigger_auth("auth-b", "shard: b"))?;
    for name in ["app-a", "app-b", "app-c", "app-x"] {
        apply(&ns, &deployment(name))?;
    }
    apply(
        &ns,
        &scaled_object("app-a", "shard: a", &server.url, "auth-a"),
    )?;
    apply(
        &ns,
        &scaled_object("app-b", "shard: b", &server.url, "auth-b"),
    )?;
    // No shard label: neither operator may touch it.
    apply(
        &ns,
        &scaled_object("app-c", "team: shop", &server.url, "auth-a"),
    )?;
    // Shard a, but its TriggerAuthentication is shard b's: missing for operator a.
    apply(
        &ns,
        &scaled_object("app-x", "shard: a", &server.url, "auth-b"),
    )?;

    let (port_a, port_b) = (free_port("127.0.0.1")?, free_port("127.0.0.1")?);
    // Operator a also runs with a client-side rate limit (it only paces its requests).
    let mut op_a = operator(
        &ns,
        "a",
        port_a,
        &["--kube-api-qps=20", "--kube-api-burst=30"],
    )?;
    let mut op_b = operator(&ns, "b", port_b, &[])?;

    let sos: Api<ScaledObject> = Api::namespaced(c.clone(), &ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    let events: Api<Event> = Api::namespaced(c.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(c.clone(), &ns);
    wait_for(&sos, "app-a", T, ready).await?;
    wait_for(&sos, "app-b", T, ready).await?;
    for (name, shard) in [("app-a", "a"), ("app-b", "b")] {
        let hpa = wait_for(&hpas, &format!("keda-hpa-{name}"), T, |_| true).await?;
        let labels = hpa.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("shard").map(String::as_str), Some(shard));
        let expected = [format!("op-{shard}")];
        let who = wait_reporters(&events, name, |w| w == expected).await?;
        assert_eq!(who, expected);
    }
    for (lease, holder) in [("shard-a.keda.sh", "op-a"), ("shard-b.keda.sh", "op-b")] {
        let l = leases.get(lease).await?;
        assert_eq!(
            l.spec.and_then(|s| s.holder_identity).as_deref(),
            Some(holder)
        );
    }
    // A TriggerAuthentication of the other shard does not exist for this one.
    let x = wait_for(&sos, "app-x", T, |so| {
        condition(so, "Ready").is_some_and(|(s, _)| s == "False")
    })
    .await?;
    let (_, message) = condition(&x, "Ready").unwrap_or_default();
    assert!(message.contains("auth-b"), "{message}");
    assert_eq!(
        wait_reporters(&events, "app-x", |w| w == ["op-a"]).await?,
        ["op-a"]
    );
    // Each operator writes the status of its own TriggerAuthentication only.
    let tas: Api<TriggerAuthentication> = Api::namespaced(c.clone(), &ns);
    for (ta, users) in [("auth-a", "app-a"), ("auth-b", "app-b")] {
        wait_for(&tas, ta, T, |t| {
            t.status.as_ref().and_then(|s| s.scaled_objects.as_deref()) == Some(users)
        })
        .await?;
    }
    // Each serves the series of its own objects.
    wait_metrics(port_a, "app-a only", |t| {
        has_series(t, "app-a") && !has_series(t, "app-b")
    })
    .await?;
    wait_metrics(port_b, "app-b only", |t| {
        has_series(t, "app-b") && !has_series(t, "app-a")
    })
    .await?;

    // The unlabelled object stays untouched: no status, no finalizer, no HPA, no Event.
    let untouched = sos.get("app-c").await?;
    assert!(untouched.status.is_none(), "{:?}", untouched.status);
    assert!(untouched.metadata.finalizers.unwrap_or_default().is_empty());
    assert!(hpas.get_opt("keda-hpa-app-c").await?.is_none());
    assert!(reporters(&events, "app-c").await?.is_empty());

    // Labelled into shard a, it becomes operator a's.
    kubectl_ok(
        &["-n", &ns, "label", "scaledobject", "app-c", "shard=a"],
        None,
    )?;
    wait_for(&sos, "app-c", T, ready).await?;
    wait_for(&hpas, "keda-hpa-app-c", T, |_| true).await?;
    assert_eq!(
        wait_reporters(&events, "app-c", |w| w == ["op-a"]).await?,
        ["op-a"]
    );

    // app-b moves from shard b to shard a (with a shard-a TriggerAuthentication): operator a adopts it
    // and its HPA, operator b lets go (its loop and series end).
    kubectl_ok(
        &[
            "-n",
            &ns,
            "patch",
            "scaledobject",
            "app-b",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/metadata/labels/shard","value":"a"},{"op":"replace","path":"/spec/triggers/0/authenticationRef/name","value":"auth-a"}]"#,
        ],
        None,
    )?;
    wait_for(&hpas, "keda-hpa-app-b", T, |h| {
        h.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("shard"))
            .map(String::as_str)
            == Some("a")
    })
    .await?;
    wait_for(&sos, "app-b", T, ready).await?;
    wait_metrics(port_b, "no series of app-b after the handover", |t| {
        !t.is_empty() && !has_series(t, "app-b")
    })
    .await?;
    wait_metrics(port_a, "app-b's series on operator a", |t| {
        has_series(t, "app-b")
    })
    .await?;
    let who = wait_reporters(&events, "app-b", |w| w.iter().any(|r| r == "op-a")).await?;
    assert!(who.contains(&"op-a".to_owned()), "{who:?}");

    assert!(op_a.is_running(), "{}", op_a.log_tail());
    assert!(op_b.is_running(), "{}", op_b.log_tail());
    op_a.terminate();
    op_b.terminate();
    Ok(())
}
