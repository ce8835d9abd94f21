//! The suite's own CUDA kernels (issue 10, "kernel-level analysis"; feature `cuda`): the roofline
//! reference the engines' kernels are compared with.
//!
//! `kernels/llama_ops.cu` holds Q8_0 matrix-vector (decode) and matrix-matrix (prefill) products,
//! RMSNorm, RoPE, SwiGLU and decode attention, written for sm_90 and the Llama-3.2-1B shapes. It is
//! compiled here at run time by NVRTC (no build-time nvcc, no headers), and every kernel is
//! checked against the f64 references of [`crate::kernels::cpu`] before anything is timed
//! ([`check_all`]). `benches/kernels.rs` times the [`Case`]s built here, and the engines'
//! equivalents from [`crate::kernels::engines`], with CUDA events.
//!
//! Everything runs on one stream of our own ([`Kernels::stream`]), with cudarc's per-buffer event
//! tracking turned off: there is no second stream to synchronise with, and the tracking would put
//! two event records around every launch, inside the timed region.

use crate::kernels::cpu::{self as cpu, llama_1b, CaseSpec, Check, Rng, StepLaunch};
use anyhow::{anyhow, bail, ensure, Context, Result};
use cudarc::driver::{sys, CudaContext, CudaFunction, CudaSlice, CudaStream, CudaView, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions};
use std::sync::Arc;
use std::time::Instant;

/// The kernels' source, compiled into the binary so that a bundle runs without the repository.
pub const SOURCE: &str = include_str!("../../kernels/llama_ops.cu");

// Launch constants mirrored from kernels/llama_ops.cu (keep in step with the #defines there).
/// `MV_WARPS * 32` threads per block on the matvec fast path.
const MV_WARPS: u32 = 8;
/// Slabs in flight per warp.
const MV_STAGES: usize = 2;
/// Bytes per slab: 32 super-blocks of 8 Q8_0 blocks.
const MV_SLAB: usize = 8704;
/// Threads per block of `q8_0_matvec_chain`: the `MV_WARPS` computing warps and a controller.
const MV_CHAIN_THREADS: u32 = MV_WARPS * 32 + 32;
/// Bytes of padded x per 256 columns in the matvec's shared memory.
const MV_X_BYTES_PER_256: usize = 1040;
/// Thread blocks per cluster (sequence splits) and threads per block of `attention_decode`.
const ATT_SPLITS: u32 = 8;
const ATT_THREADS: u32 = 256;

/// Inputs of a timed case are replicated until their copies span at least this many bytes (and
/// at least 8 times the L2 cache), and the calls cycle through the copies: each call reads its
/// weights from DRAM, as a decode step that streams a 1.3 GB model does, never from a warm L2 (50
/// MB on an H100 holds every single 1B matrix but the classifier).
const ROTATE_MIN_BYTES: usize = 256 << 20;

/// The message for a missing or broken NVRTC.
const NVRTC_HELP: &str = "NVRTC compiles kernels/llama_ops.cu at run time: it needs libnvrtc.so.13 and \
    libnvrtc-builtins.so.13.0 from a CUDA 13 toolkit on the library path (LD_LIBRARY_PATH), e.g. \
    /usr/local/cuda/lib64 or <venv>/lib/python3.12/site-packages/nvidia/cu13/lib (pip nvidia-cuda-nvrtc==13.0.*)";

/// Which matvec code path to launch (the checks exercise both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatvecPath {
    /// The fast path when the shape allows it, the generic path otherwise (what the bench times).
    Auto,
    /// One warp per row, any cols that is a multiple of 32.
    Generic,
}

struct Functions {
    q8_0_matvec: CudaFunction,
    q8_0_matvec_chain: CudaFunction,
    q8_0_matmul: CudaFunction,
    rms_norm: CudaFunction,
    rope: CudaFunction,
    swiglu: CudaFunction,
    attention_decode: CudaFunction,
    fma_peak: CudaFunction,
}

/// The compiled kernels on one GPU, their stream, and the launch parameters they need.
pub struct Kernels {
    pub ctx: Arc<CudaContext>,
    /// Every launch and copy of this module goes to this stream; time with events on it.
    pub stream: Arc<CudaStream>,
    pub ordinal: usize,
    pub device_name: String,
    /// The architecture NVRTC compiled for, `sm_<major><minor>` of the device (or
    /// `LLM_BENCH_KERNELS_ARCH`).
    pub arch: String,
    pub sm_count: u32,
    pub l2_bytes: usize,
    f: Functions,
    /// Matvec fast path: thread blocks per SM for cols/256 = 1, 2, 4, 8, 16, 32 (0: path unusable,
    /// the block's shared memory exceeds the device's opt-in limit).
    matvec_blocks_per_sm: [u32; 6],
}

/// One matrix-vector product of a [`MatvecChain`]: its Q8_0 weights are `rows x cols` at byte
/// `offset` of the chain's buffer `buffer`.
#[derive(Debug, Clone, Copy)]
pub struct ChainTask {
    pub buffer: usize,
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
}

/// The matrix-vector products of a decode step, run by one persistent kernel per step
/// ([`Kernels::run_chain`]). Owns everything the kernel's task table points at: the weight
/// buffers, the input x, one output per task, and the per-task completion counters.
pub struct MatvecChain {
    #[allow(dead_code)] // kept alive: the task table points into them
    buffers: Vec<CudaSlice<u8>>,
    pub tasks: Vec<ChainTask>,
    /// Which earlier task's output each task reads as x (None: the chain's input).
    pub sources: Vec<Option<usize>>,
    table: CudaSlice<u64>,
    done: CudaSlice<u32>,
    /// The first task's x (as long as the widest task's cols; each task reads its first cols).
    pub input: CudaSlice<f32>,
    pub outputs: Vec<CudaSlice<f32>>,
    x_smem: usize,
    smem: usize,
    /// Blocks: SMs x blocks per SM, all resident.
    pub grid: u32,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

fn nvrtc_error(e: CompileError, arch: &str) -> anyhow::Error {
    match e {
        CompileError::CompileError { nvrtc, log, .. } => anyhow!(
            "NVRTC could not compile kernels/llama_ops.cu for {arch} ({nvrtc:?}):\n{}\n{NVRTC_HELP}",
            log.to_string_lossy().trim_end()
        ),
        other => anyhow!("NVRTC failed on kernels/llama_ops.cu for {arch}: {other:?}. {NVRTC_HELP}"),
    }
}

/// Dynamic shared memory of the matvec fast path for `cols`, or None when the shape has none.
fn matvec_fast_smem(cols: usize) -> Option<(usize, usize)> {
    let s = cols / 256;
    (cols.is_multiple_of(256) && s.is_power_of_two() && s <= 32)
        .then(|| (s.trailing_zeros() as usize, s * MV_X_BYTES_PER_256 + MV_WARPS as usize * MV_STAGES * MV_SLAB))
}

fn i32_of(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| anyhow!("{what} = {v} does not fit the kernels' 32-bit int"))
}

