//! What the benchmarks share: a process's CPU and memory from `/proc`, and a metric endpoint that counts
//! every request it answers (keep-alive connections, as the scalers' shared HTTP client uses).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct ProcStat {
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// Heap and other private memory; the rest of the RSS is mapped files (the binary's code).
    pub anon_kib: u64,
}

pub fn proc_stat(pid: u32) -> ProcStat {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime + stime, in clock ticks (100 per second on Linux).
    let cpu_seconds = (field(11) + field(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    ProcStat {
        cpu_seconds,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        anon_kib: kib("RssAnon:"),
    }
}

/// A loopback HTTP endpoint answering `{"value": <value>}` to every request and counting them. Requests
/// whose path starts with `/slow` are answered after 500 ms (an injected slow upstream). Returns the
/// base URL (`http://127.0.0.1:<port>`) and the counter.
pub async fn counting_endpoint(value: f64) -> Result<(String, Arc<AtomicU64>)> {
    let polls = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let counter = polls.clone();
    let body = format!("{{\"value\": {value}}}");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                loop {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(1, Ordering::Relaxed);
                    if buf[..n].starts_with(b"GET /slow") {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
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
    Ok((base, polls))
}
