//! lm.rs (github.com/samuel-vitorino/lm.rs, MIT), re-implemented: a small CPU Llama engine with
//! int8 weights and int8 activations, written here from its design (not its code) and read from
//! the same GGUF as every engine. Two variants:
//!
//! - `lmrs` computes as upstream does (commit aa6db5c, `src/functional.rs`, `src/transformer.rs`,
//!   `src/bin/chat.rs`, `export.py`), so its row measures lm.rs's design on this CPU;
//! - `lmrs-fast` keeps the suite's denser int8 kernel, labelled as the suite's, never lm.rs's.
//!
//! Where `lmrs` follows upstream:
//! - Weights Q8 symmetric in groups of 128 along each row (scale = max|w| / 127, f32), as
//!   export.py writes them (its `--group-size` is written to the header but the tensors are always
//!   grouped by 128). A model whose widths are not multiples of 128 (SmolLM2: 576) gets 64 or 32
//!   here, which upstream cannot load at all; the engine info says which.
//! - Activations quantized in the same groups before every matmul (on one thread), one quantized
//!   input shared by q/k/v and one by gate/up.
//! - `matmul_q8`: rayon over items of 4 output rows; per group, each of 8 int8 values widened to
//!   i32 (`i32x8::from(&[i8])`) and multiplied in i32 lanes (`vpmulld`), four accumulators for
//!   the four rows sharing one widened input, the group sum scaled by the weight's and the
//!   input's scale found by dividing the flat index by the group size, accumulated in f32.
//! - RoPE with Llama 3 scaling, its frequencies recomputed (`powf`) at every call, per head.
//! - Attention parallel over heads, a zeroed score buffer of the model's context (at most 8192)
//!   per head and layer, f32 softmax; an f32 KV cache; the classifier tied to the quantized
//!   embedding.
//! - Prefill one token at a time through the full forward (logits included), as chat.rs feeds a
//!   prompt; greedy sampling (chat `--temperature 0`: its default top-p sorts the whole vocabulary
//!   every token, a cost of its sampler, not of its model); one request at a time.
//! - Threads: upstream uses rayon's global pool (`RAYON_NUM_THREADS`); here a pool of
//!   `LLM_BENCH_LMRS_THREADS` (default all cores), the same count.
//!
//! Where it does not, and why:
//! - RMSNorm is scalar here (upstream: f32x8): a few microseconds per token of 20 ms.
//! - Activations are scaled by the reciprocal of their group's scale, upstream divides by it (about
//!   260 thousand divisions per token on one thread, ~2 % of a step): tried, the division's
//!   different roundings put SmolLM2's logits 6.7 % off the reference against 4.5 % (the check's
//!   limit is 5 %), so the row keeps the reciprocal.
//! - Build: upstream's README builds with `-C target-cpu=native`, LTO and one codegen unit; the
//!   suite's binary is built for x86-64-v3 (it must run on the build and the GPU machine), 16
//!   codegen units. `wide` is 256-bit either way; the side-by-side run measures what is left.
//! - The embedding row is dequantized per token (upstream dequantizes the whole table to f32 at
//!   load, 1 GB more memory, a copy per token): equal cost per token.
//! - The KV cache is sized per request (prompt + new tokens), upstream's for the model's context.
//! - RoPE rotates the GGUF's adjacent pairs (upstream: Hugging Face's rotate-half layout of its
//!   own export): the same arithmetic on a different layout.
//!
//! `lmrs-fast` differs from `lmrs` in the matmul (16 values per step as i16 pairs multiplied and
//! added into i32 lanes, `vpmaddwd`: about half the instructions; scales indexed directly), in RoPE
//! (frequencies computed once at load) and in attention (scores only for the positions there are).

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::engines::variant::{Setting, Variant};
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

/// Quantize `x` in groups of `gs` (scale = max|x| / 127, values rounded to the nearest int8).
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

/// `out = W · x` as upstream's `matmul_q8`: items of four rows; per group of `gs`, eight int8
/// values at a time widened to i32 and multiplied in i32 lanes, the input widened once for the
/// four rows; scales found by dividing the flat index by `gs`. Rows must be a multiple of 4
/// (checked at load), as upstream's `par_chunks_exact_mut(4)` silently requires.
fn matmul_lmrs(out: &mut [f32], x: &QTensor, w: &QMatrix, gs: usize) {
    debug_assert_eq!(out.len(), w.rows);
    let n = w.cols;
    out.par_chunks_exact_mut(4).enumerate().for_each(|(item, o4)| {
        let r0 = item * 4;
        let mut sums = [0f32; 4];
        let mut j = 0;
        while j + gs <= n {
            let mut acc = [i32x8::ZERO; 4];
            let mut k = 0;
            while k < gs {
                let xv = i32x8::from(&x.q[j + k..j + k + 8]);
                for (r, a) in acc.iter_mut().enumerate() {
                    let at = (r0 + r) * n + j + k;
                    *a += xv * i32x8::from(&w.t.q[at..at + 8]);
                }
                k += 8;
            }
            for (r, a) in acc.iter().enumerate() {
                let ni = (r0 + r) * n;
                sums[r] += a.reduce_add() as f32 * w.t.s[(ni + j) / gs] * x.s[j / gs];
            }
            j += gs;
        }
        o4.copy_from_slice(&sums);
    });
}