impl Kernels {
    /// Open GPU `ordinal`, compile the kernels with NVRTC for its architecture and load them.
    ///
    /// The driver then compiles the PTX for the device (a few seconds the first time; the driver's
    /// compute cache, ~/.nv/ComputeCache, keeps the result for later runs).
    pub fn new(ordinal: usize) -> Result<Self> {
        let ctx = CudaContext::new(ordinal).with_context(|| format!("cannot open CUDA device {ordinal}"))?;
        // SAFETY: every buffer of this module is allocated, used and freed on `stream` only, so
        // stream-ordering alone keeps uses and frees in order; no cross-stream tracking is needed.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().context("cannot create a CUDA stream")?;
        let device_name = ctx.name().unwrap_or_else(|_| "(unknown)".into());
        let (major, minor) = ctx.compute_capability()?;
        ensure!(
            major >= 9,
            "the suite's kernels need compute capability 9.0 or newer (thread-block clusters, cp.async); \
             {device_name} is {major}.{minor}"
        );
        let arch = std::env::var("LLM_BENCH_KERNELS_ARCH")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("sm_{major}{minor}"));
        let opts = CompileOptions {
            options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".to_string()],
            name: Some("llama_ops.cu".to_string()),
            ..Default::default()
        };
        // With cudarc's dynamic loading a missing libnvrtc is a panic inside cudarc; with dynamic
        // linking (this suite's build) the loader refuses to start the binary, and a missing
        // libnvrtc-builtins is a compile error. All three end in the same message.
        let ptx = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| compile_ptx_with_opts(SOURCE, opts))) {
            Ok(Ok(ptx)) => ptx,
            Ok(Err(e)) => return Err(nvrtc_error(e, &arch)),
            Err(p) => bail!("NVRTC is not usable ({}). {NVRTC_HELP}", panic_message(p.as_ref())),
        };
        let module = ctx
            .load_module(ptx)
            .with_context(|| format!("the CUDA driver could not load the PTX NVRTC made for {arch}; is the driver older than the CUDA 13 NVRTC?"))?;
        let load = |name: &str| module.load_function(name).with_context(|| format!("kernel `{name}` is missing from the module"));
        let f = Functions {
            q8_0_matvec: load("q8_0_matvec")?,
            q8_0_matvec_chain: load("q8_0_matvec_chain")?,
            q8_0_matmul: load("q8_0_matmul")?,
            rms_norm: load("rms_norm")?,
            rope: load("rope")?,
            swiglu: load("swiglu")?,
            attention_decode: load("attention_decode")?,
            fma_peak: load("fma_peak")?,
        };
        let attr = |a| ctx.attribute(a).map(|v| v.max(0) as usize);
        let sm_count = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32;
        let l2_bytes = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE)?;
        let optin = attr(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?;
        // The largest fast-path block that fits (cols 8192: 172 KB; an H100 allows 227 KB).
        let mut matvec_blocks_per_sm = [0u32; 6];
        let widest = (0..6).map(|i| matvec_fast_smem(256 << i).unwrap().1).filter(|&b| b <= optin).max();
        if let Some(widest) = widest {
            f.q8_0_matvec
                .set_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, widest as i32)
                .context("cannot raise q8_0_matvec's dynamic shared memory limit")?;
            f.q8_0_matvec_chain
                .set_attribute(sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, widest as i32)
                .context("cannot raise q8_0_matvec_chain's dynamic shared memory limit")?;
            for (i, slot) in matvec_blocks_per_sm.iter_mut().enumerate() {
                let smem = matvec_fast_smem(256 << i).unwrap().1;
                if smem <= widest {
                    *slot = f.q8_0_matvec.occupancy_max_active_blocks_per_multiprocessor(MV_WARPS * 32, smem, None)?;
                }
            }
        }
        Ok(Self { ctx, stream, ordinal, device_name, arch, sm_count, l2_bytes, f, matvec_blocks_per_sm })
    }

    /// Bytes each timed case's inputs are replicated to (see `ROTATE_MIN_BYTES`).
    pub fn rotate_bytes(&self) -> usize {
        ROTATE_MIN_BYTES.max(8 * self.l2_bytes)
    }

    // ---------------------------------------------------------------------------------------------
    // Launches. Each checks sizes, then enqueues on `stream` and returns at once.
    // ---------------------------------------------------------------------------------------------

    /// y[rows] = W[rows, cols] . x, W in Q8_0 (GGUF layout). Geometry as documented in the kernel.
    pub fn q8_0_matvec(&self, w: &CudaView<'_, u8>, x: &CudaView<'_, f32>, y: &mut CudaSlice<f32>, rows: usize, cols: usize, path: MatvecPath) -> Result<()> {
        ensure!(rows > 0 && cols > 0 && cols.is_multiple_of(32), "q8_0_matvec: {rows}x{cols} is not a Q8_0 matrix shape");
        ensure!(w.len() >= cpu::q8_0_bytes(rows, cols) && x.len() >= cols && y.len() >= rows, "q8_0_matvec: buffers too small for {rows}x{cols}");
        let (ri, ci) = (i32_of(rows, "rows")?, i32_of(cols, "cols")?);
        let fast = match (path, matvec_fast_smem(cols)) {
            (MatvecPath::Auto, Some((i, smem))) if self.matvec_blocks_per_sm[i] > 0 => Some((i, smem)),
            _ => None,
        };
        let cfg = match fast {
            Some((i, smem)) => {
                let slabs = rows.div_ceil(32 / (cols / 256));
                let grid = slabs.min((self.sm_count * self.matvec_blocks_per_sm[i]) as usize);
                LaunchConfig { grid_dim: (grid as u32, 1, 1), block_dim: (MV_WARPS * 32, 1, 1), shared_mem_bytes: smem as u32 }
            }
            None => LaunchConfig { grid_dim: (rows.div_ceil(8) as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 },
        };
        unsafe { self.stream.launch_builder(&self.f.q8_0_matvec).arg(w).arg(x).arg(y).arg(&ri).arg(&ci).launch(cfg) }?;
        Ok(())
    }

    /// [`Self::q8_0_matvec`] (fast path only) launched with programmatic dependent launch: the
    /// kernel may start while the previous kernel on the stream drains, prefetch its weights,
    /// and wait (`griddepcontrol.wait`) for that kernel only before it reads x. What an engine
    /// can do on sm_90 to hide the ramp-up and drain of every launch in a decode step.
    pub fn q8_0_matvec_pdl(&self, w: &CudaView<'_, u8>, x: &CudaView<'_, f32>, y: &mut CudaSlice<f32>, rows: usize, cols: usize) -> Result<()> {
        let Some((i, smem)) = matvec_fast_smem(cols).filter(|(i, _)| self.matvec_blocks_per_sm[*i] > 0) else {
            bail!("q8_0_matvec_pdl: {rows}x{cols} has no fast path");
        };
        ensure!(w.len() >= cpu::q8_0_bytes(rows, cols) && x.len() >= cols && y.len() >= rows, "q8_0_matvec_pdl: buffers too small for {rows}x{cols}");
        let slabs = rows.div_ceil(32 / (cols / 256));
        let grid = slabs.min((self.sm_count * self.matvec_blocks_per_sm[i]) as usize) as u32;
        let (ri, ci) = (i32_of(rows, "rows")?, i32_of(cols, "cols")?);
        let (wp, _w) = w.device_ptr(&self.stream);
        let (xp, _x) = x.device_ptr(&self.stream);
        let (yp, _y) = y.device_ptr_mut(&self.stream);
        let mut params: [*mut std::ffi::c_void; 5] = [
            &wp as *const _ as *mut _,
            &xp as *const _ as *mut _,
            &yp as *const _ as *mut _,
            &ri as *const _ as *mut _,
            &ci as *const _ as *mut _,
        ];
        // SAFETY: zero is a valid bit pattern for the attribute; id and value set below.
        let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
        attr.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attr.value.programmaticStreamSerializationAllowed = 1;
        // SAFETY: the parameters match the kernel's signature (w, x, y, rows, cols) and outlive the call.
        unsafe { self.launch_with(&self.f.q8_0_matvec, grid, MV_WARPS * 32, smem, attr, &mut params) }?;
        Ok(())
    }

    /// Launch `f` on the module's stream with one launch attribute, through `cuLaunchKernelEx`
    /// (cudarc's launch builder takes none): programmatic dependent launch, or a cooperative grid.
    ///
    /// # Safety
    /// `params` must point at values of the kernel's parameter types, in order, alive for the call.
    unsafe fn launch_with(&self, f: &CudaFunction, grid: u32, block: u32, smem: usize, mut attr: sys::CUlaunchAttribute, params: &mut [*mut std::ffi::c_void]) -> Result<()> {
        let config = sys::CUlaunchConfig {
            gridDimX: grid,
            gridDimY: 1,
            gridDimZ: 1,
            blockDimX: block,
            blockDimY: 1,
            blockDimZ: 1,
            sharedMemBytes: smem as u32,
            hStream: self.stream.cu_stream(),
            attrs: &mut attr,
            numAttrs: 1,
        };
        // SAFETY: the caller vouches for `params`; `config` and `attr` live until the call returns.
        unsafe { sys::cuLaunchKernelEx(&config, f.cu_function(), params.as_mut_ptr(), std::ptr::null_mut()) }.result()?;
        Ok(())
    }

    /// A chain of matrix-vector products to run as one persistent kernel (`q8_0_matvec_chain`,
    /// see [`MatvecChain`]): the weights of task i are `tasks[i]`'s stretch of `buffers`; its x
    /// is the output of the latest earlier task with at least `cols` outputs (else the chain's
    /// input, [`MatvecChain::input`]).
    pub fn matvec_chain(&self, buffers: Vec<CudaSlice<u8>>, tasks: Vec<ChainTask>) -> Result<MatvecChain> {
        ensure!(!tasks.is_empty(), "q8_0_matvec_chain: no tasks");
        let mut max_s = 0;
        for (i, t) in tasks.iter().enumerate() {
            let fast = matvec_fast_smem(t.cols).is_some() && t.cols <= 8192;
            ensure!(fast && t.rows > 0, "q8_0_matvec_chain: task {i} is {}x{}, not a fast-path shape (cols 256 x a power of two up to 8192)", t.rows, t.cols);
            let b = buffers.get(t.buffer).ok_or_else(|| anyhow!("q8_0_matvec_chain: task {i} names buffer {} of {}", t.buffer, buffers.len()))?;
            ensure!(t.offset.is_multiple_of(16) && t.offset + cpu::q8_0_bytes(t.rows, t.cols) <= b.len(), "q8_0_matvec_chain: task {i}'s weights do not lie 16-byte aligned inside buffer {}", t.buffer);
            max_s = max_s.max(t.cols / 256);
        }
        let x_smem = max_s * MV_X_BYTES_PER_256;
        let smem = x_smem + MV_WARPS as usize * MV_STAGES * MV_SLAB;
        let per_sm = self.f.q8_0_matvec_chain.occupancy_max_active_blocks_per_multiprocessor(MV_CHAIN_THREADS, smem, None)?;
        ensure!(per_sm > 0, "q8_0_matvec_chain: {smem} bytes of shared memory per block do not fit an SM of {}", self.device_name);
        let max_cols = tasks.iter().map(|t| t.cols).max().unwrap_or(0);
        let input = self.upload(&vec![0f32; max_cols])?;
        let outputs = tasks.iter().map(|t| self.stream.alloc_zeros::<f32>(t.rows)).collect::<Result<Vec<_>, _>>()?;
        let mut sources = Vec::with_capacity(tasks.len());
        let mut table: Vec<u64> = Vec::with_capacity(4 * tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            let source = (0..i).rev().find(|&j| tasks[j].rows >= t.cols);
            let x = match source {
                Some(j) => outputs[j].device_ptr(&self.stream).0,
                None => input.device_ptr(&self.stream).0,
            };
            let w = buffers[t.buffer].device_ptr(&self.stream).0 + t.offset as u64;
            let y = outputs[i].device_ptr(&self.stream).0;
            table.extend([w, x, y, (t.rows as u32 as u64) | ((t.cols as u32 as u64) << 32)]);
            sources.push(source);
        }
        let table = self.upload(&table)?;
        let done = self.stream.alloc_zeros::<u32>(tasks.len())?;
        Ok(MatvecChain { buffers, tasks, sources, table, done, input, outputs, x_smem, smem, grid: self.sm_count * per_sm })
    }

    /// Queue one run of `chain`: one cooperative launch (every block resident, which the
    /// kernel's waits between tasks rely on; the driver refuses a grid that cannot be).
    pub fn run_chain(&self, chain: &mut MatvecChain) -> Result<()> {
        let (tp, _t) = chain.table.device_ptr(&self.stream);
        let (dp, _d) = chain.done.device_ptr_mut(&self.stream);
        let n = i32_of(chain.tasks.len(), "tasks")?;
        let xs = i32_of(chain.x_smem, "x shared memory")?;
        let mut params: [*mut std::ffi::c_void; 4] =
            [&tp as *const _ as *mut _, &n as *const _ as *mut _, &xs as *const _ as *mut _, &dp as *const _ as *mut _];
        // SAFETY: zero is a valid bit pattern for the attribute; id and value set below.
        let mut attr: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
        attr.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
        attr.value.cooperative = 1;
        // SAFETY: the parameters match the kernel's signature (tasks, ntasks, x_smem_bytes, done)
        // and outlive the call; the table's pointers are into buffers `chain` owns.
        unsafe { self.launch_with(&self.f.q8_0_matvec_chain, chain.grid, MV_CHAIN_THREADS, chain.smem, attr, &mut params) }
            .context("q8_0_matvec_chain: the cooperative launch failed")?;
        Ok(())
    }

    /// Threads per block for `q8_0_matmul`: the largest tile (256 threads: 128 rows x 64 tokens)
    /// whose grid still gives every other SM a block, else 128 (64 x 64), else 64 (64 x 32).
    pub fn matmul_threads(&self, rows: usize, n: usize) -> u32 {
        let half = (self.sm_count as usize / 2).max(1);
        if rows.div_ceil(128) * n.div_ceil(64) >= half {
            256
        } else if rows.div_ceil(64) * n.div_ceil(64) >= half {
            128
        } else {
            64
        }
    }

    /// Y[n, rows] = X[n, cols] . W^T, W in Q8_0; `threads` None picks with [`Self::matmul_threads`].
    #[allow(clippy::too_many_arguments)]
    pub fn q8_0_matmul(
        &self,
        w: &CudaView<'_, u8>,
        x: &CudaView<'_, f32>,
        y: &mut CudaSlice<f32>,
        rows: usize,
        cols: usize,
        n: usize,
        threads: Option<u32>,
    ) -> Result<()> {
        ensure!(rows > 0 && n > 0 && cols > 0 && cols.is_multiple_of(32), "q8_0_matmul: bad shape {rows}x{cols}, n {n}");
        ensure!(w.len() >= cpu::q8_0_bytes(rows, cols) && x.len() >= n * cols && y.len() >= n * rows, "q8_0_matmul: buffers too small");
        let threads = threads.unwrap_or_else(|| self.matmul_threads(rows, n));
        let (tm, tn) = match threads {
            256 => (128, 64),
            128 => (64, 64),
            64 => (64, 32),
            t => bail!("q8_0_matmul has no tile for {t} threads (256, 128 or 64)"),
        };
        let cfg = LaunchConfig { grid_dim: (rows.div_ceil(tm) as u32, n.div_ceil(tn) as u32, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
        let (ri, ci, ni) = (i32_of(rows, "rows")?, i32_of(cols, "cols")?, i32_of(n, "n")?);
        unsafe { self.stream.launch_builder(&self.f.q8_0_matmul).arg(w).arg(x).arg(y).arg(&ri).arg(&ci).arg(&ni).launch(cfg) }?;
        Ok(())
    }

    /// y = x / sqrt(mean(x^2) + eps) * weight, row by row; one block of 256 threads per row.
    pub fn rms_norm(&self, x: &CudaView<'_, f32>, weight: &CudaView<'_, f32>, y: &mut CudaSlice<f32>, n: usize, dim: usize, eps: f32) -> Result<()> {
        ensure!(n > 0 && dim > 0 && x.len() >= n * dim && weight.len() >= dim && y.len() >= n * dim, "rms_norm: bad sizes");
        let cfg = LaunchConfig { grid_dim: (n as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        let (ni, di) = (i32_of(n, "n")?, i32_of(dim, "dim")?);
        unsafe { self.stream.launch_builder(&self.f.rms_norm).arg(x).arg(weight).arg(y).arg(&ni).arg(&di).arg(&eps).launch(cfg) }?;
        Ok(())
    }

    /// RoPE in place on q [n_tokens, n_heads, head_dim] and k [n_tokens, n_kv_heads, head_dim],
    /// adjacent pairs, angle positions[t] * theta^(-2i/head_dim).
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &self,
        q: &mut CudaSlice<f32>,
        k: &mut CudaSlice<f32>,
        positions: &CudaView<'_, i32>,
        n_tokens: usize,
        n_heads: usize,
        n_kv_heads: usize,
        head_dim: usize,
        theta: f32,
    ) -> Result<()> {
        ensure!(head_dim.is_multiple_of(2) && head_dim / 2 <= 256 && head_dim > 0, "rope: head_dim {head_dim} must be even and at most 512");
        ensure!(
            q.len() >= n_tokens * n_heads * head_dim && k.len() >= n_tokens * n_kv_heads * head_dim && positions.len() >= n_tokens,
            "rope: buffers too small"
        );
        let half = (head_dim / 2) as u32;
        let cfg = LaunchConfig { grid_dim: (n_tokens as u32, 1, 1), block_dim: (256 / half * half, 1, 1), shared_mem_bytes: 0 };
        let (t, h, kv, hd) = (i32_of(n_tokens, "n_tokens")?, i32_of(n_heads, "n_heads")?, i32_of(n_kv_heads, "n_kv_heads")?, i32_of(head_dim, "head_dim")?);
        unsafe { self.stream.launch_builder(&self.f.rope).arg(q).arg(k).arg(positions).arg(&t).arg(&h).arg(&kv).arg(&hd).arg(&theta).launch(cfg) }?;
        Ok(())
    }

    /// out = silu(gate) * up.
    pub fn swiglu(&self, gate: &CudaView<'_, f32>, up: &CudaView<'_, f32>, out: &mut CudaSlice<f32>, n: usize) -> Result<()> {
        ensure!(n > 0 && gate.len() >= n && up.len() >= n && out.len() >= n, "swiglu: buffers too small");
        let grid = n.div_ceil(1024).min(self.sm_count as usize * 8).max(1);
        let cfg = LaunchConfig { grid_dim: (grid as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        let ni = i32_of(n, "n")?;
        unsafe { self.stream.launch_builder(&self.f.swiglu).arg(gate).arg(up).arg(out).arg(&ni).launch(cfg) }?;
        Ok(())
    }

    /// One token's attention over `seq_len` cached positions; caches [seq_len, n_kv_heads, head_dim].
    /// Supported: head_dim 64 or 128, 1 to 4 query heads per KV head.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_decode(
        &self,
        q: &CudaView<'_, f32>,
        k_cache: &CudaView<'_, f32>,
        v_cache: &CudaView<'_, f32>,
        out: &mut CudaSlice<f32>,
        n_heads: usize,
        n_kv_heads: usize,
        head_dim: usize,
        seq_len: usize,
        scale: f32,
    ) -> Result<()> {
        ensure!(
            n_kv_heads > 0 && n_heads.is_multiple_of(n_kv_heads) && (1..=4).contains(&(n_heads / n_kv_heads)) && matches!(head_dim, 64 | 128) && seq_len > 0,
            "attention_decode supports head_dim 64/128 and 1-4 query heads per KV head, got {n_heads}/{n_kv_heads} heads of {head_dim}"
        );
        let cache = seq_len * n_kv_heads * head_dim;
        ensure!(
            q.len() >= n_heads * head_dim && k_cache.len() >= cache && v_cache.len() >= cache && out.len() >= n_heads * head_dim,
            "attention_decode: buffers too small"
        );
        // Clusters of ATT_SPLITS blocks along x come from the kernel's __cluster_dims__.
        let cfg = LaunchConfig { grid_dim: (ATT_SPLITS, n_kv_heads as u32, 1), block_dim: (ATT_THREADS, 1, 1), shared_mem_bytes: 0 };
        let (h, kv, hd, s) = (i32_of(n_heads, "n_heads")?, i32_of(n_kv_heads, "n_kv_heads")?, i32_of(head_dim, "head_dim")?, i32_of(seq_len, "seq_len")?);
        unsafe {
            self.stream
                .launch_builder(&self.f.attention_decode)
                .arg(q)
                .arg(k_cache)
                .arg(v_cache)
                .arg(out)
                .arg(&h)
                .arg(&kv)
                .arg(&hd)
                .arg(&s)
                .arg(&scale)
                .launch(cfg)
        }?;
        Ok(())
    }

    /// The device's f32 FMA rate in FLOP/s (the SIMT roof of the f32 matmul): median of 5 runs
    /// of `fma_peak` (8 FMA chains per thread, 8 blocks of 256 threads per SM), CUDA events.
    pub fn fp32_fma_rate(&self) -> Result<f64> {
        let blocks = self.sm_count * 8;
        let mut out = self.stream.alloc_zeros::<f32>((blocks * 256) as usize)?;
        let iters: i32 = 4096;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        let flops = 256.0 * iters as f64 * blocks as f64 * 256.0;
        let mut rates = Vec::new();
        for i in 0..6 {
            let a = self.event()?;
            unsafe { self.stream.launch_builder(&self.f.fma_peak).arg(&mut out).arg(&iters).launch(cfg) }?;
            let b = self.event()?;
            let s = a.elapsed_ms(&b)? as f64 / 1e3;
            if i > 0 {
                rates.push(flops / s); // the first run pays the clock ramp-up
            }
        }
        Ok(cpu::median(&rates))
    }

    fn event(&self) -> Result<cudarc::driver::CudaEvent> {
        Ok(self.stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?)
    }

    fn upload<T: cudarc::driver::DeviceRepr>(&self, v: &[T]) -> Result<CudaSlice<T>> {
        Ok(self.stream.clone_htod(v)?)
    }

    /// A device buffer of `n` NaNs (f32::from_bits(0x7fc00000)): what an output holds before a
    /// checked run, so an element the kernel never writes fails the check.
    fn poisoned(&self, n: usize) -> Result<CudaSlice<f32>> {
        self.upload(&vec![f32::from_bits(0x7fc0_0000); n])
    }

    fn download(&self, s: &CudaSlice<f32>) -> Result<Vec<f32>> {
        let v = self.stream.clone_dtoh(s)?;
        self.stream.synchronize()?;
        Ok(v)
    }
}

// -------------------------------------------------------------------------------------------------
// Checks
// -------------------------------------------------------------------------------------------------

/// Run every kernel on random inputs at the 1B shapes (and at shapes that exercise partial tiles
/// and the generic paths) and compare with the f64 references; outputs are poisoned with NaN
/// before each run. A failed check is a result, not an error; `Err` means the GPU itself failed.
pub fn check_all(k: &Kernels) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut rng = Rng::new(0x11a3a);

    // Q8_0 matvec: every distinct 1B shape, a partial last slab, cols 512 and 4096 (other slab
    // shapes), cols 96 (generic path), and the generic path on a fast-path shape.
    let mut matvec_shapes: Vec<(String, usize, usize, MatvecPath)> = Vec::new();
    for &(name, rows, cols) in &llama_1b::MATVEC {
        if !matvec_shapes.iter().any(|s| s.1 == rows && s.2 == cols) {
            matvec_shapes.push((name.to_string(), rows, cols, MatvecPath::Auto));
        }
    }
    matvec_shapes.push(("partial-slab".into(), 1003, 2048, MatvecPath::Auto));
    matvec_shapes.push(("cols512".into(), 77, 512, MatvecPath::Auto));
    matvec_shapes.push(("cols4096".into(), 1027, 4096, MatvecPath::Auto));
    matvec_shapes.push(("cols96".into(), 37, 96, MatvecPath::Auto));
    matvec_shapes.push(("q".into(), 2048, 2048, MatvecPath::Generic));
    for (name, rows, cols, path) in matvec_shapes {
        let w = rng.vec(rows * cols, 1.0);
        let x = rng.vec(cols, 1.0);
        let bytes = cpu::quantize_q8_0(&w, rows, cols);
        let reference = cpu::matvec_ref(&cpu::dequantize_q8_0(&bytes, rows, cols), &x, rows, cols);
        let (dw, dx) = (k.upload(&bytes)?, k.upload(&x)?);
        let mut y = k.poisoned(rows)?;
        k.q8_0_matvec(&dw.as_view(), &dx.as_view(), &mut y, rows, cols, path)?;
        let err = cpu::max_scaled_error(&k.download(&y)?, &reference);
        let route = match (path, matvec_fast_smem(cols)) {
            (MatvecPath::Auto, Some((i, _))) if k.matvec_blocks_per_sm[i] > 0 => "fast path",
            _ => "generic path",
        };
        checks.push(Check::new("q8_0_matvec", format!("{name} {rows}x{cols} ({route})"), err));
    }

    // Q8_0 matvec with programmatic dependent launch, as a decode chain: each kernel reads the
    // previous one's output (poisoned with NaN until written), so a kernel that read x before
    // the kernel writing it finished would show NaN or a stale value here.
    {
        let chain = [(2048usize, 2048usize), (8192, 2048), (2048, 8192)];
        let mut weights = Vec::new();
        for &(rows, cols) in &chain {
            let bytes = cpu::quantize_q8_0(&rng.vec(rows * cols, 1.0), rows, cols);
            weights.push((k.upload(&bytes)?, cpu::dequantize_q8_0(&bytes, rows, cols)));
        }
        let x0 = rng.vec(2048, 1.0);
        let mut outs = vec![k.upload(&x0)?];
        for &(rows, _) in &chain {
            outs.push(k.poisoned(rows)?);
        }
        for (i, &(rows, cols)) in chain.iter().enumerate() {
            let (head, tail) = outs.split_at_mut(i + 1);
            k.q8_0_matvec_pdl(&weights[i].0.as_view(), &head[i].as_view(), &mut tail[0], rows, cols)?;
        }
        for (i, &(rows, cols)) in chain.iter().enumerate() {
            let x = k.download(&outs[i])?;
            let reference = cpu::matvec_ref(&weights[i].1, &x, rows, cols);
            let err = cpu::max_scaled_error(&k.download(&outs[i + 1])?, &reference);
            checks.push(Check::new("q8_0_matvec", format!("PDL chain step {} {rows}x{cols} (fast path, programmatic dependent launch)", i + 1), err));
        }
    }

    // Q8_0 matvec chain (one persistent kernel): each task reads an earlier task's output, poisoned
    // with NaN until written, so a block that read x before every block had finished the task
    // writing it would show NaN or a stale value here. Shapes: the fused layer (x from the task
    // before), unfused k and v (x from an older task), a partial last slab, cols 4096 and 512.
    // Run twice: the second run relies on the counters the first one reset.
    {
        let shapes = [(3072usize, 2048usize), (2048, 2048), (16384, 2048), (2048, 8192), (512, 2048), (512, 2048), (1003, 2048), (1027, 4096), (77, 512)];
        let (mut buffers, mut tasks, mut dense) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &(rows, cols)) in shapes.iter().enumerate() {
            let bytes = cpu::quantize_q8_0(&rng.vec(rows * cols, 0.1), rows, cols);
            dense.push(cpu::dequantize_q8_0(&bytes, rows, cols));
            buffers.push(k.upload(&bytes)?);
            tasks.push(ChainTask { buffer: i, offset: 0, rows, cols });
        }
        let mut chain = k.matvec_chain(buffers, tasks)?;
        let x0 = rng.vec(chain.input.len(), 1.0);
        k.stream.memcpy_htod(&x0, &mut chain.input)?;
        for run in 1..=2 {
            for out in chain.outputs.iter_mut() {
                let n = out.len();
                k.stream.memcpy_htod(&vec![f32::from_bits(0x7fc0_0000); n], out)?;
            }
            k.run_chain(&mut chain)?;
            let outs = chain.outputs.iter().map(|o| k.download(o)).collect::<Result<Vec<_>>>()?;
            let mut worst = 0f64;
            for (t, &(rows, cols)) in shapes.iter().enumerate() {
                let (x, from) = match chain.sources[t] {
                    Some(j) => (&outs[j][..cols], format!("task {}", j + 1)),
                    None => (&x0[..cols], "the input".to_string()),
                };
                let err = cpu::max_scaled_error(&outs[t], &cpu::matvec_ref(&dense[t], x, rows, cols));
                // NaN (an unwritten or early-read output) must fail, so it is never dropped by max.
                worst = if err.is_nan() || worst.is_nan() { f64::NAN } else { worst.max(err) };
                if run == 1 {
                    checks.push(Check::new("q8_0_matvec_chain", format!("task {} {rows}x{cols} (x from {from})", t + 1), err));
                }
            }
            if run == 2 {
                let shape = format!("second launch, all {} tasks (counters reset by the first; grid {})", shapes.len(), chain.grid);
                checks.push(Check::new("q8_0_matvec_chain", shape, worst));
            }
        }
    }

    // Q8_0 matmul: partial tiles with each tile size, then the q shape at 128 tokens as launched.
    for (rows, cols, n, threads) in [(260, 2048, 77, Some(256)), (260, 2048, 77, Some(128)), (260, 2048, 77, Some(64)), (2048, 2048, 128, None)] {
        let w = rng.vec(rows * cols, 1.0);
        let x = rng.vec(n * cols, 1.0);
        let bytes = cpu::quantize_q8_0(&w, rows, cols);
        let reference = cpu::matmul_ref(&cpu::dequantize_q8_0(&bytes, rows, cols), &x, rows, cols, n);
        let (dw, dx) = (k.upload(&bytes)?, k.upload(&x)?);
        let mut y = k.poisoned(n * rows)?;
        k.q8_0_matmul(&dw.as_view(), &dx.as_view(), &mut y, rows, cols, n, threads)?;
        let err = cpu::max_scaled_error(&k.download(&y)?, &reference);
        let t = threads.unwrap_or_else(|| k.matmul_threads(rows, n));
        checks.push(Check::new("q8_0_matmul", format!("{rows}x{cols} n{n} ({t} threads)"), err));
    }

    // RMSNorm: the decode shape, several rows, and a dim that takes the scalar path.
    for (n, dim) in [(1, llama_1b::HIDDEN), (3, llama_1b::HIDDEN), (2, 1001)] {
        let x = rng.vec(n * dim, 3.0);
        let g = rng.vec(dim, 1.0);
        let reference = cpu::rms_norm_ref(&x, &g, n, dim, llama_1b::RMS_EPS);
        let (dx, dg) = (k.upload(&x)?, k.upload(&g)?);
        let mut y = k.poisoned(n * dim)?;
        k.rms_norm(&dx.as_view(), &dg.as_view(), &mut y, n, dim, llama_1b::RMS_EPS)?;
        checks.push(Check::new("rms_norm", format!("{n}x{dim}"), cpu::max_scaled_error(&k.download(&y)?, &reference)));
    }

    // RoPE: positions 0, 17 and 8191 (the largest angle at 8K context).
    {
        let (h, kv, hd) = (llama_1b::HEADS, llama_1b::KV_HEADS, llama_1b::HEAD_DIM);
        let positions = [0i32, 17, 8191];
        let t = positions.len();
        let q = rng.vec(t * h * hd, 1.0);
        let kk = rng.vec(t * kv * hd, 1.0);
        let reference = cpu::rope_ref(&q, &kk, &positions, t, h, kv, hd, llama_1b::ROPE_THETA);
        let (mut dq, mut dk, dp) = (k.upload(&q)?, k.upload(&kk)?, k.upload(&positions)?);
        k.rope(&mut dq, &mut dk, &dp.as_view(), t, h, kv, hd, llama_1b::ROPE_THETA)?;
        let mut got = k.download(&dq)?;
        got.extend(k.download(&dk)?);
        checks.push(Check::new("rope", format!("{t} tokens x {h}+{kv} heads x {hd} (positions 0, 17, 8191)"), cpu::max_scaled_error(&got, &reference)));
    }

    // SwiGLU: the 1B width (vector path) and an odd length (scalar path).
    for n in [llama_1b::INTERMEDIATE, 8195] {
        let g = rng.vec(n, 8.0);
        let u = rng.vec(n, 1.0);
        let reference = cpu::swiglu_ref(&g, &u);
        let (dg, du) = (k.upload(&g)?, k.upload(&u)?);
        let mut y = k.poisoned(n)?;
        k.swiglu(&dg.as_view(), &du.as_view(), &mut y, n)?;
        checks.push(Check::new("swiglu", format!("n{n}"), cpu::max_scaled_error(&k.download(&y)?, &reference)));
    }

    // Decode attention: 1 and 5 positions (most splits empty), 1000 (uneven splits), 8192; and
    // the 3B model's 24/8 heads of 128.
    for (h, kv, hd, seq) in [(32, 8, 64, 1), (32, 8, 64, 5), (32, 8, 64, 1000), (32, 8, 64, 8192), (24, 8, 128, 777)] {
        let scale = 1.0 / (hd as f32).sqrt();
        let q = rng.vec(h * hd, 2.0);
        let kc = rng.vec(seq * kv * hd, 2.0);
        let vc = rng.vec(seq * kv * hd, 1.0);
        let reference = cpu::attention_decode_ref(&q, &kc, &vc, h, kv, hd, seq, scale);
        let (dq, dk, dv) = (k.upload(&q)?, k.upload(&kc)?, k.upload(&vc)?);
        let mut out = k.poisoned(h * hd)?;
        k.attention_decode(&dq.as_view(), &dk.as_view(), &dv.as_view(), &mut out, h, kv, hd, seq, scale)?;
        checks.push(Check::new("attention_decode", format!("seq {seq}, {h}/{kv} heads x {hd}"), cpu::max_scaled_error(&k.download(&out)?, &reference)));
    }
    Ok(checks)
}

// -------------------------------------------------------------------------------------------------
// Timed cases
// -------------------------------------------------------------------------------------------------

/// Which device rate a case is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Roof {
    /// Bytes moved / measured device-to-device copy bandwidth (read + write).
    CopyBandwidth,
    /// FLOP / measured f32 FMA rate (`fp32_fma_rate`).
    Fp32Fma,
}

/// A per-call timer supplied by an implementation itself: `(k, reps)` -> `reps` per-call times.
pub type Timer<'a> = Box<dyn FnMut(usize, usize) -> Result<Vec<f64>> + 'a>;

/// One implementation of one operation at one shape, ready to be called repeatedly.
pub struct Case<'a> {
    /// The operation, e.g. `q8_0_matvec` (the Criterion group is `kernels/<op>`).
    pub op: &'static str,
    /// `llm-bench` for the suite's kernels; `candle`, `burn-f32`, `torch-bf16`, ... for engines.
    pub implementation: String,
    /// e.g. `lm_head_128256x2048`; no `/` (it is part of a Criterion id).
    pub shape: String,
    /// Weights / activations / accumulation, e.g. `Q8_0 weights, f32 x and accumulation`.
    pub precision: String,
    /// Bytes this implementation must move per call at the least (its own weight format).
    pub bytes: f64,
    pub flops: f64,
    pub roof: Roof,
    /// Distinct input copies the calls cycle through; timing loops run at least this many calls.
    pub rotation: usize,
    /// The stream the work is queued on, when the implementation exposes a cudarc stream: CUDA
    /// events on it time the calls. None: wall clock around the calls plus `sync`.
    pub stream: Option<Arc<CudaStream>>,
    /// Whether `run` can be captured into a CUDA graph on `stream` (the suite's kernels).
    pub graphable: bool,
    /// Queue one call (the next input copy). Does not wait for the device.
    pub run: Box<dyn FnMut() -> Result<()> + 'a>,
    /// Wait until the device has finished every queued call.
    pub sync: Box<dyn FnMut() -> Result<()> + 'a>,
    /// The implementation's own timing of host-issued calls, when neither `stream` nor the wall
    /// clock is the right view (torch: torch.cuda.Event around k eager calls).
    pub issued_timer: Option<Timer<'a>>,
    /// The implementation's own graph-replay timing (torch: torch.cuda.CUDAGraph).
    pub graph_timer: Option<Timer<'a>>,
    pub notes: String,
}

