//! Burn: the suite's Llama on burn 0.21's `nn` modules, generic over the backend, read top to bottom.
//!
//! Burn has no GGUF loader and no published Llama, so the model is written here from burn-nn's
//! `Embedding`, `RmsNorm`, `RotaryEncoding`, `Linear` and `SwiGlu`, and its weights are read with
//! the suite's own GGUF reader (`crate::model::gguf`), the same bytes every other engine reads. Attention
//! is written out on burn tensor ops, as candle.rs does it: a KV cache allocated once per request
//! batch (rounded up to 512 positions, so 8K-token documents fit), grouped-query attention by
//! reshaping the queries instead of copying the keys and values once per head, and a causal mask
//! for prefill.
//!
//! One generic `Model<B: Backend>` runs on two backends, chosen at run time from the suite's device:
//! `NdArray<f32>` on the CPU (CI) and `Cuda<f16>` on a GPU (feature `cuda`; CubeCL kernels compiled
//! by NVRTC at run time). Weights are dequantized from their GGUF blocks at load, to f32 on the CPU
//! and f16 on the GPU: burn 0.21 can hold Q8 block-quantized tensors, but `nn::Linear` dequantizes
//! a quantized weight in full on every call, and only CubeCL's matmul reads quantized operands in
//! its kernel (the ndarray backend dequantizes first), so the dense path is what a burn user of
//! `nn` modules gets today. Norm statistics (burn's `RmsNorm` does them in f32) and the attention
//! softmax are computed in f32 on both backends.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::engines::variant::{Setting, Variant};
use crate::model::gguf::GgufFile;
use crate::model::llama::{names, LlamaConfig};
use anyhow::{anyhow, bail, ensure, Result};
use burn::backend::ndarray::{NdArray, NdArrayDevice};
use burn::module::Param;
use burn::nn::{Embedding, Linear, LinearLayout, RmsNorm, RotaryEncoding, RotaryEncodingConfig, SwiGlu};
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Instant;

#[cfg(feature = "cuda")]
use burn::backend::cuda::{Cuda, CudaDevice};
#[cfg(feature = "cuda")]
use burn::tensor::f16;

/// The GPU backend: every float tensor (weights, activations, KV cache) in f16.
#[cfg(feature = "cuda")]
type Gpu = Cuda<f16>;

/// burn-cuda's backend without its kernel fusion: the `CubeBackend` that `Cuda` wraps in
/// `Fusion` when burn-cuda's `fusion` feature is on (`burn-col-unfused`). A matmul fused with its
/// element-wise consumer is tuned by the fused-matmul autotune, which in h200-2026-12-03-burn-col
/// did not take the one-row gemv; unfused, each matmul is tuned on its own.
#[cfg(feature = "cuda")]
type GpuUnfused = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, f16, i32, u8>;

/// Room allocated in the KV cache is rounded up to this many positions.
const CACHE_ROUNDING: usize = 512;

/// On CUDA a batch runs as one of these row counts, padded with copies of its first prompt whose
/// tokens are discarded. burn-cuda compiles its fused kernels and autotunes its matmuls for each
/// new shape on first use (seconds per shape, on the H200 up to a minute per batch size); a
/// batcher that forms batches of every size from 1 to 64 would pay that inside its requests
/// (h200-2026-12-02-c: a first rate-search probe of 18 requests took 295 s). Padding to powers of
/// two bounds the shapes to these seven, which the concurrent scenario compiles at start-up
/// (`Engine::warm_up_batches`), as compiled serving stacks pad to captured batch sizes; the extra
/// rows cost little where a decode step is dominated by fixed cost, as Burn's is.
const BATCH_BUCKETS: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// The row count a batch of `b` runs as when padded (`b` itself above the largest bucket).
fn bucket(b: usize) -> usize {
    BATCH_BUCKETS.into_iter().find(|&r| r >= b).unwrap_or(b)
}

