//! Leader election on a coordination.k8s.io Lease, with client-go's semantics (the Lease record is the
//! same, so keda-rs and upstream KEDA replicas can hand the Lease `operator.keda.sh` to each other):
//!
//! - A candidate takes over a Lease only after it has seen the holder's record (holder, renewTime, …)
//!   unchanged for `leaseDurationSeconds` on its own monotonic clock ([`Observer`]); the Lease's
//!   `renewTime` is never compared with this machine's wall clock, so skewed clocks cannot make two leaders.
//! - The holder renews every `retry_period`. It leads until `renew_deadline` after it *sent* its last
//!   successful write; each renewal request is bounded by the time left until then, and when that time
//!   is up it stops at once (the caller exits the process, as upstream does). The [`WriteGate`] refuses
//!   every write of this process from that instant on, whatever is still running. A standby takes over
//!   no earlier than `lease_duration` after it saw that write, and `renew_deadline < lease_duration`,
//!   so the two never write in the same interval.
//! - On shutdown the holder first closes its gate, then releases the Lease (empty holder, 1 s), so a
//!   standby takes over at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::client::Body;
use tokio::time::Instant;

use crate::error::Error;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// Extra wait between acquisition attempts, as a fraction of `retry_period` (drawn at random each time),
/// so candidates started together do not ask in lockstep.
const JITTER: f64 = 0.2;

