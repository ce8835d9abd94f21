//! A run that spans processes, as `scripts/device-run.sh` makes one (one engine per process, one
//! `LLM_BENCH_RUN`): every process appends to the same files, and what belongs to the run rather
//! than to an engine is recorded once.

mod common;

use std::process::Command;

#[test]
fn one_engine_per_process_appends_to_one_run_and_measures_the_harness_overhead_once() {
    let (dir, bench) = common::bench_link("runs", "single_request");
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
    let records = common::results(&run);
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