/// Load the model on the backend that matches the device: the engine the suite runs.
pub fn load(path: &Path, device: Device, variant: &'static Variant) -> Result<Box<dyn Engine>> {
    let g = GgufFile::open(path)?;
    Ok(match device {
        Device::Cpu => Box::new(Model::<NdArray<f32>>::load(
            &g,
            device,
            NdArrayDevice::Cpu,
            "burn-ndarray (pure-Rust CPU backend)",
            variant,
        )?),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) if variant.setting == Setting::ColumnWeightsUnfused => Box::new(load_cuda::<GpuUnfused>(
            &g,
            i,
            variant,
            "burn-cuda's CubeBackend without fusion (CubeCL kernels compiled by NVRTC at run time, autotuned)",
        )?),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => Box::new(load_cuda::<Gpu>(
            &g,
            i,
            variant,
            "burn-cuda (CubeCL kernels compiled by NVRTC at run time, fused and autotuned)",
        )?),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => {
            bail!("Burn was built without CUDA; rebuild with `--features cuda` to run it on a GPU")
        }
    })
}

/// cubecl-cuda panics instead of returning an error when there is no driver or device, and
/// NVRTC failures surface as panics at the first kernel launch. So the model is loaded and a
/// two-token request run under `catch`: a machine that cannot run burn-cuda gets an error that
/// says what it needs, at load time instead of inside the first measured request, and the kernels
/// of both prefill and decode are compiled before anything is timed.
#[cfg(feature = "cuda")]
fn load_cuda<B: Backend<Device = CudaDevice>>(g: &GgufFile, index: usize, variant: &'static Variant, backend: &str) -> Result<Model<B>> {
    let kernel_cache = keep_compiled_kernels();
    catch("loading the model on CUDA", || {
        let mut model = Model::<B>::load(g, Device::Cuda(index), CudaDevice::new(index), backend, variant)?;
        model.pad_batches = true;
        model.notes.push_str(&format!(
            "; on CUDA a batch runs padded to {BATCH_BUCKETS:?} rows (kernels compiled and autotuned per shape; padded rows discarded); {kernel_cache}"
        ));
        model.run(&[vec![0, 0]], 2, &mut |_| {})?;
        Ok(model)
    })
    .map_err(|e| {
        e.context(format!(
            "burn-cuda cannot run on CUDA device {index}; it needs an NVIDIA driver, libnvrtc.so at run time \
             and the CUDA headers under $CUDA_PATH/include (default /usr/local/cuda/include)"
        ))
    })
}

/// burn-cuda compiles every kernel with NVRTC again in each new process: the untimed warm-up of
/// the seven batch shapes took 193 s on an H200 whose autotune cache was already warm
/// (h200-2026-12-03-rate3), and the suite starts Burn once per scenario and variant. CubeCL can
/// keep the PTX it compiles on disk (`[compilation] cache` of `cubecl.toml` or `burn.toml`'s
/// `[cubecl]` section; off by default): this turns it on, in the same place as the autotune cache,
/// unless the user's file names a place. Start-up only: the kernels that run are the same. It must
/// be set before CubeCL first reads its configuration, so before the first device is made; once
/// per process. Returns what the engine info says about it.
#[cfg(feature = "cuda")]
fn keep_compiled_kernels() -> &'static str {
    use cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    static SAID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SAID.get_or_init(|| {
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if config.compilation.cache.is_none() {
            config.compilation.cache = Some(config.autotune.cache.clone());
        }
        let root = config.compilation.cache.as_ref().map(|c| c.root().display().to_string()).unwrap_or_default();
        match std::panic::catch_unwind(|| CubeClRuntimeConfig::set(config)) {
            Ok(()) => format!("compiled kernels (PTX) kept between processes in {root} (CubeCL's compilation cache)"),
            Err(_) => "CubeCL's configuration was read before the suite could turn on its compilation cache: kernels are compiled in every process".into(),
        }
    })
}

/// Burn reports most failures (device out of memory, a kernel NVRTC cannot compile, a lost device,
/// a read-back error) by panicking; the suite wants an error it can print and carry on from.
fn catch<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            bail!("burn panicked while {what}: {message}")
        }
    }
}

