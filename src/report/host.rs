//! The host's part in a run's figures, from its records: the host calibration of
//! `environment.json` (`crate::measure::host`, before the first engine and after the last) and,
//! per case, whether the engine was bound by the host (a host thread busy all the time, the GPU
//! partly idle) or by the GPU, from the NVML and /proc samples taken during the case.

use serde_json::Value;

/// A case is host-bound when the process kept at least this many cores busy...
const HOST_CORES: f64 = 0.9;
/// ...and the GPU was busy less than this share of the time (NVML); GPU-bound above it.
const GPU_BUSY_PCT: f64 = 95.0;

/// The calibration figures compared between runs: (key path, label, unit).
pub const FIGURES: [(&[&str], &str, &str); 5] = [
    (&["cpu_workload_ns_per_iteration"], "CPU workload (one thread)", "ns/iteration"),
    (&["gpu", "empty_kernel_launch", "median_us"], "empty kernel launch", "µs"),
    (&["gpu", "launch_and_synchronize", "median_us"], "launch + synchronize", "µs"),
    (&["gpu", "copy_4_bytes_host_to_device", "median_us"], "4 bytes host → GPU", "µs"),
    (&["gpu", "copy_4_bytes_device_to_host", "median_us"], "4 bytes GPU → host", "µs"),
];

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(v, |v, k| &v[*k])
}

/// A calibration figure of a run: the start's, or the end's when the start has none.
pub fn figure(env: &Value, path: &[&str]) -> Option<f64> {
    let c = &env["calibration"];
    at(&c["start"], path).as_f64().or_else(|| at(&c["end"], path).as_f64())
}

/// The summary header's line, or `None` for runs recorded before calibration existed.
pub fn calibration_line(env: &Value) -> Option<String> {
    let c = &env["calibration"];
    let start = c["start"].as_object()?;
    let fmt = |v: &Value, d: usize| v.as_f64().map_or("—".to_string(), |x| format!("{x:.d$}"));
    let both = |path: &[&str], d: usize| {
        let s = fmt(at(&c["start"], path), d);
        match at(&c["end"], path) {
            Value::Null => s,
            e => format!("{s} / {}", fmt(e, d)),
        }
    };
    let mut line = format!(
        "- host calibration (start / end of the run): CPU workload {} ns per iteration (one thread: hash-map update, small allocation, branch)",
        both(&["cpu_workload_ns_per_iteration"], 1)
    );
    if start.get("gpu").is_some_and(|g| g.is_object() && g.get("error").is_none()) {
        line.push_str(&format!(
            "; empty kernel launch {} µs, launch + synchronize {} µs, 4 bytes to / from the GPU {} / {} µs (medians)",
            both(&["gpu", "empty_kernel_launch", "median_us"], 1),
            both(&["gpu", "launch_and_synchronize", "median_us"], 1),
            both(&["gpu", "copy_4_bytes_host_to_device", "median_us"], 1),
            both(&["gpu", "copy_4_bytes_device_to_host", "median_us"], 1),
        ));
    } else if let Some(e) = at(&c["start"], &["gpu", "error"]).as_str() {
        line.push_str(&format!("; GPU latencies not measured: {e}"));
    }
    let steal = |v: &Value| v.as_f64().map_or("—".to_string(), |s| format!("{:.1}%", s * 100.0));
    line.push_str(&format!(
        "; CPU time stolen by the hypervisor while calibrating {} / {}, load average {} / {}",
        steal(&c["start"]["steal_fraction"]),
        steal(&c["end"]["steal_fraction"]),
        c["start"]["load_average"][0].as_f64().map_or("—".into(), |l| format!("{l:.2}")),
        c["end"]["load_average"][0].as_f64().map_or("—".into(), |l| format!("{l:.2}")),
    ));
    Some(line)
}

/// What bound a measured case: `host`, `GPU`, `both` or `unknown` (no samples, or a CPU engine).
pub fn bound(record: &Value) -> &'static str {
    if !record["device"].as_str().is_some_and(|d| d.starts_with("cuda")) {
        return "CPU engine";
    }
    let cores = record["metrics"]["cpu_cores"]["mean"].as_f64();
    let busy = record["metrics"]["gpu_util_pct"]["mean"].as_f64();
    match (cores, busy) {
        (Some(c), Some(b)) if c >= HOST_CORES && b < GPU_BUSY_PCT => "host",
        (Some(c), Some(b)) if c < HOST_CORES && b >= GPU_BUSY_PCT => "GPU",
        (Some(_), Some(_)) => "both",
        _ => "unknown",
    }
}

/// The rule [`bound`] applies, for reports to state.
pub fn rule() -> String {
    format!(
        "host-bound: the process kept ≥ {HOST_CORES} cores busy and the GPU was busy < {GPU_BUSY_PCT:.0}% of the time (NVML, sampled every 100 ms during the case); GPU-bound: the reverse; both: each saturated"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cases_are_host_or_gpu_bound_by_their_samples() {
        let r = |cores: f64, busy: f64| json!({"device": "cuda:0", "metrics": {"cpu_cores": {"mean": cores}, "gpu_util_pct": {"mean": busy}}});
        assert_eq!(bound(&r(1.0, 60.0)), "host");
        assert_eq!(bound(&r(0.3, 99.0)), "GPU");
        assert_eq!(bound(&r(1.0, 99.0)), "both");
        assert_eq!(bound(&json!({"device": "cpu"})), "CPU engine");
        assert_eq!(bound(&json!({"device": "cuda:0", "metrics": {}})), "unknown");
    }

    #[test]
    fn calibration_line_shows_start_and_end() {
        let env = json!({"calibration": {
            "start": {"cpu_workload_ns_per_iteration": 41.5, "gpu": {"empty_kernel_launch": {"median_us": 2.5}, "launch_and_synchronize": {"median_us": 9.0},
                      "copy_4_bytes_host_to_device": {"median_us": 6.0}, "copy_4_bytes_device_to_host": {"median_us": 7.0}}, "steal_fraction": 0.0, "load_average": [1.0]},
            "end": {"cpu_workload_ns_per_iteration": 43.0}}});
        let l = calibration_line(&env).unwrap();
        assert!(l.contains("41.5 / 43.0 ns") && l.contains("launch + synchronize 9.0 µs"), "{l}");
        assert_eq!(figure(&env, &["gpu", "empty_kernel_launch", "median_us"]), Some(2.5));
        assert!(calibration_line(&json!({})).is_none());
    }
}
