//! How a Criterion figure is timed.
//!
//! Criterion's [`Measurement`] trait is the small timing trait: `start` before the work, `end`
//! after it. Wall-clock time ([`Wall`]) is one implementation, used for engines on the CPU;
//! CUDA events recorded on the engine's own stream ([`crate::measure::cuda_events::CudaEventTime`], feature
//! `cuda`) are another, used for engines on a GPU, so the Criterion figure is the GPU's view of
//! the request while the raw records keep the host's wall-clock view beside it. Scenarios are
//! generic over the measurement; nothing else changes between the two.

pub use criterion::measurement::{Measurement, ValueFormatter};
use std::time::{Duration, Instant};

/// Criterion's own wall clock, kept for its duration formatter.
static CRITERION_WALL: criterion::measurement::WallTime = criterion::measurement::WallTime;

/// Durations are formatted the way Criterion formats wall time, whatever took them.
pub fn duration_formatter() -> &'static dyn ValueFormatter {
    CRITERION_WALL.formatter()
}

/// A measurement the scenarios can use: its values are durations, and it has a name for reports.
pub trait EngineClock: Measurement<Value = Duration> + Clone {
    /// `wall` or `cuda-events`, written into every result.
    fn label(&self) -> &'static str;
}

/// Wall-clock time on the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wall;

impl Measurement for Wall {
    type Intermediate = Instant;
    type Value = Duration;

    fn start(&self) -> Instant {
        Instant::now()
    }
    fn end(&self, i: Instant) -> Duration {
        i.elapsed()
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

impl EngineClock for Wall {
    fn label(&self) -> &'static str {
        "wall"
    }
}
