use std::fmt;

/// Where a trigger sits in its object, so every error can name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerRef {
    pub index: usize,
    pub trigger_type: String,
}

impl fmt::Display for TriggerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trigger {} ({})", self.index, self.trigger_type)
    }
}

/// Errors of parsing, building and sampling scalers.
///
/// `Config` and `UnknownType` are permanent: retrying cannot help, the object must change. `Backend` is
/// transient: it counts towards fallback and is retried on the next poll.
#[derive(Debug, thiserror::Error)]
pub enum ScalerError {
    #[error("{trigger}: unknown trigger type {:?}", trigger.trigger_type)]
    UnknownType { trigger: TriggerRef },
    #[error("{trigger}: {field}: {reason}")]
    Config {
        trigger: TriggerRef,
        field: String,
        reason: String,
    },
    #[error("{trigger}: {action}: {message}")]
    Backend {
        trigger: TriggerRef,
        action: &'static str,
        message: String,
    },
}

impl ScalerError {
    /// True when only a change of the object can fix the error.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, ScalerError::Backend { .. })
    }

    /// A short, stable label for metrics and Event reasons (never a Debug string).
    pub fn category(&self) -> &'static str {
        match self {
            ScalerError::UnknownType { .. } => "unknown-trigger-type",
            ScalerError::Config { .. } => "configuration",
            ScalerError::Backend { .. } => "backend",
        }
    }

    /// The metadata key the error is about, for field-level reports (`keda lint`, the webhook).
    pub fn field(&self) -> Option<&str> {
        match self {
            ScalerError::Config { field, .. } => Some(field),
            _ => None,
        }
    }
}
