//! Panics of every thread while a batch runs, so a failed case names its cause. Burn runs its
//! kernels on worker threads: when the GPU is full the worker panics with "can't allocate buffer
//! of size: …", and the caller only sees `CallError`, thousands of times over as the other
//! workers follow it. The hook keeps the first panics of each batch for the record and prints
//! each place once, counting the repeats instead of printing them.

use std::sync::{Mutex, Once};

/// One panic: the thread it happened on, where, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub thread: String,
    /// `crate-version/src/file.rs:line:column`, without the registry's path before it.
    pub place: String,
    pub message: String,
}

#[derive(Default)]
struct Window {
    notes: Vec<Note>,
    /// Places printed since the window opened (each printed once).
    printed: Vec<String>,
    /// Panics neither kept nor printed.
    repeats: usize,
}

static WINDOW: Mutex<Option<Window>> = Mutex::new(None);
static INSTALL: Once = Once::new();
/// Panics kept per window: the first ones are the cause; the rest follow from it.
const KEEP: usize = 8;

/// Install the hook once per process; the default hook still prints each new place.
pub fn install() {
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let note = Note {
                thread: std::thread::current().name().unwrap_or("unnamed").to_string(),
                place: info.location().map(|l| format!("{}:{}:{}", short_path(l.file()), l.line(), l.column())).unwrap_or_default(),
                message: info
                    .payload()
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| info.payload().downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)")
                    .to_string(),
            };
            let print = {
                let mut guard = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
                let w = guard.get_or_insert_with(Window::default);
                let new_place = !w.printed.contains(&note.place);
                if new_place {
                    w.printed.push(note.place.clone());
                }
                if w.notes.len() < KEEP {
                    w.notes.push(note);
                } else if !new_place {
                    w.repeats += 1;
                }
                new_place
            };
            if print {
                default(info);
            }
        }));
    });
}

/// The panics since the last call (the window closes and a new one opens); says how many more
/// were not printed, if any.
pub fn take() -> Vec<Note> {
    let w = WINDOW.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    if w.repeats > 0 {
        eprintln!("[llm-bench] {} more panics at the places above, not printed", w.repeats);
    }
    w.notes
}

/// The first panic on another thread than this one: the cause a caller's own error hides
/// (burn's `CallError` on the main thread after a worker's failed allocation).
pub fn cause_elsewhere(notes: &[Note]) -> Option<&Note> {
    let here = std::thread::current().name().unwrap_or("unnamed").to_string();
    notes.iter().find(|n| n.thread != here)
}

/// `…/registry/src/index.crates.io-…/cubecl-cuda-0.10.0/src/compute/server.rs` →
/// `cubecl-cuda-0.10.0/src/compute/server.rs`.
fn short_path(file: &str) -> &str {
    match file.find("/registry/src/") {
        Some(i) => {
            let rest = &file[i + "/registry/src/".len()..];
            rest.split_once('/').map_or(rest, |(_, crate_path)| crate_path)
        }
        None => file,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_worker_threads_panic_is_kept_as_the_cause_and_its_repeats_are_counted() {
        super::install();
        super::take();
        let worker = std::thread::Builder::new()
            .name("DSD-0-0".into())
            .spawn(|| {
                for _ in 0..20 {
                    let _ = std::panic::catch_unwind(|| panic!("can't allocate buffer of size: 146591744"));
                }
            })
            .unwrap();
        worker.join().unwrap();
        // Other tests of this binary may panic meanwhile on their own threads: look for ours.
        let notes = super::take();
        let ours: Vec<_> = notes.iter().filter(|n| n.thread == "DSD-0-0").collect();
        assert!(!ours.is_empty() && notes.len() <= super::KEEP, "{notes:?}");
        assert!(ours[0].message.contains("146591744") && ours[0].place.starts_with("src/run/panics.rs:"), "{:?}", ours[0]);
        let cause = super::cause_elsewhere(&notes).expect("a panic on another thread");
        assert_ne!(Some(cause.thread.as_str()), std::thread::current().name());
        assert_eq!(super::short_path("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cubecl-cuda-0.10.0/src/compute/server.rs"), "cubecl-cuda-0.10.0/src/compute/server.rs");
    }
}
