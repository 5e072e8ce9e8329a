//! Checking KEDA objects, in one place: the operator's reconcile, the admission webhook and `keda lint`
//! all call this crate, so they reach the same verdict on the same input.
//!
//! * [`finding`]: the one result type ([`Finding`]: severity, field path, stable code, message).
//! * [`rules`]: structural rules with upstream's messages (replica bounds, fallback, scalingModifiers
//!   formula, trigger names, authentication objects); [`rules::reconcile_refusal`] is what the operator
//!   refuses to reconcile.
//! * [`advice`]: the seed guide's pitfalls as warnings (graceful shutdown behind an ALB, preStop sleeps
//!   against the grace period, the scale-down window, the Kubernetes version window).
//! * [`object`]: the pipeline over one object ([`Checker`]): rules, advice, the scale target's env, every
//!   trigger's authentication through `keda-resolver` and its parse through the scaler registry, with
//!   placeholders for what the checker cannot see ([`parse`]).
//! * [`manifests`]: a set of manifests (files, directories, stdin) as a source, checked as a whole
//!   (`keda lint`; the binary only parses arguments and prints).
//! * [`render`]: the objects the operator would create for such a set, by its own builders (`keda render`).
//! * [`explain`]: why a live ScaledObject's target has its replicas and what would change them next
//!   (`keda explain`; the binary reads the objects).
//! * [`simulate`]: one ScaledObject of such a set prepared for `keda_core::simulate` (`keda simulate`).

pub mod advice;
pub mod explain;
pub mod finding;
pub mod manifests;
pub mod object;
pub mod parse;
pub mod render;
pub mod rules;
pub mod simulate;

pub use finding::{Finding, Severity, codes};
pub use object::{Checker, ParsedTrigger, Sight, Target};
