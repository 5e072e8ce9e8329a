//! How much memory N built, idle scalers of one backend hold, and how long one poll takes.
//! Prints numbers; run with `cargo run --release -p keda-scalers --example idle_scalers [N]`.
//! The backend is a tiny HTTP server on loopback (metrics-api); nothing leaves the machine.

use std::collections::BTreeMap;
use std::time::Instant;

use keda_scalers::{BuildContext, TriggerInput, parse_trigger};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/m", listener.local_addr()?);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 2048];
                while let Ok(k) = sock.read(&mut buf).await {
                    if k == 0 {
                        break;
                    }
                    let body = "{\"queue\":{\"depth\":7}}";
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let ctx = BuildContext::default();
    let env = BTreeMap::new();
    let auth = BTreeMap::new();
    let before = rss_kib();
    let mut scalers = Vec::with_capacity(n);
    for i in 0..n {
        let md: BTreeMap<String, String> = [
            ("url", url.as_str()),
            ("valueLocation", "queue.depth"),
            ("targetValue", "10"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let input = TriggerInput {
            index: i % 4,
            trigger_type: "metrics-api",
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &env,
            auth_params: &auth,
            metric_type: None,
        };
        let config = parse_trigger(&input)?;
        scalers.push((config.build(&ctx).await?, config));
    }
    // One poll each, so every scaler has touched its (shared) connection pool.
    for (s, _) in &scalers {
        s.sample().await?;
    }
    let after = rss_kib();
    let mut times = Vec::new();
    for (s, _) in scalers.iter().take(1000) {
        let t = Instant::now();
        s.sample().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{n} idle metrics-api scalers (one shared HTTP client): {:.1} KiB total, {:.2} KiB each",
        (after.saturating_sub(before)) as f64,
        after.saturating_sub(before) as f64 / n as f64
    );
    println!("process RSS {:.1} MiB", after as f64 / 1024.0);
    println!(
        "one poll on loopback: p50 {:.3} ms, p99 {:.3} ms ({} samples)",
        pct(0.5),
        pct(0.99),
        times.len()
    );
    Ok(())
}
