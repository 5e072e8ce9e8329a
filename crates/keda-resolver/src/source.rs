use std::collections::BTreeMap;

use keda_api::TriggerAuthenticationSpec;

use crate::ResolveError;

/// The outcome of looking an object up.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup<T> {
    Found(T),
    /// The object does not exist.
    Missing,
    /// The object is not known to this source but assumed to exist (`keda lint` for objects outside its
    /// input): whatever it would supply counts as present, its values unknown.
    Assumed,
}

impl<T> Lookup<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Found(t) => Lookup::Found(f(t)),
            Lookup::Missing => Lookup::Missing,
            Lookup::Assumed => Lookup::Assumed,
        }
    }

    pub fn found(self) -> Option<T> {
        match self {
            Lookup::Found(t) => Some(t),
            _ => None,
        }
    }
}

/// Where the resolver reads the objects triggers refer to. The operator uses [`crate::KubeSource`]
/// (API server, GET on demand); `keda lint` and tests use [`crate::MemorySource`].
#[async_trait::async_trait]
pub trait ObjectSource: Send + Sync {
    /// A Secret's data, decoded (`stringData` merged over `data` when the source is a manifest).
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError>;

    /// A ConfigMap's `data`.
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError>;

    async fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError>;

    async fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError>;

    /// A ServiceAccount's annotations (AWS workload identity reads `eks.amazonaws.com/role-arn`).
    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError>;
}

#[async_trait::async_trait]
impl<S: ObjectSource + ?Sized> ObjectSource for std::sync::Arc<S> {
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        (**self).secret(namespace, name).await
    }
    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        (**self).config_map(namespace, name).await
    }
    async fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        (**self).trigger_authentication(namespace, name).await
    }
    async fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        (**self).cluster_trigger_authentication(name).await
    }
    async fn service_account_annotations(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        (**self).service_account_annotations(namespace, name).await
    }
}

/// A source that reads TriggerAuthentications and ClusterTriggerAuthentications from `inner` but never a
/// Secret, ConfigMap or ServiceAccount: those count as present with unknown values ([`Lookup::Assumed`]).
/// The admission webhook resolves through it, so it needs no read access to Secrets (docs/chart.md,
/// "What the admission webhook reads"); the values are the operator's to read and report on `Ready`.
pub struct AuthObjectsOnly<S>(pub S);

#[async_trait::async_trait]
impl<S: ObjectSource> ObjectSource for AuthObjectsOnly<S> {
    async fn secret(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        Ok(Lookup::Assumed)
    }

    async fn config_map(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        Ok(Lookup::Assumed)
    }

    async fn trigger_authentication(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        self.0.trigger_authentication(namespace, name).await
    }

    async fn cluster_trigger_authentication(
        &self,
        name: &str,
    ) -> Result<Lookup<TriggerAuthenticationSpec>, ResolveError> {
        self.0.cluster_trigger_authentication(name).await
    }

    async fn service_account_annotations(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Lookup<BTreeMap<String, String>>, ResolveError> {
        Ok(Lookup::Assumed)
    }
}
