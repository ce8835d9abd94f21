//! Candle: a Llama model on candle-core / candle-nn quantized ops, read top to bottom.
//!
//! Written the way candle's own `quantized_llama.rs` example is, with three changes a benchmark
//! needs: Llama 3 rope scaling (`rope_freqs.weight`) is applied, the KV cache is allocated once
//! for the whole request instead of growing with `Tensor::cat` every step, and grouped-query
//! attention reshapes the queries instead of copying the keys and values once per head.
//!
//! Matrices stay in the GGUF's Q8_0 blocks and go through `QMatMul` (on CUDA: candle's MMVQ
//! kernels for decode and MMQ tiles for prefill); activations, norms, attention and the cache are
//! f32. The embedding table is dequantized to f32 for the row lookup, as candle's example does.
//! Activations are kept as `(batch * seq, hidden)`, so every projection is one matrix product
//! over all rows: candle's dense matmuls (f16, f32) treat a 3-D input as a batch of separate
//! products that each read the whole weight matrix, which at batch 64 reads it 64 times.
//!
//! Two configurations ([`Setting`]): `candle` keeps every matmul on Q8_0 `QMatMul`; `candle-f16`
//! (GPU) also holds each matrix dequantized to f16 at load, as candle's `QMatMul::TensorF16` /
//! `CANDLE_DEQUANTIZE_ALL_F16` do, and multiplies more than 8 rows through it (cuBLAS f16 GEMM,
//! tensor cores) while 8 rows or fewer (decode at small batches) stay on MMVQ.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::engines::variant::{Setting, Variant};
use crate::model::llama::{names, LlamaConfig};
use anyhow::{ensure, Context, Result};
use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Module, Tensor, D};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Rows up to which candle's Q8_0 matmul runs its matrix-vector kernels (MMVQ) on CUDA.
const MMVQ_MAX_ROWS: usize = 8;

/// One weight matrix `(out, in)`: Q8_0 for `QMatMul`, and for `candle-f16` an f16 copy that
/// products of more than [`MMVQ_MAX_ROWS`] rows use.
struct Linear {
    q: QMatMul,
    f16: Option<Tensor>,
}

impl Linear {
    /// `x` `(rows, in)` -> `(rows, out)`, f32 in and out.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.f16 {
            Some(w) if x.dim(0)? > MMVQ_MAX_ROWS => Ok(x.to_dtype(DType::F16)?.matmul(&w.t()?)?.to_dtype(DType::F32)?),
            _ => Ok(self.q.forward(x)?),
        }
    }
}

struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward(x)?)?;
        Ok(self.down.forward(&(gate * self.up.forward(x)?)?)?)
    }
}

struct Layer {
    attn_norm: Tensor,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    wo: Linear,
    ffn_norm: Tensor,
    mlp: Mlp,
    /// Keys and values for positions `0..len`, shape `(batch, kv_heads, capacity, head_dim)`.
    k_cache: Option<Tensor>,
    v_cache: Option<Tensor>,
}

pub struct Candle {
    variant: &'static Variant,
    cfg: LlamaConfig,
    device: candle_core::Device,
    where_: Device,
    embed: Tensor,
    layers: Vec<Layer>,
    output_norm: Tensor,
    output: Linear,
    /// `cos` and `sin` of every position up to the cache capacity, shape `(positions, head_dim/2)`.
    cos: Tensor,
    sin: Tensor,
    /// Positions the cache tensors have room for, and the batch size they were made for.
    capacity: usize,
    cache_batch: usize,
    weights_bytes: u64,
}

/// Room allocated in the KV cache is rounded up to this many positions.
const CACHE_ROUNDING: usize = 512;

