//! Load generators for the side-by-side bench: paced `external.metrics.k8s.io` reads through the
//! kube-apiserver's aggregation layer, and a burst of AdmissionReviews straight at a webhook server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use kube::Client;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Latencies (ms) of the requests that succeeded, sorted, and how many failed.
#[derive(Debug, Default)]
pub struct Latencies {
    pub ok_ms: Vec<f64>,
    pub failed: usize,
    /// The first failure, for the report.
    pub first_error: Option<String>,
}

impl Latencies {
    pub fn p(&self, q: f64) -> f64 {
        if self.ok_ms.is_empty() {
            return f64::NAN;
        }
        self.ok_ms[(((self.ok_ms.len() - 1) as f64) * q).round() as usize]
    }
}

/// GETs `paths` round-robin through `client` (the kube-apiserver) at `per_second`, open loop: a request
/// starts every 1/`per_second` whether or not earlier ones have answered, so a slow server shows as
/// latency rather than as a lower rate.
pub async fn paced_gets(
    client: &Client,
    paths: &[String],
    per_second: u32,
    duration: Duration,
) -> Result<Latencies> {
    let result = Arc::new(Mutex::new(Latencies::default()));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut i = 0usize;
    while started.elapsed() < duration {
        tick.tick().await;
        let path = paths[i % paths.len()].clone();
        i += 1;
        let (client, result) = (client.clone(), result.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let request = http::Request::get(&path).body(Vec::new());
            let outcome = match request {
                Ok(r) => client.request_text(r).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            let mut r = result.lock().await;
            match outcome {
                Ok(_) => r.ok_ms.push(ms),
                Err(e) => {
                    r.failed += 1;
                    r.first_error.get_or_insert(format!("GET {path}: {e}"));
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("a metrics fetch task")?;
    }
    let mut r = std::mem::take(&mut *result.lock().await);
    r.ok_ms.sort_by(f64::total_cmp);
    Ok(r)
}

/// An AdmissionReview (admission.k8s.io/v1) asking to update ScaledObject `so` to itself.
pub fn scaled_object_update_review(uid: &str, so: &Value) -> Value {
    let namespace = so["metadata"]["namespace"].clone();
    let name = so["metadata"]["name"].clone();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
            "resource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
            "requestKind": {"group": "keda.sh", "version": "v1alpha1", "kind": "ScaledObject"},
            "requestResource": {"group": "keda.sh", "version": "v1alpha1", "resource": "scaledobjects"},
            "name": name,
            "namespace": namespace,
            "operation": "UPDATE",
            "userInfo": {"username": "keda-rs-bench"},
            "object": so,
            "oldObject": so,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}
        }
    })
}

/// One review's latency (ms) and its answer: allowed, and the denial message; or why it failed.
type Outcome = (f64, Result<(bool, String), String>);

/// What a burst of reviews got: latencies, and how many were allowed, denied, or failed outright.
#[derive(Debug, Default)]
pub struct Burst {
    pub latencies: Latencies,
    pub allowed: usize,
    pub denied: usize,
    pub first_denial: Option<String>,
}

/// POSTs `count` reviews (`reviews[i % len]`) to `url` with `concurrency` in flight, over HTTPS with
/// `ca_pem` as the only trusted root; `host` (the Service name in the serving certificate) resolves to
/// `addr`.
pub async fn webhook_burst(
    url: &str,
    host: &str,
    addr: std::net::SocketAddr,
    ca_pem: &[u8],
    reviews: &[Value],
    count: usize,
    concurrency: usize,
) -> Result<Burst> {
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem)?)
        .tls_built_in_root_certs(false)
        .resolve(host, addr)
        .timeout(Duration::from_secs(10))
        .build()?;
    let outcomes: Vec<Outcome> = futures::stream::iter(0..count)
        .map(|i| {
            let (http, body) = (http.clone(), reviews[i % reviews.len()].clone());
            async move {
                let sent = Instant::now();
                let answer = async {
                    let r = http
                        .post(url)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    let status = r.status();
                    let v: Value = r.json().await.map_err(|e| format!("{e:#}"))?;
                    if !status.is_success() {
                        return Err(format!("HTTP {status}: {v}"));
                    }
                    let allowed = v["response"]["allowed"].as_bool().unwrap_or(false);
                    Ok((allowed, v["response"]["status"]["message"].to_string()))
                }
                .await;
                (sent.elapsed().as_secs_f64() * 1000.0, answer)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut burst = Burst::default();
    for (ms, outcome) in outcomes {
        match outcome {
            Ok((allowed, message)) => {
                burst.latencies.ok_ms.push(ms);
                if allowed {
                    burst.allowed += 1;
                } else {
                    burst.denied += 1;
                    burst.first_denial.get_or_insert(message);
                }
            }
            Err(e) => {
                burst.latencies.failed += 1;
                burst.latencies.first_error.get_or_insert(e);
            }
        }
    }
    burst.latencies.ok_ms.sort_by(f64::total_cmp);
    Ok(burst)
}