impl LeaseConfig {
    /// client-go's rules (`NewLeaderElector`), plus whole seconds for the Lease's `leaseDurationSeconds`.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_period.is_zero() {
            return Err("the leader election retry period must be greater than zero".into());
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err("the leader election lease duration must be at least 1s".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "the leader election lease duration ({:?}) must be greater than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline <= self.retry_period.mul_f64(1.2) {
            return Err(format!(
                "the leader election renew deadline ({:?}) must be greater than 1.2 × the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// What a candidate has seen of the Lease: the last record and when it first saw it, on its own
/// monotonic clock (client-go's `observedRecord` / `observedTime`).
#[derive(Debug, Default)]
pub struct Observer {
    seen: Option<(LeaseSpec, Instant)>,
}

impl Observer {
    /// Records `spec` as seen at `now`; the time only moves when the record differs from the last one.
    pub fn observe(&mut self, spec: &LeaseSpec, now: Instant) {
        match &self.seen {
            Some((last, _)) if last == spec => {}
            _ => self.seen = Some((spec.clone(), now)),
        }
    }

    /// When the last seen record expires for this replica: first seen + its `leaseDurationSeconds`.
    pub fn expires_at(&self) -> Option<Instant> {
        let (spec, at) = self.seen.as_ref()?;
        let secs = u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0);
        Some(*at + Duration::from_secs(secs))
    }

    /// The holder, while someone other than `me` holds the Lease and this replica has not yet seen their
    /// record unchanged for its lease duration. `None`: free to take (no holder, released, expired, ours).
    pub fn held_by_other(&self, me: &str, now: Instant) -> Option<&str> {
        let (spec, _) = self.seen.as_ref()?;
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        let valid = self.expires_at().is_some_and(|t| now < t);
        (!holder.is_empty() && holder != me && valid).then_some(holder)
    }
}

/// Whether this process may write to the Kubernetes API. Without leader election it is always open;
/// with it, it is open only until the renew deadline of the last successful Lease write, and closed on
/// shutdown or when leadership is lost. Every client of the operator except the elector's own sends
/// its requests through [`gated_client`], which refuses writes while the gate is closed — checked
/// right before the request is handed to the connection, so a loop that wakes up late (a paused
/// process, a stalled runtime) cannot write on behalf of a leader that no longer leads.
#[derive(Clone, Debug)]
pub struct WriteGate(Arc<GateState>);

#[derive(Debug)]
struct GateState {
    origin: Instant,
    /// Nanoseconds after `origin` until which writes pass; 0 closed, `u64::MAX` always open.
    until: AtomicU64,
}

impl WriteGate {
    /// Always open (no leader election).
    pub fn open() -> Self {
        WriteGate::with(u64::MAX)
    }

    /// Closed until [`WriteGate::open_until`].
    pub fn closed() -> Self {
        WriteGate::with(0)
    }

    fn with(until: u64) -> Self {
        WriteGate(Arc::new(GateState {
            origin: Instant::now(),
            until: AtomicU64::new(until),
        }))
    }

    /// Open until `deadline` (monotonic).
    pub fn open_until(&self, deadline: Instant) {
        let nanos = deadline
            .saturating_duration_since(self.0.origin)
            .as_nanos()
            .min(u128::from(u64::MAX - 1));
        self.0
            .until
            .store(u64::try_from(nanos).unwrap_or(0), Ordering::SeqCst);
    }

    pub fn close(&self) {
        self.0.until.store(0, Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        let until = self.0.until.load(Ordering::SeqCst);
        until == u64::MAX || u128::from(until) > self.0.origin.elapsed().as_nanos()
    }
}

/// The refusal a closed [`WriteGate`] returns instead of sending a write.
#[derive(Debug, thiserror::Error)]
#[error(
    "not sent: this replica does not lead (write refused after losing or before acquiring the leader Lease)"
)]
pub struct NotLeading;

/// A request that changes something (everything but GET, HEAD and OPTIONS).
pub fn is_write(method: &http::Method) -> bool {
    !matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

/// The innermost layer of [`gated_client`]: refuses writes while the gate is closed.
pub struct Gated<S> {
    inner: S,
    gate: WriteGate,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> tower::Service<http::Request<Body>> for Gated<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<B>, Error = BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<B>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if is_write(req.method()) && !self.gate.is_open() {
            return Box::pin(std::future::ready(Err(Box::new(NotLeading) as BoxError)));
        }
        Box::pin(self.inner.call(req))
    }
}

/// The operator's client: kube's stack with its retries moved above the [`WriteGate`], so a write
/// retried after a 429/503 passes the gate again (kube retries inside its own stack otherwise).
///
/// `rate` (`--kube-api-qps`, `--kube-api-burst`) is the outermost layer: a request waits for it once,
/// before the gate and kube's retries.
pub fn gated_client(
    mut config: kube::Config,
    gate: &WriteGate,
    rate: Option<keda_kube::RateLimit>,
) -> Result<Client, Error> {
    config.default_retry = false;
    let gate = gate.clone();
    let builder = kube::client::ClientBuilder::try_from(config)
        .map_err(|e| Error::kube("building the Kubernetes client", e))?;
    Ok(builder
        .with_layer(&tower::layer::layer_fn(move |inner| Gated {
            inner,
            gate: gate.clone(),
        }))
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(
            kube::client::retry::RetryPolicy::server_retry(),
        ))
        .with_layer(&keda_kube::RateLimitLayer::new(rate))
        .build())
}

/// The elector's client: no retries inside kube's stack (each attempt is bounded and repeated by the
/// elector itself).
pub fn lease_client(mut config: kube::Config) -> Result<Client, Error> {
    config.default_retry = false;
    Client::try_from(config).map_err(|e| Error::kube("building the Kubernetes client", e))
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    gate: WriteGate,
    observer: Observer,
    /// The Lease as we last wrote it: its resourceVersion lets a renewal be one request.
    ours: Option<Lease>,
    /// While leading: `renew_deadline` after the send time of our last successful write.
    until: Option<Instant>,
    last_holder: Option<String>,
}

/// What one acquisition attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease (acquired or renewed).
    Leading,
    /// Someone else holds a Lease that has not expired for this replica (or won the race to it).
    Following(String),
}

/// How one renewal write ended.
enum RenewalWrite {
    Renewed,
    /// Someone else wrote the Lease since we read it.
    Conflict,
    /// The renew deadline passed before the write could be sent.
    OutOfTime,
}