struct Layer<B: Backend> {
    attn_norm: RmsNorm<B>,
    wq: Linear<B>,
    wk: Linear<B>,
    wv: Linear<B>,
    wo: Linear<B>,
    ffn_norm: RmsNorm<B>,
    /// `silu(gate(x)) * up(x)`: burn's `SwiGlu` with `linear_inner` = gate, `linear_outer` = up.
    mlp: SwiGlu<B>,
    down: Linear<B>,
    /// Keys and values for positions `0..len`, shape `(batch, kv_heads, capacity, head_dim)`.
    k_cache: Option<Tensor<B, 4>>,
    v_cache: Option<Tensor<B, 4>>,
}

struct Model<B: Backend> {
    variant: &'static Variant,
    cfg: LlamaConfig,
    device: B::Device,
    where_: Device,
    precision: String,
    notes: String,
    embed: Embedding<B>,
    layers: Vec<Layer<B>>,
    output_norm: RmsNorm<B>,
    /// Classifier rows, `(vocab, hidden)`: `output.weight`, or the embedding table itself when the
    /// model ties them (SmolLM2, Llama 3.2), shared rather than copied.
    classifier: Tensor<B, 2>,
    rope: RotaryEncoding<B>,
    /// Positions the cache tensors (and the rotary table) have room for, and the batch size the
    /// cache was made for.
    capacity: usize,
    cache_batch: usize,
    /// Weight elements on the device; bytes are this times the backend's float size.
    weight_elements: usize,
    /// Batches padded to [`BATCH_BUCKETS`] rows (CUDA, where kernels are compiled per shape).
    pad_batches: bool,
}

/// Reads GGUF tensors, dequantized to f32 by the suite's reader, onto the device. `from_data`
/// converts f32 to the backend's float type (f16 on CUDA) on the way.
struct Weights<'a, B: Backend> {
    g: &'a GgufFile,
    device: &'a B::Device,
    elements: usize,
}

impl<B: Backend> Weights<'_, B> {
    fn upload<const D: usize>(&mut self, values: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
        self.elements += values.len();
        Tensor::from_data(TensorData::new(values, shape), self.device)
    }

    fn vector(&mut self, name: &str) -> Result<Tensor<B, 1>> {
        let values = self.g.f32_tensor(name)?;
        let n = values.len();
        Ok(self.upload(values, [n]))
    }

    /// A matrix as GGUF stores it, `(rows, cols)` = `(out, in)` (GGUF lists dims innermost first).
    fn matrix(&mut self, name: &str) -> Result<(Vec<f32>, usize, usize)> {
        let info = self.g.tensor(name)?;
        ensure!(info.dims.len() == 2, "tensor {name} has dims {:?}; a matrix was expected", info.dims);
        let (cols, rows) = (info.dims[0], info.dims[1]);
        Ok((self.g.f32_tensor(name)?, rows, cols))
    }

    fn rows(&mut self, name: &str) -> Result<Tensor<B, 2>> {
        let (values, rows, cols) = self.matrix(name)?;
        Ok(self.upload(values, [rows, cols]))
    }

    /// burn's `Linear` computes `x · W` with `W` of shape `(in, out)`. GGUF stores `(out, in)`. In
    /// burn's default `LinearLayout::Row` the matrix is transposed once here (a transposed *view*
    /// would be copied on every call by the ndarray backend, whose reshape makes non-standard
    /// layouts contiguous). In `LinearLayout::Col` (`burn-col`, CUDA only) it is uploaded as stored
    /// and `W` is its transposed view, as burn-nn's `LinearConfig` makes it: CubeCL's matmul sees a
    /// vec-mat with a column-major matrix at one row, for which its autotune tries gemv first.
    fn linear(&mut self, name: &str, layout: LinearLayout) -> Result<Linear<B>> {
        let (values, rows, cols) = self.matrix(name)?;
        let weight = match layout {
            LinearLayout::Row => self.upload(transpose(&values, rows, cols), [cols, rows]),
            LinearLayout::Col => self.upload(values, [rows, cols]).transpose(),
        };
        Ok(Linear { weight: Param::from_tensor(weight), bias: None })
    }

    fn norm(&mut self, name: &str, eps: f32) -> Result<RmsNorm<B>> {
        Ok(RmsNorm { gamma: Param::from_tensor(self.vector(name)?), epsilon: eps as f64 })
    }
}

