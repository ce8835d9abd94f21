//! `LLM_BENCH_PIN`: the timing thread gets a CPU that the process's other threads leave to it.
//! A test binary of its own with one test: pinning changes every thread of the process, so a
//! second test running beside it would see its CPUs change under it.

mod common;

use llm_bench::measure::pin;

#[test]
fn pinning_through_the_binary_then_in_this_process() {
    // The bench first: its process inherits this thread's CPUs, all of them before the pin.
    a_bench_run_with_llm_bench_pin_records_the_cpu_in_every_case();
    the_timing_thread_gets_a_cpu_the_other_threads_leave_to_it();
}

fn the_timing_thread_gets_a_cpu_the_other_threads_leave_to_it() {
    let all = pin::affinity(0).expect("sched_getaffinity");
    if all.len() < 2 {
        assert_eq!(pin::pin(None).unwrap(), None, "a single CPU is not pinned");
        return;
    }
    // A thread alive before the pin reports its own CPUs after it.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (back, got) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        wait.recv().unwrap();
        back.send(pin::affinity(0).unwrap()).unwrap();
    });
    let cpu = pin::pin(None).unwrap().expect("pinned");
    assert_eq!(cpu, *all.last().unwrap());
    assert_eq!(pin::affinity(0).unwrap(), vec![cpu]);
    go.send(()).unwrap();
    let theirs = got.recv().unwrap();
    other.join().unwrap();
    assert!(!theirs.contains(&cpu) && theirs.len() == all.len() - 1, "{theirs:?} of {all:?}");
    // Before the next engine loads, the timing thread may use every CPU again.
    pin::release();
    assert_eq!(pin::affinity(0).unwrap(), all);
    let e = pin::pin(Some(usize::MAX / 2)).unwrap_err().to_string();
    assert!(e.contains("LLM_BENCH_PIN=") && e.contains("may use CPUs"), "{e}");
}

fn a_bench_run_with_llm_bench_pin_records_the_cpu_in_every_case() {
    let (dir, bench) = common::bench_link("pin", "single_request");
    let run = dir.join("run");
    let out = std::process::Command::new(&bench)
        .args(["--bench", "--test", "prompt10"])
        .env("LLM_BENCH_MODEL", "smollm2")
        .env("LLM_BENCH_ENGINES", "candle")
        .env("LLM_BENCH_NEW_TOKENS", "4")
        .env("LLM_BENCH_PIN", "1")
        .env("LLM_BENCH_OUT", &run)
        .output()
        .expect("the bench starts");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let cpus = pin::affinity(0).unwrap();
    let measured: Vec<serde_json::Value> =
        common::results(&run).into_iter().filter(|r| r["engine"] == "candle" && r["status"] == "measured").collect();
    assert!(!measured.is_empty(), "{err}");
    for r in &measured {
        let cpu = r["metrics"]["timed_thread_pinned_cpu"]["median"].as_f64();
        if cpus.len() > 1 {
            assert_eq!(cpu, Some(*cpus.last().unwrap() as f64), "{r}");
        } else {
            assert_eq!(cpu, None, "{r}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
