//! A run that spans processes, as `scripts/device-run.sh` makes one (one engine per process, one
//! `LLM_BENCH_RUN`): every process appends to the same files, and what belongs to the run rather
//! than to an engine is recorded once.

mod common;

use std::process::Command;

/// One suite at a time: the lmrs cases below are sized by a time budget, and two suites sharing
/// a 2-core machine (cargo runs a file's tests in parallel) ran lmrs at half speed, so the case
/// the budget was sized for did not fit its share ("one request took 5.1 s, more than the 1.7 s
/// left").
static ONE_SUITE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One process of the single-request bench for `engine` on SmolLM2 (4 new tokens), its cases
/// filtered by `filter`, appending to the run directory `run`.
fn single_request(bench: &std::path::Path, run: &std::path::Path, engine: &str, filter: &str) {
    let out = Command::new(bench)
        .args(["--bench", filter])
        .env("LLM_BENCH_MODEL", "smollm2")
        .env("LLM_BENCH_ENGINES", engine)
        .env("LLM_BENCH_NEW_TOKENS", "4")
        .env("LLM_BENCH_OUT", run)
        .output()
        .expect("single_request starts");
    assert!(out.status.success(), "{engine}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn one_engine_per_process_appends_to_one_run_and_measures_the_harness_overhead_once() {
    let _one = ONE_SUITE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, bench) = common::bench_link("runs", "single_request");
    let run = dir.join("run");
    for engine in ["candle", "lmrs"] {
        single_request(&bench, &run, engine, "prompt10");
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
    // Each process says which engines it was given and whether all of them are CPU-only, so
    // the report can tell a CPU-only engine measured on another machine from a second GPU.
    let lines: Vec<serde_json::Value> = processes.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["engines"], serde_json::json!(["candle"]), "{processes}");
    assert_eq!(lines[0]["cpu_only"], false, "{processes}");
    assert_eq!(lines[1]["engines"], serde_json::json!(["lmrs"]), "{processes}");
    assert_eq!(lines[1]["cpu_only"], true, "{processes}");
    // A latency case's background samples are kept one by one, as a batch's are, so a spread in
    // its figures can be set against the host's load and the GPU's clocks at the time.
    let telemetry = std::fs::read_to_string(run.join("telemetry.jsonl")).unwrap_or_default();
    let rows: Vec<serde_json::Value> = telemetry.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for engine in ["candle", "lmrs"] {
        let of_case = rows.iter().filter(|r| r["scenario"] == "single_request" && r["engine"] == engine && r["case"] == "total/prompt10");
        assert!(of_case.filter(|r| r["sample"]["t"].is_f64() && r["sample"]["cpu_cores"].is_f64()).count() >= 1, "{engine}: {telemetry}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run begun with a CPU-only engine in a lease of its own and continued with another engine:
/// the run's `environment.json` becomes the second machine's (the one the GPU engines ran on, in
/// a real run), and the first one's stays beside it as `environment.cpu.json`, named in the
/// report's header.
#[test]
fn a_run_begun_with_a_cpu_only_engine_takes_the_next_engines_environment() {
    let _one = ONE_SUITE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, bench) = common::bench_link("runs-cpu-first", "single_request");
    let run = dir.join("run");
    let env = |file: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(run.join(file)).unwrap()).unwrap() };
    let mut started = Vec::new();
    for engine in ["lmrs", "candle"] {
        single_request(&bench, &run, engine, "ttft/prompt10");
        started.push(env("environment.json")["started_unix"].clone());
    }
    let cpu = env("environment.cpu.json");
    assert_eq!(cpu["started_unix"], started[0], "the CPU-only engine's environment, set aside");
    assert_eq!(env("environment.json")["started_unix"], started[1]);
    // Each record names the machine its process ran on (no GPU here: the host), as its process line does.
    let host = format!("host {}", std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim());
    let measured: Vec<serde_json::Value> = common::results(&run).into_iter().filter(|r| r["status"] == "measured").collect();
    assert!(measured.len() >= 2 && measured.iter().all(|r| r["machine"] == host.as_str()), "{measured:?}");
    let processes = std::fs::read_to_string(run.join("processes.jsonl")).unwrap();
    assert!(processes.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["cpu"].as_str().is_some_and(|c| !c.is_empty())), "{processes}");
    let out = Command::new(env!("CARGO_BIN_EXE_llm-bench")).arg("report").arg(&run).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(run.join("summary.md")).unwrap();
    assert!(md.contains("CPU-only engines' host (`environment.cpu.json`"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `llm-bench suite <scenario> --budget <s>` for lmrs on SmolLM2: its cases measured with fewer
/// samples than Criterion's (there must be some), and every record of the run.
fn lmrs_cases_with_fewer_samples(tag: &str, scenario: &str, budget: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let _one = ONE_SUITE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, _) = common::bench_link(tag, scenario);
    let run = dir.join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_llm-bench"))
        .args(["suite", scenario, "--budget", budget])
        .env("LLM_BENCH_MODEL", "smollm2")
        .env("LLM_BENCH_ENGINES", "lmrs")
        .env("LLM_BENCH_NEW_TOKENS", "4")
        .env("LLM_BENCH_OUT", &run)
        .output()
        .expect("llm-bench suite starts");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = common::results(&run);
    let _ = std::fs::remove_dir_all(&dir);
    let few: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| r["status"] == "measured" && r["engine"] == "lmrs" && r["reduced"].as_str().is_some_and(|w| w.contains("instead of Criterion")))
        .cloned()
        .collect();
    assert!(!few.is_empty(), "no lmrs case was measured with fewer samples: {records:?}");
    (few, records)
}

