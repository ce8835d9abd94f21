//! CUPTI activity tracing: every kernel, copy and memset the GPU ran between [`Tracer::start`]
//! and [`Tracer::stop`], with its device timestamps, from whichever library launched it (Candle,
//! cuBLAS, burn-cuda, PyTorch: they all share the one process and the one driver).
//!
//! Why CUPTI and not CUDA events: events time one stream from the host's side and cannot say how
//! many kernels ran or how long the GPU sat idle between them; CUPTI's activity records are the
//! driver's own account of each launch. Why loaded at run time (`libcupti.so.13`, from the CUDA
//! toolkit or the `nvidia/cu13/lib` of the PyTorch venv): the library is not needed for anything
//! else, so a machine without it still runs every other measurement, and the breakdown says why
//! it is missing.
//!
//! Only the leading fields of the records are read (kind, start, end, and for kernels the name),
//! whose offsets have not changed since CUPTI 10 (`CUpti_ActivityKernel4` .. `13`,
//! `CUpti_ActivityMemcpy5/6`, `CUpti_ActivityMemset4`).

use anyhow::{anyhow, bail, Context, Result};
use std::alloc::{alloc, dealloc, Layout};
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, OnceLock};

/// `CUpti_ActivityKind` values this module enables.
const KIND_MEMCPY: u32 = 1;
const KIND_MEMSET: u32 = 2;
const KIND_KERNEL: u32 = 3;
const KIND_CONCURRENT_KERNEL: u32 = 10;
/// `CUPTI_ACTIVITY_FLAG_FLUSH_FORCED`: deliver buffers even when not full.
const FLUSH_FORCED: u32 = 1;
const BUFFER_BYTES: usize = 8 << 20;
const BUFFER_ALIGN: usize = 8;

/// What one activity record was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Kernel,
    Memcpy,
    Memset,
}

/// One activity record: device timestamps in ns (CUPTI's clock) and, for a kernel, its name.
#[derive(Debug, Clone)]
pub struct Activity {
    pub kind: ActivityKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub name: Option<String>,
}

type CuptiResult = i32;
type RequestFn = unsafe extern "C" fn(*mut *mut u8, *mut usize, *mut usize);
type CompleteFn = unsafe extern "C" fn(*mut c_void, u32, *mut u8, usize, usize);

/// The CUPTI entry points used here, resolved once.
struct Api {
    _lib: libloading::Library,
    path: String,
    register_callbacks: unsafe extern "C" fn(RequestFn, CompleteFn) -> CuptiResult,
    enable: unsafe extern "C" fn(u32) -> CuptiResult,
    disable: unsafe extern "C" fn(u32) -> CuptiResult,
    flush_all: unsafe extern "C" fn(u32) -> CuptiResult,
    next_record: unsafe extern "C" fn(*mut u8, usize, *mut *mut u8) -> CuptiResult,
    result_string: unsafe extern "C" fn(CuptiResult, *mut *const c_char) -> CuptiResult,
}

static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
/// Records delivered by CUPTI's buffer-complete callback since the last `start`.
static RECORDS: Mutex<Vec<Activity>> = Mutex::new(Vec::new());

/// Where `libcupti` is looked for: the loader's search path first (the venv's `nvidia/cu13/lib`
/// is on `LD_LIBRARY_PATH` on the GPU machine, and PyTorch loads that copy too, so the process
/// keeps one CUPTI), then the toolkit's usual places.
const CANDIDATES: [&str; 5] = [
    "libcupti.so.13",
    "libcupti.so",
    "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13",
    "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so",
    "/usr/local/cuda/lib64/libcupti.so.13",
];

fn load_api() -> std::result::Result<Api, String> {
    let mut tried = Vec::new();
    for path in CANDIDATES {
        // SAFETY: loading libcupti runs its initialisers, which only register with the driver.
        match unsafe { libloading::Library::new(path) } {
            Ok(lib) => {
                // SAFETY: the symbols have these C signatures in every CUPTI since 10.
                let api = unsafe {
                    Api {
                        register_callbacks: *lib.get(b"cuptiActivityRegisterCallbacks\0").map_err(|e| e.to_string())?,
                        enable: *lib.get(b"cuptiActivityEnable\0").map_err(|e| e.to_string())?,
                        disable: *lib.get(b"cuptiActivityDisable\0").map_err(|e| e.to_string())?,
                        flush_all: *lib.get(b"cuptiActivityFlushAll\0").map_err(|e| e.to_string())?,
                        next_record: *lib.get(b"cuptiActivityGetNextRecord\0").map_err(|e| e.to_string())?,
                        result_string: *lib.get(b"cuptiGetResultString\0").map_err(|e| e.to_string())?,
                        path: path.to_string(),
                        _lib: lib,
                    }
                };
                return Ok(api);
            }
            Err(e) => tried.push(format!("{path}: {e}")),
        }
    }
    Err(format!(
        "CUPTI (libcupti.so.13) was not found; put the directory holding it on LD_LIBRARY_PATH (the CUDA toolkit's \
         extras/CUPTI/lib64, or the nvidia/cu13/lib of a PyTorch venv). Tried: {}",
        tried.join("; ")
    ))
}

