//! The host's speed, measured: at batch 1 every engine is bound by one host core (launches,
//! Python, synchronisation), so two machines of the same GPU model give such figures tens of
//! percent apart. A run records this calibration before its first engine and after its last, so
//! a report (and `compare`) can tell "the engine got slower" from "the host is slower".
//!
//! - a fixed single-thread workload shaped like dispatch work (hashing, small allocations,
//!   branches over a table), ns per iteration, median of several timings;
//! - on a GPU (feature `cuda`, `crate::measure::gpu::launch_latency`): an empty kernel's launch
//!   and launch + synchronise round trip, and a few bytes copied each way;
//! - what the kernel says of the CPU (model, cores, frequency) and whether the process had its
//!   cores to itself: load average, and the share of CPU time the hypervisor stole meanwhile.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Iterations of the workload per timing, and timings taken.
const ITERATIONS: usize = 200_000;
const TIMINGS: usize = 7;

/// One iteration of dispatch-like work: look a key up in a small hash map and update it, make and
/// drop a small vector, take a data-dependent branch. Deterministic; the result is returned so
/// the optimiser keeps the work.
fn workload(iterations: usize) -> u64 {
    let mut map: HashMap<u64, u64> = HashMap::with_capacity(1024);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut acc = 0u64;
    for i in 0..iterations {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = x % 1024;
        *map.entry(key).or_insert(0) += i as u64;
        let v: Vec<u64> = (0..(x % 8) + 1).collect();
        acc = acc.wrapping_add(if v.len() % 3 == 0 { v[0] ^ key } else { v.iter().sum::<u64>() });
    }
    acc.wrapping_add(map.values().sum::<u64>())
}

/// Nanoseconds per iteration of [`workload`] on this thread: the median of [`TIMINGS`].
pub fn cpu_ns_per_iteration() -> f64 {
    std::hint::black_box(workload(ITERATIONS / 10)); // warm caches and the allocator
    let mut t: Vec<f64> = (0..TIMINGS)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(workload(std::hint::black_box(ITERATIONS)));
            started.elapsed().as_nanos() as f64 / ITERATIONS as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[TIMINGS / 2]
}

/// (total, steal) jiffies of all CPUs from /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = s.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    Some((f.iter().sum(), *f.get(7)?))
}

fn load_average() -> Option<Vec<f64>> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).filter_map(|v| v.parse().ok()).collect())
}

/// The mean of the CPUs' current frequencies in MHz, as /proc/cpuinfo reports them (virtual
/// machines often report the nominal one).
fn cpu_mhz() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let v: Vec<f64> = s.lines().filter(|l| l.starts_with("cpu MHz")).filter_map(|l| l.split(':').nth(1)?.trim().parse().ok()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The calibration record for `environment.json` (`calibration.start` / `.end`). `gpu`: the
/// device to time launches on.
pub fn calibrate(gpu: Option<usize>) -> Value {
    let before = cpu_jiffies();
    let started = Instant::now();
    let ns = cpu_ns_per_iteration();
    let launches = gpu_latency(gpu);
    let after = cpu_jiffies();
    let steal = match (before, after) {
        (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => Some((s1 - s0) as f64 / (t1 - t0) as f64),
        _ => None,
    };
    json!({
        "cpu_workload_ns_per_iteration": ns,
        "cpu_workload": "one thread: a hash-map update, a small Vec made and dropped, a data-dependent branch per iteration",
        "cpu_mhz": cpu_mhz(),
        "logical_cpus": crate::measure::telemetry::online_cpus(),
        "load_average": load_average(),
        "steal_fraction": steal,
        "gpu": launches,
        "seconds": started.elapsed().as_secs_f64(),
    })
}

/// Host-side GPU latencies, or why there are none.
fn gpu_latency(gpu: Option<usize>) -> Value {
    match gpu {
        None => Value::Null,
        #[cfg(feature = "cuda")]
        Some(i) => crate::measure::gpu::launch_latency(i).unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
        #[cfg(not(feature = "cuda"))]
        Some(_) => json!({"error": "built without the `cuda` feature"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_count_is_the_hosts_even_on_a_pinned_thread() {
        let tid = crate::measure::telemetry::thread_id();
        let allowed = crate::measure::pin::affinity(tid).expect("the process's CPUs");
        // A thread of its own, pinned to one CPU, as LLM_BENCH_PIN leaves the timing thread.
        let seen = std::thread::spawn(|| {
            let me = crate::measure::telemetry::thread_id();
            let first = crate::measure::pin::affinity(me).unwrap()[0];
            assert!(crate::measure::pin::set_affinity(0, &[first]));
            assert_eq!(crate::measure::pin::affinity(me).unwrap(), vec![first]);
            crate::measure::telemetry::online_cpus()
        })
        .join()
        .unwrap();
        assert!(seen >= allowed.len(), "pinned, the calibration counted {seen} CPUs; the process may use {}", allowed.len());
    }

    #[test]
    fn workload_is_deterministic_and_timed() {
        assert_eq!(workload(1000), workload(1000));
        let ns = cpu_ns_per_iteration();
        assert!(ns.is_finite() && ns > 0.0, "{ns}");
        let c = calibrate(None);
        assert!(c["cpu_workload_ns_per_iteration"].as_f64().is_some_and(|v| v > 0.0), "{c}");
        assert!(c["gpu"].is_null());
    }
}
