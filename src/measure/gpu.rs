//! GPU facts and ceilings (feature `cuda`): how many devices there are, the NVML snapshot written
//! to the environment record, and the device's measured copy bandwidth.

use anyhow::{Context, Result};
use cudarc::driver::{sys, CudaContext};
use serde_json::{json, Value};

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

/// Host-side latencies of the GPU path, for the run's host calibration
/// (`crate::measure::host`): launching an empty kernel (the call returning, the kernel queued),
/// launching it and waiting for it (a round trip), and 4 bytes copied host to device and back,
/// each the median (and 10th/90th percentiles) of [`LATENCY_SAMPLES`] timed one by one after a
/// warm-up. These are the costs an engine bound by host work pays hundreds of times per token.
pub fn launch_latency(ordinal: usize) -> Result<Value> {
    use cudarc::driver::{LaunchConfig, PushKernelArg};
    use std::time::Instant;
    const LATENCY_SAMPLES: usize = 2000;
    let ctx = CudaContext::new(ordinal).context("cannot open the CUDA device to time launches")?;
    // Like the kernels bench: no per-buffer event tracking, so a launch is only a launch.
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx.new_stream()?;
    let ptx = cudarc::nvrtc::compile_ptx("extern \"C\" __global__ void empty(int x) { (void)x; }")
        .map_err(|e| anyhow::anyhow!("NVRTC could not compile the empty kernel: {e:?}"))?;
    let f = ctx.load_module(ptx)?.load_function("empty")?;
    let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (32, 1, 1), shared_mem_bytes: 0 };
    let arg = 0i32;
    let launch = || -> Result<()> {
        unsafe { stream.launch_builder(&f).arg(&arg).launch(cfg) }?;
        Ok(())
    };
    let mut device = stream.alloc_zeros::<u32>(1)?;
    let host = [7u32];
    let summary = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        json!({"median_us": at(0.5), "p10_us": at(0.1), "p90_us": at(0.9)})
    };
    let time = |what: &mut dyn FnMut() -> Result<()>| -> Result<Vec<f64>> {
        for _ in 0..100 {
            what()?;
        }
        stream.synchronize()?;
        (0..LATENCY_SAMPLES)
            .map(|_| {
                let t = Instant::now();
                what()?;
                Ok(t.elapsed().as_secs_f64() * 1e6)
            })
            .collect()
    };
    let launch_only = time(&mut || launch())?;
    stream.synchronize()?;
    let round_trip = time(&mut || {
        launch()?;
        Ok(stream.synchronize()?)
    })?;
    let h2d = time(&mut || {
        stream.memcpy_htod(&host, &mut device)?;
        Ok(stream.synchronize()?)
    })?;
    let d2h = time(&mut || {
        let v = stream.clone_dtoh(&device)?;
        stream.synchronize()?;
        std::hint::black_box(v);
        Ok(())
    })?;
    Ok(json!({
        "samples": LATENCY_SAMPLES,
        "empty_kernel_launch": summary(launch_only),
        "launch_and_synchronize": summary(round_trip),
        "copy_4_bytes_host_to_device": summary(h2d),
        "copy_4_bytes_device_to_host": summary(d2h),
    }))
}
