//! The CUDA-event timer (feature `cuda`): one more implementation of Criterion's measurement
//! trait beside the wall clock ([`crate::measure::clock::Wall`]); nothing else changes.

use crate::measure::clock::{duration_formatter, EngineClock, Measurement, ValueFormatter};
use anyhow::{Context, Result};
use cudarc::driver::{sys, CudaEvent, CudaStream};
use std::sync::Arc;
use std::time::Duration;

/// A Criterion measurement by CUDA events recorded on the engine's own stream: the time the GPU
/// took from the first to the last piece of work queued between `start` and `end`, plus any
/// time the stream sat idle waiting for the host in between (so host overhead that starves the
/// GPU is included, host work that overlaps it is not).
#[derive(Clone)]
pub struct CudaEventTime {
    stream: Arc<CudaStream>,
}

impl CudaEventTime {
    pub fn new(stream: Arc<CudaStream>) -> Result<Self> {
        // Create one event now so a broken context is found before Criterion starts.
        stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT)).context("cannot record a CUDA event")?;
        Ok(Self { stream })
    }

    fn event(&self) -> CudaEvent {
        self.stream
            .record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .expect("recording a CUDA event on the engine's stream failed")
    }
}

impl Measurement for CudaEventTime {
    type Intermediate = CudaEvent;
    type Value = Duration;

    fn start(&self) -> CudaEvent {
        self.event()
    }
    fn end(&self, start: CudaEvent) -> Duration {
        let end = self.event();
        let ms = start.elapsed_ms(&end).expect("reading CUDA event times failed");
        Duration::from_secs_f64(ms as f64 / 1e3)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        duration_formatter()
    }
}

impl EngineClock for CudaEventTime {
    fn label(&self) -> &'static str {
        "cuda-events"
    }
}
