//! A run that spans processes, as `scripts/device-run.sh` makes one (one engine per process, one
//! `LLM_BENCH_RUN`): every process appends to the same files, and what belongs to the run rather
//! than to an engine is recorded once.

use std::process::Command;

#[test]
fn one_engine_per_process_appends_to_one_run_and_measures_the_harness_overhead_once() {
    let dir = std::env::temp_dir().join(format!("llm-bench-runs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bench = dir.join("single_request");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_llm-bench"), &bench).unwrap();
    let run = dir.join("run");
    for engine in ["candle", "lmrs"] {
        let out = Command::new(&bench)
            .args(["--bench", "prompt10"])
            .env("LLM_BENCH_MODEL", "smollm2")
            .env("LLM_BENCH_ENGINES", engine)
            .env("LLM_BENCH_NEW_TOKENS", "4")
            .env("LLM_BENCH_OUT", &run)
            .output()
            .expect("single_request starts");
        assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a results line does not parse ({e}): {l}")))
        .collect();
    let measured = |engine: &str, case: &str| {
        records.iter().filter(|r| r["status"] == "measured" && r["engine"] == engine && r["case"] == case).count()
    };
    for case in ["ttft/prompt10", "total/prompt10"] {
        assert_eq!(measured("candle", case), 1, "candle {case}");
        assert_eq!(measured("lmrs", case), 1, "lmrs {case}");
        assert_eq!(measured("stub", case), 1, "the harness overhead ({case}) once per run, not once per process");
    }
    let processes = std::fs::read_to_string(run.join("processes.jsonl")).unwrap();
    assert_eq!(processes.lines().count(), 2, "{processes}");
    let _ = std::fs::remove_dir_all(&dir);
}
