use std::fmt;

/// An object a resolution step looked at, named the way `kubectl` would: `Secret ns/name`,
/// `ClusterTriggerAuthentication name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: &'static str,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: &'static str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn cluster(kind: &'static str, name: &str) -> Self {
        Self::new(kind, "", name)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Errors of resolving a trigger's environment and authentication parameters.
///
/// Every variant names the object (and key) it is about and what referred to it, so the message alone
/// tells the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The object source failed (API server unreachable, forbidden, …); transient.
    #[error("reading {object}: {message}")]
    Source { object: ObjectRef, message: String },
    #[error("the scale target has no containers")]
    NoContainers,
    #[error("container {name:?} not found in the scale target (it has {available})")]
    ContainerNotFound { name: String, available: String },
    /// A referenced object does not exist.
    #[error("{object} not found (referenced by {used_by})")]
    ObjectNotFound { object: ObjectRef, used_by: String },
    /// A referenced object exists but lacks the key.
    #[error("{object} has no key {key:?} (referenced by {used_by})")]
    KeyNotFound {
        object: ObjectRef,
        key: String,
        used_by: String,
    },
    /// The `authenticationRef` names an object that does not exist.
    #[error("{object} not found (authenticationRef of the trigger)")]
    AuthenticationNotFound { object: ObjectRef },
    /// A way of supplying parameters that keda-rs does not implement yet.
    #[error("{object}: {feature} is not supported by keda-rs yet")]
    Unsupported {
        object: ObjectRef,
        feature: &'static str,
    },
    /// The pod identity of the authentication object cannot be used.
    #[error("{object}: podIdentity: {message}")]
    PodIdentity { object: ObjectRef, message: String },
    /// `filePath` is refused (wrong kind, outside `--filepath-auth-root-path`) or its file is unusable.
    /// The message never holds the file's contents.
    #[error("{object}: filePath: {message}")]
    FilePath { object: ObjectRef, message: String },
}

impl ResolveError {
    /// A short, stable label for metrics, Event reasons and `keda lint` codes.
    pub fn category(&self) -> &'static str {
        match self {
            ResolveError::Source { .. } => "source-error",
            ResolveError::NoContainers | ResolveError::ContainerNotFound { .. } => {
                "container-not-found"
            }
            ResolveError::ObjectNotFound { .. }
            | ResolveError::KeyNotFound { .. }
            | ResolveError::AuthenticationNotFound { .. } => "missing-reference",
            ResolveError::Unsupported { .. } => "unsupported-auth",
            ResolveError::PodIdentity { .. } => "invalid-pod-identity",
            ResolveError::FilePath { .. } => "invalid-file-path",
        }
    }

    /// True when only a change of the objects can fix the error (everything but a failing source).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ResolveError::Source { .. })
    }
}
