//! The kernel analysis: the suite's own CUDA kernels (NVRTC build, checks, launches), their f64
//! CPU references, the engines' equivalent calls, and each engine's decode step broken down.
//! May use: everything below it (engines through the registry, measure, model, run's harness);
//! nothing uses it but the kernels bench.

pub mod breakdown;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cuda")]
pub mod engines;