impl Case<'_> {
    /// Criterion id: `<implementation>/<shape>`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.implementation, self.shape)
    }
}

/// Per-call seconds of `k` back-to-back calls as the host issues them, `reps` times: CUDA events
/// around the calls on the case's stream, or the implementation's own timer, or wall clock around
/// the calls and a final `sync`. Returns the times and how they were taken.
pub fn time_issued(case: &mut Case, k: usize, reps: usize) -> Result<(Vec<f64>, &'static str)> {
    let k = k.max(case.rotation).max(1);
    for _ in 0..k {
        (case.run)()?;
    }
    (case.sync)()?;
    if let Some(timer) = case.issued_timer.as_mut() {
        return Ok((timer(k, reps)?, "implementation's CUDA events around k eager calls"));
    }
    let mut out = Vec::with_capacity(reps);
    match case.stream.clone() {
        Some(stream) => {
            for _ in 0..reps {
                let a = stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
                for _ in 0..k {
                    (case.run)()?;
                }
                let b = stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
                out.push(a.elapsed_ms(&b)? as f64 / 1e3 / k as f64);
            }
            Ok((out, "CUDA events around k calls on the stream"))
        }
        None => {
            for _ in 0..reps {
                let t = Instant::now();
                for _ in 0..k {
                    (case.run)()?;
                }
                (case.sync)()?;
                out.push(t.elapsed().as_secs_f64() / k as f64);
            }
            Ok((out, "wall clock around k calls and a device sync"))
        }
    }
}

