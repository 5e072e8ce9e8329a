//! How long an activation pushed by an external scaler's `StreamIsActive` takes to reach the operator
//! side of an `external-push` trigger ([`keda_scalers::Scaler::activity`]): the bound is 200 ms.
//! Prints the median, p99 and max over N pushes (default 1000), each sent after the previous one
//! arrived, over plaintext and over mutual TLS. Run with
//! `cargo run --release -p keda-scalers --example external_push_latency [N]`. The server is the tests'
//! gRPC stand-in on loopback; nothing leaves the machine.

#[path = "../tests/support/external_server.rs"]
mod external_server;
#[path = "../tests/parse_tables/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use external_server::{Backend, ServerTls, serve};
use keda_scalers::{BuildContext, TriggerConfig};

fn trigger(metadata: &[(&str, &str)], auth: &[(&str, &str)]) -> Box<dyn TriggerConfig> {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let case = harness::Case {
        name: String::new(),
        trigger_type: "external-push".into(),
        namespace: "default".into(),
        metadata: map(metadata),
        auth: map(auth),
        env: BTreeMap::new(),
        error: None,
        expect: Default::default(),
        metrics: Vec::new(),
    };
    keda_scalers::parse_trigger(&case.input(0)).expect("trigger parses")
}

async fn measure(
    label: &str,
    backend: &Backend,
    config: &dyn TriggerConfig,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = BuildContext::default();
    let scaler = config.build(&ctx).await?;
    let mut rx = scaler.activity().ok_or("external-push has a stream")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.listeners() == 0 {
        if Instant::now() > deadline {
            return Err("StreamIsActive not opened".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let active = i % 2 == 0;
        let sent = Instant::now();
        backend.push(active);
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(got)) if got == active => latencies.push(sent.elapsed()),
            other => return Err(format!("push {i}: {other:?}").into()),
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "{label}: {n} pushes: median {:?}, p99 {:?}, max {:?} (bound 200 ms)",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);

    let backend = Backend::default();
    let plain = serve(&backend, 0, None).await;
    let addr = plain.addr.to_string();
    measure(
        "plaintext",
        &backend,
        &*trigger(&[("scalerAddress", &addr)], &[]),
        n,
    )
    .await?;
    plain.stop().await;

    // Mutual TLS: a throwaway CA signs the server's and the client's certificates.
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf = |name: &str| -> Result<(String, String), rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec![name.to_owned()])?.signed_by(&key, &ca, &ca_key)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    let (cert, key) = leaf("127.0.0.1")?;
    let (client_cert, client_key) = leaf("keda-operator")?;
    let backend = Backend::default();
    let mtls = serve(
        &backend,
        0,
        Some(ServerTls {
            cert,
            key,
            client_ca: Some(ca.pem()),
        }),
    )
    .await;
    let addr = mtls.addr.to_string();
    let config = trigger(
        &[("scalerAddress", &addr)],
        &[
            ("caCert", &ca.pem()),
            ("tlsClientCert", &client_cert),
            ("tlsClientKey", &client_key),
        ],
    );
    measure("mutual TLS", &backend, &*config, n).await?;
    Ok(())
}
