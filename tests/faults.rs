//! Bad input as a user meets it, through the real binary on the real SmolLM2 model: a prompt
//! longer than the model's context is a clear error naming the lengths, the limit and the model
//! (never a panic), and in a scenario that case is recorded as not runnable while the run goes on.

use std::process::Command;

fn results(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a results line does not parse ({e}): {l}")))
        .collect()
}

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
    let dir = std::env::temp_dir().join(format!("llm-bench-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The binary runs the bench its name says: `long_context`, as `cargo bench --bench long_context`.
    let bench = dir.join("long_context");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_llm-bench"), &bench).unwrap();
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
