//! The lm.rs design, re-implemented: a small CPU Llama engine with int8 weights and int8
//! activations (github.com/samuel-vitorino/lm.rs, MIT; written here from its design, not its
//! code, and named so in every report).
//!
//! - Weights: Q8 symmetric in groups of `gs` along each row (scale = max|w| / 127), converted
//!   from the GGUF at load. lm.rs uses groups of 128; a model whose widths are not multiples of
//!   128 (SmolLM2: 576) gets the largest of 64 or 32 that fits, and the engine info says which.
//! - Activations are quantized the same way before every matmul; dot products of int8 pairs are
//!   accumulated in i32 lanes (`wide`: widen to i16x16, multiply-add into i32x8), scaled per group.
//! - Matmuls: four output rows per work item, rayon across the row groups.
//! - RMSNorm, RoPE (with Llama 3 scaling), softmax attention in f32, attention parallel over
//!   heads, an f32 KV cache, the classifier tied to the (quantized) embedding.
//! - Prefill feeds the prompt one token at a time; greedy sampling; one request at a time.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::engines::variant::Variant;
use crate::model::gguf::GgufFile;
use crate::model::llama::ops::{rms_norm_into as rms_norm, rope, silu, softmax};
use crate::model::llama::{names, LlamaConfig};
use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;
use wide::{i16x16, i32x8, i8x16};

/// int8 values in groups, each group with its f32 scale.
struct QTensor {
    q: Vec<i8>,
    s: Vec<f32>,
}

/// A matrix of `rows` rows of `cols` values, quantized along the rows.
struct QMatrix {
    rows: usize,
    cols: usize,
    t: QTensor,
}

fn quantize_into(x: &[f32], gs: usize, out: &mut QTensor) {
    out.q.resize(x.len(), 0);
    out.s.resize(x.len() / gs, 0.0);
    for ((xg, qg), s) in x.chunks_exact(gs).zip(out.q.chunks_exact_mut(gs)).zip(out.s.iter_mut()) {
        let amax = xg.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        *s = scale;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (q, v) in qg.iter_mut().zip(xg) {
            *q = (v * inv).round() as i8;
        }
    }
}

impl QMatrix {
    fn from_f32(w: &[f32], rows: usize, cols: usize, gs: usize) -> Self {
        let mut t = QTensor { q: Vec::new(), s: Vec::new() };
        quantize_into(w, gs, &mut t);
        Self { rows, cols, t }
    }

    /// Row `r` dequantized (the embedding lookup).
    fn row(&self, r: usize, gs: usize) -> Vec<f32> {
        let q = &self.t.q[r * self.cols..(r + 1) * self.cols];
        let s = &self.t.s[r * self.cols / gs..(r + 1) * self.cols / gs];
        q.chunks_exact(gs).zip(s).flat_map(|(g, &sc)| g.iter().map(move |&v| v as f32 * sc)).collect()
    }
}

/// Sum over one group of `w[i] * x[i]` in i32, 16 values per step.
#[inline]
fn dot_group(w: &[i8], x: &[i8]) -> i32 {
    let mut acc = i32x8::ZERO;
    for (wc, xc) in w.chunks_exact(16).zip(x.chunks_exact(16)) {
        let wv = i16x16::from_i8x16(i8x16::new(wc.try_into().unwrap()));
        let xv = i16x16::from_i8x16(i8x16::new(xc.try_into().unwrap()));
        acc += wv.dot(xv);
    }
    acc.reduce_add()
}

/// `out = W · x` with `x` already quantized; four rows per work item.
fn matmul(out: &mut [f32], x: &QTensor, w: &QMatrix, gs: usize) {
    debug_assert_eq!(out.len(), w.rows);
    let groups = w.cols / gs;
    out.par_chunks_mut(4).enumerate().for_each(|(item, o4)| {
        for (k, o) in o4.iter_mut().enumerate() {
            let r = item * 4 + k;
            let wq = &w.t.q[r * w.cols..(r + 1) * w.cols];
            let ws = &w.t.s[r * groups..(r + 1) * groups];
            let mut sum = 0f32;
            for g in 0..groups {
                let d = dot_group(&wq[g * gs..(g + 1) * gs], &x.q[g * gs..(g + 1) * gs]);
                sum += d as f32 * ws[g] * x.s[g];
            }
            *o = sum;
        }
    });
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: QMatrix,
    wk: QMatrix,
    wv: QMatrix,
    wo: QMatrix,
    ffn_norm: Vec<f32>,
    w1: QMatrix,
    w2: QMatrix,
    w3: QMatrix,
}

