//! The GPU side of measurement (feature `cuda`): CUDA-event timing on an engine's stream and the
//! NVML snapshot written to the environment record.

use crate::measurement::{duration_formatter, EngineClock, Measurement, ValueFormatter};
use anyhow::{Context, Result};
use cudarc::driver::{sys, CudaContext, CudaEvent, CudaStream};
use serde_json::{json, Value};
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

/// Number of CUDA devices the driver reports; `None` without a usable driver.
pub fn device_count() -> Option<usize> {
    CudaContext::device_count().ok().map(|n| n as usize)
}

/// GPU facts at run start, from NVML: name, driver, CUDA version, clocks, memory, power, PCI.
pub fn nvml_snapshot() -> Value {
    let nvml = match nvml_wrapper::Nvml::init() {
        Ok(n) => n,
        Err(e) => return json!({"available": false, "reason": format!("NVML not available: {e}")}),
    };
    use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
    let count = nvml.device_count().unwrap_or(0);
    let devices: Vec<Value> = (0..count)
        .filter_map(|i| nvml.device_by_index(i).ok())
        .map(|d| {
            let mem = d.memory_info().ok();
            json!({
                "name": d.name().ok(),
                "uuid": d.uuid().ok(),
                "pci_bus_id": d.pci_info().ok().map(|p| p.bus_id),
                "memory_total_bytes": mem.as_ref().map(|m| m.total),
                "memory_used_bytes_at_start": mem.as_ref().map(|m| m.used),
                "sm_clock_mhz": d.clock_info(Clock::SM).ok(),
                "sm_clock_max_mhz": d.max_clock_info(Clock::SM).ok(),
                "memory_clock_mhz": d.clock_info(Clock::Memory).ok(),
                "memory_clock_max_mhz": d.max_clock_info(Clock::Memory).ok(),
                "application_sm_clock_mhz": d.applications_clock(Clock::SM).ok(),
                "power_limit_mw": d.power_management_limit().ok(),
                "power_usage_mw_at_start": d.power_usage().ok(),
                "temperature_c_at_start": d.temperature(TemperatureSensor::Gpu).ok(),
                "utilization_at_start": d.utilization_rates().ok().map(|u| json!({"gpu": u.gpu, "memory": u.memory})),
                "throttle_reasons_at_start": d.current_throttle_reasons().ok().map(|r| format!("{r:?}")),
            })
        })
        .collect();
    json!({
        "available": true,
        "driver_version": nvml.sys_driver_version().ok(),
        "cuda_driver_version": nvml.sys_cuda_driver_version().ok(),
        "devices": devices,
    })
}

/// The device's copy bandwidth in bytes per second, counting bytes read plus bytes written: the
/// practical ceiling a memory-bound decode step can reach. Median of 5 timings of 10
/// device-to-device copies of 1 GiB, timed with CUDA events after a warm-up copy.
pub fn copy_bandwidth(ordinal: usize) -> Result<f64> {
    const BYTES: usize = 1 << 30;
    let ctx = CudaContext::new(ordinal).context("cannot open the CUDA device to measure its bandwidth")?;
    let stream = ctx.default_stream();
    let src = stream.alloc_zeros::<u8>(BYTES)?;
    let mut dst = stream.alloc_zeros::<u8>(BYTES)?;
    stream.memcpy_dtod(&src, &mut dst)?;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let start = stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        for _ in 0..10 {
            stream.memcpy_dtod(&src, &mut dst)?;
        }
        let end = stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        let ms = start.elapsed_ms(&end)? as f64;
        rates.push(2.0 * 10.0 * BYTES as f64 / (ms / 1e3));
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(rates[2])
}
