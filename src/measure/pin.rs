//! A CPU of its own for the thread that times the requests (`LLM_BENCH_PIN=1`, or
//! `LLM_BENCH_PIN=<cpu>`; off by default). Batch-1 figures of host-bound engines moved by up to
//! 40 % between two processes on one machine whose single-thread speed agreed
//! (target-reports/h200-2026-12-03-repeat2): where that thread runs, and what shares its CPU, is
//! the next suspect. Pinned, the timing thread runs on one CPU and every other thread of the
//! process is kept off it; threads made later by those threads inherit that, threads made later
//! by the timing thread itself inherit its one CPU (engines make theirs while loading, before).
//! Measured on an H200 VM (target-reports/h200-2026-12-03-pin): no effect on which figures repeat,
//! so it stays opt-in.

/// The process's CPUs before the first pin, to give the timing thread back before an engine loads
/// (an engine's threads made during a load would otherwise inherit the one CPU).
static ALL: std::sync::Mutex<Option<Vec<usize>>> = std::sync::Mutex::new(None);

/// `LLM_BENCH_PIN`: `None` off, `Some(None)` the last CPU this process may use, `Some(Some(n))` CPU n.
pub fn from_env() -> anyhow::Result<Option<Option<usize>>> {
    match std::env::var("LLM_BENCH_PIN").ok().as_deref() {
        None | Some("") | Some("0") => Ok(None),
        Some("1") => Ok(Some(None)),
        Some(n) => n.parse().map(|n| Some(Some(n))).map_err(|_| anyhow::anyhow!("LLM_BENCH_PIN={n}: give 1 (the last CPU) or a CPU number")),
    }
}

/// The CPUs a thread (0: the calling one) may run on.
pub fn affinity(tid: libc::pid_t) -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some((0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

/// Let thread `tid` (0: the calling one) run on `cpus` only; false when the kernel refuses.
pub fn set_affinity(tid: libc::pid_t, cpus: &[usize]) -> bool {
    // SAFETY: the set is built with the libc macros and passed with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Before an engine loads: the timing thread may use every CPU again.
pub fn release() {
    if let Some(all) = ALL.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        set_affinity(0, all);
    }
}

/// Pin the calling thread as `LLM_BENCH_PIN` says ([`pin`]); `None` when it is off.
pub fn pin_timing_thread() -> anyhow::Result<Option<usize>> {
    match from_env()? {
        Some(choice) => pin(choice),
        None => Ok(None),
    }
}

/// Pin the calling thread to `choice` (`None`: the last CPU the process may use) and keep the
/// process's other threads off it; the CPU it got, or `None` when the process has one CPU.
pub fn pin(choice: Option<usize>) -> anyhow::Result<Option<usize>> {
    let me = crate::measure::telemetry::thread_id();
    let all = {
        let mut saved = ALL.lock().unwrap_or_else(|e| e.into_inner());
        if saved.is_none() {
            *saved = affinity(0);
        }
        saved.clone().unwrap_or_default()
    };
    if all.len() < 2 {
        eprintln!("[llm-bench] LLM_BENCH_PIN: this process may use {} CPU(s): not pinned", all.len());
        return Ok(None);
    }
    let cpu = choice.unwrap_or(*all.last().unwrap_or(&0));
    anyhow::ensure!(all.contains(&cpu), "LLM_BENCH_PIN={cpu}: this process may use CPUs {all:?} only");
    let others: Vec<usize> = all.iter().copied().filter(|&c| c != cpu).collect();
    for entry in std::fs::read_dir("/proc/self/task")?.flatten() {
        if let Ok(tid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() {
            if tid != me {
                set_affinity(tid, &others); // a thread that ended meanwhile is no error
            }
        }
    }
    anyhow::ensure!(set_affinity(0, &[cpu]), "LLM_BENCH_PIN: cannot pin the timing thread to CPU {cpu}");
    Ok(Some(cpu))
}
