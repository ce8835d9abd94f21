//! Ctrl-C: the run stops within moments, keeps every finished case, records the case it
//! interrupted as interrupted, and exits with 130; a second Ctrl-C ends it at once.
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
static WATCHER: Once = Once::new();

/// The case being measured now: where to record it if the run is interrupted.
#[derive(Clone)]
pub struct Current {
    pub run: RunDir,
    pub scenario: String,
    pub engine: String,
    pub case: Option<String>,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

extern "C" fn on_sigint(_: libc::c_int) {
    if INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // The second Ctrl-C: at once (async-signal-safe).
        unsafe { libc::_exit(130) };
    }
}

/// Install (or re-install, after something replaced it) the suite's SIGINT handler.
pub fn install() {
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
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
    match current {
        Some(c) => {
            let what = format!("{}/{}{}", c.scenario, c.engine, c.case.as_deref().map(|x| format!("/{x}")).unwrap_or_default());
            let rec = ResultRecord::Skipped {
                run: c.run.run.clone(),
                scenario: c.scenario,
                engine: c.engine,
                case: c.case,
                reason: "interrupted (Ctrl-C) while it was being measured; the run stopped here".into(),
            };
            if let Err(e) = c.run.record_locked(&rec) {
                eprintln!("[llm-bench] cannot record the interrupted case: {e:#}");
            }
            eprintln!(
                "\n[llm-bench] interrupted (Ctrl-C) during {what}: recorded as interrupted; every finished case is in {}",
                c.run.dir.join("results.jsonl").display()
            );
        }
        None => eprintln!("\n[llm-bench] interrupted (Ctrl-C)"),
    }
    // `_exit`: an embedded Python's or CUDA library's exit handlers could block a clean exit
    // while another thread is inside them; the results are already on disk (synced per line).
    use std::io::Write;
    std::io::stderr().flush().ok();
    unsafe { libc::_exit(130) }
}