pub struct LmRs {
    variant: &'static Variant,
    cfg: LlamaConfig,
    gs: usize,
    embed: QMatrix,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: Option<QMatrix>,
    inv_freqs: Vec<f32>,
    pool: rayon::ThreadPool,
    threads: usize,
}

/// Buffers of one forward pass, allocated once per request.
struct State {
    x: Vec<f32>,
    xb: Vec<f32>,
    xq: QTensor,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att_out: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    hq: QTensor,
    logits: Vec<f32>,
    /// Per layer, `capacity × kv_dim` keys and values.
    key_cache: Vec<Vec<f32>>,
    value_cache: Vec<Vec<f32>>,
}

impl LmRs {
    /// Load a GGUF, converting every matrix to int8 groups. Threads: `LLM_BENCH_LMRS_THREADS`
    /// or every core.
    pub fn load(path: &Path, variant: &'static Variant) -> Result<Self> {
        let g = GgufFile::open(path)?;
        let cfg = LlamaConfig::from_gguf(&g)?;
        let widths = [cfg.hidden, cfg.ffn, cfg.n_heads * cfg.head_dim];
        let gs = [128, 64, 32]
            .into_iter()
            .find(|gs| widths.iter().all(|w| w % gs == 0))
            .context("the model's widths are not multiples of 32; the lm.rs design cannot group them")?;
        let threads = match std::env::var("LLM_BENCH_LMRS_THREADS") {
            Ok(v) if !v.is_empty() => v.parse().context("LLM_BENCH_LMRS_THREADS must be a number")?,
            _ => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        let qm = |name: &str| -> Result<QMatrix> {
            let info = g.tensor(name)?;
            let (cols, rows) = (info.dims[0], info.dims[1]);
            Ok(QMatrix::from_f32(&g.f32_tensor(name)?, rows, cols, gs))
        };
        let layers = pool.install(|| {
            (0..cfg.n_layers)
                .map(|i| {
                    let l = |w: &str| names::layer(i, w);
                    Ok(Layer {
                        attn_norm: g.f32_tensor(&l(names::ATTN_NORM))?,
                        wq: qm(&l(names::ATTN_Q))?,
                        wk: qm(&l(names::ATTN_K))?,
                        wv: qm(&l(names::ATTN_V))?,
                        wo: qm(&l(names::ATTN_OUT))?,
                        ffn_norm: g.f32_tensor(&l(names::FFN_NORM))?,
                        w1: qm(&l(names::FFN_GATE))?,
                        w2: qm(&l(names::FFN_DOWN))?,
                        w3: qm(&l(names::FFN_UP))?,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        let embed = qm(names::EMBED)?;
        let output = if cfg.tied_embeddings { None } else { Some(qm(names::OUTPUT)?) };
        Ok(Self {
            variant,
            inv_freqs: cfg.inv_freqs(),
            output_norm: g.f32_tensor(names::OUTPUT_NORM)?,
            embed,
            output,
            layers,
            gs,
            pool,
            threads,
            cfg,
        })
    }

    fn new_state(&self, capacity: usize) -> State {
        let c = &self.cfg;
        let kv_dim = c.n_kv_heads * c.head_dim;
        let empty = || QTensor { q: Vec::new(), s: Vec::new() };
        State {
            x: vec![0.0; c.hidden],
            xb: vec![0.0; c.hidden],
            xq: empty(),
            q: vec![0.0; c.n_heads * c.head_dim],
            k: vec![0.0; kv_dim],
            v: vec![0.0; kv_dim],
            att_out: vec![0.0; c.n_heads * c.head_dim],
            hb: vec![0.0; c.ffn],
            hb2: vec![0.0; c.ffn],
            hq: empty(),
            logits: vec![0.0; c.vocab],
            key_cache: vec![vec![0.0; capacity * kv_dim]; c.n_layers],
            value_cache: vec![vec![0.0; capacity * kv_dim]; c.n_layers],
        }
    }

    /// One token at position `pos`; leaves the logits in `st.logits`.
    fn forward(&self, st: &mut State, token: u32, pos: usize) {
        let c = &self.cfg;
        let (hd, gs) = (c.head_dim, self.gs);
        let kv_dim = c.n_kv_heads * hd;
        let group = c.n_heads / c.n_kv_heads;
        st.x.copy_from_slice(&self.embed.row(token as usize, gs));
        for (li, l) in self.layers.iter().enumerate() {
            rms_norm(&mut st.xb, &st.x, &l.attn_norm, c.rms_eps);
            quantize_into(&st.xb, gs, &mut st.xq);
            matmul(&mut st.q, &st.xq, &l.wq, gs);
            matmul(&mut st.k, &st.xq, &l.wk, gs);
            matmul(&mut st.v, &st.xq, &l.wv, gs);
            for head in st.q.chunks_exact_mut(hd).chain(st.k.chunks_exact_mut(hd)) {
                rope(head, pos, &self.inv_freqs);
            }
            st.key_cache[li][pos * kv_dim..(pos + 1) * kv_dim].copy_from_slice(&st.k);
            st.value_cache[li][pos * kv_dim..(pos + 1) * kv_dim].copy_from_slice(&st.v);
            let (keys, values, q) = (&st.key_cache[li], &st.value_cache[li], &st.q);
            let scale = 1.0 / (hd as f32).sqrt();
            st.att_out.par_chunks_mut(hd).enumerate().for_each(|(h, out)| {
                let off = (h / group) * hd;
                let qh = &q[h * hd..(h + 1) * hd];
                let mut att: Vec<f32> = (0..=pos)
                    .map(|t| {
                        let k = &keys[t * kv_dim + off..t * kv_dim + off + hd];
                        qh.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale
                    })
                    .collect();
                softmax(&mut att);
                out.fill(0.0);
                for (t, a) in att.iter().enumerate() {
                    let v = &values[t * kv_dim + off..t * kv_dim + off + hd];
                    out.iter_mut().zip(v).for_each(|(o, v)| *o += a * v);
                }
            });
            quantize_into(&st.att_out, gs, &mut st.xq);
            matmul(&mut st.xb, &st.xq, &l.wo, gs);
            st.x.iter_mut().zip(&st.xb).for_each(|(x, d)| *x += d);

            rms_norm(&mut st.xb, &st.x, &l.ffn_norm, c.rms_eps);
            quantize_into(&st.xb, gs, &mut st.xq);
            matmul(&mut st.hb, &st.xq, &l.w1, gs);
            matmul(&mut st.hb2, &st.xq, &l.w3, gs);
            st.hb.iter_mut().zip(&st.hb2).for_each(|(h, u)| *h = silu(*h) * u);
            quantize_into(&st.hb, gs, &mut st.hq);
            matmul(&mut st.xb, &st.hq, &l.w2, gs);
            st.x.iter_mut().zip(&st.xb).for_each(|(x, d)| *x += d);
        }
        let x = st.x.clone();
        rms_norm(&mut st.x, &x, &self.output_norm, c.rms_eps);
        quantize_into(&st.x, gs, &mut st.xq);
        matmul(&mut st.logits, &st.xq, self.output.as_ref().unwrap_or(&self.embed), gs);
    }
}




impl Engine for LmRs {
    fn info(&self) -> EngineInfo {
        self.variant.info(
            Device::Cpu,
            format!("lm.rs design, re-implemented in llm-bench {} (wide {})", env!("CARGO_PKG_VERSION"), env!("LLM_BENCH_VERSION_WIDE")),
            format!("weights Q8 symmetric groups of {}, activations int8 groups of {}, KV cache f32", self.gs, self.gs),
            format!("{} threads; prefill token by token; one request at a time", self.threads),
        )
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        let mut outputs = Vec::with_capacity(prompts.len());
        for (request, prompt) in prompts.iter().enumerate() {
            ensure!(!prompt.is_empty(), "the lm.rs engine needs a non-empty prompt");
            let n = options.max_new_tokens;
            let mut st = self.new_state(prompt.len() + n);
            self.pool.install(|| {
                for (pos, &tok) in prompt.iter().enumerate() {
                    self.forward(&mut st, tok, pos);
                }
            });
            let mut out = Vec::with_capacity(n);
            for index in 0..n {
                let token = crate::engine::argmax(&st.logits);
                on_token(TokenEvent { request, index, token, at: Instant::now() });
                out.push(token);
                if index + 1 < n {
                    self.pool.install(|| self.forward(&mut st, token, prompt.len() + index));
                }
            }
            outputs.push(out);
        }
        Ok(outputs)
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        ensure!(!prompt.is_empty(), "the lm.rs engine needs a non-empty prompt");
        let mut st = self.new_state(prompt.len());
        self.pool.install(|| {
            for (pos, &tok) in prompt.iter().enumerate() {
                self.forward(&mut st, tok, pos);
            }
        });
        Ok(st.logits)
    }

    fn memory(&self) -> MemoryUse {
        let m = |w: &QMatrix| (w.t.q.len() + 4 * w.t.s.len()) as u64;
        let layers: u64 = self.layers.iter().map(|l| m(&l.wq) + m(&l.wk) + m(&l.wv) + m(&l.wo) + m(&l.w1) + m(&l.w2) + m(&l.w3)).sum();
        MemoryUse {
            weights_bytes: layers + m(&self.embed) + self.output.as_ref().map_or(0, m),
            kv_cache_bytes: 0,
            device_peak_bytes: None,
        }
    }
}
