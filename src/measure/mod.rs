//! Measurement: how a figure is timed (Criterion measurements: the wall clock, CUDA events on an
//! engine's stream), what the GPU and the host were doing meanwhile (NVML, process sampling,
//! CUPTI traces), and the statistics computed from raw records afterwards.
//! May use: `crate::engine` (the trait, for an engine's stream) and nothing else of the crate; it
//! knows no engine adapter, no scenario and no report.

pub mod clock;
#[cfg(feature = "cuda")]
pub mod cuda_events;
pub mod cupti;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod host;
pub mod pin;
pub mod stats;
pub mod telemetry;

use clock::Wall;

/// The clock chosen for one engine.
pub enum Clock {
    Wall(Wall),
    #[cfg(feature = "cuda")]
    CudaEvents(cuda_events::CudaEventTime),
}

/// CUDA events on the engine's stream when it runs on a GPU and exposes its stream; wall time
/// otherwise.
pub fn clock_for(engine: &dyn crate::engine::Engine) -> Clock {
    #[cfg(feature = "cuda")]
    if let Some(stream) = engine.cuda_stream() {
        match cuda_events::CudaEventTime::new(stream) {
            Ok(c) => return Clock::CudaEvents(c),
            Err(e) => eprintln!("[llm-bench] CUDA events unavailable ({e:#}); timing {} by wall clock", engine.info().name),
        }
    }
    let _ = engine;
    Clock::Wall(Wall)
}
