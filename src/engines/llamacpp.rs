//! llama.cpp: the GGUF engine most teams reach for, through the `llama-cpp-2` crate (which vendors
//! llama.cpp and builds it with CMake), used the way llama.cpp's own examples use its C API.
//!
//! The model is loaded from the GGUF file with every layer on the GPU (`n_gpu_layers` = all; on
//! the CPU none) and one context serves a batch: `n_seq_max` sequences, each with room for its
//! prompt and new tokens, the other context settings llama.cpp's defaults for this build: flash
//! attention `auto` (llama.cpp enables it where the device supports it), CUDA graphs on (ggml's
//! `GGML_CUDA_GRAPHS` default; captured and replayed by the CUDA backend for repeated decode
//! shapes), `n_batch` 2048 and `n_ubatch` 512, an f16 KV cache. A batch of requests is llama.cpp's
//! documented parallel decoding: one sequence id per request in one `llama_batch` (its `batched`
//! and `parallel` examples); prompts are fed in chunks of `n_batch` tokens, then every step adds
//! each sequence's last token at its position and decodes them together. The concurrent scenario
//! serves it through the suite's batcher, which hands it batches the same way (llama.cpp's own
//! request scheduler is its server, which is not part of the library).
//!
//! Greedy sampling is an argmax over each sequence's logits on the host, what llama.cpp's greedy
//! sampler computes (first maximum wins), without its candidate array; end-of-sequence is
//! ignored. A token is stamped when its logits are on the host (`llama_get_logits_ith` waits for
//! the device). The context is made again only when a batch needs more sequences or more room
//! than it has, so requests of one shape reuse it (and its captured CUDA graphs).
//!
//! The CUDA build: with `--features cuda,llamacpp` the binary links llama.cpp's shared libraries
//! (`dynamic-link`); which libraries it loads decides the backend. On the GPU machine
//! `scripts/device-run.sh` builds the crate's vendored llama.cpp source there with
//! `GGML_CUDA=ON`, `CMAKE_CUDA_ARCHITECTURES=90-real` and llama.cpp's other defaults (the
//! crate's build.rs options otherwise), and puts it first on `LD_LIBRARY_PATH`.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::engines::variant::Variant;
use crate::model::gguf::GgufFile;
use crate::model::llama::LlamaConfig;
use anyhow::{anyhow, ensure, Context, Result};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

/// llama.cpp's backend, initialised once per process (a second init is an error).
static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();