/// Per-call seconds with the host out of the picture: `k` calls captured into one CUDA graph,
/// replayed `reps` times between CUDA events (or the implementation's own graph timer). None
/// when the case can do neither.
pub fn time_graph(case: &mut Case, k: usize, reps: usize) -> Result<Option<(Vec<f64>, &'static str)>> {
    let k = k.max(case.rotation).max(1);
    if let Some(timer) = case.graph_timer.as_mut() {
        return Ok(Some((timer(k, reps)?, "implementation's CUDA graph of k calls, CUDA events")));
    }
    let Some(stream) = case.stream.clone().filter(|_| case.graphable) else {
        return Ok(None);
    };
    stream.synchronize()?;
    stream.begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)?;
    let mut captured = Ok(());
    for _ in 0..k {
        if let Err(e) = (case.run)() {
            captured = Err(e);
            break;
        }
    }
    // End the capture whatever happened, or the stream stays unusable.
    let graph = stream.end_capture(sys::CUgraphInstantiate_flags(0));
    captured?;
    let graph = graph?.ok_or_else(|| anyhow!("capturing {} produced an empty graph", case.id()))?;
    graph.upload()?;
    graph.launch()?;
    stream.synchronize()?;
    let mut out = Vec::with_capacity(reps);
    for _ in 0..reps {
        let a = stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        graph.launch()?;
        let b = stream.record_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))?;
        out.push(a.elapsed_ms(&b)? as f64 / 1e3 / k as f64);
    }
    Ok(Some((out, "CUDA graph of k calls, CUDA events around each replay")))
}