/// The count of requests a fewer-samples reason starts with ("3 request(s) instead of ...").
fn requests_in(why: &str) -> u64 {
    why.split(' ').next().unwrap().parse().unwrap()
}

/// When only a few requests of a latency case fit the suite's budget, a CPU-only engine's
/// warm-up request (no per-shape compilation, no GPU to warm) is the first of them; another
/// engine's warm-up is a figure only when no further request fits what is left of the run
/// (`run::harness::tests::a_warm_up_that_used_the_time_is_the_cases_one_sample`). lmrs on SmolLM2, 200-token prompts token by token on this
/// machine's cores: Criterion's ten samples do not fit a 20 s suite's shares.
///
/// And its `ttft` case of a prompt whose `total` requests were that few is their first tokens,
/// not a second prefill of the same prompt: same requests, same first-token times.
#[test]
fn a_cpu_only_engines_warm_up_request_counts_when_few_fit() {
    let (few, records) = lmrs_cases_with_fewer_samples("runs-few", "single_request", "20");
    let mut derived = 0;
    for r in &few {
        let why = r["reduced"].as_str().unwrap();
        assert!(why.contains("is the case's warm-up request"), "{why}");
        assert_eq!(r["samples"].as_u64(), Some(requests_in(why)), "{r}");
        // Its telemetry covers the warm-up request too (an 8K prompt's only one): what the
        // rest of the host used meanwhile is there however few requests ran.
        assert!(r["metrics"]["host_other_cores"]["mean"].as_f64().is_some_and(|c| c >= 0.0), "{r}");
        let Some(label) = r["case"].as_str().unwrap().strip_prefix("total/") else { continue };
        let ttft = records
            .iter()
            .find(|t| t["status"] == "measured" && t["engine"] == "lmrs" && t["case"] == format!("ttft/{label}"))
            .unwrap_or_else(|| panic!("no ttft/{label} beside its few total requests: {records:?}"));
        let how = ttft["reduced"].as_str().unwrap_or_else(|| panic!("ttft/{label} is not flagged: {ttft}"));
        assert!(how.contains(&format!("the first tokens of total/{label}'s")), "{how}");
        assert_eq!(ttft["samples"], r["samples"], "{ttft}");
        assert_eq!(ttft["metrics"]["ttft_ms"]["median"], r["metrics"]["ttft_ms"]["median"], "{ttft}");
        assert_eq!(ttft["metrics"]["total_ms"]["median"], r["metrics"]["ttft_ms"]["median"], "one token: its request ends there");
        derived += 1;
    }
    assert!(derived > 0, "no total case of lmrs was measured with few requests: {few:?}");
}

/// The same for a throughput case: lmrs serves a batch as its requests in turn, so its warm-up
/// batch of a memory-efficiency case is the first measured one when only a few fit.
#[test]
fn a_cpu_only_engines_warm_up_batch_counts_when_few_fit() {
    for r in lmrs_cases_with_fewer_samples("runs-few-batch", "memory_efficiency", "12").0 {
        let why = r["reduced"].as_str().unwrap();
        assert!(why.contains("is the case's warm-up batch"), "{why}");
        let batch: u64 = r["case"].as_str().unwrap().rsplit("batch").next().unwrap().parse().unwrap();
        assert_eq!(r["samples"].as_u64(), Some(requests_in(why) * batch), "{r}");
    }
}

/// The same for the concurrent scenario: lmrs serves a closed loop's requests one after another,
/// so its warm-up round is the first measured one when only a few rounds fit (the lm.rs design's
/// 50-client round takes minutes on 16 cores; two of them did not fit one device call).
#[test]
fn a_cpu_only_engines_warm_up_round_counts_when_few_fit() {
    let few = lmrs_cases_with_fewer_samples("runs-few-round", "concurrent_load", "20").0;
    let rounds: Vec<_> = few.iter().filter(|r| r["case"].as_str().unwrap().starts_with("clients/")).collect();
    assert!(!rounds.is_empty(), "no closed-loop case of lmrs was measured with few rounds: {few:?}");
    for r in rounds {
        let why = r["reduced"].as_str().unwrap();
        assert!(why.contains("is the case's warm-up round"), "{why}");
        let clients: u64 = r["case"].as_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(r["samples"].as_u64(), Some(requests_in(why) * clients), "every round's requests: {r}");
    }
}
