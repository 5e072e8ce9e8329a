//! Scalers that read the cluster itself: the workload's cpu and memory (served by the HPA from the
//! resource metrics API) and the number of pods a selector matches.

#[cfg(feature = "cpu-memory")]
pub mod cpu_memory;
#[cfg(feature = "kubernetes-workload")]
pub mod workload;
