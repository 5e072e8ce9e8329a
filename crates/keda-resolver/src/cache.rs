//! A small time-bounded, size-bounded cache in front of on-demand GETs.
//!
//! Scale loops of many ScaledObjects resolve the same Secret again and again; instead of a cluster-wide
//! Secret watch (memory proportional to every Secret of the cluster, and broad RBAC) the resolver GETs the
//! object it needs and keeps the answer for a few seconds.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long [`crate::KubeSource`] keeps an answer.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// How many answers [`crate::KubeSource`] keeps per kind.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Values kept for `ttl` after they were fetched, at most `capacity` of them (expired ones go first,
/// then the oldest). Errors are never cached.
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        // A panic while holding the lock cannot leave the map inconsistent: every update is one call.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value of `key` if it was fetched less than `ttl` before `now`.
    pub fn get_at(&self, key: &K, now: Instant) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some((at, v)) if now.saturating_duration_since(*at) < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores `value` as fetched at `now`, making room if the cache is full.
    pub fn insert_at(&self, key: K, value: V, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (now, value));
    }

    /// The cached value of `key`, or the result of `fetch` (stored when it succeeds).
    pub async fn get_or_try_fetch<E, F, Fut>(&self, key: K, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.get_at(&key, Instant::now()) {
            return Ok(v);
        }
        let v = fetch().await?;
        self.insert_at(key, v.clone(), Instant::now());
        Ok(v)
    }

    /// Forgets `key` (after a watch event or a failed use of the value).
    pub fn invalidate(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Forgets every key for which `stale` is true.
    pub fn invalidate_where(&self, stale: impl Fn(&K) -> bool) {
        self.lock().retain(|k, _| !stale(k));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(10), 8);
        let t0 = Instant::now();
        cache.insert_at("a", 1, t0);
        assert_eq!(cache.get_at(&"a", t0 + Duration::from_secs(9)), Some(1));
        assert_eq!(cache.get_at(&"a", t0 + Duration::from_secs(10)), None);
        // The expired entry was dropped on the way.
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_oldest() {
        let cache = TtlCache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        cache.insert_at("old", 0, t0);
        cache.insert_at("b", 1, t0 + Duration::from_secs(8));
        cache.insert_at("c", 2, t0 + Duration::from_secs(9));
        // At t0+11 "old" is expired: it makes the room.
        cache.insert_at("d", 3, t0 + Duration::from_secs(11));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get_at(&"b", t0 + Duration::from_secs(11)), Some(1));
        // Nothing expired at t0+12: the oldest ("b") goes.
        cache.insert_at("e", 4, t0 + Duration::from_secs(12));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get_at(&"b", t0 + Duration::from_secs(12)), None);
        assert_eq!(cache.get_at(&"c", t0 + Duration::from_secs(12)), Some(2));
        assert_eq!(cache.get_at(&"e", t0 + Duration::from_secs(12)), Some(4));
        // Replacing a present key never evicts another.
        cache.insert_at("e", 5, t0 + Duration::from_secs(13));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn invalidate_where_forgets_only_matching_keys() {
        let cache = TtlCache::new(Duration::from_secs(10), 8);
        let t0 = Instant::now();
        cache.insert_at(("ns-a", "s1"), 1, t0);
        cache.insert_at(("ns-a", "s2"), 2, t0);
        cache.insert_at(("ns-b", "s1"), 3, t0);
        cache.invalidate_where(|(ns, _)| *ns == "ns-a");
        assert_eq!(cache.get_at(&("ns-a", "s1"), t0), None);
        assert_eq!(cache.get_at(&("ns-a", "s2"), t0), None);
        assert_eq!(cache.get_at(&("ns-b", "s1"), t0), Some(3));
    }

    #[tokio::test]
    async fn fetches_once_and_never_caches_errors() {
        let cache: TtlCache<String, u32> = TtlCache::new(Duration::from_secs(60), 8);
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(7)
        };
        assert_eq!(cache.get_or_try_fetch("k".into(), fetch).await, Ok(7));
        assert_eq!(cache.get_or_try_fetch("k".into(), fetch).await, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let failing = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<u32, _>("boom".to_owned())
        };
        assert!(cache.get_or_try_fetch("x".into(), failing).await.is_err());
        assert!(cache.get_or_try_fetch("x".into(), failing).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        cache.invalidate(&"k".to_owned());
        assert_eq!(cache.get_or_try_fetch("k".into(), fetch).await, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