/// Copies of `bytes` needed to span [`Kernels::rotate_bytes`].
pub fn rotation_copies(k: &Kernels, bytes: usize) -> usize {
    k.rotate_bytes().div_ceil(bytes.max(1)).max(1)
}

/// Random Q8_0 bytes for timing (values do not change the kernels' speed): f16 scales in
/// [2^-10, 2^-6), uniform quants. Generated directly, which for the 279 MB classifier is much
/// faster than quantizing random floats.
pub fn random_q8_0(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = vec![0u8; cpu::q8_0_bytes(rows, cols)];
    for block in out.chunks_exact_mut(cpu::Q8_0_BLOCK_BYTES) {
        let r = rng.next_u64();
        let d = half::f16::from_f32(f32::from_bits(0x3A80_0000 + ((r as u32) & 0x01FF_FFFF)));
        block[..2].copy_from_slice(&d.to_bits().to_le_bytes());
        for chunk in block[2..].chunks_mut(8) {
            let bits = rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bits[..chunk.len()]);
        }
    }
    out
}

/// `copies` back-to-back copies of `data` on the device, each starting 256-byte aligned; returns
/// the buffer and the stride between copies (in elements).
fn replicate<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(k: &Kernels, data: &[T], copies: usize) -> Result<(CudaSlice<T>, usize)> {
    let align = (256 / std::mem::size_of::<T>()).max(1);
    let stride = data.len().div_ceil(align) * align;
    let mut buf = k.stream.alloc_zeros::<T>(stride * copies)?;
    k.stream.memcpy_htod(data, &mut buf.slice_mut(0..data.len()))?;
    for c in 1..copies {
        let (head, mut tail) = buf.split_at_mut(c * stride);
        k.stream.memcpy_dtod(&head.slice(0..data.len()), &mut tail.slice_mut(0..data.len()))?;
    }
    Ok((buf, stride))
}