/// `out = W · x` with the suite's kernel (`lmrs-fast`); four rows per work item.
fn matmul_fast(out: &mut [f32], x: &QTensor, w: &QMatrix, gs: usize) {
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
    /// Compute as upstream lm.rs does (`lmrs`), or with the suite's kernels (`lmrs-fast`).
    upstream: bool,
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
        let upstream = variant.setting != Setting::FastKernels;
        let qm = |name: &str| -> Result<QMatrix> {
            let info = g.tensor(name)?;
            let (cols, rows) = (info.dims[0], info.dims[1]);
            ensure!(!upstream || rows % 4 == 0, "{name}: {rows} rows; lm.rs's matmul takes rows four at a time (use lmrs-fast)");
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
            upstream,
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
        let up = self.upstream;
        let matmul = if up { matmul_lmrs } else { matmul_fast };
        // Upstream's score buffer: the model's context, capped at 8192 as its loader caps it.
        let scores = c.context_length.min(8192).max(pos + 1);
        for (li, l) in self.layers.iter().enumerate() {
            rms_norm(&mut st.xb, &st.x, &l.attn_norm, c.rms_eps);
            quantize_into(&st.xb, gs, &mut st.xq);
            matmul(&mut st.q, &st.xq, &l.wq, gs);
            matmul(&mut st.k, &st.xq, &l.wk, gs);
            matmul(&mut st.v, &st.xq, &l.wv, gs);
            for head in st.q.chunks_exact_mut(hd).chain(st.k.chunks_exact_mut(hd)) {
                if up {
                    rope(head, pos, &c.inv_freqs()); // recomputed per call, as upstream
                } else {
                    rope(head, pos, &self.inv_freqs);
                }
            }
            st.key_cache[li][pos * kv_dim..(pos + 1) * kv_dim].copy_from_slice(&st.k);
            st.value_cache[li][pos * kv_dim..(pos + 1) * kv_dim].copy_from_slice(&st.v);
            let (keys, values, q) = (&st.key_cache[li], &st.value_cache[li], &st.q);
            let scale = 1.0 / (hd as f32).sqrt();
            st.att_out.par_chunks_mut(hd).enumerate().for_each(|(h, out)| {
                let off = (h / group) * hd;
                let qh = &q[h * hd..(h + 1) * hd];
                let score = |t: usize| {
                    let k = &keys[t * kv_dim + off..t * kv_dim + off + hd];
                    qh.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale
                };
                let mut att: Vec<f32> = if up {
                    let mut a = vec![0f32; scores];
                    a[..=pos].iter_mut().enumerate().for_each(|(t, s)| *s = score(t));
                    a.truncate(pos + 1);
                    a
                } else {
                    (0..=pos).map(score).collect()
                };
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
            if self.upstream {
                format!("lm.rs (aa6db5c) as upstream computes it, re-implemented in llm-bench {} (wide {})", env!("CARGO_PKG_VERSION"), env!("LLM_BENCH_VERSION_WIDE"))
            } else {
                format!("the lm.rs design with llm-bench {}'s own int8 kernel (wide {}): not upstream lm.rs", env!("CARGO_PKG_VERSION"), env!("LLM_BENCH_VERSION_WIDE"))
            },
            format!("weights Q8 symmetric groups of {}, activations int8 groups of {}, KV cache f32", self.gs, self.gs),
            format!(
                "{} threads; prefill token by token; one request at a time; {}",
                self.threads,
                if self.upstream { "matmul as upstream's matmul_q8 (i32x8 widening multiplies, 4 rows per item)" } else { "matmul by i16 multiply-add (vpmaddwd)" }
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's kernel shape and the suite's faster one compute the same integer dot products
    /// and the same f32 sums, so on the same quantized input they agree to the last bit.
    #[test]
    fn the_upstream_and_the_fast_kernel_give_the_same_products() {
        let (rows, cols, gs) = (12, 256, 64);
        let mut seed = 0x1234_5678u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed as f32 / u32::MAX as f32) * 2.0 - 1.0
        };
        let w: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
        let x: Vec<f32> = (0..cols).map(|_| next()).collect();
        let m = QMatrix::from_f32(&w, rows, cols, gs);
        let mut xq = QTensor { q: Vec::new(), s: Vec::new() };
        quantize_into(&x, gs, &mut xq);
        let (mut a, mut b) = (vec![0f32; rows], vec![0f32; rows]);
        matmul_lmrs(&mut a, &xq, &m, gs);
        matmul_fast(&mut b, &xq, &m, gs);
        assert_eq!(a, b);
    }
}
