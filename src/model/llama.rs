//! The Llama architecture as the suite's engines see it: hyper-parameters read from GGUF metadata,
//! the tensor names llama.cpp writes, and the rotary frequencies (with Llama 3 scaling).
//!
//! Every engine that does not load GGUF by itself builds its model from this description, so a
//! disagreement between engines is a disagreement in compute, not in how the file was read.

use crate::model::gguf::{GgufFile, Value};
use anyhow::{ensure, Context, Result};

/// Hyper-parameters of a Llama-architecture model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LlamaConfig {
    pub n_layers: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub rms_eps: f32,
    pub rope_theta: f32,
    /// Trained context length from the metadata (the engines' caches are sized separately).
    pub context_length: usize,
    /// Per-frequency divisors (`rope_freqs.weight`), present for Llama 3.x: llama.cpp stores the
    /// Llama 3 frequency scaling as this tensor instead of as metadata.
    pub rope_freq_factors: Option<Vec<f32>>,
    pub bos_token: Option<u32>,
    pub eos_token: Option<u32>,
    /// Whether the classifier is the embedding matrix (no `output.weight` tensor).
    pub tied_embeddings: bool,
}

/// The Llama 3.x rope scaling used by Llama 3.2 (factor 32, low 1, high 4, original context 8192).
#[derive(Debug, Clone, Copy)]
pub struct Llama3RopeScaling {
    pub factor: f32,
    pub low_freq_factor: f32,
    pub high_freq_factor: f32,
    pub original_context: f32,
}

impl Llama3RopeScaling {
    pub const LLAMA_3_2: Self =
        Self { factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 8192.0 };

    /// The divisor of each base frequency, i.e. what llama.cpp's `rope_freqs.weight` holds.
    pub fn freq_factors(&self, head_dim: usize, theta: f32) -> Vec<f32> {
        let low_wavelen = self.original_context / self.low_freq_factor;
        let high_wavelen = self.original_context / self.high_freq_factor;
        (0..head_dim / 2)
            .map(|i| {
                let freq = 1.0 / theta.powf(2.0 * i as f32 / head_dim as f32);
                let wavelen = 2.0 * std::f32::consts::PI / freq;
                if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    self.factor
                } else {
                    let smooth = (self.original_context / wavelen - self.low_freq_factor)
                        / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                }
            })
            .collect()
    }
}

impl LlamaConfig {
    pub fn from_gguf(g: &GgufFile) -> Result<Self> {
        let arch = g
            .get("general.architecture")
            .and_then(Value::as_str)
            .context("GGUF metadata has no general.architecture")?;
        ensure!(
            arch == "llama",
            "{} is a `{arch}` model; llm-bench runs Llama-architecture models only",
            g.path.display()
        );
        let int = |key: &str| -> Result<usize> {
            g.get(&format!("llama.{key}"))
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .with_context(|| format!("GGUF metadata key llama.{key} is missing in {}", g.path.display()))
        };
        let hidden = int("embedding_length")?;
        let n_heads = int("attention.head_count")?;
        let n_kv_heads = int("attention.head_count_kv").unwrap_or(n_heads);
        let head_dim = int("attention.key_length").unwrap_or(hidden / n_heads);
        let embd = g.tensor("token_embd.weight")?;
        let rope_freq_factors = match g.tensors.get("rope_freqs.weight") {
            Some(_) => Some(g.f32_tensor("rope_freqs.weight")?),
            None => None,
        };
        let cfg = Self {
            n_layers: int("block_count")?,
            hidden,
            ffn: int("feed_forward_length")?,
            n_heads,
            n_kv_heads,
            head_dim,
            vocab: embd.dims[1],
            rms_eps: g
                .get("llama.attention.layer_norm_rms_epsilon")
                .and_then(Value::as_f32)
                .unwrap_or(1e-5),
            rope_theta: g.get("llama.rope.freq_base").and_then(Value::as_f32).unwrap_or(10_000.0),
            context_length: int("context_length").unwrap_or(2048),
            rope_freq_factors,
            bos_token: g.get("tokenizer.ggml.bos_token_id").and_then(Value::as_u64).map(|v| v as u32),
            eos_token: g.get("tokenizer.ggml.eos_token_id").and_then(Value::as_u64).map(|v| v as u32),
            tied_embeddings: !g.tensors.contains_key("output.weight"),
        };
        ensure!(
            cfg.n_heads * cfg.head_dim == cfg.hidden && cfg.n_heads % cfg.n_kv_heads == 0,
            "inconsistent attention shape in {}: {} heads × {} ≠ hidden {}",
            g.path.display(),
            cfg.n_heads,
            cfg.head_dim,
            cfg.hidden
        );
        Ok(cfg)
    }