impl Kernels {
    /// Buffers and a call closure for one of the suite's kernels at `spec`'s shape.
    pub fn case(&self, spec: &CaseSpec) -> Result<Case<'_>> {
        let mut rng = Rng::new(0xbe7c4 ^ spec.shape().len() as u64);
        let sync_stream = self.stream.clone();
        let sync: Box<dyn FnMut() -> Result<()>> = Box::new(move || Ok(sync_stream.synchronize()?));
        let mut case = Case {
            op: spec.op(),
            implementation: "llm-bench".into(),
            shape: spec.shape(),
            precision: String::new(),
            bytes: 0.0,
            flops: 0.0,
            roof: Roof::CopyBandwidth,
            rotation: 1,
            stream: Some(self.stream.clone()),
            graphable: true,
            run: Box::new(|| Ok(())),
            sync,
            issued_timer: None,
            graph_timer: None,
            notes: String::new(),
        };
        match *spec {
            CaseSpec::Matvec { rows, cols, .. } => {
                let wb = cpu::q8_0_bytes(rows, cols);
                let copies = rotation_copies(self, wb);
                let (w, stride) = replicate(self, &random_q8_0(rows, cols, rng.next_u64()), copies)?;
                let x = self.upload(&rng.vec(cols, 1.0))?;
                let mut y = self.stream.alloc_zeros::<f32>(rows)?;
                let mut i = 0usize;
                case.precision = "Q8_0 weights, f32 x and accumulation".into();
                case.bytes = (wb + 4 * cols + 4 * rows) as f64;
                case.flops = 2.0 * (rows * cols) as f64;
                case.rotation = copies;
                case.notes = format!("{copies} weight copies cycled (L2 {} MB)", self.l2_bytes >> 20);
                case.run = Box::new(move || {
                    let off = (i % copies) * stride;
                    i += 1;
                    self.q8_0_matvec(&w.slice(off..off + wb), &x.as_view(), &mut y, rows, cols, MatvecPath::Auto)
                });
            }
            CaseSpec::Matmul { rows, cols, n, .. } => {
                // Compute-bound: one weight copy (re-read from L2 is what a prefill does too).
                let wb = cpu::q8_0_bytes(rows, cols);
                let w = self.upload(&random_q8_0(rows, cols, rng.next_u64()))?;
                let x = self.upload(&rng.vec(n * cols, 1.0))?;
                let mut y = self.stream.alloc_zeros::<f32>(n * rows)?;
                let threads = self.matmul_threads(rows, n);
                case.precision = "Q8_0 weights dequantized to f32 in shared memory, f32 FMA".into();
                case.bytes = (wb + 4 * n * cols + 4 * n * rows) as f64;
                case.flops = 2.0 * (rows * cols * n) as f64;
                case.roof = Roof::Fp32Fma;
                case.notes = format!("{threads} threads per block");
                case.run = Box::new(move || self.q8_0_matmul(&w.as_view(), &x.as_view(), &mut y, rows, cols, n, Some(threads)));
            }
            CaseSpec::RmsNorm { n, dim } => {
                let x = self.upload(&rng.vec(n * dim, 1.0))?;
                let g = self.upload(&rng.vec(dim, 1.0))?;
                let mut y = self.stream.alloc_zeros::<f32>(n * dim)?;
                case.precision = "f32".into();
                case.bytes = (4 * (2 * n * dim + dim)) as f64;
                case.flops = (4 * n * dim) as f64;
                case.notes = "inputs stay in L2, as in a decode step".into();
                case.run = Box::new(move || self.rms_norm(&x.as_view(), &g.as_view(), &mut y, n, dim, llama_1b::RMS_EPS));
            }
            CaseSpec::Rope { n_tokens } => {
                let (h, kv, hd) = (llama_1b::HEADS, llama_1b::KV_HEADS, llama_1b::HEAD_DIM);
                let mut q = self.upload(&rng.vec(n_tokens * h * hd, 1.0))?;
                let mut kk = self.upload(&rng.vec(n_tokens * kv * hd, 1.0))?;
                let pos: Vec<i32> = (0..n_tokens as i32).map(|t| 1000 + t).collect();
                let p = self.upload(&pos)?;
                case.precision = "f32 (angles in f64)".into();
                case.bytes = (2 * 4 * n_tokens * (h + kv) * hd + 4 * n_tokens) as f64;
                case.flops = (6 * n_tokens * (h + kv) * hd / 2) as f64;
                case.notes = "in place; inputs stay in L2, as in a decode step".into();
                case.run = Box::new(move || self.rope(&mut q, &mut kk, &p.as_view(), n_tokens, h, kv, hd, llama_1b::ROPE_THETA));
            }
            CaseSpec::Swiglu { n } => {
                let g = self.upload(&rng.vec(n, 4.0))?;
                let u = self.upload(&rng.vec(n, 1.0))?;
                let mut y = self.stream.alloc_zeros::<f32>(n)?;
                case.precision = "f32".into();
                case.bytes = (12 * n) as f64;
                case.flops = (5 * n) as f64;
                case.notes = "inputs stay in L2, as in a decode step".into();
                case.run = Box::new(move || self.swiglu(&g.as_view(), &u.as_view(), &mut y, n));
            }
            CaseSpec::DecodeStep { fused, launch } => {
                // Each layer its own weights (one buffer per matrix kind, 16 copies), as in a model.
                let layers = 16usize;
                let mut mats = Vec::new();
                for (name, rows, cols) in llama_1b::layer_matvecs(fused) {
                    let wb = cpu::q8_0_bytes(rows, cols);
                    let (w, stride) = replicate(self, &random_q8_0(rows, cols, rng.next_u64()), layers)?;
                    mats.push((name, rows, cols, wb, w, stride));
                }
                let (vr, vc) = (llama_1b::VOCAB, llama_1b::HIDDEN);
                let head = self.upload(&random_q8_0(vr, vc, rng.next_u64()))?;
                let bytes_of = |rows: usize, cols: usize| (cpu::q8_0_bytes(rows, cols) + 4 * (rows + cols)) as f64;
                let matrices = layers * mats.len() + 1;
                case.precision = "Q8_0 weights, f32 x and accumulation".into();
                case.bytes = layers as f64 * mats.iter().map(|m| bytes_of(m.1, m.2)).sum::<f64>() + bytes_of(vr, vc);
                case.flops = 2.0 * (layers * mats.iter().map(|m| m.1 * m.2).sum::<usize>() + vr * vc) as f64;
                let how = match launch {
                    StepLaunch::Plain => format!("{matrices} launches"),
                    StepLaunch::Pdl => format!("{matrices} launches with programmatic dependent launch"),
                    StepLaunch::Persistent => format!("one persistent kernel for {matrices} matrices, each reading an earlier one's output"),
                };
                case.notes = format!(
                    "{how}: {layers} layers x ({}) + lm_head, each layer its own weights ({:.2} GB in all)",
                    mats.iter().map(|m| m.0).collect::<Vec<_>>().join(", "),
                    case.bytes / 1e9
                );
                if launch == StepLaunch::Persistent {
                    let mut tasks = Vec::new();
                    for layer in 0..layers {
                        for (i, (_, rows, cols, _, _, stride)) in mats.iter().enumerate() {
                            tasks.push(ChainTask { buffer: i, offset: layer * stride, rows: *rows, cols: *cols });
                        }
                    }
                    tasks.push(ChainTask { buffer: mats.len(), offset: 0, rows: vr, cols: vc });
                    let mut buffers: Vec<CudaSlice<u8>> = mats.into_iter().map(|m| m.4).collect();
                    buffers.push(head);
                    let mut chain = self.matvec_chain(buffers, tasks)?;
                    self.stream.memcpy_htod(&rng.vec(chain.input.len(), 1.0), &mut chain.input)?;
                    case.notes = format!("{}; grid {} blocks", case.notes, chain.grid);
                    case.run = Box::new(move || self.run_chain(&mut chain));
                    return Ok(case);
                }
                let pdl = launch == StepLaunch::Pdl;
                let x = self.upload(&rng.vec(llama_1b::INTERMEDIATE, 1.0))?;
                let mut y = self.stream.alloc_zeros::<f32>(vr)?;
                case.run = Box::new(move || {
                    for layer in 0..layers {
                        for (_, rows, cols, wb, w, stride) in &mats {
                            let off = layer * stride;
                            let w = w.slice(off..off + wb);
                            if pdl {
                                self.q8_0_matvec_pdl(&w, &x.as_view(), &mut y, *rows, *cols)?;
                            } else {
                                self.q8_0_matvec(&w, &x.as_view(), &mut y, *rows, *cols, MatvecPath::Auto)?;
                            }
                        }
                    }
                    if pdl {
                        self.q8_0_matvec_pdl(&head.as_view(), &x.as_view(), &mut y, vr, vc)
                    } else {
                        self.q8_0_matvec(&head.as_view(), &x.as_view(), &mut y, vr, vc, MatvecPath::Auto)
                    }
                });
            }
            CaseSpec::Attention { seq_len } => {
                let (h, kv, hd) = (llama_1b::HEADS, llama_1b::KV_HEADS, llama_1b::HEAD_DIM);
                let cache = seq_len * kv * hd;
                let copies = rotation_copies(self, 2 * 4 * cache);
                let (kc, stride) = replicate(self, &rng.vec(cache, 1.0), copies)?;
                let (vc, _) = replicate(self, &rng.vec(cache, 1.0), copies)?;
                let q = self.upload(&rng.vec(h * hd, 1.0))?;
                let mut out = self.stream.alloc_zeros::<f32>(h * hd)?;
                let scale = 1.0 / (hd as f32).sqrt();
                let mut i = 0usize;
                case.precision = "f32 cache, f32 softmax".into();
                case.bytes = (2 * 4 * cache + 2 * 4 * h * hd) as f64;
                case.flops = (4 * h * seq_len * hd) as f64;
                case.rotation = copies;
                case.notes = format!("{copies} KV-cache copies cycled");
                case.run = Box::new(move || {
                    let off = (i % copies) * stride;
                    i += 1;
                    self.attention_decode(&q.as_view(), &kc.slice(off..off + cache), &vc.slice(off..off + cache), &mut out, h, kv, hd, seq_len, scale)
                });
            }
        }
        Ok(case)
    }
}
