//! Bad input as a user meets it, through the real binary on the real SmolLM2 model: a prompt
//! longer than the model's context is a clear error naming the lengths, the limit and the model
//! (never a panic), and in a scenario that case is recorded as not runnable while the run goes on.

mod common;

use common::{bench_link, results};
use std::process::Command;

#[test]
fn generate_refuses_a_prompt_longer_than_the_context_with_the_lengths_and_the_model() {
    let out = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args(["generate", "100000", "4", "cpu"])
        .env("LLM_BENCH_MODEL", "smollm2")
        .env("LLM_BENCH_ENGINES", "candle")
        .output()
        .expect("llm-bench starts");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "generate 100000 4 succeeded: {err}");
    assert!(!err.contains("panicked"), "a panic instead of an error: {err}");
    for part in ["100000 tokens", "100004 positions", "8192", "smollm2-135m-instruct-q8_0", "at most 8192 tokens"] {
        assert!(err.contains(part), "the error does not say `{part}`: {err}");
    }
}

#[test]
fn a_scenario_case_past_the_context_is_recorded_as_not_runnable_and_the_run_goes_on() {
    let (dir, bench) = bench_link("faults", "long_context");
    let run = dir.join("run");
    // SmolLM2 was trained for 8192 positions: the 8192-token context plus its new tokens does not
    // fit; the Criterion filter keeps the 1K/4K cases out so the test takes seconds.
    let out = Command::new(&bench)
        .args(["--bench", "context8192"])
        .env("LLM_BENCH_MODEL", "smollm2")
        .env("LLM_BENCH_ENGINES", "candle")
        .env("LLM_BENCH_NEW_TOKENS", "8")
        .env("LLM_BENCH_OUT", &run)
        .output()
        .expect("long_context starts");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the bench failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let records = results(&run);
    for case in ["ttft/context8192", "total/context8192"] {
        let r = records
            .iter()
            .find(|r| r["engine"] == "candle" && r["case"] == case)
            .unwrap_or_else(|| panic!("no record of candle's {case}: {records:?}"));
        assert_eq!(r["status"], "skipped", "{r}");
        let why = r["reason"].as_str().unwrap();
        assert!(why.starts_with("not runnable") && why.contains("more than the 8192") && why.contains("smollm2"), "{why}");
    }
    // The run went on to its end: the summary was rendered from the results.
    assert!(run.join("summary.md").is_file(), "no summary after the bench: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run `bench` (a link to the binary named for it) on SmolLM2 with Candle and `LLM_BENCH_FAULT`
/// set; the run directory's records and stderr.
fn with_fault(bench: &str, fault: &str, tag: &str) -> (Vec<serde_json::Value>, String, std::path::PathBuf) {
    let (dir, link) = bench_link(&format!("fault-{tag}"), bench);
    let run = dir.join("run");
    let out = Command::new(&link)
        .args(["--bench", "--test"])
        .env("LLM_BENCH_MODEL", "smollm2")
        .env("LLM_BENCH_ENGINES", "candle")
        .env("LLM_BENCH_NEW_TOKENS", "4")
        .env("LLM_BENCH_FAULT", fault)
        .env("LLM_BENCH_OUT", &run)
        .output()
        .expect("the bench starts");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{bench} with LLM_BENCH_FAULT={fault} failed as a whole: {err}");
    (results(&run), err, dir)
}

/// Candle's record of `case`, or a panic that shows the records and the bench's stderr.
fn candle_case(records: &[serde_json::Value], case: &str, err: &str) -> serde_json::Value {
    records.iter().find(|r| r["engine"] == "candle" && r["case"] == case).unwrap_or_else(|| panic!("no {case}: {records:?}\n{err}")).clone()
}

#[test]
fn an_out_of_memory_case_is_recorded_with_the_engines_message_and_the_next_case_is_measured() {
    // Sustained throughput measures batch/32 then batch/64: the first runs out of memory.
    let (records, err, dir) = with_fault("sustained_throughput", "oom:32", "oom");
    let case = |c: &str| candle_case(&records, c, &err);
    let failed = case("batch/32");
    assert_eq!(failed["status"], "skipped", "{failed}");
    let why = failed["reason"].as_str().unwrap();
    assert!(why.contains("failed") && why.contains("out of memory") && why.contains("batch of 32"), "{why}");
    let after = case("batch/64");
    assert_eq!(after["status"], "measured", "the case after the failure was not measured: {after}");
    assert!(after["engine_info"]["notes"].as_str().unwrap().contains("FAULT INJECTED"), "{after}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_engine_panic_in_one_case_is_recorded_and_the_cases_around_it_are_measured() {
    // Memory efficiency on a user's model measures model/batch1, model/batch8, model/batch32.
    let (records, err, dir) = with_fault("memory_efficiency", "panic:8", "panic");
    let case = |c: &str| candle_case(&records, c, &err);
    let failed = case("model/batch8");
    assert_eq!(failed["status"], "skipped", "{failed}");
    let why = failed["reason"].as_str().unwrap();
    assert!(why.contains("engine candle panicked") && why.contains("batch of 8"), "{why}");
    for ok in ["model/batch1", "model/batch32"] {
        assert_eq!(case(ok)["status"], "measured", "{ok} was not measured around the panic: {}", case(ok));
    }
    // The panic is the engine's, reported once as a record: the process went on and ended well.
    assert!(dir.join("run/summary.md").is_file(), "no summary after the bench: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_engine_that_cannot_serve_after_a_failure_has_its_remaining_cases_recorded_as_not_run() {
    // Memory efficiency measures model/batch1, model/batch8, model/batch32: the batch of 8 fails
    // and leaves the engine unable to serve (as burn-cuda after an out-of-memory).
    let (records, err, dir) = with_fault("memory_efficiency", "break:8", "break");
    let case = |c: &str| candle_case(&records, c, &err);
    assert_eq!(case("model/batch1")["status"], "measured", "{}", case("model/batch1"));
    let failed = case("model/batch8");
    assert!(failed["reason"].as_str().unwrap().starts_with("batch failed"), "{failed}");
    let after = case("model/batch32");
    assert_eq!(after["status"], "skipped", "{after}");
    let why = after["reason"].as_str().unwrap();
    for part in ["not run", "did not recover after model/batch8 failed", "unusable", "LLM_BENCH_ENGINES=candle", "LLM_BENCH_RESUME=1"] {
        assert!(why.contains(part), "the reason does not say `{part}`: {why}");
    }
    assert!(dir.join("run/summary.md").is_file(), "no summary after the bench: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}
