//! mistral.rs: the GGUF pipeline and request scheduler of mistralrs 0.8.1, used as its own
//! documentation shows for local GGUF files, with three settings a benchmark needs.
//!
//! - End-of-sequence never stops a request (`with_disable_eos_stop`): every engine generates
//!   exactly the requested number of tokens. `GgufModelBuilder::build` hard-codes this off, so the
//!   pipeline and the runner are built here from mistral.rs's loader and `MistralRsBuilder`.
//! - The prefix cache is off: repeated benchmark prompts must cost what a new prompt costs.
//!
//! Two configurations ([`Setting`]): `mistralrs` is what `GgufModelBuilder` builds by default,
//! no paged attention and the default scheduler (sequences of unequal length wait for each
//! other's turn; mistralrs-bench's `--no_paged_attn`); `mistralrs-paged` (CUDA) is what
//! mistral.rs's server runs by default on CUDA, paged attention and its scheduler, with a fixed
//! KV-cache pool (`LLM_BENCH_MISTRALRS_KV_MB`, default 4096 MB) so mistral.rs does not claim most
//! of the GPU the way its utilisation default does. Its scheduler groups running sequences by
//! exact length and preempts all groups but one, re-prefilling them (mistral.rs #2024, #2343).
//!
//! Requests go through mistral.rs's own scheduler (continuous batching, up to `MAX_SEQS` at once):
//! a batch handed to `generate` is sent as that many separate streaming requests, as a server's
//! clients would send them. Prompts are token ids (`RequestMessage::CompletionTokens`), so
//! mistral.rs sees exactly the ids every other engine sees.
//!
//! Timing. mistral.rs streams a chunk only when a token completes valid UTF-8 text, so chunks
//! cannot time every token. Each request therefore carries a logits processor, the hook
//! mistral.rs calls on the host for every sampling step after the step's logits were copied back;
//! it records the instant and the sequence so far (which gives the token ids). The stream is still
//! consumed as a client would consume it. The last token's id is the argmax of the last step's
//! logits, ties to the highest index like mistral.rs's own greedy sampler.
//!
//! Greedy decoding is asked for as temperature 0 ([`greedy`]), which mistral.rs's sampler turns
//! into its argmax. `SamplingParams::deterministic()` alone leaves the temperature unset, and
//! mistral.rs 0.8.1 then samples at temperature 1 with top-k 1 (`add_request.rs`: `unwrap_or(1.0)`):
//! the same token, after a softmax over the 128K-token vocabulary and a sort, per sequence per
//! step, on the host, while the GPU waits.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, Scheduled, TokenEvent};
use crate::engines::variant::{Setting, Variant};
use crate::model::gguf::GgufFile;
use anyhow::{bail, ensure, Context, Result};
use mistralrs::core::{
    AdapterPaths, AutoDeviceMapParams, Constraint, CustomLogitsProcessor, DefaultSchedulerMethod,
    DeviceMapSetting, GGUFLoaderBuilder, GGUFSpecificConfig, LocalModelPaths, MemoryGpuConfig,
    MistralRs as Runner, MistralRsBuilder, ModelDType, ModelPaths, NormalRequest, PagedAttentionConfig,
    PagedCacheType, Request, RequestMessage, Response, SamplingParams, SchedulerConfig,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most sequences mistral.rs's scheduler runs at once: `GgufModelBuilder`'s default
/// `max_num_seqs` (mistralrs 0.8.1 `src/gguf.rs`), more waiting their turn. Not the suite's
/// largest batch (64), which the suite had set before: mistral.rs 0.8.1 copies the whole batch's
/// logits to the host once per sequence per step (its sampler's `to_vec1` of a view into the
/// `[batch, 1, vocab]` tensor copies the whole buffer), O(batch²) bytes, so a step at 64
/// sequences took 1.35 s against 110 ms at 32 (h200-2026-12-03-whole: one batch of 64 in 43.5 s,
/// two of 32 would take about 7.4 s if that were all; with 32 at once the batch of 64 still took
/// 45.2 s in h200-2026-12-04-table, so part of that cost is elsewhere, not yet found). Fixed upstream in 0.9.1 (one stacked copy per step,
/// mistral.rs PR #2354), not on crates.io, where mistralrs-core's newest is 0.8.1.
pub const MAX_SEQS: usize = 32;
/// Longest sequence the device mapper plans for: the 8K long-context case plus its new tokens.
const MAX_SEQ_LEN: usize = 8192 + 512;
/// Default KV-cache pool for paged attention on CUDA, in MB.
const DEFAULT_KV_MB: usize = 4096;

pub struct MistralRs {
    variant: &'static Variant,
    /// mistral.rs is async; its engine runs on threads of its own, this runtime drives requests.
    runtime: tokio::runtime::Runtime,
    runner: Arc<Runner>,
    where_: Device,
    dtype: ModelDType,
    /// The paged-attention pool in MB, `None` for mistral.rs's default (growing) cache.
    kv_pool_mb: Option<usize>,
    weights_bytes: u64,
    /// Streams of finished requests that mistral.rs has not closed yet.
    pending: Mutex<Vec<Stream>>,
}

/// What one request's logits processor saw.
#[derive(Default)]
struct Trace {
    /// When each step's logits were on the host, one per new token.
    at: Vec<Instant>,
    /// Tokens known so far: the sequence's last token at each step after the first.
    tokens: Vec<u32>,
}

impl MistralRs {
    pub fn load(model: &Path, tokenizer: &Path, device: Device, variant: &'static Variant) -> Result<Self> {
        let weights_bytes = {
            let g = GgufFile::open(model)?;
            g.tensors.values().map(|t| t.byte_len() as u64).sum()
        };
        let cdev = match device {
            Device::Cpu => mistralrs::Device::Cpu,
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => mistralrs::Device::new_cuda(i)
                .with_context(|| format!("mistral.rs cannot open CUDA device {i}; is an NVIDIA driver installed?"))?,
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => bail!("mistral.rs was built without CUDA; rebuild with `--features cuda` to run it on a GPU"),
        };
        // bf16 is what mistral.rs's `auto` picks on GPUs of compute capability 8.0 and newer; on the
        // CPU `auto` would also pick bf16, f32 keeps the CPU engines comparable.
        let dtype = if device.is_gpu() { ModelDType::BF16 } else { ModelDType::F32 };
        let kv_pool_mb = match (device, variant.setting) {
            (Device::Cpu, _) => None,
            (Device::Cuda(_), Setting::PagedAttention) => Some(match std::env::var("LLM_BENCH_MISTRALRS_KV_MB") {
                Ok(v) => v.parse().with_context(|| format!("LLM_BENCH_MISTRALRS_KV_MB={v:?} is not a number of MB"))?,
                Err(_) => DEFAULT_KV_MB,
            }),
            (Device::Cuda(_), _) => None,
        };

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting a tokio runtime for mistral.rs")?;

        let loader = GGUFLoaderBuilder::new(
            None,
            None,
            model.parent().unwrap_or(Path::new(".")).display().to_string(),
            vec![model.file_name().context("model path has no file name")?.to_string_lossy().into_owned()],
            GGUFSpecificConfig { topology: None },
            false,
            None,
        )
        .build();
        let paths: Box<dyn ModelPaths> = Box::new(LocalModelPaths {
            tokenizer_filename: tokenizer.to_path_buf(),
            config_filename: PathBuf::new(),
            template_filename: None,
            filenames: vec![model.to_path_buf()],
            adapter_paths: AdapterPaths::None,
            gen_conf: None,
            preprocessor_config: None,
            processor_config: None,
            chat_template_json_filename: None,
        });
        let paged = match kv_pool_mb {
            Some(mb) => Some(PagedAttentionConfig::new(Some(32), MemoryGpuConfig::MbAmount(mb), PagedCacheType::Auto)?),
            None => None,
        };
        let pipeline = loader
            .load_model_from_path(
                &paths,
                &dtype,
                &cdev,
                true,
                DeviceMapSetting::Auto(AutoDeviceMapParams::Text { max_seq_len: MAX_SEQ_LEN, max_batch_size: MAX_SEQS }),
                None,
                paged,
            )
            .with_context(|| format!("mistral.rs could not load {}", model.display()))?;

        let runner = runtime.block_on(async {
            let cache_config = pipeline.lock().await.get_metadata().cache_config.clone();
            let scheduler = match (kv_pool_mb, cache_config) {
                (Some(_), Some(config)) => SchedulerConfig::PagedAttentionMeta { max_num_seqs: MAX_SEQS, config },
                (Some(_), None) => bail!("mistral.rs did not set up paged attention on {device}"),
                (None, _) => SchedulerConfig::DefaultScheduler {
                    method: DefaultSchedulerMethod::Fixed(MAX_SEQS.try_into().expect("MAX_SEQS > 0")),
                },
            };
            Ok(MistralRsBuilder::new(pipeline, scheduler, false, None)
                .with_no_prefix_cache(true)
                .with_prefix_cache_n(0)
                .with_disable_eos_stop(true)
                .build()
                .await)
        })?;
        Ok(Self { variant, runtime, runner, where_: device, dtype, kv_pool_mb, weights_bytes, pending: Mutex::default() })
    }

    /// Send one streaming request and return its trace as soon as its `n` tokens are known,
    /// with the rest of its stream: mistral.rs 0.8.1 runs one forward step more than asked for
    /// a request of one token (seen as a second sampler call), and that step must not be timed.
    /// `settle` (and the next `generate`) wait for those streams to end.
    async fn request(runner: Arc<Runner>, prompt: Vec<u32>, n: usize) -> Result<(Trace, Stream)> {
        let prompt_len = prompt.len();
        let trace = Arc::new(Mutex::new(Trace::default()));
        let seen = trace.clone();
        let processor = move |logits: &mistralrs::Tensor, ctx: &[u32]| -> mistralrs::Result<mistralrs::Tensor> {
            let now = Instant::now();
            let mut t = seen.lock().unwrap();
            let step = ctx.len() - prompt_len;
            if step < n {
                t.at.push(now);
                if step > 0 {
                    t.tokens.push(ctx[ctx.len() - 1]);
                }
                if step + 1 == n {
                    t.tokens.push(argmax_last(&logits.to_vec1::<f32>()?));
                }
            }
            Ok(logits.clone())
        };
        // One chunk per token at most, plus the final one: the engine never waits on this channel.
        let (tx, mut rx) = tokio::sync::mpsc::channel(n + 16);
        let request = completion(&runner, prompt, n, true, Arc::new(processor), tx);
        runner.get_sender(None)?.send(request).await.context("mistral.rs's engine has stopped")?;
        loop {
            match rx.recv().await {
                None => break,
                Some(response) => check(response)?,
            }
            if trace.lock().unwrap().tokens.len() >= n {
                break;
            }
        }
        let trace = std::mem::take(&mut *trace.lock().unwrap());
        Ok((trace, rx))
    }

    /// Wait for the streams of earlier requests to end.
    fn drain(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        self.runtime.block_on(async {
            for mut rx in pending {
                while let Some(response) = rx.recv().await {
                    check(response)?;
                }
            }
            Ok(())
        })
    }
}

/// The rest of a request's response stream.
type Stream = tokio::sync::mpsc::Receiver<Response>;

/// An error response as an error; any other response is a stream item.
fn check(response: Response) -> Result<()> {
    match response {
        Response::InternalError(e) | Response::ValidationError(e) => bail!("mistral.rs: {e}"),
        Response::CompletionModelError(e, _) | Response::ModelError(e, _) => bail!("mistral.rs model error: {e}"),
        _ => Ok(()),
    }
}

/// One request as a client sends it: the prompt's token ids, greedy for `n` tokens, the logits
/// processor that times (or reads) every step, answered on `tx`.
fn completion(
    runner: &Runner,
    prompt: Vec<u32>,
    n: usize,
    streaming: bool,
    processor: Arc<dyn CustomLogitsProcessor>,
    tx: tokio::sync::mpsc::Sender<Response>,
) -> Request {
    Request::Normal(Box::new(NormalRequest {
        messages: RequestMessage::CompletionTokens(prompt),
        sampling_params: greedy(n),
        response: tx,
        return_logprobs: false,
        is_streaming: streaming,
        id: runner.next_request_id(),
        constraint: Constraint::None,
        suffix: None,
        tools: None,
        tool_choice: None,
        logits_processors: Some(vec![processor]),
        return_raw_logits: false,
        web_search_options: None,
        model_id: None,
        truncate_sequence: false,
    }))
}

/// Greedy decoding of `n` tokens: `deterministic()` (top-k 1, no penalties) with temperature 0,
/// which mistral.rs's `Sampler::new` maps to its argmax path (below 1e-7 it drops the
/// temperature) instead of the temperature-1 softmax the unset one becomes.
fn greedy(n: usize) -> SamplingParams {
    SamplingParams { max_len: Some(n), temperature: Some(0.0), ..SamplingParams::deterministic() }
}

/// Index of the largest value, ties to the highest index (mistral.rs's greedy sampler).
fn argmax_last(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x >= xs[best] {
            best = i;
        }
    }
    best as u32
}

