//! Scalers that read the cluster itself: the workload's cpu and memory (served by the HPA from the
//! resource metrics API), the number of pods a selector matches, and a number kept in a ConfigMap or
//! Secret.

#[cfg(feature = "cpu-memory")]
pub mod cpu_memory;
#[cfg(feature = "kubernetes-resource")]
pub mod resource;
#[cfg(feature = "kubernetes-workload")]
pub mod workload;