fn backend() -> Result<&'static LlamaBackend> {
    BACKEND
        .get_or_init(|| {
            // Quiet: the suite prints its own progress, llama.cpp would print every tensor.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default().with_logs_enabled(false));
            LlamaBackend::init().map_err(|e| format!("{e}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("llama.cpp's backend did not initialise: {e}"))
}

/// llama.cpp's default number of tokens one `llama_decode` call takes (`n_batch`).
const N_BATCH: usize = 2048;
/// Positions per sequence are rounded up to this, so requests of nearby lengths share a context.
const SEQ_ROUNDING: usize = 512;

pub struct LlamaCpp {
    variant: &'static Variant,
    where_: Device,
    cfg: LlamaConfig,
    /// The context borrows the model; it is declared first so it is dropped first, and the model
    /// is boxed so its address never moves while the context lives.
    ctx: Option<Ctx>,
    model: Box<LlamaModel>,
    threads: i32,
}

/// A context and the shape it was made for.
struct Ctx {
    ctx: LlamaContext<'static>,
    seqs: usize,
    positions_per_seq: usize,
}

impl LlamaCpp {
    pub fn load(path: &Path, device: Device, variant: &'static Variant) -> Result<Self> {
        let cfg = LlamaConfig::from_gguf(&GgufFile::open(path)?)?;
        let backend = backend()?;
        let params = match device {
            Device::Cpu => LlamaModelParams::default().with_n_gpu_layers(0),
            Device::Cuda(i) => {
                ensure!(
                    cfg!(feature = "cuda") && backend.supports_gpu_offload(),
                    "the llama.cpp libraries this process loaded have no CUDA backend (no libggml-cuda.so): build llama.cpp's \
                     source with -DGGML_CUDA=ON -DBUILD_SHARED_LIBS=ON (scripts/llamacpp-cuda.sh does it, and \
                     scripts/device-run.sh on the GPU machine) and put its library folder first in LD_LIBRARY_PATH; a binary \
                     needs `--features cuda,llamacpp`"
                );
                LlamaModelParams::default().with_n_gpu_layers(u32::MAX).with_main_gpu(i as i32)
            }
        };
        let model = LlamaModel::load_from_file(backend, path, &params)
            .with_context(|| format!("llama.cpp cannot load {}", path.display()))?;
        let threads = std::thread::available_parallelism().map_or(4, |n| n.get() as i32);
        Ok(Self { variant, where_: device, cfg, ctx: None, model: Box::new(model), threads })
    }

    /// A context with room for `seqs` sequences of `positions` each, reused when the current
    /// one has it.
    fn context(&mut self, seqs: usize, positions: usize) -> Result<&mut LlamaContext<'static>> {
        let fits = self.ctx.as_ref().is_some_and(|c| c.seqs >= seqs && c.positions_per_seq >= positions);
        if !fits {
            self.ctx = None; // free the old KV cache first
            let per_seq = positions.div_ceil(SEQ_ROUNDING) * SEQ_ROUNDING;
            let n_ctx = u32::try_from(seqs * per_seq).context("context too large for llama.cpp")?;
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(n_ctx))
                .with_n_seq_max(seqs as u32)
                .with_n_batch(N_BATCH as u32)
                .with_n_threads(self.threads)
                .with_n_threads_batch(self.threads);
            let ctx = self
                .model
                .new_context(backend()?, params)
                .with_context(|| {
                    // llama.cpp returns no context, and no reason (its log is off here), when it
                    // cannot allocate the context's KV cache and compute buffers.
                    format!(
                        "llama.cpp cannot make a context of {seqs} sequences x {per_seq} positions \
                         (it gives none when the KV cache and compute buffers of {n_ctx} positions cannot be allocated: out of memory)"
                    )
                })?;
            // SAFETY: the context borrows `*self.model`, a box that lives (at the same address)
            // as long as `self`, and `ctx` is dropped before it (field order, and `self.ctx = None`
            // above before any new context).
            let ctx: LlamaContext<'static> = unsafe { std::mem::transmute(ctx) };
            self.ctx = Some(Ctx { ctx, seqs, positions_per_seq: per_seq });
        }
        Ok(&mut self.ctx.as_mut().expect("made above").ctx)
    }
}

/// Index of the largest logit, the first one on ties (llama.cpp's greedy sampler).
fn argmax(logits: &[f32]) -> u32 {
    crate::engine::argmax(logits)
}

impl Engine for LlamaCpp {
    fn info(&self) -> EngineInfo {
        let device = match self.where_ {
            Device::Cpu => format!("CPU, {} threads", self.threads),
            Device::Cuda(_) => "all layers on the GPU (CUDA backend)".to_string(),
        };
        self.variant.info(
            self.where_,
            format!("llama.cpp (llama-cpp-2 {}, ggml vendored)", env!("LLM_BENCH_VERSION_LLAMA_CPP_2")),
            "weights Q8_0 (GGUF, as stored), KV cache f16".into(),
            format!(
                "{device}; flash attention auto and CUDA graphs on (llama.cpp's defaults), n_batch {N_BATCH}, n_ubatch 512; \
                 a batch is one llama_batch with a sequence id per request; greedy argmax on the host; served by the suite's batcher"
            ),
        )
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        ensure!(!prompts.is_empty() && prompts.iter().all(|p| !p.is_empty()), "llama.cpp needs non-empty prompts");
        let n = options.max_new_tokens;
        let b = prompts.len();
        let mut outputs = vec![Vec::with_capacity(n); b];
        if n == 0 {
            return Ok(outputs);
        }
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let ctx = self.context(b, longest + n)?;
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(N_BATCH.max(b), 1);
        // Prefill: every prompt token at its position in its sequence, `n_batch` tokens per call;
        // logits for each prompt's last token, read as soon as its chunk is decoded.
        let tokens: Vec<(usize, usize, u32)> =
            prompts.iter().enumerate().flat_map(|(seq, p)| p.iter().enumerate().map(move |(pos, &t)| (seq, pos, t))).collect();
        let mut first = vec![0u32; b];
        let mut first_at = vec![Instant::now(); b];
        for chunk in tokens.chunks(N_BATCH) {
            batch.clear();
            for &(seq, pos, t) in chunk {
                let last = pos + 1 == prompts[seq].len();
                batch.add(LlamaToken(t as i32), pos as i32, &[seq as i32], last)?;
            }
            ctx.decode(&mut batch).map_err(|e| anyhow!("llama.cpp could not decode the prompts: {e}"))?;
            for (i, &(seq, pos, _)) in chunk.iter().enumerate() {
                if pos + 1 == prompts[seq].len() {
                    first[seq] = argmax(ctx.get_logits_ith(i as i32));
                    first_at[seq] = Instant::now();
                }
            }
        }
        let mut next = first;
        for (request, &token) in next.iter().enumerate() {
            on_token(TokenEvent { request, index: 0, token, at: first_at[request] });
            outputs[request].push(token);
        }
        // Decode: one token per sequence per step, all in one batch.
        for index in 1..n {
            batch.clear();
            for (seq, &t) in next.iter().enumerate() {
                let pos = prompts[seq].len() + index - 1;
                batch.add(LlamaToken(t as i32), pos as i32, &[seq as i32], true)?;
            }
            ctx.decode(&mut batch).map_err(|e| anyhow!("llama.cpp could not decode step {index}: {e}"))?;
            for (seq, slot) in next.iter_mut().enumerate() {
                *slot = argmax(ctx.get_logits_ith(seq as i32));
            }
            let at = Instant::now();
            for (request, &token) in next.iter().enumerate() {
                on_token(TokenEvent { request, index, token, at });
                outputs[request].push(token);
            }
        }
        Ok(outputs)
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        ensure!(!prompt.is_empty(), "llama.cpp needs a non-empty prompt");
        let ctx = self.context(1, prompt.len())?;
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(N_BATCH, 1);
        let mut last = Vec::new();
        for (c, chunk) in prompt.chunks(N_BATCH).enumerate() {
            batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let pos = c * N_BATCH + i;
                batch.add(LlamaToken(t as i32), pos as i32, &[0], pos + 1 == prompt.len())?;
            }
            ctx.decode(&mut batch).map_err(|e| anyhow!("llama.cpp could not decode the prompt: {e}"))?;
            if (c + 1) * N_BATCH >= prompt.len() {
                last = ctx.get_logits_ith(chunk.len() as i32 - 1).to_vec();
            }
        }
        Ok(last)
    }

    fn memory(&self) -> MemoryUse {
        let c = &self.cfg;
        let kv = self.ctx.as_ref().map_or(0, |x| x.seqs * x.positions_per_seq) * 2 * c.n_layers * c.n_kv_heads * c.head_dim * 2;
        MemoryUse { weights_bytes: self.model.size(), kv_cache_bytes: kv as u64, device_peak_bytes: None }
    }
}