    /// Rotary inverse frequencies, one per pair of dimensions, after Llama 3 scaling if any.
    pub fn inv_freqs(&self) -> Vec<f32> {
        (0..self.head_dim / 2)
            .map(|i| {
                let base = 1.0 / self.rope_theta.powf(2.0 * i as f32 / self.head_dim as f32);
                match &self.rope_freq_factors {
                    Some(f) => base / f[i],
                    None => base,
                }
            })
            .collect()
    }

    /// Bytes of keys and values cached per token over all layers at `bytes_per_value` each.
    pub fn kv_bytes_per_token(&self, bytes_per_value: usize) -> usize {
        2 * self.n_layers * self.n_kv_heads * self.head_dim * bytes_per_value
    }
}

/// Tensor names written by llama.cpp for a Llama model; one place so no engine spells them twice.
pub mod names {
    pub const EMBED: &str = "token_embd.weight";
    pub const OUTPUT_NORM: &str = "output_norm.weight";
    pub const OUTPUT: &str = "output.weight";
    pub const ROPE_FREQS: &str = "rope_freqs.weight";
    pub fn layer(i: usize, what: &str) -> String {
        format!("blk.{i}.{what}.weight")
    }
    pub const ATTN_NORM: &str = "attn_norm";
    pub const ATTN_Q: &str = "attn_q";
    pub const ATTN_K: &str = "attn_k";
    pub const ATTN_V: &str = "attn_v";
    pub const ATTN_OUT: &str = "attn_output";
    pub const FFN_NORM: &str = "ffn_norm";
    pub const FFN_GATE: &str = "ffn_gate";
    pub const FFN_UP: &str = "ffn_up";
    pub const FFN_DOWN: &str = "ffn_down";
}

/// f32 building blocks of the Llama forward pass shared by the CPU engines (the reference and
/// the lm.rs design): where those two differ, it is in their matmuls, not here.
pub mod ops {
    /// `out = x / rms(x) * w`.
    pub fn rms_norm_into(out: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
        let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
        let r = 1.0 / (ms + eps).sqrt();
        out.iter_mut().zip(x.iter().zip(w)).for_each(|(o, (v, g))| *o = v * r * g);
    }

    /// Rotate adjacent pairs `(x[2i], x[2i+1])` by `pos * inv_freqs[i]`: the layout of GGUF
    /// Llama weights (llama.cpp permutes q/k at conversion).
    pub fn rope(x: &mut [f32], pos: usize, inv_freqs: &[f32]) {
        for (i, f) in inv_freqs.iter().enumerate() {
            let (sin, cos) = (pos as f32 * f).sin_cos();
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            x[2 * i] = a * cos - b * sin;
            x[2 * i + 1] = a * sin + b * cos;
        }
    }

    /// Numerically stable softmax in place.
    pub fn softmax(x: &mut [f32]) {
        let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0.0;
        for v in x.iter_mut() {
            *v = (*v - m).exp();
            sum += *v;
        }
        x.iter_mut().for_each(|v| *v /= sum);
    }

    pub fn silu(x: f32) -> f32 {
        x / (1.0 + (-x).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_leaves_high_frequencies_and_divides_low_ones() {
        let f = Llama3RopeScaling::LLAMA_3_2.freq_factors(64, 500_000.0);
        assert_eq!(f.len(), 32);
        assert_eq!(f[0], 1.0, "the fastest rotation has a wavelength far below 2048 positions");
        assert_eq!(f[31], 32.0, "the slowest rotation is stretched by the full factor");
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "factors grow with wavelength: {f:?}");
        assert!(f.iter().any(|&x| x > 1.0 && x < 32.0), "some factors lie in the smooth band");
    }

    #[test]
    fn rope_rotates_pairs_and_softmax_normalises() {
        let inv = [1.0f32, 0.5];
        let mut x = [1.0f32, 0.0, 0.0, 2.0];
        ops::rope(&mut x, 0, &inv);
        assert_eq!(x, [1.0, 0.0, 0.0, 2.0], "position 0 is the identity");
        ops::rope(&mut x, 1, &inv);
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[1] - 1f32.sin()).abs() < 1e-6);
        assert!((x[2] + 2.0 * 0.5f32.sin()).abs() < 1e-6 && (x[3] - 2.0 * 0.5f32.cos()).abs() < 1e-6);
        let mut p = [1000.0f32, 1000.0, f32::NEG_INFINITY];
        ops::softmax(&mut p);
        assert_eq!(p, [0.5, 0.5, 0.0], "stable for large logits, masked entries get 0");
    }
}
