//! Ctrl-C (or SIGTERM, a time limit's signal) on a real run: `llm-bench suite` in a subprocess,
//! interrupted while it measures an engine (the PyTorch engine when built with `torch`: its
//! embedded Python once turned Ctrl-C into a `KeyboardInterrupt` and the run went on), must stop
//! within moments with exit code 130 (143), keep every finished case, record the interrupted one
//! with how long it had run, and leave a results file whose every line parses.

mod common;

use common::results;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_stops_a_suite_with_130_and_keeps_every_finished_case() {
    stops_on(libc::SIGINT, 130, "Ctrl-C");
}

/// `timeout` (a device call's time limit, `scripts/device-run.sh`) sends SIGTERM: before, the
/// process died with the case it was measuring unrecorded, and a resumed run started the same
/// too-long round again.
#[test]
fn sigterm_stops_a_suite_with_143_and_records_how_long_the_case_had_run() {
    let last = stops_on(libc::SIGTERM, 143, "SIGTERM");
    assert!(last["ran_s"].as_f64().is_some_and(|t| t > 0.0), "{last}");
}

/// Send `signal` while the suite measures its engine's cases; the record of the interrupted case.
fn stops_on(signal: libc::c_int, code: i32, named: &str) -> serde_json::Value {
    let engine = if cfg!(feature = "torch") { "torch" } else { "candle" };
    let dir = std::env::temp_dir().join(format!("llm-bench-interrupt-{}-{signal}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args(["suite", "single_request"])
        .env("LLM_BENCH_MODEL", "smollm2")
        .env("LLM_BENCH_ENGINES", engine)
        .env("LLM_BENCH_NEW_TOKENS", "8")
        .env("LLM_BENCH_OUT", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("llm-bench starts");
    // Wait for the engine's first measured case: it is loaded and in the middle of the scenario.
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the suite ended ({status}) before {engine} measured a case: {:?}", results(&dir));
        }
        if results(&dir).iter().any(|r| r["status"] == "measured" && r["engine"] == engine) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{engine} measured nothing in 10 minutes");
        std::thread::sleep(Duration::from_millis(200));
    }
    let finished = results(&dir).iter().filter(|r| r["status"] == "measured").count();
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(20) {
            child.kill().ok();
            panic!("the suite was still running 20 s after {named}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(code), "exit status after {named}: {status}");
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    let after = results(&dir);
    assert!(after.iter().filter(|r| r["status"] == "measured").count() >= finished, "finished cases were lost");
    let last = after.last().unwrap();
    assert_eq!(last["status"], "skipped", "{last}");
    assert!(last["reason"].as_str().unwrap().contains(&format!("interrupted ({named}")), "{last}");
    assert_eq!(last["engine"], engine);
    std::fs::remove_dir_all(&dir).ok();
    last.clone()
}
