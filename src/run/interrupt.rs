//! Ctrl-C or SIGTERM (a time limit such as `timeout`'s, a device call's end): the run stops
//! within moments, keeps every finished case, records the case it interrupted as interrupted with
//! how long it had run (a resumed run reads that back as a lower bound on the case's cost), and
//! exits with 130 (143 for SIGTERM); a second signal ends it at once.
//!
//! The handler is the suite's own (`sigaction`), installed when a bench or suite starts and again
//! after each engine is loaded: an embedded Python (the PyTorch engine) installs its own SIGINT
//! handler when torch is imported, which turns Ctrl-C into a `KeyboardInterrupt` inside whatever
//! request is running and lets the run go on. The handler only counts; a watcher thread does the
//! rest outside signal context, under the same lock the results file is appended under, so no
//! line is cut in half.

use crate::results::{ResultRecord, RunDir};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
/// The signal that stopped the run (SIGINT or SIGTERM).
static SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static WATCHER: Once = Once::new();

/// The case being measured now: where to record it if the run is interrupted.
#[derive(Clone)]
pub struct Current {
    pub run: RunDir,
    pub scenario: String,
    pub engine: String,
    pub case: Option<String>,
    /// When the harness began this case (its warm-up included).
    pub since: std::time::Instant,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

extern "C" fn on_sigint(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
    if INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // The second signal: at once (async-signal-safe).
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Install (or re-install, after something replaced it) the suite's SIGINT handler.
pub fn install() {
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
    WATCHER.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(50));
            if INTERRUPTS.load(Ordering::SeqCst) > 0 {
                stop();
            }
        });
    });
}

/// Note the case being measured (`None` between cases).
pub fn set_current(current: Option<Current>) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = current;
}

/// Whether Ctrl-C was pressed.
pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

fn stop() -> ! {
    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // Whatever the main thread is appending finishes first; nothing is written after this.
    let _quiet = crate::results::write_lock();
    let signal = SIGNAL.load(Ordering::SeqCst);
    let by = if signal == libc::SIGTERM { "SIGTERM: a time limit such as the device call's, or a kill" } else { "Ctrl-C" };
    match current {
        Some(c) => {
            let what = format!("{}/{}{}", c.scenario, c.engine, c.case.as_deref().map(|x| format!("/{x}")).unwrap_or_default());
            let ran = c.since.elapsed().as_secs_f64();
            let rec = ResultRecord::Skipped {
                run: c.run.run.clone(),
                scenario: c.scenario,
                engine: c.engine,
                reason: format!(
                    "interrupted ({by}) after {ran:.1} s of measuring it, unfinished; the run stopped here{}",
                    if c.case.is_some() { " (a resumed run counts that time as the least this case costs)" } else { "" }
                ),
                case: c.case,
                ran_s: Some(ran),
            };
            if let Err(e) = c.run.record_locked(&rec) {
                eprintln!("[llm-bench] cannot record the interrupted case: {e:#}");
            }
            eprintln!(
                "\n[llm-bench] interrupted ({by}) during {what} after {ran:.1} s: recorded as interrupted; every finished case is in {}",
                c.run.dir.join("results.jsonl").display()
            );
        }
        None => eprintln!("\n[llm-bench] interrupted ({by})"),
    }
    // `_exit`: an embedded Python's or CUDA library's exit handlers could block a clean exit
    // while another thread is inside them; the results are already on disk (synced per line).
    use std::io::Write;
    std::io::stderr().flush().ok();
    unsafe { libc::_exit(128 + if signal == libc::SIGTERM { libc::SIGTERM } else { libc::SIGINT }) }
}
