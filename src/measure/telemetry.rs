//! What the run ran on: host, toolchain, git commit, GPU. Read once at the start of a run and
//! written to `environment.json` beside the results.

use serde_json::{json, Value};

fn command(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The CPU's model name (`/proc/cpuinfo`).
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = s.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The git commit the binary was built from (`-dirty` if the tree had changes), recorded at build
/// time so a binary built on one machine and run on another still knows it.
pub fn git_commit() -> String {
    match env!("LLM_BENCH_GIT_COMMIT") {
        "" => "unknown".into(),
        c => c.into(),
    }
}

/// Host and build facts, plus the GPU when built with `cuda`.
pub fn environment() -> Value {
    json!({
        "git_commit": git_commit(),
        "llm_bench_version": env!("CARGO_PKG_VERSION"),
        "features": enabled_features(),
        "host": {
            "hostname": command("hostname", &[]).unwrap_or_default(),
            "os": std::fs::read_to_string("/etc/os-release").ok()
                .and_then(|s| s.lines().find(|l| l.starts_with("PRETTY_NAME=")).map(|l| l[12..].trim_matches('"').to_string())),
            "kernel": command("uname", &["-r"]),
            "cpu": cpu_model(),
            "logical_cpus": online_cpus(),
            "memory_bytes": mem_total_bytes(),
        },
        "gpu": gpu(),
        "started_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "command": std::env::args().collect::<Vec<_>>(),
        "env": std::env::vars().filter(|(k, _)| k.starts_with("LLM_BENCH_") || k == "CUDA_VISIBLE_DEVICES").collect::<std::collections::BTreeMap<_, _>>(),
    })
}

fn enabled_features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "candle") { f.push("candle"); }
    if cfg!(feature = "lmrs") { f.push("lmrs"); }
    if cfg!(feature = "burn") { f.push("burn"); }
    if cfg!(feature = "mistralrs") { f.push("mistralrs"); }
    if cfg!(feature = "torch") { f.push("torch"); }
    if cfg!(feature = "llamacpp") { f.push("llamacpp"); }
    if cfg!(feature = "cuda") { f.push("cuda"); }
    f
}

#[cfg(not(feature = "cuda"))]
fn gpu() -> Value {
    json!({"available": false, "reason": "built without the `cuda` feature"})
}

#[cfg(feature = "cuda")]
fn gpu() -> Value {
    crate::measure::gpu::nvml_snapshot()
}

/// One reading of the machine while a case runs.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Sample {
    /// Seconds since the sampler started.
    pub t: f64,
    /// This process's CPU use since the previous sample, in cores (1.0 = one core busy).
    pub cpu_cores: f64,
    pub rss_bytes: u64,
    pub gpu_util_pct: Option<f64>,
    pub gpu_mem_used_bytes: Option<u64>,
    pub gpu_power_w: Option<f64>,
    pub gpu_sm_clock_mhz: Option<f64>,
    pub gpu_temp_c: Option<f64>,
    /// The CPU the thread that started the sampler (the one timing the requests) last ran on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_cpu: Option<u32>,
    /// That thread's involuntary context switches since the previous sample, per second: how
    /// often something else took its CPU while it had work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timed_preempted_per_s: Option<f64>,
    /// CPU the rest of the host used since the previous sample, in cores (every process but
    /// this one, and the kernel's own work): a CPU-only engine that runs a thread per core slows
    /// down when anything else takes a core (table-2026-12-07, lease 7: one call's 16-thread
    /// warm-up request ran 1.65x slower than the same machine's other calls, unexplained).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_other_cores: Option<f64>,
    /// CPU time the hypervisor gave to other guests while this one wanted it, in cores
    /// (`steal` of /proc/stat).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_steal_cores: Option<f64>,
}

/// Busy and stolen CPU seconds of the whole host so far, from the `cpu` line of /proc/stat
/// (user, nice, system, idle, iowait, irq, softirq, steal, … in USER_HZ = 100 ticks a second;
/// guest time is already counted in user).
fn host_busy_and_steal(stat: &str) -> Option<(f64, f64)> {
    let ticks: Vec<f64> = stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().map(|t| t.parse().ok()).collect::<Option<_>>()?;
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0.0);
    (ticks.len() >= 4).then(|| ((at(0) + at(1) + at(2) + at(5) + at(6)) / 100.0, at(7) / 100.0))
}

fn host_cpu_seconds() -> Option<(f64, f64)> {
    host_busy_and_steal(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The CPU a thread last ran on and its involuntary context switches so far, from
/// `/proc/self/task/<tid>/stat` (field 39) and `…/status`; `None` where /proc lacks them.
fn thread_cpu_and_preemptions(tid: libc::pid_t) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let cpu = stat.rsplit_once(')')?.1.split_whitespace().nth(39 - 3)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let switches = status.lines().find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:"))?.trim().parse().ok()?;
    Some((cpu, switches))
}

/// The host's online CPUs. Not `available_parallelism`, which counts the calling thread's
/// affinity: with `LLM_BENCH_PIN` the end-of-run calibration ran on one CPU and said 1
/// (h200-2026-12-03-pin).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf reads a system value and has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    }
}

/// The calling thread's id, as /proc/self/task and sched_setaffinity name it.
pub fn thread_id() -> libc::pid_t {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::pid_t }
}

/// Samples CPU use, resident memory and (with `cuda`) the GPU through NVML every `period` on a
/// background thread, so the measured work is never interrupted to take a reading.
pub struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<Sample>>>,
}