/// `rows × cols` row-major to `cols × rows` row-major, a band of 32 output rows at a time so that
/// reads and writes both stay in cache.
fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const BAND: usize = 32;
    let mut dst = vec![0f32; src.len()];
    dst.par_chunks_mut(BAND * rows).enumerate().for_each(|(band, out)| {
        // `out` holds output rows c0..c0+n, i.e. source columns c0..c0+n.
        let c0 = band * BAND;
        let n = out.len() / rows;
        for r in 0..rows {
            for (j, &v) in src[r * cols + c0..r * cols + c0 + n].iter().enumerate() {
                out[j * rows + r] = v;
            }
        }
    });
    dst
}

/// burn's `RotaryEncoding` holds `freq_complex[pos, d] = (cos, sin)` of the angle of the pair that
/// dimension `d` belongs to, and rotates adjacent pairs `(x[2i], x[2i+1])`: the layout of GGUF
/// Llama weights (llama.cpp permutes q/k at conversion), the convention of `llama::ops::rope`.
/// The table is made here rather than by `RotaryEncodingConfig::init_with_frequency_scaling`,
/// for two reasons: the frequencies are the suite's (`LlamaConfig::inv_freqs`, Llama 3 scaling
/// from `rope_freqs.weight` included), and the angles are computed in f32 exactly as the reference
/// engine computes them; burn would compute them in the backend's float type, and in f16 a
/// position such as 1000 is rounded to a multiple of 0.5 rad.
fn rope_table<B: Backend>(inv_freqs: &[f32], positions: usize, device: &B::Device) -> Tensor<B, 3> {
    let head_dim = 2 * inv_freqs.len();
    let mut table = Vec::with_capacity(positions * head_dim * 2);
    for pos in 0..positions {
        for f in inv_freqs {
            let (sin, cos) = (pos as f32 * f).sin_cos();
            table.extend_from_slice(&[cos, sin, cos, sin]);
        }
    }
    Tensor::from_data(TensorData::new(table, [positions, head_dim, 2]), device)
}

/// Additive causal mask in f32, shape `(1, 1, 1, s, offset+s)`: query `i` (at position `offset+i`)
/// sees keys `0..=offset+i`. `tril_mask` is true above the diagonal shifted by `offset`.
fn causal_mask<B: Backend>(s: usize, offset: usize, device: &B::Device) -> Tensor<B, 5> {
    let total = offset + s;
    let future = Tensor::<B, 2, Bool>::tril_mask([s, total], offset as i64, device);
    Tensor::<B, 2>::zeros([s, total], (device, DType::F32))
        .mask_fill(future, f32::NEG_INFINITY)
        .reshape([1, 1, 1, s, total])
}

/// `(b*s, heads*head_dim)` to `(b, heads, s, head_dim)`.
fn split_heads<B: Backend>(x: Tensor<B, 2>, b: usize, s: usize, heads: usize, head_dim: usize) -> Tensor<B, 4> {
    x.reshape([b, s, heads, head_dim]).swap_dims(1, 2)
}

