//! Clients shared by every trigger with the same connection settings (Redis connections, PostgreSQL
//! connections, MySQL pools): one open connection per backend and credentials, as upstream's scalers
//! share theirs, however many ScaledObjects point at it.
//!
//! Entries are weak, so a client closes with the last scaler using it; the key is whatever a scaler's
//! connection settings are (each scaler decides which settings make two triggers share a client).
//! The map holds only weak pointers, so a panic elsewhere cannot leave it half updated: a poisoned
//! lock is used as it is.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Live clients of type `C` by connection settings `K`.
pub(crate) struct ClientCache<K, C> {
    entries: Mutex<HashMap<K, Weak<C>>>,
}

impl<K, C> Default for ClientCache<K, C> {
    fn default() -> Self {
        ClientCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, C> ClientCache<K, C> {
    fn entries(&self) -> MutexGuard<'_, HashMap<K, Weak<C>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of live shared clients.
    pub(crate) fn len(&self) -> usize {
        self.entries()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// The live client for `key`, or the one `connect` opens. The lock is not held while connecting
    /// (that takes up to the connect timeout); when two builds connect for the same key at once, the
    /// client stored first is shared and the other one dropped.
    pub(crate) async fn get_or_connect<Q, E, F>(&self, key: &Q, connect: F) -> Result<Arc<C>, E>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: Future<Output = Result<C, E>>,
    {
        let live = self.entries().get(key).and_then(Weak::upgrade);
        if let Some(client) = live {
            return Ok(client);
        }
        let client = Arc::new(connect.await?);
        let mut entries = self.entries();
        entries.retain(|_, w| w.strong_count() > 0);
        if let Some(existing) = entries.get(key).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        entries.insert(key.to_owned(), Arc::downgrade(&client));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that says which connect opened it.
    #[derive(Debug, PartialEq)]
    struct Client(&'static str);

    async fn open(name: &'static str) -> Result<Client, String> {
        Ok(Client(name))
    }

    #[tokio::test]
    async fn triggers_with_the_same_settings_share_one_client() {
        let cache = ClientCache::<String, Client>::default();
        let a = cache
            .get_or_connect("db-a", open("first"))
            .await
            .expect("a");
        let again = cache
            .get_or_connect("db-a", async {
                unreachable!("a live client is not reopened") as Result<Client, String>
            })
            .await
            .expect("a");
        assert!(Arc::ptr_eq(&a, &again));
        let b = cache
            .get_or_connect("db-b", open("second"))
            .await
            .expect("b");
        assert_eq!(*b, Client("second"));
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test]
    async fn a_client_closes_with_its_last_scaler_and_is_opened_again() {
        let cache = ClientCache::<String, Client>::default();
        let a = cache.get_or_connect("db", open("first")).await.expect("a");
        drop(a);
        assert_eq!(cache.len(), 0);
        let b = cache.get_or_connect("db", open("second")).await.expect("b");
        assert_eq!(*b, Client("second"));
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_failed_connect_stores_nothing() {
        let cache = ClientCache::<String, Client>::default();
        let err = cache
            .get_or_connect("db", async { Err::<Client, _>("refused".to_owned()) })
            .await
            .expect_err("refused");
        assert_eq!(err, "refused");
        assert_eq!(cache.len(), 0);
        let c = cache.get_or_connect("db", open("retry")).await.expect("c");
        assert_eq!(*c, Client("retry"));
    }

    #[tokio::test]
    async fn of_two_builds_connecting_at_once_the_first_stored_client_is_shared() {
        let cache = ClientCache::<String, Client>::default();
        let mut stored_first = None;
        let slow = cache
            .get_or_connect("db", async {
                // Another build of the same settings finishes while this one is still connecting.
                stored_first = Some(cache.get_or_connect("db", open("fast")).await?);
                open("slow").await
            })
            .await
            .expect("slow");
        let fast = stored_first.expect("fast");
        assert!(Arc::ptr_eq(&slow, &fast));
        assert_eq!(*slow, Client("fast"));
        assert_eq!(cache.len(), 1);
    }
}
