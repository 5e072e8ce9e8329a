/// Errors of the operator, each saying which action failed on what.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Scaling(#[from] keda_core::Error),
    #[error("{0}")]
    Scaler(#[from] keda_scalers::ScalerError),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("{0}")]
    Invalid(String),
    /// Leader election: a Lease request without an answer in time, or leadership lost.
    #[error("leader election: {0}")]
    Lease(String),
    #[error("serving {what} on {addr}: {source}")]
    Serve {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            action: action.into(),
            source,
        }
    }

    /// A short, stable category for metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kubernetes-api",
            Error::Scaling(_) => "scaling",
            Error::Scaler(e) => e.category(),
            Error::Finalizer(_) => "finalizer",
            Error::Invalid(_) => "invalid-object",
            Error::Lease(_) => "leader-election",
            Error::Serve { .. } => "serve",
        }
    }
}
