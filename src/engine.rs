//! The one seam between scenarios and engines.
//!
//! A scenario hands an engine token ids and an exact number of new tokens; the engine streams
//! each new token back with the instant it became available on the host. Everything a scenario
//! reports (TTFT, inter-token latency, throughput) is computed afterwards from those events, so
//! every engine is measured by the same code.

use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// The largest batch a scenario hands an engine in one `generate` call (the shared batcher's
/// largest batch, the sustained scenario's largest): engines that size buffers or scheduler
/// limits up front size them for this.
pub const MAX_BATCH: usize = 64;

/// Where an engine runs. Written as `cpu` or `cuda:N` in results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// A CUDA device by ordinal.
    Cuda(usize),
}

impl Device {
    pub fn is_gpu(self) -> bool {
        matches!(self, Device::Cuda(_))
    }
}

impl Serialize for Device {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// What an engine is, as printed in every result: a number means nothing without it.
#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    /// Short stable name used in Criterion group ids: the engine's variant, `candle`,
    /// `candle-f16`, `mistralrs`, ... (see `crate::engines::VARIANTS`).
    pub name: String,
    /// The configuration that ran, in one line (the variant's).
    pub config: String,
    /// The library and version measured, e.g. `candle-core 0.10.2`.
    pub version: String,
    pub device: Device,
    /// Weight and activation precision, e.g. `weights Q8_0, activations f32`.
    pub precision: String,
    /// Anything a reader needs to interpret the figures (threads, attention kind, ...).
    pub notes: String,
}

/// How the next token is chosen. Benchmarks use greedy decoding: it is deterministic, so every
/// engine does the same work and outputs can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Sampling {
    Greedy,
}

/// What to generate for each request of a batch.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GenerateOptions {
    /// Exactly this many tokens are generated per request; end-of-sequence does not stop it.
    pub max_new_tokens: usize,
    pub sampling: Sampling,
}

impl GenerateOptions {
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self { max_new_tokens, sampling: Sampling::Greedy }
    }
}

/// One new token, as the engine handed it to the host.
#[derive(Debug, Clone, Copy)]
pub struct TokenEvent {
    /// Index of the request within the batch.
    pub request: usize,
    /// 0 for the first new token.
    pub index: usize,
    pub token: u32,
    pub at: Instant,
}

/// Memory an engine holds, as far as it can tell.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct MemoryUse {
    /// Bytes of model weights as the engine stores them.
    pub weights_bytes: u64,
    /// Bytes of key/value cache currently allocated.
    pub kv_cache_bytes: u64,
    /// The engine's own peak figure for device memory, where it keeps one.
    pub device_peak_bytes: Option<u64>,
}

/// An inference engine under test.
///
/// `generate` must produce exactly `max_new_tokens` tokens per request (end-of-sequence ignored),
/// call `on_token` for each one as soon as it is on the host, and return the new tokens per
/// request. Prompts of one batch may be required to have equal lengths; an engine that cannot
/// serve a batch returns an error saying so instead of doing something else.
pub trait Engine: Send {
    fn info(&self) -> EngineInfo;

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>>;

    /// Logits at the last position of `prompt` (a fresh sequence), for correctness checks.
    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>>;

    fn memory(&self) -> MemoryUse;

    /// Block until all work the engine queued on its device has finished. CPU engines finish
    /// synchronously and need not override this.
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// Finish background work that is not part of the requests already returned, between two
    /// timed requests and outside the timing (mistral.rs runs a step past a one-token request
    /// before it closes that request's stream). Engines without such work need not override this.
    fn settle(&self) -> Result<()> {
        Ok(())
    }

    /// The longest sequence (prompt plus new tokens) the engine can hold, where it allocates for
    /// a fixed one; `None` when only the model's trained context limits it. Checked before a
    /// request is made, so a case that cannot fit is recorded as not runnable with the reason.
    fn context_limit(&self) -> Option<usize> {
        None
    }

    /// Batch sizes whose first use compiles or autotunes kernels for that shape (burn-cuda's
    /// fusion and autotune), for an engine that serves every batch as one of these sizes. A
    /// scenario that hands an engine batches of many sizes (the concurrent scenario's batcher)
    /// serves one untimed batch of each first, so compilation is start-up, never inside a figure.
    /// Empty (the default) for engines whose kernels do not depend on the batch's shape.
    fn warm_up_batches(&self) -> Vec<usize> {
        Vec::new()
    }

    /// Engines with a request scheduler of their own (continuous batching) serve concurrent
    /// requests themselves; the concurrent-load scenario then hands them each request directly
    /// instead of going through the suite's batcher.
    fn scheduled(&self) -> Option<&dyn Scheduled> {
        None
    }

    /// The CUDA stream the engine queues its work on, for CUDA-event timing. Engines on the CPU,
    /// or whose stream is not reachable, return `None` and are timed by wall clock.
    #[cfg(feature = "cuda")]
    fn cuda_stream(&self) -> Option<std::sync::Arc<cudarc::driver::CudaStream>> {
        None
    }
}

/// An engine that takes requests from many clients at once and schedules them itself.
pub trait Scheduled: Sync {
    /// Serve one request from the calling client thread: block until its last token and return
    /// the instant each token reached the host. Called from many threads at once.
    fn serve(&self, prompt: Vec<u32>, new_tokens: usize) -> Result<Vec<Instant>>;

    /// How requests are scheduled, as named in the results.
    fn scheduler(&self) -> String;
}

/// A model on disk and the tokenizer that goes with it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelFiles {
    /// Short name used in reports, e.g. `llama-3.2-1b-shape-q8_0`.
    pub name: String,
    pub gguf: PathBuf,
    pub tokenizer: PathBuf,
}

/// `(batch, prompt length)` of a batch of equal-length, non-empty prompts, as engines that run
/// a batch as one `(batch, seq)` tensor need it; `engine` names the engine in the error.
pub fn equal_length_batch(engine: &str, prompts: &[Vec<u32>]) -> Result<(usize, usize)> {
    anyhow::ensure!(
        !prompts.is_empty() && !prompts[0].is_empty(),
        "{engine} needs at least one non-empty prompt"
    );
    let s = prompts[0].len();
    anyhow::ensure!(
        prompts.iter().all(|p| p.len() == s),
        "{engine} batches equal-length prompts only; serve unequal prompts one by one"
    );
    Ok((prompts.len(), s))
}

/// Generate greedily and collect the tokens, for callers that do not time anything.
pub fn generate_tokens(engine: &mut dyn Engine, prompt: &[u32], n: usize) -> Result<Vec<u32>> {
    let mut out = engine.generate(&[prompt.to_vec()], &GenerateOptions::greedy(n), &mut |_| {})?;
    Ok(out.remove(0))
}

/// Index of the largest value; ties go to the lowest index, as in every engine's argmax.
pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}
