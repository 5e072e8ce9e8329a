//! metrics-api with `aggregateFromKubeServiceEndpoints` through a real operator: the operator lists the
//! Service's EndpointSlices from the API server (its Kubernetes-backed endpoint source) and asks each
//! ready endpoint. The Service has no selector; the test writes its EndpointSlices itself, pointing at an
//! HTTP server on this network namespace's address (the API server refuses loopback endpoint addresses).
//!
//! Seen through the operator's `/metrics`: the value is the endpoint's (a not-ready address, a duplicate
//! address and another Service's slice change nothing), and once the only address is marked not ready
//! every poll fails.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use keda_e2e::{KedaProcess, NODE_IP, apply, client, ensure_crds, free_port, namespace};

const T: Duration = Duration::from_secs(60);

/// `{"value": <value>}` for every request, on `NODE_IP` and a free port; returns the port.
async fn serve(value: f64) -> Result<u16> {
    let listener = tokio::net::TcpListener::bind((NODE_IP, 0)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = format!("{{\"value\": {value}}}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(port)
}

/// An EndpointSlice of `service` with `(address, ready)` endpoints and `ports`.
fn slice(name: &str, service: &str, ports: &[u16], endpoints: &[(&str, bool)]) -> String {
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "keda-rs.e2e",
            },
        },
        "addressType": "IPv4",
        "ports": ports
            .iter()
            .enumerate()
            .map(|(i, p)| serde_json::json!({"name": format!("p{i}"), "port": p, "protocol": "TCP"}))
            .collect::<Vec<_>>(),
        "endpoints": endpoints
            .iter()
            .map(|(a, ready)| serde_json::json!({"addresses": [a], "conditions": {"ready": ready}}))
            .collect::<Vec<_>>(),
    })
    .to_string()
}

/// The samples of `metric` for ScaledObject `web` on the operator's `/metrics`.
async fn series(metrics_url: &str, metric: &str) -> Vec<f64> {
    let Ok(resp) = reqwest::get(metrics_url).await else {
        return Vec::new();
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains("scaledObject=\"web\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

async fn wait_series(metrics_url: &str, metric: &str, want: impl Fn(f64) -> bool) -> Result<f64> {
    let start = Instant::now();
    loop {
        let got = series(metrics_url, metric).await;
        if let Some(v) = got.iter().copied().find(|v| want(*v)) {
            return Ok(v);
        }
        if start.elapsed() > T {
            bail!("{metric} for web never matched; last seen {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn values_come_from_the_ready_endpoints_of_the_service() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "mapi-eps").await?;
    let metrics_addr = format!("127.0.0.1:{}", free_port("127.0.0.1")?);
    let _op = KedaProcess::operator_with(&ns, "op-a", &metrics_addr, &[])?;
    let port = serve(7.0).await?;

    apply(
        &ns,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: metrics}}\nspec:\n  ports: [{{name: http, port: 80, targetPort: {port}}}]\n"
        ),
    )?;
    // The address twice (two slices), a not-ready address that nothing answers on, a port the URL
    // does not name; another Service's slice with an address nothing answers on.
    apply(
        &ns,
        &slice(
            "metrics-a",
            "metrics",
            &[9, port],
            &[(NODE_IP, true), ("10.200.0.77", false)],
        ),
    )?;
    apply(
        &ns,
        &slice("metrics-b", "metrics", &[port], &[(NODE_IP, true)]),
    )?;
    apply(
        &ns,
        &slice("other-a", "other", &[port], &[("10.200.0.78", true)]),
    )?;
    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: web}}\nspec:\n  scaleTargetRef: {{name: web}}\n  pollingInterval: 1\n  minReplicaCount: 1\n  triggers:\n  - type: metrics-api\n    metadata: {{url: \"http://metrics.{ns}.svc.cluster.local:{port}/value\", valueLocation: value, targetValue: \"10\", aggregateFromKubeServiceEndpoints: \"true\", aggregationType: sum}}\n"
        ),
    )?;

    let url = format!("http://{metrics_addr}/metrics");
    // The sum over the one distinct ready address.
    wait_series(&url, "keda_scaler_metrics_value", |v| v == 7.0).await?;

    // The only address is no longer ready: every poll fails ("no ready endpoints").
    let before = series(&url, "keda_scaler_detail_errors_total")
        .await
        .into_iter()
        .sum::<f64>();
    apply(
        &ns,
        &slice("metrics-a", "metrics", &[port], &[(NODE_IP, false)]),
    )?;
    apply(
        &ns,
        &slice("metrics-b", "metrics", &[port], &[(NODE_IP, false)]),
    )?;
    wait_series(&url, "keda_scaler_detail_errors_total", |v| {
        v >= before + 2.0
    })
    .await?;
    Ok(())
}