/// Softmax attention of `q` `(b, heads, s, hd)` over `keys`/`values` `(b, kv_heads, total, hd)`;
/// returns `(b*s, heads*hd)`. The query heads that share a KV head are stacked as rows of one
/// matrix, `(b, kv_heads, group*s, hd)`, so grouped-query attention needs no copy of the cache.
/// Scores are taken to f32 before scaling, masking and the softmax: on CUDA the matmuls run in
/// f16, and an f16 softmax over thousands of keys loses the small probabilities.
fn attention<B: Backend>(
    q: Tensor<B, 4>,
    keys: Tensor<B, 4>,
    values: Tensor<B, 4>,
    mask: Option<&Tensor<B, 5>>,
    kv_heads: usize,
) -> Tensor<B, 2> {
    let [b, heads, s, hd] = q.dims();
    let total = keys.dims()[2];
    let group = heads / kv_heads;
    let dtype = q.dtype();
    let q = q.reshape([b, kv_heads, group * s, hd]);
    let scores = q.matmul(keys.transpose()).cast(DType::F32).mul_scalar(1.0 / (hd as f64).sqrt());
    let scores = match mask {
        Some(m) => {
            let masked = scores.reshape([b, kv_heads, group, s, total]) + m.clone();
            masked.reshape([b, kv_heads, group * s, total])
        }
        None => scores,
    };
    let probs = softmax(scores, 3).cast(dtype);
    probs
        .matmul(values) // (b, kv_heads, group*s, hd)
        .reshape([b, heads, s, hd])
        .swap_dims(1, 2)
        .reshape([b * s, heads * hd])
}

impl<B: Backend> Model<B> {
    fn load(g: &GgufFile, where_: Device, device: B::Device, backend: &str, variant: &'static Variant) -> Result<Self> {
        let cfg = LlamaConfig::from_gguf(g)?;
        let mut w = Weights::<B> { g, device: &device, elements: 0 };
        let layout = match variant.setting {
            Setting::ColumnWeights | Setting::ColumnWeightsUnfused => LinearLayout::Col,
            _ => LinearLayout::Row,
        };
        let embed_rows = w.rows(names::EMBED)?;
        let classifier = if cfg.tied_embeddings { embed_rows.clone() } else { w.rows(names::OUTPUT)? };
        let embed = Embedding { weight: Param::from_tensor(embed_rows) };
        let output_norm = w.norm(names::OUTPUT_NORM, cfg.rms_eps)?;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let name = |what: &str| names::layer(i, what);
            layers.push(Layer {
                attn_norm: w.norm(&name(names::ATTN_NORM), cfg.rms_eps)?,
                wq: w.linear(&name(names::ATTN_Q), layout)?,
                wk: w.linear(&name(names::ATTN_K), layout)?,
                wv: w.linear(&name(names::ATTN_V), layout)?,
                wo: w.linear(&name(names::ATTN_OUT), layout)?,
                ffn_norm: w.norm(&name(names::FFN_NORM), cfg.rms_eps)?,
                mlp: SwiGlu {
                    linear_inner: w.linear(&name(names::FFN_GATE), layout)?,
                    linear_outer: w.linear(&name(names::FFN_UP), layout)?,
                },
                down: w.linear(&name(names::FFN_DOWN), layout)?,
                k_cache: None,
                v_cache: None,
            });
        }
        let weight_elements = w.elements;
        // `init` makes a one-position table that `reserve` replaces (see `rope_table`); `theta`
        // is set to the suite's frequencies for consistency, though only `shift` reads it.
        let mut rope = RotaryEncodingConfig::new(1, cfg.head_dim).init::<B>(&device);
        let half = cfg.head_dim / 2;
        rope.theta = Tensor::from_data(TensorData::new(cfg.inv_freqs(), [half]), &device);