impl Api {
    fn check(&self, what: &str, r: CuptiResult) -> Result<()> {
        if r == 0 {
            return Ok(());
        }
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: cuptiGetResultString writes a pointer to a static string.
        let text = unsafe {
            if (self.result_string)(r, &mut s) == 0 && !s.is_null() {
                CStr::from_ptr(s).to_string_lossy().into_owned()
            } else {
                format!("CUPTI error {r}")
            }
        };
        bail!("{what} failed: {text}")
    }
}

unsafe extern "C" fn buffer_requested(buffer: *mut *mut u8, size: *mut usize, max_records: *mut usize) {
    let layout = Layout::from_size_align(BUFFER_BYTES, BUFFER_ALIGN).expect("valid layout");
    // SAFETY: CUPTI hands back every buffer it requested to `buffer_completed`, which frees it.
    unsafe {
        *buffer = alloc(layout);
        *size = if (*buffer).is_null() { 0 } else { BUFFER_BYTES };
        *max_records = 0;
    }
}

unsafe extern "C" fn buffer_completed(_ctx: *mut c_void, _stream: u32, buffer: *mut u8, _size: usize, valid: usize) {
    if buffer.is_null() {
        return;
    }
    if let Some(Ok(api)) = API.get() {
        let mut parsed = Vec::new();
        let mut record: *mut u8 = std::ptr::null_mut();
        // SAFETY: `record` points into `buffer` at a record CUPTI wrote; the fields read are
        // within every record version of these kinds (module docs).
        unsafe {
            while (api.next_record)(buffer, valid, &mut record) == 0 {
                let kind = (record as *const u32).read_unaligned();
                let start = (record.add(16) as *const u64).read_unaligned();
                let end = (record.add(24) as *const u64).read_unaligned();
                let (kind, name) = match kind {
                    KIND_KERNEL | KIND_CONCURRENT_KERNEL => {
                        let p = (record.add(104) as *const *const c_char).read_unaligned();
                        let name = (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned());
                        (ActivityKind::Kernel, name)
                    }
                    KIND_MEMCPY => (ActivityKind::Memcpy, None),
                    KIND_MEMSET => (ActivityKind::Memset, None),
                    _ => continue,
                };
                parsed.push(Activity { kind, start_ns: start, end_ns: end, name });
            }
        }
        if let Ok(mut r) = RECORDS.lock() {
            r.extend(parsed);
        }
    }
    // SAFETY: allocated by `buffer_requested` with this layout.
    unsafe { dealloc(buffer, Layout::from_size_align(BUFFER_BYTES, BUFFER_ALIGN).expect("valid layout")) };
}

/// Whether CUPTI has been loaded into this process (by [`Tracer::get`]).
pub fn loaded() -> bool {
    matches!(API.get(), Some(Ok(_)))
}

/// The process's CUPTI activity tracer (one per process: CUPTI's callbacks are global).
pub struct Tracer {
    api: &'static Api,
}

/// The kinds recorded while tracing.
const KINDS: [u32; 3] = [KIND_CONCURRENT_KERNEL, KIND_MEMCPY, KIND_MEMSET];