/// A sampler dropped without `stop` (a case that ends early) stops its thread too.
impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn process_cpu_seconds() -> f64 {
    // utime + stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The GPU's UUID (NVML), the identity that tells two machines of one GPU model apart.
pub fn gpu_uuid(gpu: Option<usize>) -> Option<String> {
    #[cfg(feature = "cuda")]
    {
        let n = nvml_wrapper::Nvml::init().ok()?;
        n.device_by_index(gpu? as u32).ok()?.uuid().ok()
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = gpu;
        None
    }
}

/// GPU memory in use on the device now (NVML), if there is a GPU to ask.
pub fn gpu_memory_used(gpu: Option<usize>) -> Option<u64> {
    #[cfg(feature = "cuda")]
    {
        let n = nvml_wrapper::Nvml::init().ok()?;
        let d = n.device_by_index(gpu? as u32).ok()?;
        d.memory_info().ok().map(|m| m.used)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = gpu;
        None
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

impl Sampler {
    pub fn start(gpu: Option<usize>, period: std::time::Duration) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let timed = thread_id();
        let handle = std::thread::spawn(move || {
            #[cfg(feature = "cuda")]
            let nvml = gpu.and_then(|_| nvml_wrapper::Nvml::init().ok());
            #[cfg(not(feature = "cuda"))]
            let _ = gpu;
            let start = std::time::Instant::now();
            let (mut last_t, mut last_cpu) = (0.0, process_cpu_seconds());
            let mut last_switches = thread_cpu_and_preemptions(timed).map(|(_, n)| n);
            let mut last_host = host_cpu_seconds();
            let mut out = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(period);
                let t = start.elapsed().as_secs_f64();
                let cpu = process_cpu_seconds();
                #[allow(unused_mut)]
                let mut s = Sample { t, cpu_cores: (cpu - last_cpu) / (t - last_t).max(1e-9), rss_bytes: rss_bytes(), ..Default::default() };
                if let Some((on, switches)) = thread_cpu_and_preemptions(timed) {
                    s.timed_cpu = Some(on);
                    s.timed_preempted_per_s = last_switches.map(|n| switches.saturating_sub(n) as f64 / (t - last_t).max(1e-9));
                    last_switches = Some(switches);
                }
                let host = host_cpu_seconds();
                if let (Some((busy, steal)), Some((last_busy, last_steal))) = (host, last_host) {
                    let dt = (t - last_t).max(1e-9);
                    s.host_other_cores = Some(((busy - last_busy) - (cpu - last_cpu)).max(0.0) / dt);
                    s.host_steal_cores = Some((steal - last_steal).max(0.0) / dt);
                }
                last_host = host;
                (last_t, last_cpu) = (t, cpu);
                #[cfg(feature = "cuda")]
                if let (Some(n), Some(i)) = (&nvml, gpu) {
                    use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
                    if let Ok(d) = n.device_by_index(i as u32) {
                        s.gpu_util_pct = d.utilization_rates().ok().map(|u| u.gpu as f64);
                        s.gpu_mem_used_bytes = d.memory_info().ok().map(|m| m.used);
                        s.gpu_power_w = d.power_usage().ok().map(|mw| mw as f64 / 1e3);
                        s.gpu_sm_clock_mhz = d.clock_info(Clock::SM).ok().map(f64::from);
                        s.gpu_temp_c = d.temperature(TemperatureSensor::Gpu).ok().map(f64::from);
                    }
                }
                out.push(s);
            }
            out
        });
        Self { stop, handle: Some(handle) }
    }

    pub fn stop(mut self) -> Vec<Sample> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sampler_says_where_the_thread_that_started_it_ran() {
        let sampler = super::Sampler::start(None, std::time::Duration::from_millis(20));
        let until = std::time::Instant::now() + std::time::Duration::from_millis(250);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1); // busy, as a timed thread is
        }
        std::hint::black_box(x);
        let samples = sampler.stop();
        let cpus = super::online_cpus() as u32;
        let on: Vec<u32> = samples.iter().filter_map(|s| s.timed_cpu).collect();
        assert!(!on.is_empty() && on.iter().all(|&c| c < cpus.max(1)), "CPUs {on:?} of {cpus}");
        let preempted: Vec<f64> = samples.iter().filter_map(|s| s.timed_preempted_per_s).collect();
        assert!(preempted.len() + 1 >= on.len() && preempted.iter().all(|p| p.is_finite() && *p >= 0.0), "{preempted:?}");
        // The rest of the host: this machine's other cores, never more than it has.
        let other: Vec<f64> = samples.iter().filter_map(|s| s.host_other_cores).collect();
        assert!(!other.is_empty() && other.iter().all(|c| c.is_finite() && *c >= 0.0 && *c <= cpus as f64 + 0.5), "{other:?}");
        assert!(samples.iter().filter_map(|s| s.host_steal_cores).all(|c| c.is_finite() && c >= 0.0));
    }

    /// The `cpu` line of a real /proc/stat (a 2-core Debian 12 VM): busy is user + nice +
    /// system + irq + softirq, steal its own field; a line without the fields is no reading.
    #[test]
    fn host_busy_and_steal_read_the_cpu_line_of_proc_stat() {
        let stat = "cpu  4911612 0 913654 4209566 147580 0 2607 11192 0 0\ncpu0 2346259 0 426933 2300469 18644 0 529 5519 0 0\n";
        let (busy, steal) = super::host_busy_and_steal(stat).unwrap();
        assert!((busy - (4911612.0 + 913654.0 + 2607.0) / 100.0).abs() < 1e-6, "{busy}");
        assert!((steal - 111.92).abs() < 1e-9, "{steal}");
        assert!(super::host_busy_and_steal("intr 1 2 3\n").is_none());
        assert!(super::host_busy_and_steal("cpu  1 2\n").is_none());
    }
}