        // What the GGUF held before dequantization, e.g. `Q8_0`, for the precision string.
        let stored: BTreeSet<String> = g
            .tensors
            .values()
            .filter(|t| t.dims.len() == 2)
            .map(|t| format!("{:?}", t.ggml_type))
            .collect();
        let stored = stored.into_iter().collect::<Vec<_>>().join("/");
        let float = match std::mem::size_of::<B::FloatElem>() {
            2 => "f16",
            _ => "f32",
        };
        let precision = format!(
            "weights {stored} dequantized to {float} at load; activations and KV cache {float}, \
             RMSNorm statistics and attention softmax f32"
        );
        let notes = format!(
            "{backend}, B::name = {}; suite's Llama on burn-nn modules (Embedding, RmsNorm, RotaryEncoding, \
             Linear, SwiGlu), attention on burn tensor ops; KV cache allocated per request batch",
            B::name(&device)
        );
        let mut model = Self {
            variant,
            embed,
            layers,
            output_norm,
            classifier,
            rope,
            capacity: 0,
            cache_batch: 0,
            weight_elements,
            pad_batches: false,
            precision,
            notes,
            device,
            where_,
            cfg,
        };
        model.reserve(1, CACHE_ROUNDING);
        Ok(model)
    }

    /// Make sure the KV cache holds `positions` for `batch` sequences; reallocates only when it
    /// does not, so steady-state requests allocate nothing.
    fn reserve(&mut self, batch: usize, positions: usize) {
        if batch == self.cache_batch && positions <= self.capacity {
            return;
        }
        let capacity = positions.div_ceil(CACHE_ROUNDING) * CACHE_ROUNDING;
        let c = &self.cfg;
        for l in &mut self.layers {
            // Free the old cache before allocating the new one.
            l.k_cache = None;
            l.v_cache = None;
            let shape = [batch, c.n_kv_heads, capacity, c.head_dim];
            l.k_cache = Some(Tensor::zeros(shape, &self.device));
            l.v_cache = Some(Tensor::zeros(shape, &self.device));
        }
        if capacity != self.capacity {
            self.rope.freq_complex = rope_table::<B>(&c.inv_freqs(), capacity, &self.device);
        }
        self.capacity = capacity;
        self.cache_batch = batch;
    }

    /// Token ids `(batch, seq)` as the backend's int tensor (i64 on ndarray, i32 on CUDA:
    /// `from_data` converts).
    fn tokens(&self, ids: &[u32], b: usize, s: usize) -> Result<Tensor<B, 2, Int>> {
        let vocab = self.cfg.vocab;
        ensure!(
            ids.iter().all(|&t| (t as usize) < vocab),
            "a token id is outside the model's vocabulary of {vocab}"
        );
        let ids: Vec<i32> = ids.iter().map(|&t| t as i32).collect();
        Ok(Tensor::from_data(TensorData::new(ids, [b, s]), &self.device))
    }

    /// Run `tokens` `(batch, seq)` at positions `offset..offset+seq`; logits of the last position,
    /// transposed: `(vocab, batch)`. The classifier is applied as `W · xᵀ` so that the `(vocab,
    /// hidden)` matrix shared with the embedding is read as stored, with no transposed copy.
    fn forward(&mut self, tokens: Tensor<B, 2, Int>, offset: usize) -> Tensor<B, 2> {
        let [b, s] = tokens.dims();
        let c = &self.cfg;
        let (hd, nh, nkv) = (c.head_dim, c.n_heads, c.n_kv_heads);
        let total = offset + s;
        // Activations are kept as (b*s, hidden) so every projection is one matrix product.
        let mut x = self.embed.forward(tokens).reshape([b * s, c.hidden]);
        let mask = (s > 1).then(|| causal_mask::<B>(s, offset, &self.device));
        for l in &mut self.layers {
            let h = l.attn_norm.forward(x.clone());
            let q = split_heads(l.wq.forward(h.clone()), b, s, nh, hd);
            let k = split_heads(l.wk.forward(h.clone()), b, s, nkv, hd);
            let v = split_heads(l.wv.forward(h), b, s, nkv, hd);
            let q = self.rope.apply(q, offset);
            let k = self.rope.apply(k, offset);
            // Taken out of the layer while written, so the cache is the buffer's only owner and
            // `slice_assign` can write in place.
            let new = [0..b, 0..nkv, offset..total, 0..hd];
            let kc = l.k_cache.take().expect("reserve allocates the cache").slice_assign(new.clone(), k);
            let vc = l.v_cache.take().expect("reserve allocates the cache").slice_assign(new, v);
            let keys = kc.clone().narrow(2, 0, total);
            let values = vc.clone().narrow(2, 0, total);
            l.k_cache = Some(kc);
            l.v_cache = Some(vc);
            let y = attention(q, keys, values, mask.as_ref(), nkv);
            x = x + l.wo.forward(y);
            let h = l.ffn_norm.forward(x.clone());
            x = x + l.down.forward(l.mlp.forward(h));
        }
        let last = x.reshape([b, s, c.hidden]).narrow(1, s - 1, 1).reshape([b, c.hidden]);
        let last = self.output_norm.forward(last);
        self.classifier.clone().matmul(last.transpose())
    }

    /// Greedy generation of exactly `n` tokens per prompt (end-of-sequence ignored).
    fn run(&mut self, prompts: &[Vec<u32>], n: usize, on_token: &mut dyn FnMut(TokenEvent)) -> Result<Vec<Vec<u32>>> {
        let (real, s) = crate::engine::equal_length_batch("Burn", prompts)?;
        let b = if self.pad_batches { bucket(real) } else { real };
        let padded;
        let prompts = if b > real {
            padded = prompts.iter().chain(std::iter::repeat_n(&prompts[0], b - real)).cloned().collect::<Vec<_>>();
            &padded[..]
        } else {
            prompts
        };
        let mut outputs = vec![Vec::with_capacity(n); real];
        if n == 0 {
            return Ok(outputs);
        }
        self.reserve(b, s + n);
        let mut input = self.tokens(&prompts.concat(), b, s)?;
        let mut offset = 0;
        for index in 0..n {
            let len = input.dims()[1];
            let logits = self.forward(input, offset);
            offset += len;
            // Argmax on the device (ties go to the lowest index on both backends), then only
            // the ids come back.
            let next = logits.argmax(0); // (1, b)
            let ids = next
                .clone()
                .try_into_data() // waits for the device
                .map_err(|e| anyhow!("burn could not read the next tokens back: {e}"))?;
            let at = Instant::now();
            for (request, id) in ids.iter::<i64>().enumerate().take(real) {
                let token = id as u32;
                on_token(TokenEvent { request, index, token, at });
                outputs[request].push(token);
            }
            input = next.reshape([b, 1]);
        }
        Ok(outputs)
    }
}

