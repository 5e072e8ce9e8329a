//! What a scaler's parse step needs besides the trigger metadata, resolved as upstream KEDA does:
//!
//! * **container env** ([`Resolver::container_env`]) for `<key>FromEnv`: the scale target container's
//!   `envFrom` ConfigMaps and Secrets (with `prefix`), then `env` (plain values with Kubernetes `$(VAR)`
//!   expansion, `valueFrom.secretKeyRef` / `configMapKeyRef` honouring `optional`);
//! * **authentication parameters** ([`Resolver::auth_params`]) from the trigger's `authenticationRef`:
//!   TriggerAuthentication (same namespace) or ClusterTriggerAuthentication (its Secrets and ConfigMaps read
//!   from the cluster-object namespace, `KEDA_CLUSTER_OBJECT_NAMESPACE`), merged in upstream's order:
//!   `podIdentity`, `env`, `configMapTargetRef`, `secretTargetRef`, `oauth2`; AWS pod identity with
//!   `roleArn` (or `identityOwner: workload`) fills `awsRoleArn`. With `KEDA_RESTRICT_SECRET_ACCESS=true`
//!   Secrets are read only from the cluster-object namespace.
//!
//! Unlike upstream, a missing TriggerAuthentication, Secret, ConfigMap or key is an error naming the object
//! and key, not a silently empty parameter.
//!
//! * **`filePath`** of a ClusterTriggerAuthentication (only there, as upstream): a JSON object of string
//!   parameters read from the operator's filesystem, only under `--filepath-auth-root-path`
//!   ([`keda_scalers::files::FileRoot`]); like upstream, its parameters are the object's only ones. Where
//!   the file is not (the webhook, `keda lint`: [`FileAccess::CheckOnly`]) the path is checked as written
//!   and the parameters count as unknown.
//!
//! Not supported by keda-rs yet (a clear [`ResolveError::Unsupported`] error): `hashiCorpVault`,
//! `azureKeyVault`, `gcpSecretManager`, `awsSecretManager` and `boundServiceAccountToken`.
//!
//! The resolver never lists or watches Secrets: [`KubeSource`] GETs each object when it is needed and keeps
//! it for a few seconds ([`cache::TtlCache`]).

mod auth;
pub mod cache;
mod env;
mod error;
#[cfg(feature = "kube")]
mod kube_source;
mod memory;
mod source;

pub use auth::ResolvedAuth;
pub use env::{ResolvedEnv, expand};
pub use error::{ObjectRef, ResolveError};
#[cfg(feature = "kube")]
pub use kube_source::KubeSource;
pub use memory::{Absent, AbsentPolicy, MemorySource};
pub use source::{AuthObjectsOnly, Lookup, ObjectSource};

/// Environment variable naming the namespace of ClusterTriggerAuthentication Secrets and ConfigMaps.
pub const CLUSTER_OBJECT_NAMESPACE_ENV: &str = "KEDA_CLUSTER_OBJECT_NAMESPACE";
/// Environment variable that, when `true`, restricts Secret reads to the cluster-object namespace.
pub const RESTRICT_SECRET_ACCESS_ENV: &str = "KEDA_RESTRICT_SECRET_ACCESS";
/// Annotation of a ServiceAccount that names its AWS role (EKS pod identity).
pub const EKS_ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// Authentication parameter filled from an AWS pod identity.
pub const AWS_ROLE_ARN_PARAM: &str = "awsRoleArn";

/// What the resolver does with a ClusterTriggerAuthentication's `filePath`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileAccess {
    /// Read it (the operator, where the files are), symbolic links followed before the root check.
    #[default]
    Read,
    /// Check the path as written and leave the parameters unknown (the admission webhook and
    /// `keda lint`, which run where the operator's files are not).
    CheckOnly,
}

/// Resolves env and authentication parameters from an [`ObjectSource`].
pub struct Resolver<S> {
    pub source: S,
    /// Namespace of the Secrets and ConfigMaps that ClusterTriggerAuthentications refer to (KEDA's own).
    pub cluster_object_namespace: String,
    /// `KEDA_RESTRICT_SECRET_ACCESS`: Secrets outside `cluster_object_namespace` are not read.
    pub restrict_secret_access: bool,
    /// `--filepath-auth-root-path`: where `filePath` may point (unset: nowhere).
    pub file_root: keda_scalers::files::FileRoot,
    pub file_access: FileAccess,
}

impl<S: ObjectSource> Resolver<S> {
    pub fn new(source: S, cluster_object_namespace: impl Into<String>) -> Self {
        Resolver {
            source,
            cluster_object_namespace: cluster_object_namespace.into(),
            restrict_secret_access: false,
            file_root: keda_scalers::files::FileRoot::unset(),
            file_access: FileAccess::Read,
        }
    }

    pub fn with_restrict_secret_access(mut self, restrict: bool) -> Self {
        self.restrict_secret_access = restrict;
        self
    }

    /// Where `filePath` may point, and whether to read it or only check it.
    pub fn with_file_root(
        mut self,
        root: keda_scalers::files::FileRoot,
        access: FileAccess,
    ) -> Self {
        self.file_root = root;
        self.file_access = access;
        self
    }

    /// Whether Secrets of `namespace` may be read for container env.
    fn may_read_secrets_of(&self, namespace: &str) -> bool {
        !self.restrict_secret_access || namespace == self.cluster_object_namespace
    }

    /// The namespace a Secret referenced from an authentication object is read from.
    fn auth_secret_namespace<'a>(&'a self, objects_namespace: &'a str) -> &'a str {
        if self.restrict_secret_access {
            &self.cluster_object_namespace
        } else {
            objects_namespace
        }
    }
}

/// `KEDA_CLUSTER_OBJECT_NAMESPACE`, else the namespace of the pod's service account (as upstream), else None.
pub fn cluster_object_namespace_from_env() -> Option<String> {
    if let Ok(ns) = std::env::var(CLUSTER_OBJECT_NAMESPACE_ENV)
        && !ns.trim().is_empty()
    {
        return Some(ns.trim().to_owned());
    }
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `KEDA_RESTRICT_SECRET_ACCESS`, true only for `true` in any case (as upstream).
pub fn restrict_secret_access_from_env() -> bool {
    std::env::var(RESTRICT_SECRET_ACCESS_ENV)
        .map(|v| v.trim().eq_ignore_ascii_case("true"))
        .unwrap_or(false)
}
