//! client-go's client-side rate limit as a tower layer: a token bucket that holds `burst` tokens, starts
//! full and refills at `qps` per second; every request (a watch when it starts, a retry again) takes one
//! and waits for it when the bucket is empty. Requests wait in order: the layer sits under kube's
//! `Buffer`, whose single worker asks it for readiness before each request it sends.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// `--kube-api-qps` / `--kube-api-burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests per second once the burst is spent (> 0).
    pub qps: f64,
    /// Requests that may go at once (≥ 1).
    pub burst: u32,
}

impl RateLimit {
    /// upstream's defaults for a flag that is not given (`--kube-api-qps=20`, `--kube-api-burst=30`).
    pub const UPSTREAM_QPS: f64 = 20.0;
    pub const UPSTREAM_BURST: i64 = 30;

    /// The limit the flags ask for, read as upstream's processes and client-go read them: neither flag
    /// given is no limit (keda-rs's default: the API server's priority and fairness protects it); a
    /// flag that is missing takes upstream's default; 0 takes client-go's (5 per second, burst 10); a
    /// negative QPS turns the limit off.
    pub fn from_flags(qps: Option<f64>, burst: Option<i64>) -> Option<RateLimit> {
        if qps.is_none() && burst.is_none() {
            return None;
        }
        let qps = qps.unwrap_or(Self::UPSTREAM_QPS);
        let qps = if qps == 0.0 {
            5.0
        } else if qps < 0.0 || !qps.is_finite() {
            return None;
        } else {
            qps
        };
        let burst = match burst.unwrap_or(Self::UPSTREAM_BURST) {
            b if b <= 0 => 10,
            b => u32::try_from(b).unwrap_or(u32::MAX),
        };
        Some(RateLimit { qps, burst })
    }
}

/// Tokens left and when they were counted; shared by the clones of one [`RateLimited`].
#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Bucket {
        Bucket {
            limit,
            tokens: f64::from(limit.burst),
            at: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.qps).min(f64::from(self.limit.burst));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.limit.qps,
            ))
        }
    }
}

/// Applies a [`RateLimit`] (or nothing, for `None`) to the service below.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Option<Arc<Mutex<Bucket>>>,
}

impl RateLimitLayer {
    pub fn new(limit: Option<RateLimit>) -> RateLimitLayer {
        RateLimitLayer {
            bucket: limit.map(|l| Arc::new(Mutex::new(Bucket::new(l)))),
        }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            bucket: self.bucket.clone(),
            sleep: None,
            holds_token: false,
        }
    }
}

/// The service of [`RateLimitLayer`]: ready once it holds a token and the inner service is ready.
pub struct RateLimited<S> {
    inner: S,
    bucket: Option<Arc<Mutex<Bucket>>>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// A token taken by `poll_ready` for the next `call`.
    holds_token: bool,
}

impl<S: Clone> Clone for RateLimited<S> {
    fn clone(&self) -> Self {
        RateLimited {
            inner: self.inner.clone(),
            bucket: self.bucket.clone(),
            sleep: None,
            holds_token: false,
        }
    }
}

impl<S, R> tower::Service<R> for RateLimited<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if let Some(bucket) = &self.bucket {
            while !self.holds_token {
                if let Some(sleep) = self.sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.sleep = None;
                }
                let taken = match bucket.lock() {
                    Ok(mut b) => b.take(Instant::now()),
                    Err(poisoned) => poisoned.into_inner().take(Instant::now()),
                };
                match taken {
                    Ok(()) => self.holds_token = true,
                    Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
                }
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.holds_token = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    #[test]
    fn flags_as_upstream_and_client_go_read_them() {
        assert_eq!(RateLimit::from_flags(None, None), None);
        assert_eq!(
            RateLimit::from_flags(Some(50.0), None),
            Some(RateLimit {
                qps: 50.0,
                burst: 30
            })
        );
        assert_eq!(
            RateLimit::from_flags(None, Some(100)),
            Some(RateLimit {
                qps: 20.0,
                burst: 100
            })
        );
        assert_eq!(
            RateLimit::from_flags(Some(0.0), Some(0)),
            Some(RateLimit {
                qps: 5.0,
                burst: 10
            })
        );
        assert_eq!(RateLimit::from_flags(Some(-1.0), Some(5)), None);
    }

    /// The instants (ms after start) at which `n` requests in a row get through.
    async fn send_times(limit: Option<RateLimit>, n: usize) -> Vec<u128> {
        let start = Instant::now();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let inner = tower::service_fn({
            let sent = sent.clone();
            move |_: ()| {
                sent.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(start.elapsed().as_millis());
                std::future::ready(Ok::<(), std::convert::Infallible>(()))
            }
        });
        let mut svc = RateLimitLayer::new(limit).layer(inner);
        for _ in 0..n {
            let ready = svc.ready().await;
            assert!(ready.is_ok());
            let _ = svc.call(()).await;
        }
        sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_qps() {
        let times = send_times(Some(RateLimit { qps: 2.0, burst: 3 }), 7).await;
        assert_eq!(times, vec![0, 0, 0, 500, 1000, 1500, 2000]);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_come_back_while_idle_up_to_the_burst() {
        let limit = RateLimit {
            qps: 10.0,
            burst: 2,
        };
        let layer = RateLimitLayer::new(Some(limit));
        let mut svc = layer.layer(tower::service_fn(|_: ()| {
            std::future::ready(Ok::<Instant, std::convert::Infallible>(Instant::now()))
        }));
        let start = Instant::now();
        for _ in 0..2 {
            let _ = svc.ready().await.map(|s| s.call(()));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut at = Vec::new();
        for _ in 0..4 {
            if let Ok(s) = svc.ready().await
                && let Ok(t) = s.call(()).await
            {
                at.push((t - start).as_millis());
            }
        }
        // Five idle seconds refill two tokens, not fifty.
        assert_eq!(at, vec![5000, 5000, 5100, 5200]);
    }

    #[tokio::test(start_paused = true)]
    async fn clones_share_one_bucket() {
        let layer = RateLimitLayer::new(Some(RateLimit { qps: 1.0, burst: 1 }));
        let inner = tower::service_fn(|_: ()| {
            std::future::ready(Ok::<Instant, std::convert::Infallible>(Instant::now()))
        });
        let mut a = layer.layer(inner);
        let mut b = a.clone();
        let start = Instant::now();
        let first = a.ready().await.map(|s| s.call(()));
        let second = b.ready().await.map(|s| s.call(()));
        assert!(first.is_ok() && second.is_ok());
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits() {
        assert_eq!(send_times(None, 100).await, vec![0; 100]);
    }
}