impl<B: Backend> Engine for Model<B> {
    fn info(&self) -> EngineInfo {
        self.variant.info(self.where_, format!("burn {}", env!("LLM_BENCH_VERSION_BURN")), self.precision.clone(), self.notes.clone())
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        let result = catch("generating", || self.run(prompts, options.max_new_tokens, on_token));
        if result.is_err() {
            // A panic can leave a layer's cache taken out; make the next request allocate anew.
            self.cache_batch = 0;
        }
        result
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        ensure!(!prompt.is_empty(), "Burn needs a non-empty prompt");
        let result = catch("computing logits", || {
            self.reserve(1, prompt.len());
            let input = self.tokens(prompt, 1, prompt.len())?;
            let logits = self.forward(input, 0).reshape([self.cfg.vocab]);
            let data = logits.try_into_data().map_err(|e| anyhow!("burn could not read the logits back: {e}"))?;
            Ok(data.iter::<f32>().collect())
        });
        if result.is_err() {
            self.cache_batch = 0;
        }
        result
    }

    fn memory(&self) -> MemoryUse {
        let c = &self.cfg;
        let float = std::mem::size_of::<B::FloatElem>();
        let kv = 2 * c.n_layers * self.cache_batch * c.n_kv_heads * self.capacity * c.head_dim * float;
        MemoryUse {
            weights_bytes: (self.weight_elements * float) as u64,
            kv_cache_bytes: kv as u64,
            device_peak_bytes: None,
        }
    }

    fn warm_up_batches(&self) -> Vec<usize> {
        if self.pad_batches {
            BATCH_BUCKETS.to_vec()
        } else {
            Vec::new()
        }
    }

    fn synchronize(&self) -> Result<()> {
        B::sync(&self.device).map_err(|e| anyhow!("burn could not synchronize its device: {e}"))
    }
}