/// What one renewal found.
#[derive(Debug, PartialEq, Eq)]
enum Renewal {
    Renewed,
    /// Another holder, or our time is up.
    Lost(String),
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// `fut`, or an error once `limit` has passed (the request is then dropped).
async fn bounded<T>(
    limit: Duration,
    action: &'static str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<Result<T, kube::Error>, Error> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| Error::Lease(format!("{action}: no answer within {limit:?}")))
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig, gate: WriteGate) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            gate,
            observer: Observer::default(),
            ours: None,
            until: None,
            last_holder: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// The Lease with us as holder and renewed now; `taking_over` starts a new term (acquireTime, one
    /// more transition when someone held it before).
    fn desired(&self, existing: Option<&Lease>, now: Timestamp, taking_over: bool) -> Lease {
        let mut lease = existing.cloned().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..Default::default()
            },
            spec: None,
        });
        let previous = lease.spec.take().unwrap_or_default();
        let transitions = previous.lease_transitions.unwrap_or(0);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration_seconds()),
            acquire_time: if taking_over {
                Some(MicroTime(now))
            } else {
                previous.acquire_time.clone()
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if taking_over && existing.is_some() {
                transitions + 1
            } else {
                transitions
            }),
            ..previous
        });
        lease
    }

    /// A successful write sent at `sent`: we lead until `sent + renew_deadline`.
    fn led(&mut self, written: Lease, sent: Instant) {
        let until = sent + self.config.renew_deadline;
        self.until = Some(until);
        self.gate.open_until(until);
        if let Some(spec) = &written.spec {
            self.observer.observe(spec, Instant::now());
        }
        self.ours = Some(written);
    }

    /// One try to acquire (client-go's `tryAcquireOrRenew`, slow path), bounded by the renew deadline
    /// per request. Conflicts (another replica wrote first) count as following.
    pub async fn try_acquire(&mut self) -> Result<Attempt, Error> {
        let limit = self.config.renew_deadline;
        let existing = bounded(
            limit,
            "reading the leader Lease",
            self.api.get_opt(&self.config.name),
        )
        .await?
        .map_err(|e| Error::kube("reading the leader Lease", e))?;
        let Some(existing) = existing else {
            let lease = self.desired(None, Timestamp::now(), true);
            let sent = Instant::now();
            return match bounded(
                limit,
                "creating the leader Lease",
                self.api.create(&PostParams::default(), &lease),
            )
            .await?
            {
                Ok(written) => {
                    self.led(written, sent);
                    Ok(Attempt::Leading)
                }
                Err(e) if is_conflict(&e) => Ok(Attempt::Following(String::new())),
                Err(e) => Err(Error::kube("creating the leader Lease", e)),
            };
        };
        let spec = existing.spec.clone().unwrap_or_default();
        self.observer.observe(&spec, Instant::now());
        if let Some(holder) = self
            .observer
            .held_by_other(&self.config.identity, Instant::now())
        {
            return Ok(Attempt::Following(holder.to_owned()));
        }
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.config.identity;
        if !ours && !holder.is_empty() {
            tracing::info!(%holder, lease_duration = ?self.config.lease_duration,
                "the leader Lease has not changed for its lease duration on this replica's clock: taking it over");
        }
        let lease = self.desired(Some(&existing), Timestamp::now(), !ours);
        let sent = Instant::now();
        match bounded(
            limit,
            "acquiring the leader Lease",
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease),
        )
        .await?
        {
            Ok(written) => {
                self.led(written, sent);
                Ok(Attempt::Leading)
            }
            Err(e) if is_conflict(&e) => Ok(Attempt::Following(holder)),
            Err(e) => Err(Error::kube("acquiring the leader Lease", e)),
        }
    }

    /// The time left before the renew deadline, if any.
    fn left(&self) -> Option<Duration> {
        let left = self.until?.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// One renewal: our last written Lease with a new renewTime (one request), or after a conflict a
    /// fresh read and write. Every request is bounded by the time left before the renew deadline.
    async fn try_renew(&mut self) -> Result<Renewal, Error> {
        if let Some(ours) = self.ours.clone() {
            match self.write_renewal(&ours).await? {
                RenewalWrite::Renewed => return Ok(Renewal::Renewed),
                RenewalWrite::OutOfTime => return Ok(Renewal::Lost(String::new())),
                RenewalWrite::Conflict => self.ours = None,
            }
        }
        let Some(left) = self.left() else {
            return Ok(Renewal::Lost(String::new()));
        };
        let existing = bounded(
            left,
            "reading the leader Lease",
            self.api.get_opt(&self.config.name),
        )
        .await?
        .map_err(|e| Error::kube("reading the leader Lease", e))?;
        let holder = existing
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default();
        let Some(existing) = existing.filter(|_| holder == self.config.identity) else {
            return Ok(Renewal::Lost(holder));
        };
        match self.write_renewal(&existing).await? {
            RenewalWrite::Renewed => Ok(Renewal::Renewed),
            RenewalWrite::OutOfTime | RenewalWrite::Conflict => Ok(Renewal::Lost(String::new())),
        }
    }

    /// Writes `base` back with a new renewTime, bounded by the time left before the renew deadline.
    async fn write_renewal(&mut self, base: &Lease) -> Result<RenewalWrite, Error> {
        let Some(left) = self.left() else {
            return Ok(RenewalWrite::OutOfTime);
        };
        let lease = self.desired(Some(base), Timestamp::now(), false);
        let sent = Instant::now();
        match bounded(
            left,
            "renewing the leader Lease",
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease),
        )
        .await?
        {
            Ok(written) => {
                self.led(written, sent);
                Ok(RenewalWrite::Renewed)
            }
            Err(e) if is_conflict(&e) => Ok(RenewalWrite::Conflict),
            Err(e) => Err(Error::kube("renewing the leader Lease", e)),
        }
    }

    /// How long to wait before the next acquisition attempt: the retry period (plus jitter), or less when
    /// the holder's record expires for us sooner.
    fn next_attempt_in(&self) -> Duration {
        let mut wait = self
            .config
            .retry_period
            .mul_f64(1.0 + JITTER * fastrand::f64());
        if let Some(expiry) = self.observer.expires_at() {
            let until_expiry = expiry.saturating_duration_since(Instant::now());
            wait = wait.min(until_expiry + Duration::from_millis(10));
        }
        wait
    }

    /// Blocks until this replica leads.
    pub async fn acquire(&mut self) {
        tracing::info!(lease = %self.config.name, identity = %self.config.identity, "waiting to acquire the leader Lease");
        loop {
            match self.try_acquire().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return;
                }
                Ok(Attempt::Following(holder)) => {
                    if self.last_holder.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "the leader Lease is held by another replica; standing by");
                        self.last_holder = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.next_attempt_in()).await;
        }
    }

    /// Renews every retry period; returns when leadership is lost (another holder, or no successful
    /// renewal before the renew deadline). The gate is closed before it returns.
    pub async fn hold(&mut self) {
        while let Some(until) = self.until {
            tokio::time::sleep_until(until.min(Instant::now() + self.config.retry_period)).await;
            if self.left().is_none() {
                tracing::error!(renew_deadline = ?self.config.renew_deadline,
                    "could not renew the leader Lease within the renew deadline");
                break;
            }
            match self.try_renew().await {
                Ok(Renewal::Renewed) => {}
                Ok(Renewal::Lost(holder)) if holder.is_empty() => {
                    tracing::error!("could not renew the leader Lease within the renew deadline");
                    break;
                }
                Ok(Renewal::Lost(holder)) => {
                    tracing::error!(%holder, "the leader Lease was taken by another replica");
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "renewing the leader Lease failed"),
            }
        }
        self.gate.close();
        self.until = None;
    }

    /// Closes the gate, then gives the Lease up (empty holder, 1 s, as client-go's `ReleaseOnCancel`) so
    /// a standby acquires it on its next try. Nothing is sent once the renew deadline has passed.
    pub async fn release(&mut self) {
        self.gate.close();
        for _ in 0..2 {
            let Some(left) = self.left() else {
                return;
            };
            let current = match self.ours.clone() {
                Some(l) => l,
                None => match bounded(
                    left,
                    "reading the leader Lease",
                    self.api.get_opt(&self.config.name),
                )
                .await
                {
                    Ok(Ok(Some(l))) => l,
                    _ => return,
                },
            };
            let Some(mut spec) = current.spec.clone() else {
                return;
            };
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return;
            }
            let now = MicroTime(Timestamp::now());
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(now.clone());
            spec.acquire_time = Some(now);
            let lease = Lease {
                spec: Some(spec),
                ..current
            };
            let Some(left) = self.left() else {
                return;
            };
            match bounded(
                left,
                "releasing the leader Lease",
                self.api
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await
            {
                Ok(Ok(_)) => {
                    tracing::info!("released the leader Lease");
                    self.until = None;
                    return;
                }
                Ok(Err(e)) if is_conflict(&e) => self.ours = None,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "releasing the leader Lease failed");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "releasing the leader Lease failed");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, secs: i32, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()).filter(|h| !h.is_empty()),
            lease_duration_seconds: Some(secs),
            renew_time: Some(MicroTime(renewed.parse().expect("timestamp"))),
            ..Default::default()
        }
    }

    fn config(lease: u64, renew: u64, retry: u64) -> LeaseConfig {
        LeaseConfig {
            namespace: "keda".into(),
            name: "operator.keda.sh".into(),
            identity: "b".into(),
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_holder_is_valid_until_its_record_stays_unchanged_for_the_lease_duration_here() {
        let mut o = Observer::default();
        let t0 = Instant::now();
        // The record's renewTime is far in the past by this machine's wall clock: irrelevant.
        o.observe(&spec("a", 15, "2001-01-01T00:00:00Z"), t0);
        assert_eq!(o.held_by_other("b", t0), Some("a"));
        assert_eq!(
            o.held_by_other("b", t0 + Duration::from_secs(14)),
            Some("a")
        );
        // Seeing the same record again does not move the observation time.
        o.observe(
            &spec("a", 15, "2001-01-01T00:00:00Z"),
            t0 + Duration::from_secs(10),
        );
        assert_eq!(o.held_by_other("b", t0 + Duration::from_secs(15)), None);
        assert_eq!(o.expires_at(), Some(t0 + Duration::from_secs(15)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_restarts_the_local_count_even_with_a_renew_time_in_the_future() {
        let mut o = Observer::default();
        let t0 = Instant::now();
        o.observe(&spec("a", 15, "2001-01-01T00:00:00Z"), t0);
        // A holder whose clock runs ahead writes renewTimes in our future: it still expires 15 s after we
        // last saw it change, not 15 s after its renewTime.
        o.observe(
            &spec("a", 15, "2999-01-01T00:00:00Z"),
            t0 + Duration::from_secs(12),
        );
        assert_eq!(
            o.held_by_other("b", t0 + Duration::from_secs(26)),
            Some("a")
        );
        assert_eq!(o.held_by_other("b", t0 + Duration::from_secs(27)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn released_ours_or_unseen_leases_are_free() {
        let t0 = Instant::now();
        let mut o = Observer::default();
        assert_eq!(o.held_by_other("b", t0), None);
        o.observe(&spec("", 1, "2024-01-01T00:00:00Z"), t0);
        assert_eq!(o.held_by_other("b", t0), None);
        o.observe(&spec("b", 15, "2024-01-01T00:00:01Z"), t0);
        assert_eq!(o.held_by_other("b", t0), None);
        // A new holder is a new record: counted from when we saw it.
        o.observe(
            &spec("c", 15, "2024-01-01T00:00:01Z"),
            t0 + Duration::from_secs(3),
        );
        assert_eq!(
            o.held_by_other("b", t0 + Duration::from_secs(17)),
            Some("c")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_closes_at_its_deadline_and_on_close() {
        let gate = WriteGate::closed();
        assert!(!gate.is_open());
        gate.open_until(Instant::now() + Duration::from_secs(10));
        assert!(gate.is_open());
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(gate.is_open());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!gate.is_open(), "closed from the deadline on");
        gate.open_until(Instant::now() + Duration::from_secs(10));
        gate.close();
        assert!(!gate.is_open());
        // A deadline already past leaves it closed.
        gate.open_until(Instant::now() - Duration::from_secs(1));
        assert!(!gate.is_open());
        let always = WriteGate::open();
        tokio::time::advance(Duration::from_secs(1_000_000)).await;
        assert!(always.is_open());
    }

    #[test]
    fn reads_pass_writes_are_gated() {
        for m in [http::Method::GET, http::Method::HEAD, http::Method::OPTIONS] {
            assert!(!is_write(&m), "{m}");
        }
        for m in [
            http::Method::POST,
            http::Method::PUT,
            http::Method::PATCH,
            http::Method::DELETE,
        ] {
            assert!(is_write(&m), "{m}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_gated_service_refuses_writes_when_closed() {
        use tower::{Service, ServiceExt};
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        let inner = tower::service_fn(move |_req: http::Request<Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<_, BoxError>(http::Response::new(())))
        });
        let gate = WriteGate::closed();
        let mut svc = Gated {
            inner,
            gate: gate.clone(),
        };
        let req = |m: http::Method| {
            http::Request::builder()
                .method(m)
                .uri("/apis/coordination.k8s.io/v1/namespaces/keda/leases/x")
                .body(Body::empty())
                .expect("request")
        };
        svc.ready().await.expect("ready");
        let err = svc
            .call(req(http::Method::PUT))
            .await
            .expect_err("a closed gate refuses writes");
        assert!(err.is::<NotLeading>());
        svc.ready().await.expect("ready");
        svc.call(req(http::Method::GET)).await.expect("reads pass");
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        gate.open_until(Instant::now() + Duration::from_secs(5));
        svc.ready().await.expect("ready");
        svc.call(req(http::Method::PATCH)).await.expect("open");
        assert_eq!(sent.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(5)).await;
        svc.ready().await.expect("ready");
        assert!(svc.call(req(http::Method::POST)).await.is_err());
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn lease_settings_are_checked_as_client_go_does() {
        assert!(config(15, 10, 2).validate().is_ok());
        assert!(config(10, 10, 2).validate().is_err(), "lease ≤ renew");
        assert!(config(15, 2, 2).validate().is_err(), "renew ≤ 1.2 × retry");
        assert!(config(15, 10, 0).validate().is_err(), "zero retry");
        let mut c = config(15, 10, 2);
        c.lease_duration = Duration::from_millis(500);
        c.renew_deadline = Duration::from_millis(400);
        c.retry_period = Duration::from_millis(100);
        assert!(c.validate().is_err(), "sub-second lease");
    }

    /// A Lease API in memory: GET/POST/PUT on one Lease with resourceVersion checks; `hang` makes every
    /// request wait forever (a partition), `writes` counts the writes that reached it.
    #[derive(Clone, Default)]
    struct FakeLeases {
        lease: Arc<std::sync::Mutex<Option<Lease>>>,
        hang: Arc<std::sync::atomic::AtomicBool>,
        writes: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl FakeLeases {
        fn client(&self) -> Client {
            let me = self.clone();
            let svc = tower::service_fn(move |req: http::Request<Body>| {
                let me = me.clone();
                async move { Ok::<_, BoxError>(me.handle(req).await) }
            });
            Client::new(svc, "keda")
        }

        fn json(code: u16, body: serde_json::Value) -> http::Response<Body> {
            http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string().into_bytes()))
                .expect("response")
        }

        fn status(code: u16, reason: &str) -> http::Response<Body> {
            Self::json(
                code,
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": reason, "reason": reason, "code": code}),
            )
        }

        async fn handle(&self, req: http::Request<Body>) -> http::Response<Body> {
            if self.hang.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let method = req.method().clone();
            let body = req.into_body().collect_bytes().await.expect("body");
            let mut stored = self.lease.lock().expect("lock");
            if method == http::Method::GET {
                return match &*stored {
                    Some(l) => Self::json(200, serde_json::to_value(l).expect("json")),
                    None => Self::status(404, "NotFound"),
                };
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            let mut sent: Lease = serde_json::from_slice(&body).expect("a Lease");
            let current_rv = stored
                .as_ref()
                .and_then(|l| l.metadata.resource_version.clone());
            let ok = match method {
                http::Method::POST => stored.is_none(),
                _ => stored.is_some() && sent.metadata.resource_version == current_rv,
            };
            if !ok {
                return Self::status(409, "Conflict");
            }
            let next: u64 = current_rv.and_then(|v| v.parse().ok()).unwrap_or(0) + 1;
            sent.metadata.resource_version = Some(next.to_string());
            *stored = Some(sent.clone());
            Self::json(200, serde_json::to_value(&sent).expect("json"))
        }

        /// Someone else writes the Lease (a holder renewing, an operator from another process).
        fn set(&self, spec: LeaseSpec) {
            let mut stored = self.lease.lock().expect("lock");
            let rv: u64 = stored
                .as_ref()
                .and_then(|l| l.metadata.resource_version.as_ref())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                + 1;
            *stored = Some(Lease {
                metadata: ObjectMeta {
                    name: Some("operator.keda.sh".into()),
                    namespace: Some("keda".into()),
                    resource_version: Some(rv.to_string()),
                    ..Default::default()
                },
                spec: Some(spec),
            });
        }

        fn holder(&self) -> Option<String> {
            self.lease
                .lock()
                .expect("lock")
                .as_ref()
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.holder_identity.clone())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_takes_over_only_after_seeing_the_record_unchanged_for_the_lease_duration() {
        let api = FakeLeases::default();
        // Held by an upstream replica whose renewTime is ancient by this machine's clock.
        api.set(LeaseSpec {
            lease_transitions: Some(3),
            ..spec("keda-operator-upstream", 15, "2001-01-01T00:00:00Z")
        });
        let gate = WriteGate::closed();
        let mut b = LeaderElector::new(api.client(), config(15, 10, 2), gate.clone());
        let t0 = Instant::now();
        assert_eq!(
            b.try_acquire().await.expect("attempt"),
            Attempt::Following("keda-operator-upstream".into())
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        // The holder renews: the wait starts again.
        api.set(LeaseSpec {
            lease_transitions: Some(3),
            ..spec("keda-operator-upstream", 15, "2001-01-01T00:00:10Z")
        });
        assert!(matches!(
            b.try_acquire().await.expect("attempt"),
            Attempt::Following(_)
        ));
        tokio::time::advance(Duration::from_secs(14)).await;
        assert!(matches!(
            b.try_acquire().await.expect("attempt"),
            Attempt::Following(_)
        ));
        assert!(!gate.is_open());
        assert_eq!(
            api.writes.load(Ordering::SeqCst),
            0,
            "a standby never writes"
        );
        // 25 s after it started watching, 15 s after the last change: acquire() takes it at once.
        tokio::time::advance(Duration::from_secs(1)).await;
        b.acquire().await;
        assert!(Instant::now() - t0 < Duration::from_secs(26));
        assert_eq!(api.holder().as_deref(), Some("b"));
        let stored = api.lease.lock().expect("lock").clone().expect("lease");
        let s = stored.spec.expect("spec");
        assert_eq!(s.lease_transitions, Some(4));
        assert_eq!(s.lease_duration_seconds, Some(15));
        assert!(s.acquire_time.is_some());
        assert!(gate.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_until_the_observed_expiry() {
        let api = FakeLeases::default();
        api.set(spec("a", 15, "2001-01-01T00:00:00Z"));
        let mut b = LeaderElector::new(api.client(), config(15, 10, 2), WriteGate::closed());
        let t0 = Instant::now();
        b.acquire().await;
        let took = Instant::now() - t0;
        assert!(
            took >= Duration::from_secs(15) && took < Duration::from_secs(16),
            "took over after {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_stops_at_its_renew_deadline() {
        let api = FakeLeases::default();
        let gate = WriteGate::closed();
        let mut a = LeaderElector::new(api.client(), config(15, 10, 2), gate.clone());
        let sent = Instant::now();
        assert_eq!(a.try_acquire().await.expect("attempt"), Attempt::Leading);
        // Renewals are one request each.
        let before = api.writes.load(Ordering::SeqCst);
        assert_eq!(a.try_renew().await.expect("renew"), Renewal::Renewed);
        assert_eq!(api.writes.load(Ordering::SeqCst), before + 1);
        let renewed = Instant::now();
        // The API stops answering: each renewal waits only for the time left, then the leader stops.
        api.hang.store(true, Ordering::SeqCst);
        a.hold().await;
        let stopped = Instant::now();
        assert!(!gate.is_open());
        assert!(
            stopped - renewed <= Duration::from_secs(10),
            "stopped {:?} after the last renewal was sent",
            stopped - renewed
        );
        assert!(
            stopped - sent < Duration::from_secs(15),
            "before any standby may take over"
        );
        // Nothing more is sent after the deadline, not even the release.
        api.hang.store(false, Ordering::SeqCst);
        let writes = api.writes.load(Ordering::SeqCst);
        a.release().await;
        assert_eq!(api.writes.load(Ordering::SeqCst), writes);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_lease_was_taken_stops_and_release_leaves_it_alone() {
        let api = FakeLeases::default();
        let gate = WriteGate::closed();
        let mut a = LeaderElector::new(api.client(), config(15, 10, 2), gate.clone());
        assert_eq!(a.try_acquire().await.expect("attempt"), Attempt::Leading);
        api.set(spec("c", 15, "2030-01-01T00:00:00Z"));
        a.hold().await;
        assert!(!gate.is_open());
        a.release().await;
        assert_eq!(api.holder().as_deref(), Some("c"));
    }

    #[tokio::test(start_paused = true)]
    async fn release_closes_the_gate_and_frees_the_lease() {
        let api = FakeLeases::default();
        let gate = WriteGate::closed();
        let mut a = LeaderElector::new(api.client(), config(15, 10, 2), gate.clone());
        assert_eq!(a.try_acquire().await.expect("attempt"), Attempt::Leading);
        assert!(gate.is_open());
        a.release().await;
        assert!(!gate.is_open());
        assert_eq!(api.holder(), None);
        let s = api
            .lease
            .lock()
            .expect("lock")
            .clone()
            .and_then(|l| l.spec)
            .expect("spec");
        assert_eq!(s.lease_duration_seconds, Some(1));
        // A standby takes a released Lease at once.
        let mut b = LeaderElector::new(api.client(), config(15, 10, 2), WriteGate::closed());
        assert_eq!(b.try_acquire().await.expect("attempt"), Attempt::Leading);
    }
}