impl Tracer {
    /// Load CUPTI and register the buffer callbacks (once per process); an error says what is missing.
    pub fn get() -> Result<&'static Tracer> {
        static TRACER: OnceLock<std::result::Result<Tracer, String>> = OnceLock::new();
        TRACER.get_or_init(|| Tracer::load().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| anyhow!("{e}"))
    }

    fn load() -> Result<Tracer> {
        static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
        let api = API.get_or_init(load_api).as_ref().map_err(|e| anyhow!("{e}"))?;
        REGISTERED
            .get_or_init(|| {
                // SAFETY: both callbacks have the signatures CUPTI expects.
                api.check("cuptiActivityRegisterCallbacks", unsafe { (api.register_callbacks)(buffer_requested, buffer_completed) })
                    .map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Tracer { api })
    }

    /// The library file that was loaded.
    pub fn library(&self) -> &str {
        &self.api.path
    }

    /// Begin recording kernels, copies and memsets (records from before are dropped).
    pub fn start(&self) -> Result<()> {
        // SAFETY: plain CUPTI calls with valid arguments.
        unsafe { (self.api.flush_all)(FLUSH_FORCED) };
        RECORDS.lock().map_err(|_| anyhow!("CUPTI record list poisoned"))?.clear();
        for kind in KINDS {
            self.api.check("cuptiActivityEnable", unsafe { (self.api.enable)(kind) }).with_context(|| format!("activity kind {kind}"))?;
        }
        Ok(())
    }

    /// Stop recording and return what ran since [`Tracer::start`]. Call it after the device has
    /// finished the work (the caller synchronises), or the last records may be missing.
    pub fn stop(&self) -> Result<Vec<Activity>> {
        for kind in KINDS {
            self.api.check("cuptiActivityDisable", unsafe { (self.api.disable)(kind) })?;
        }
        self.api.check("cuptiActivityFlushAll", unsafe { (self.api.flush_all)(FLUSH_FORCED) })?;
        let mut records = std::mem::take(&mut *RECORDS.lock().map_err(|_| anyhow!("CUPTI record list poisoned"))?);
        records.sort_by_key(|a| a.start_ns);
        Ok(records)
    }
}

/// Summary of a set of activity records.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Busy {
    pub kernels: usize,
    pub copies: usize,
    /// Time at least one recorded activity was running (the union of their intervals), ns.
    pub busy_ns: u64,
    /// Sum of the kernels' own durations, ns (more than `busy_ns` when kernels overlap).
    pub kernel_ns: u64,
    /// From the first start to the last end, ns.
    pub span_ns: u64,
}

/// Counts, union of busy intervals and span of `records`.
pub fn busy(records: &[Activity]) -> Busy {
    let mut iv: Vec<(u64, u64)> = records.iter().map(|a| (a.start_ns, a.end_ns.max(a.start_ns))).collect();
    iv.sort_unstable();
    let mut out = Busy::default();
    let mut cur: Option<(u64, u64)> = None;
    for (s, e) in iv {
        cur = match cur {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                out.busy_ns += ce - cs;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = cur {
        out.busy_ns += ce - cs;
    }
    for a in records {
        match a.kind {
            ActivityKind::Kernel => {
                out.kernels += 1;
                out.kernel_ns += a.end_ns.saturating_sub(a.start_ns);
            }
            ActivityKind::Memcpy | ActivityKind::Memset => out.copies += 1,
        }
    }
    if let (Some(first), Some(last)) = (records.iter().map(|a| a.start_ns).min(), records.iter().map(|a| a.end_ns).max()) {
        out.span_ns = last.saturating_sub(first);
    }
    out
}

/// Kernels grouped by name: (name, launches, total ns), most time first.
pub fn by_name(records: &[Activity]) -> Vec<(String, usize, u64)> {
    let mut m: std::collections::HashMap<&str, (usize, u64)> = std::collections::HashMap::new();
    for a in records.iter().filter(|a| a.kind == ActivityKind::Kernel) {
        let e = m.entry(a.name.as_deref().unwrap_or("?")).or_default();
        e.0 += 1;
        e.1 += a.end_ns.saturating_sub(a.start_ns);
    }
    let mut v: Vec<(String, usize, u64)> = m.into_iter().map(|(k, (n, t))| (k.to_string(), n, t)).collect();
    v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: u64, e: u64) -> Activity {
        Activity { kind: ActivityKind::Kernel, start_ns: s, end_ns: e, name: Some(format!("k{}", e - s)) }
    }

    #[test]
    fn busy_is_the_union_of_intervals() {
        // [0,10) and [5,20) overlap: 20; gap to 30; [30,35): 5; copy [40,41): 1.
        let mut r = vec![k(0, 10), k(5, 20), k(30, 35)];
        r.push(Activity { kind: ActivityKind::Memcpy, start_ns: 40, end_ns: 41, name: None });
        let b = busy(&r);
        assert_eq!(b, Busy { kernels: 3, copies: 1, busy_ns: 26, kernel_ns: 30, span_ns: 41 });
        assert_eq!(busy(&[]), Busy::default());
    }

    #[test]
    fn kernels_grouped_by_name_most_time_first() {
        let r = vec![k(0, 10), k(20, 30), k(40, 45), k(50, 80)];
        let g = by_name(&r);
        assert_eq!(g[0], ("k30".to_string(), 1, 30));
        assert_eq!(g[1], ("k10".to_string(), 2, 20));
        assert_eq!(g[2], ("k5".to_string(), 1, 5));
    }
}
