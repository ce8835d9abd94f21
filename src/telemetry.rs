//! What the run ran on: host, toolchain, git commit, GPU. Read once at the start of a run and
//! written to `environment.json` beside the results.

use serde_json::{json, Value};

fn command(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn cpu_model() -> String {
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
            "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
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
    if cfg!(feature = "cuda") { f.push("cuda"); }
    f
}

#[cfg(not(feature = "cuda"))]
fn gpu() -> Value {
    json!({"available": false, "reason": "built without the `cuda` feature"})
}

#[cfg(feature = "cuda")]
fn gpu() -> Value {
    crate::gpu::nvml_snapshot()
}
