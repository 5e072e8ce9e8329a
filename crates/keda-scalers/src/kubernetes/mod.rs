//! Scalers that read the cluster itself: the workload's cpu and memory (served by the HPA from the
//! resource metrics API).

#[cfg(feature = "cpu-memory")]
pub mod cpu_memory;