impl Candle {
    pub fn load(path: &Path, device: Device, variant: &'static Variant) -> Result<Self> {
        let cdev = match device {
            Device::Cpu => candle_core::Device::Cpu,
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => candle_core::Device::new_cuda(i)
                .with_context(|| format!("Candle cannot open CUDA device {i}; is an NVIDIA driver installed?"))?,
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => anyhow::bail!(
                "Candle was built without CUDA; rebuild with `--features cuda` to run it on a GPU"
            ),
        };
        let cfg = LlamaConfig::from_gguf(&crate::model::gguf::GgufFile::open(path)?)?;
        let mut file = std::fs::File::open(path)
            .with_context(|| format!("cannot open model file {}", path.display()))?;
        let content = gguf_file::Content::read(&mut file)
            .with_context(|| format!("Candle cannot read {} as GGUF", path.display()))?;
        let mut weights_bytes = 0u64;
        let mut qtensor = |name: &str| -> Result<QTensor> {
            let t = content
                .tensor(&mut file, name, &cdev)
                .with_context(|| format!("Candle cannot load tensor {name}"))?;
            weights_bytes += t.storage_size_in_bytes() as u64;
            Ok(t)
        };
        let f16 = variant.setting == Setting::F16Batches;
        let mut f16_bytes = 0u64;
        let mut linear = |t: Arc<QTensor>| -> Result<Linear> {
            let w = if f16 { Some(t.dequantize_f16(&cdev)?) } else { None };
            f16_bytes += w.as_ref().map_or(0, |w| w.elem_count() as u64 * 2);
            Ok(Linear { q: QMatMul::from_arc(t)?, f16: w })
        };
        let embed_q = Arc::new(qtensor(names::EMBED)?);
        let embed = embed_q.dequantize(&cdev)?;
        let output = if cfg.tied_embeddings { linear(embed_q)? } else { linear(Arc::new(qtensor(names::OUTPUT)?))? };
        let output_norm = qtensor(names::OUTPUT_NORM)?.dequantize(&cdev)?;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let mut q = |what: &str| qtensor(&names::layer(i, what));
            let attn_norm = q(names::ATTN_NORM)?.dequantize(&cdev)?;
            let ffn_norm = q(names::FFN_NORM)?.dequantize(&cdev)?;
            let mut l = |what: &str| -> Result<Linear> { linear(Arc::new(q(what)?)) };
            layers.push(Layer {
                attn_norm,
                wq: l(names::ATTN_Q)?,
                wk: l(names::ATTN_K)?,
                wv: l(names::ATTN_V)?,
                wo: l(names::ATTN_OUT)?,
                ffn_norm,
                mlp: Mlp { gate: l(names::FFN_GATE)?, up: l(names::FFN_UP)?, down: l(names::FFN_DOWN)? },
                k_cache: None,
                v_cache: None,
            });
        }
        let mut engine = Self {
            variant,
            embed,
            layers,
            output_norm,
            output,
            cos: Tensor::zeros(1, DType::F32, &cdev)?,
            sin: Tensor::zeros(1, DType::F32, &cdev)?,
            capacity: 0,
            cache_batch: 0,
            weights_bytes: weights_bytes + f16_bytes,
            device: cdev,
            where_: device,
            cfg,
        };
        engine.reserve(1, CACHE_ROUNDING)?;
        Ok(engine)
    }

    /// Make sure the KV cache holds `positions` for `batch` sequences; reallocates only when it
    /// does not, so steady-state requests allocate nothing.
    fn reserve(&mut self, batch: usize, positions: usize) -> Result<()> {
        if batch == self.cache_batch && positions <= self.capacity {
            return Ok(());
        }
        let capacity = positions.div_ceil(CACHE_ROUNDING) * CACHE_ROUNDING;
        let c = &self.cfg;
        for l in &mut self.layers {
            // Free the old cache before allocating the new one.
            l.k_cache = None;
            l.v_cache = None;
            let shape = (batch, c.n_kv_heads, capacity, c.head_dim);
            l.k_cache = Some(Tensor::zeros(shape, DType::F32, &self.device)?);
            l.v_cache = Some(Tensor::zeros(shape, DType::F32, &self.device)?);
        }
        let inv: Vec<f32> = c.inv_freqs();
        let half = inv.len();
        let inv = Tensor::from_vec(inv, (1, half), &self.device)?;
        let pos = Tensor::arange(0u32, capacity as u32, &self.device)?
            .to_dtype(DType::F32)?
            .reshape((capacity, 1))?;
        let angles = pos.broadcast_mul(&inv)?;
        self.cos = angles.cos()?;
        self.sin = angles.sin()?;
        self.capacity = capacity;
        self.cache_batch = batch;
        Ok(())
    }

    /// Run `tokens` (shape `(batch, seq)`) at positions `offset..offset+seq`; logits of the last
    /// position, shape `(batch, vocab)`.
    fn forward(&mut self, tokens: &Tensor, offset: usize) -> Result<Tensor> {
        let (b, s) = tokens.dims2()?;
        let c = &self.cfg;
        let (hd, nh, nkv) = (c.head_dim, c.n_heads, c.n_kv_heads);
        let group = nh / nkv;
        // (b*s, hidden): every projection below is one product over all rows.
        let mut x = self.embed.index_select(&tokens.flatten_all()?, 0)?;
        let cos = self.cos.narrow(0, offset, s)?;
        let sin = self.sin.narrow(0, offset, s)?;
        let total = offset + s;
        // Causal mask for prefill, made on the device: query i (at offset+i) sees keys
        // 0..=offset+i. Shape (s, total), broadcast over the `group` query heads of a KV head.
        let mask = if s > 1 {
            let keys = Tensor::arange(0u32, total as u32, &self.device)?.reshape((1, total))?;
            let queries = Tensor::arange(offset as u32, total as u32, &self.device)?.reshape((s, 1))?;
            let future = keys.broadcast_gt(&queries)?;
            let zeros = Tensor::zeros((s, total), DType::F32, &self.device)?;
            let neg_inf = Tensor::full(f32::NEG_INFINITY, (s, total), &self.device)?;
            Some(future.where_cond(&neg_inf, &zeros)?)
        } else {
            None
        };
        let scale = 1.0 / (hd as f64).sqrt();
        for l in &mut self.layers {
            let h = candle_nn::ops::rms_norm(&x, &l.attn_norm, c.rms_eps)?;
            let q = l.wq.forward(&h)?.reshape((b, s, nh, hd))?.transpose(1, 2)?.contiguous()?;
            let k = l.wk.forward(&h)?.reshape((b, s, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let v = l.wv.forward(&h)?.reshape((b, s, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let q = candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?;
            let (kc, vc) = (l.k_cache.as_ref().unwrap(), l.v_cache.as_ref().unwrap());
            kc.slice_set(&k, 2, offset)?;
            vc.slice_set(&v, 2, offset)?;
            let k = kc.narrow(2, 0, total)?;
            let v = vc.narrow(2, 0, total)?;
            // (b, nh, s, hd) -> (b, nkv, group*s, hd): the query heads of one KV head as rows.
            let q = q.reshape((b, nkv, group * s, hd))?;
            let mut att = (q.matmul(&k.t()?)? * scale)?;
            if let Some(m) = &mask {
                att = att.reshape((b, nkv, group, s, total))?.broadcast_add(m)?.reshape((b, nkv, group * s, total))?;
            }
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v)?; // (b, nkv, group*s, hd)
            let y = y.reshape((b, nh, s, hd))?.transpose(1, 2)?.reshape((b * s, c.hidden))?;
            x = (x + l.wo.forward(&y)?)?;
            let h = candle_nn::ops::rms_norm(&x, &l.ffn_norm, c.rms_eps)?;
            x = (&x + l.mlp.forward(&h)?)?;
        }
        let x = x.reshape((b, s, c.hidden))?.narrow(1, s - 1, 1)?.squeeze(1)?.contiguous()?;
        let x = candle_nn::ops::rms_norm(&x, &self.output_norm, c.rms_eps)?;
        Ok(self.output.forward(&x)?)
    }
}

impl Engine for Candle {
    fn info(&self) -> EngineInfo {
        let precision = match self.variant.setting {
            Setting::F16Batches => "weights Q8_0 (QMatMul) up to 8 rows and f16 above, activations and KV cache f32",
            _ => "weights Q8_0 (QMatMul), activations and KV cache f32",
        };
        self.variant.info(
            self.where_,
            format!("candle-core {}", env!("LLM_BENCH_VERSION_CANDLE_CORE")),
            precision.into(),
            "suite's Llama on candle-core/candle-nn ops, activations as (rows, hidden); KV cache allocated per request batch".into(),
        )
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        let (b, s) = crate::engine::equal_length_batch("Candle", prompts)?;
        let n = options.max_new_tokens;
        self.reserve(b, s + n)?;
        let flat: Vec<u32> = prompts.concat();
        let mut input = Tensor::from_vec(flat, (b, s), &self.device)?;
        let mut outputs = vec![Vec::with_capacity(n); b];
        let mut offset = 0;
        for index in 0..n {
            let logits = self.forward(&input, offset)?;
            offset += input.dim(1)?;
            let next = logits.argmax(D::Minus1)?;
            let tokens = next.to_vec1::<u32>()?; // waits for the device
            let at = Instant::now();
            for (request, &token) in tokens.iter().enumerate() {
                on_token(TokenEvent { request, index, token, at });
                outputs[request].push(token);
            }
            input = next.reshape((b, 1))?;
        }
        Ok(outputs)
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        ensure!(!prompt.is_empty(), "Candle needs a non-empty prompt");
        self.reserve(1, prompt.len())?;
        let input = Tensor::from_vec(prompt.to_vec(), (1, prompt.len()), &self.device)?;
        Ok(self.forward(&input, 0)?.squeeze(0)?.to_vec1::<f32>()?)
    }

    fn memory(&self) -> MemoryUse {
        let c = &self.cfg;
        let kv = 2 * c.n_layers * self.cache_batch * c.n_kv_heads * self.capacity * c.head_dim * 4;
        MemoryUse {
            weights_bytes: self.weights_bytes + (self.embed.elem_count() * 4) as u64,
            kv_cache_bytes: kv as u64,
            device_peak_bytes: None,
        }
    }

    fn synchronize(&self) -> Result<()> {
        Ok(self.device.synchronize()?)
    }

    #[cfg(feature = "cuda")]
    fn cuda_stream(&self) -> Option<Arc<cudarc::driver::CudaStream>> {
        match &self.device {
            candle_core::Device::Cuda(d) => Some(d.cuda_stream()),
            _ => None,
        }
    }
}
