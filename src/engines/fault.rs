//! A fault on purpose, for the tests of what a failing engine does to a run:
//! `LLM_BENCH_FAULT=panic:N` makes the loaded engine panic inside every batch of exactly N
//! requests, `LLM_BENCH_FAULT=oom:N` makes it return the error an engine gives when it runs out
//! of device memory, and `LLM_BENCH_FAULT=squeeze:N` (GPU only) takes all the GPU's free memory
//! for the length of every batch of exactly N, so that the engine's own allocations meet a full
//! GPU and fail as they really do (a real out-of-memory, the engine's own message), and
//! `LLM_BENCH_FAULT=break:N` makes the first batch of N fail and every request after it too (an
//! engine left unable to serve, as burn-cuda is after an out-of-memory). Everything else
//! is the real engine, so the harness's recovery (that case recorded as failed with the engine's
//! message, the next cases and engines measured) is tested through the real binary. The engine
//! info says a fault is injected, so no figure of such a run can pass for a real one.

use crate::engine::{Engine, EngineInfo, GenerateOptions, MemoryUse, Scheduled, TokenEvent};
use anyhow::{bail, Result};

/// What fails, and for which batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Panic(usize),
    OutOfMemory(usize),
    /// The GPU's free memory taken (see [`Ballast`]) while a batch of this size runs.
    Squeeze(usize),
    /// A batch of this size fails, and so does every request after it.
    Break(usize),
}

impl Fault {
    /// `LLM_BENCH_FAULT`, if set.
    pub fn from_env() -> Result<Option<Self>> {
        let Ok(v) = std::env::var("LLM_BENCH_FAULT") else { return Ok(None) };
        if v.is_empty() {
            return Ok(None);
        }
        let (kind, n) = v.split_once(':').unwrap_or((&v, ""));
        let Ok(n) = n.parse::<usize>() else {
            bail!("LLM_BENCH_FAULT={v}: give panic:<batch size>, oom:<batch size>, squeeze:<batch size> or break:<batch size>, e.g. oom:32")
        };
        Ok(Some(match kind {
            "panic" => Fault::Panic(n),
            "oom" => Fault::OutOfMemory(n),
            "squeeze" => Fault::Squeeze(n),
            "break" => Fault::Break(n),
            _ => bail!("LLM_BENCH_FAULT={v}: `{kind}` is not a fault; use panic, oom, squeeze or break"),
        }))
    }
}

/// The real engine, failing as `fault` says.
pub struct Faulty {
    pub inner: Box<dyn Engine>,
    pub fault: Fault,
    /// `break:N` has struck: every request fails from now on.
    pub broken: bool,
}

impl Engine for Faulty {
    fn info(&self) -> EngineInfo {
        let mut info = self.inner.info();
        info.notes = format!("{}; FAULT INJECTED (LLM_BENCH_FAULT={:?}): not a measurement", info.notes, self.fault);
        info
    }

    fn generate(&mut self, prompts: &[Vec<u32>], options: &GenerateOptions, on_token: &mut dyn FnMut(TokenEvent)) -> Result<Vec<Vec<u32>>> {
        if self.broken {
            bail!("the engine's runtime is unusable since an earlier batch failed (injected by LLM_BENCH_FAULT)");
        }
        match self.fault {
            Fault::Break(n) if prompts.len() == n => {
                self.broken = true;
                bail!("a batch of {n} failed and left the engine's runtime unusable (injected by LLM_BENCH_FAULT)")
            }
            Fault::Panic(n) if prompts.len() == n => panic!("index out of bounds: a batch of {n} (injected by LLM_BENCH_FAULT)"),
            Fault::OutOfMemory(n) if prompts.len() == n => {
                bail!("out of memory: cannot allocate the KV cache of a batch of {n} (CUDA_ERROR_OUT_OF_MEMORY, injected by LLM_BENCH_FAULT)")
            }
            Fault::Squeeze(n) if prompts.len() == n => {
                let ballast = Ballast::take(self.inner.info().device)?;
                let result = self.inner.generate(prompts, options, on_token);
                drop(ballast);
                result.map_err(|e| {
                    e.context(format!("a batch of {n} on a GPU whose free memory was taken (LLM_BENCH_FAULT=squeeze); the engine's own error"))
                })
            }
            _ => self.inner.generate(prompts, options, on_token),
        }
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        self.inner.logits(prompt)
    }

    fn memory(&self) -> MemoryUse {
        self.inner.memory()
    }

    fn synchronize(&self) -> Result<()> {
        self.inner.synchronize()
    }

    fn settle(&self) -> Result<()> {
        self.inner.settle()
    }

    fn context_limit(&self) -> Option<usize> {
        self.inner.context_limit()
    }

    fn scheduled(&self) -> Option<&dyn Scheduled> {
        self.inner.scheduled()
    }

    fn warm_up_batches(&self) -> Vec<usize> {
        self.inner.warm_up_batches()
    }

    #[cfg(feature = "cuda")]
    fn cuda_stream(&self) -> Option<std::sync::Arc<cudarc::driver::CudaStream>> {
        self.inner.cuda_stream()
    }
}

/// All of a GPU's free memory, allocated with the driver and held until dropped: the engine
/// under test then runs on a GPU with nothing left to give, as if its batch did not fit. Taken
/// in pieces of 1 GiB, then halving down to 1 MiB, so fragments are taken too.
struct Ballast {
    #[cfg(feature = "cuda")]
    pieces: Vec<cudarc::driver::sys::CUdeviceptr>,
    #[cfg(feature = "cuda")]
    _context: std::sync::Arc<cudarc::driver::CudaContext>,
}

impl Ballast {
    #[cfg(feature = "cuda")]
    fn take(device: crate::engine::Device) -> Result<Self> {
        use cudarc::driver::{result, CudaContext};
        let crate::engine::Device::Cuda(ordinal) = device else {
            bail!("LLM_BENCH_FAULT=squeeze takes GPU memory, and this engine runs on the {device}: use it with a GPU engine")
        };
        let context = CudaContext::new(ordinal).map_err(|e| anyhow::anyhow!("squeeze: cannot open CUDA device {ordinal}: {e}"))?;
        context.bind_to_thread().map_err(|e| anyhow::anyhow!("squeeze: cannot use CUDA device {ordinal}: {e}"))?;
        let mut pieces = Vec::new();
        let mut piece: usize = 1 << 30;
        while piece >= 1 << 20 {
            let (free, _) = result::mem_get_info().map_err(|e| anyhow::anyhow!("squeeze: cannot read free memory: {e}"))?;
            if free < piece {
                piece /= 2;
                continue;
            }
            // SAFETY: the memory is never read or written, only held and freed in `drop`.
            match unsafe { result::malloc_sync(piece) } {
                Ok(p) => pieces.push(p),
                Err(_) => piece /= 2,
            }
        }
        Ok(Self { pieces, _context: context })
    }

    #[cfg(not(feature = "cuda"))]
    fn take(_device: crate::engine::Device) -> Result<Self> {
        bail!("LLM_BENCH_FAULT=squeeze takes GPU memory, and this binary was built without CUDA: rebuild with `--features cuda`")
    }
}

#[cfg(feature = "cuda")]
impl Drop for Ballast {
    fn drop(&mut self) {
        for p in self.pieces.drain(..) {
            // SAFETY: allocated by `malloc_sync` in `take`, freed once.
            unsafe {
                let _ = cudarc::driver::result::free_sync(p);
            }
        }
    }
}
