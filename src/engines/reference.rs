//! The reference engine: the Llama forward pass in plain f32, one token at a time.
//!
//! It is the truth the other engines are tested against, so it is written to be read, not to be
//! fast: weights are dequantized to f32 once, every matrix-vector product is a loop (split across
//! threads by rows, which does not change the arithmetic order of any output), attention is the
//! textbook softmax over a growing f32 cache. It is never benchmarked.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::model::gguf::GgufFile;
use crate::model::llama::ops::{rope, silu, softmax};
use crate::model::llama::{names, LlamaConfig};
use anyhow::{ensure, Result};
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

struct Layer {
    attn_norm: Vec<f32>,
    wq: Vec<f32>,
    wk: Vec<f32>,
    wv: Vec<f32>,
    wo: Vec<f32>,
    ffn_norm: Vec<f32>,
    w_gate: Vec<f32>,
    w_up: Vec<f32>,
    w_down: Vec<f32>,
}

pub struct Reference {
    cfg: LlamaConfig,
    embed: Vec<f32>,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    /// Classifier rows; `None` when tied to the embedding.
    output: Option<Vec<f32>>,
    inv_freqs: Vec<f32>,
}

/// Keys and values of one sequence, per layer, appended position by position.
struct Cache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl Reference {
    pub fn load(path: &Path) -> Result<Self> {
        let g = GgufFile::open(path)?;
        let cfg = LlamaConfig::from_gguf(&g)?;
        let t = |name: &str| g.f32_tensor(name);
        let layers = (0..cfg.n_layers)
            .map(|i| {
                let l = |what: &str| t(&names::layer(i, what));
                Ok(Layer {
                    attn_norm: l(names::ATTN_NORM)?,
                    wq: l(names::ATTN_Q)?,
                    wk: l(names::ATTN_K)?,
                    wv: l(names::ATTN_V)?,
                    wo: l(names::ATTN_OUT)?,
                    ffn_norm: l(names::FFN_NORM)?,
                    w_gate: l(names::FFN_GATE)?,
                    w_up: l(names::FFN_UP)?,
                    w_down: l(names::FFN_DOWN)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = if cfg.tied_embeddings { None } else { Some(t(names::OUTPUT)?) };
        Ok(Self {
            inv_freqs: cfg.inv_freqs(),
            embed: t(names::EMBED)?,
            output_norm: t(names::OUTPUT_NORM)?,
            output,
            layers,
            cfg,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    fn new_cache(&self) -> Cache {
        Cache { k: vec![Vec::new(); self.cfg.n_layers], v: vec![Vec::new(); self.cfg.n_layers] }
    }

    /// Run one token at position `pos` (the cache holds positions `0..pos`); returns the logits.
    fn forward(&self, token: u32, pos: usize, cache: &mut Cache) -> Vec<f32> {
        let c = &self.cfg;
        let (hd, kv_dim) = (c.head_dim, c.n_kv_heads * c.head_dim);
        let row = token as usize * c.hidden;
        let mut x = self.embed[row..row + c.hidden].to_vec();
        for (li, l) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &l.attn_norm, c.rms_eps);
            let mut q = matvec(&l.wq, &h);
            let mut k = matvec(&l.wk, &h);
            let v = matvec(&l.wv, &h);
            for head in q.chunks_mut(hd).chain(k.chunks_mut(hd)) {
                rope(head, pos, &self.inv_freqs);
            }
            cache.k[li].extend_from_slice(&k);
            cache.v[li].extend_from_slice(&v);
            let mut attn = vec![0f32; c.hidden];
            let group = c.n_heads / c.n_kv_heads;
            let scale = 1.0 / (hd as f32).sqrt();
            for head in 0..c.n_heads {
                let kv_off = (head / group) * hd;
                let qh = &q[head * hd..(head + 1) * hd];
                let mut scores: Vec<f32> = (0..=pos)
                    .map(|t| {
                        let kt = &cache.k[li][t * kv_dim + kv_off..t * kv_dim + kv_off + hd];
                        dot(qh, kt) * scale
                    })
                    .collect();
                softmax(&mut scores);
                let out = &mut attn[head * hd..(head + 1) * hd];
                for (t, s) in scores.iter().enumerate() {
                    let vt = &cache.v[li][t * kv_dim + kv_off..t * kv_dim + kv_off + hd];
                    for (o, vv) in out.iter_mut().zip(vt) {
                        *o += s * vv;
                    }
                }
            }
            add(&mut x, &matvec(&l.wo, &attn));
            let h = rms_norm(&x, &l.ffn_norm, c.rms_eps);
            let gate = matvec(&l.w_gate, &h);
            let up = matvec(&l.w_up, &h);
            let act: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| silu(*g) * u).collect();
            add(&mut x, &matvec(&l.w_down, &act));
        }
        let x = rms_norm(&x, &self.output_norm, c.rms_eps);
        matvec(self.output.as_deref().unwrap_or(&self.embed), &x)
    }
}

/// `w` holds rows of length `x.len()`; returns `w · x`.
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.par_chunks(x.len()).map(|row| dot(row, x)).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    crate::model::llama::ops::rms_norm_into(&mut out, x, w, eps);
    out
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}





impl Engine for Reference {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "reference".into(),
            config: "plain f32 reference, one token at a time".into(),
            version: format!("llm-bench {}", env!("CARGO_PKG_VERSION")),
            device: Device::Cpu,
            precision: "weights dequantized to f32, activations f32".into(),
            notes: "plain f32 forward pass, one token at a time; the truth in tests, never benchmarked".into(),
        }
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        let mut outputs = Vec::with_capacity(prompts.len());
        for (request, prompt) in prompts.iter().enumerate() {
            ensure!(!prompt.is_empty(), "the reference engine needs a non-empty prompt");
            let mut cache = self.new_cache();
            let mut logits = Vec::new();
            for (pos, &tok) in prompt.iter().enumerate() {
                logits = self.forward(tok, pos, &mut cache);
            }
            let mut out = Vec::with_capacity(options.max_new_tokens);
            for index in 0..options.max_new_tokens {
                let token = crate::engine::argmax(&logits);
                on_token(TokenEvent { request, index, token, at: Instant::now() });
                out.push(token);
                if index + 1 < options.max_new_tokens {
                    logits = self.forward(token, prompt.len() + index, &mut cache);
                }
            }
            outputs.push(out);
        }
        Ok(outputs)
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        ensure!(!prompt.is_empty(), "the reference engine needs a non-empty prompt");
        let mut cache = self.new_cache();
        let mut logits = Vec::new();
        for (pos, &tok) in prompt.iter().enumerate() {
            logits = self.forward(tok, pos, &mut cache);
        }
        Ok(logits)
    }

    fn memory(&self) -> MemoryUse {
        let n: usize = self.embed.len()
            + self.output.as_ref().map_or(0, Vec::len)
            + self
                .layers
                .iter()
                .map(|l| l.wq.len() + l.wk.len() + l.wv.len() + l.wo.len() + l.w_gate.len() + l.w_up.len() + l.w_down.len())
                .sum::<usize>();
        MemoryUse { weights_bytes: 4 * n as u64, ..Default::default() }
    }
}