impl Engine for MistralRs {
    fn info(&self) -> EngineInfo {
        let kv = match self.kv_pool_mb {
            Some(mb) => format!("paged attention, fixed KV pool {mb} MB, block 32"),
            None => "default KV cache and scheduler (no paged attention)".to_string(),
        };
        self.variant.info(
            self.where_,
            format!("mistralrs {}", env!("LLM_BENCH_VERSION_MISTRALRS")),
            format!("weights Q8_0 (GGUF), activations {}", self.dtype),
            format!(
                "own scheduler (continuous batching, up to {MAX_SEQS} sequences), prefix cache off, EOS ignored, {kv}; \
                 greedy by argmax (temperature 0); tokens timed at the sampler hook"
            ),
        )
    }

    fn context_limit(&self) -> Option<usize> {
        Some(MAX_SEQ_LEN)
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        let n = options.max_new_tokens;
        ensure!(n > 0, "mistral.rs needs at least one new token per request");
        self.drain()?;
        let runner = self.runner.clone();
        let done = self.runtime.block_on(async {
            let tasks: Vec<_> = prompts.iter().map(|p| tokio::spawn(Self::request(runner.clone(), p.clone(), n))).collect();
            let mut done = Vec::with_capacity(tasks.len());
            for t in tasks {
                done.push(t.await.context("a mistral.rs request task panicked")??);
            }
            Ok::<_, anyhow::Error>(done)
        })?;
        let mut out = Vec::with_capacity(prompts.len());
        let mut traces = Vec::with_capacity(done.len());
        for (trace, rest) in done {
            traces.push(trace);
            self.pending.lock().unwrap().push(rest);
        }
        for (request, trace) in traces.into_iter().enumerate() {
            ensure!(
                trace.tokens.len() == n && trace.at.len() == n,
                "mistral.rs produced {} tokens ({} sampling steps) for request {request}, {n} were asked for",
                trace.tokens.len(),
                trace.at.len()
            );
            for (index, (&token, &at)) in trace.tokens.iter().zip(&trace.at).enumerate() {
                on_token(TokenEvent { request, index, token, at });
            }
            out.push(trace.tokens);
        }
        Ok(out)
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        self.drain()?;
        let prompt_len = prompt.len();
        let seen: Arc<Mutex<Option<Vec<f32>>>> = Arc::default();
        let keep = seen.clone();
        let runner = self.runner.clone();
        let prompt = prompt.to_vec();
        self.runtime.block_on(async move {
            let processor = move |logits: &mistralrs::Tensor, ctx: &[u32]| -> mistralrs::Result<mistralrs::Tensor> {
                if ctx.len() == prompt_len {
                    *keep.lock().unwrap() = Some(logits.to_vec1::<f32>()?);
                }
                Ok(logits.clone())
            };
            let (tx, mut rx) = tokio::sync::mpsc::channel(16);
            let request = completion(&runner, prompt, 1, false, Arc::new(processor), tx);
            runner.get_sender(None)?.send(request).await.context("mistral.rs's engine has stopped")?;
            while let Some(response) = rx.recv().await {
                check(response)?;
            }
            Ok::<(), anyhow::Error>(())
        })?;
        let logits = seen.lock().unwrap().take();
        logits.context("mistral.rs never showed the prompt's logits to the logits processor")
    }

    fn memory(&self) -> MemoryUse {
        MemoryUse {
            weights_bytes: self.weights_bytes,
            kv_cache_bytes: self.kv_pool_mb.map_or(0, |mb| mb as u64 * 1024 * 1024),
            device_peak_bytes: None,
        }
    }

    fn scheduled(&self) -> Option<&dyn Scheduled> {
        Some(self)
    }

    /// Wait until mistral.rs has closed every finished request's stream (see `request`).
    fn settle(&self) -> Result<()> {
        self.drain()
    }
}

impl Scheduled for MistralRs {
    fn serve(&self, prompt: Vec<u32>, new_tokens: usize) -> Result<Vec<Instant>> {
        let (trace, mut rest) = self.runtime.block_on(Self::request(self.runner.clone(), prompt, new_tokens))?;
        // The stream's end is not part of this request's time; let it close in the background.
        self.runtime.spawn(async move { while rest.recv().await.is_some() {} });
        Ok(trace.at)
    }

    fn scheduler(&self) -> String {
        let kind = if self.kv_pool_mb.is_some() { "paged-attention scheduler" } else { "default scheduler" };
        format!("mistral.rs's own {kind} (continuous batching, up to {MAX_SEQS} sequences)")
    }
}
