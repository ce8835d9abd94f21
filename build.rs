//! Exposes the exact versions of the measured libraries, read from Cargo.lock, as
//! `LLM_BENCH_VERSION_<CRATE>` so every result names what was measured.

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    // The commit the binary is built from, for binaries built here and run on another machine.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=40"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=LLM_BENCH_GIT_COMMIT={commit}");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let wanted = ["candle-core", "burn", "mistralrs", "pyo3", "cudarc", "criterion", "wide", "llama-cpp-2"];
    for name in wanted {
        // The first entry wins; the engines' own versions are unique in the lock file.
        let version = lock
            .split("[[package]]")
            .find(|block| block.lines().any(|l| l.trim() == format!("name = \"{name}\"")))
            .and_then(|block| block.lines().find_map(|l| l.trim().strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"').to_string())
            .unwrap_or_else(|| "unknown".into());
        let key = name.to_uppercase().replace('-', "_");
        println!("cargo:rustc-env=LLM_BENCH_VERSION_{key}={version}");
    }
}
