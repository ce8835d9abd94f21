//! A fault on purpose, for the tests of what a failing engine does to a run:
//! `LLM_BENCH_FAULT=panic:N` makes the loaded engine panic inside every batch of exactly N
//! requests, `LLM_BENCH_FAULT=oom:N` makes it return the error an engine gives when it runs out
//! of device memory. Everything else is the real engine, so the harness's recovery (that case
//! recorded as failed with the engine's message, the next cases and engines measured) is tested
//! through the real binary. The engine info says a fault is injected, so no figure of such a run
//! can pass for a real one.

use crate::engine::{Engine, EngineInfo, GenerateOptions, MemoryUse, Scheduled, TokenEvent};
use anyhow::{bail, Result};

/// What fails, and for which batch size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Panic(usize),
    OutOfMemory(usize),
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
            bail!("LLM_BENCH_FAULT={v}: give panic:<batch size> or oom:<batch size>, e.g. oom:32")
        };
        Ok(Some(match kind {
            "panic" => Fault::Panic(n),
            "oom" => Fault::OutOfMemory(n),
            _ => bail!("LLM_BENCH_FAULT={v}: `{kind}` is not a fault; use panic or oom"),
        }))
    }
}

/// The real engine, failing as `fault` says.
pub struct Faulty {
    pub inner: Box<dyn Engine>,
    pub fault: Fault,
}

impl Engine for Faulty {
    fn info(&self) -> EngineInfo {
        let mut info = self.inner.info();
        info.notes = format!("{}; FAULT INJECTED (LLM_BENCH_FAULT={:?}): not a measurement", info.notes, self.fault);
        info
    }

    fn generate(&mut self, prompts: &[Vec<u32>], options: &GenerateOptions, on_token: &mut dyn FnMut(TokenEvent)) -> Result<Vec<Vec<u32>>> {
        match self.fault {
            Fault::Panic(n) if prompts.len() == n => panic!("index out of bounds: a batch of {n} (injected by LLM_BENCH_FAULT)"),
            Fault::OutOfMemory(n) if prompts.len() == n => {
                bail!("out of memory: cannot allocate the KV cache of a batch of {n} (CUDA_ERROR_OUT_OF_MEMORY, injected by LLM_BENCH_FAULT)")
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

    #[cfg(feature = "cuda")]
    fn cuda_stream(&self) -> Option<std::sync::Arc<cudarc::driver::CudaStream>> {
        self.inner.cuda_stream()
    }
}
