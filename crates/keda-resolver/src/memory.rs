//! An [`ObjectSource`] over objects held in memory: `keda lint`'s input set, and tests.

use std::collections::BTreeMap;

use keda_api::TriggerAuthenticationSpec;

use crate::{Lookup, ObjectSource, ResolveError};

/// What an object that is not in a [`MemorySource`] is taken to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Absent {
    /// It does not exist: a reference to it is an error.
    #[default]
    Missing,
    /// It exists elsewhere: whatever it supplies counts as present.
    Assumed,
}

/// [`Absent`] per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AbsentPolicy {
    pub secret: Absent,
    pub config_map: Absent,
    pub trigger_authentication: Absent,
    pub cluster_trigger_authentication: Absent,
    pub service_account: Absent,
}

impl AbsentPolicy {
    /// Every absent object is assumed to exist.
    pub fn assume_all() -> Self {
        AbsentPolicy {
            secret: Absent::Assumed,
            config_map: Absent::Assumed,
            trigger_authentication: Absent::Assumed,
            cluster_trigger_authentication: Absent::Assumed,
            service_account: Absent::Assumed,
        }
    }
}

type Key = (String, String);

fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_owned(), name.to_owned())
}

/// Objects in memory, keyed by namespace and name.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    /// Decoded Secret data.
    pub secrets: BTreeMap<Key, BTreeMap<String, String>>,
    pub config_maps: BTreeMap<Key, BTreeMap<String, String>>,
    pub trigger_authentications: BTreeMap<Key, TriggerAuthenticationSpec>,
    pub cluster_trigger_authentications: BTreeMap<String, TriggerAuthenticationSpec>,
    /// ServiceAccount annotations.
    pub service_accounts: BTreeMap<Key, BTreeMap<String, String>>,
    pub absent: AbsentPolicy,
}

fn string_map<K: Into<String>, V: Into<String>>(
    data: impl IntoIterator<Item = (K, V)>,
) -> BTreeMap<String, String> {
    data.into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

impl MemorySource {
    pub fn new(absent: AbsentPolicy) -> Self {
        MemorySource {
            absent,
            ..Default::default()
        }
    }

    pub fn with_secret<K: Into<String>, V: Into<String>>(
        mut self,
        namespace: &str,
        name: &str,
        data: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.secrets.insert(key(namespace, name), string_map(data));
        self
    }

    pub fn with_config_map<K: Into<String>, V: Into<String>>(
        mut self,
        namespace: &str,
        name: &str,
        data: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.config_maps
            .insert(key(namespace, name), string_map(data));
        self
    }

    pub fn with_trigger_authentication(
        mut self,
        namespace: &str,
        name: &str,
        spec: TriggerAuthenticationSpec,
    ) -> Self {
        self.trigger_authentications
            .insert(key(namespace, name), spec);
        self
    }

    pub fn with_cluster_trigger_authentication(
        mut self,
        name: &str,
        spec: TriggerAuthenticationSpec,
    ) -> Self {
        self.cluster_trigger_authentications
            .insert(name.to_owned(), spec);
        self
    }

    pub fn with_service_account<K: Into<String>, V: Into<String>>(
        mut self,
        namespace: &str,
        name: &str,
        annotations: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.service_accounts
            .insert(key(namespace, name), string_map(annotations));
        self
    }
}

fn lookup<T: Clone>(found: Option<&T>, absent: Absent) -> Lookup<T> {
    match (found, absent) {
        (Some(t), _) => Lookup::Found(t.clone()),
        (None, Absent::Missing) => Lookup::Missing,
        (None, Absent::Assumed) => Lookup::Assumed,
    }
}

#[async_trait::async_trait]
impl ObjectSource for MemorySource {
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        Ok(lookup(
            self.secrets.get(&key(namespace, name)),
            self.absent.secret,
        ))
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        Ok(lookup(
            self.config_maps.get(&key(namespace, name)),
            self.absent.config_map,
        ))
    }

    async fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        Ok(lookup(
            self.trigger_authentications.get(&key(namespace, name)),
            self.absent.trigger_authentication,
        ))
    }

    async fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        Ok(lookup(
            self.cluster_trigger_authentications.get(name),
            self.absent.cluster_trigger_authentication,
        ))
    }

    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        Ok(lookup(
            self.service_accounts.get(&key(namespace, name)),
            self.absent.service_account,
        ))
    }
}
