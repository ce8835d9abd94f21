//! A GGUF Llama written in upstream lm.rs's own file formats (`.lmrs` model, `tokenizer.bin`),
//! so upstream's unmodified `chat` binary can be timed beside the suite's `lmrs` on the same host
//! (`llm-bench lmrs-export`, scripts/lmrs-upstream.sh). The layout is the one lm.rs's `export.py`
//! writes and its `Transformer::new` reads (commit aa6db5c), written from that description:
//!
//! - a 256-byte header: magic `lmrs`, version 4, eight u32 (dim, hidden, layers, heads, head
//!   size, kv heads, vocab, sequence length), f32 norm epsilon and rope theta, u8 quantization
//!   (1: Q8_0) and model type (1: Llama), u32 group size, u8 multimodal, zero padding;
//! - then, every weight matrix quantized in groups of 128 along its rows (scale max|w| / 127),
//!   each tensor as all its int8 values followed by all its f32 scales: the embedding, every
//!   layer's attention norm (f32), wq, wk, wv, wo per layer, every FFN norm (f32), gate, down, up
//!   per layer, the final norm (f32). The classifier is the embedding, as lm.rs ties it.
//!
//! Upstream's chat generates until its tokenizer's end token and takes no length limit, so a
//! timing run needs a bounded answer: with `stop_after_prompt` the final norm is written as
//! zeros (every logit is 0, argmax is token 0) and the tokenizer's end token is 0, so chat runs
//! exactly the prompt's forward passes (each a full step with its classifier, as a decode step)
//! plus one, then prints its speed. The weights' values do not change the work.

use crate::model::gguf::GgufFile;
use crate::model::llama::{names, LlamaConfig};
use anyhow::{ensure, Context, Result};
use std::io::{BufWriter, Write};
use std::path::Path;

/// lm.rs's group size: export.py's writer always groups by 128.
pub const GROUP: usize = 128;

/// Write `<dir>/model.lmrs` and `<dir>/tokenizer.bin` from a GGUF Llama and its tokenizer.
pub fn export(gguf: &Path, tokenizer: &tokenizers::Tokenizer, dir: &Path, stop_after_prompt: bool) -> Result<()> {
    let g = GgufFile::open(gguf)?;
    let c = LlamaConfig::from_gguf(&g)?;
    ensure!(c.tied_embeddings, "lm.rs's Llama format ties the classifier to the embedding; {} has its own output.weight", gguf.display());
    for w in [c.hidden, c.ffn, c.n_heads * c.head_dim] {
        ensure!(w % GROUP == 0, "lm.rs groups weights by {GROUP}; {} has a width of {w}", gguf.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("model.lmrs");
    let mut out = BufWriter::with_capacity(1 << 22, std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?);
    let u32s = |out: &mut BufWriter<std::fs::File>, v: &[usize]| -> Result<()> {
        for &x in v {
            out.write_all(&(x as u32).to_le_bytes())?;
        }
        Ok(())
    };
    out.write_all(b"lmrs")?;
    u32s(&mut out, &[4, c.hidden, c.ffn, c.n_layers, c.n_heads, c.head_dim, c.n_kv_heads, c.vocab, c.context_length])?;
    out.write_all(&c.rms_eps.to_le_bytes())?;
    out.write_all(&c.rope_theta.to_le_bytes())?;
    out.write_all(&[1u8, 1u8])?; // Q8_0, Llama
    u32s(&mut out, &[GROUP])?;
    out.write_all(&[0u8])?; // not multimodal
    out.write_all(&[0u8; 256 - 55])?;

    let quantized = |out: &mut BufWriter<std::fs::File>, name: &str| -> Result<()> {
        let w = g.f32_tensor(name)?;
        let mut scales = Vec::with_capacity(w.len() / GROUP);
        let mut q = vec![0u8; w.len()];
        for (group, qg) in w.chunks_exact(GROUP).zip(q.chunks_exact_mut(GROUP)) {
            let scale = group.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (q, v) in qg.iter_mut().zip(group) {
                *q = if scale > 0.0 { (v / scale).round() as i8 as u8 } else { 0 };
            }
            scales.push(scale);
        }
        out.write_all(&q)?;
        for s in scales {
            out.write_all(&s.to_le_bytes())?;
        }
        Ok(())
    };
    let f32s = |out: &mut BufWriter<std::fs::File>, v: &[f32]| -> Result<()> {
        for x in v {
            out.write_all(&x.to_le_bytes())?;
        }
        Ok(())
    };
    quantized(&mut out, names::EMBED)?;
    for i in 0..c.n_layers {
        f32s(&mut out, &g.f32_tensor(&names::layer(i, names::ATTN_NORM))?)?;
    }
    for w in [names::ATTN_Q, names::ATTN_K, names::ATTN_V, names::ATTN_OUT] {
        for i in 0..c.n_layers {
            quantized(&mut out, &names::layer(i, w))?;
        }
    }
    for i in 0..c.n_layers {
        f32s(&mut out, &g.f32_tensor(&names::layer(i, names::FFN_NORM))?)?;
    }
    for w in [names::FFN_GATE, names::FFN_DOWN, names::FFN_UP] {
        for i in 0..c.n_layers {
            quantized(&mut out, &names::layer(i, w))?;
        }
    }
    let final_norm = g.f32_tensor(names::OUTPUT_NORM)?;
    f32s(&mut out, &if stop_after_prompt { vec![0.0; final_norm.len()] } else { final_norm })?;
    out.flush()?;

    // tokenizer.bin: vocab size, longest token, begin and end tokens, then per token its score
    // (the merge order: earlier ids first) and its bytes (the tokenizer's own token strings,
    // valid UTF-8 as lm.rs requires).
    let path = dir.join("tokenizer.bin");
    let mut t = BufWriter::new(std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?);
    let tokens: Vec<String> = (0..c.vocab as u32).map(|id| tokenizer.id_to_token(id).unwrap_or_else(|| format!("<unused{id}>"))).collect();
    let longest = tokens.iter().map(String::len).max().unwrap_or(1);
    let eos = if stop_after_prompt { 0 } else { c.eos_token.unwrap_or(0) as usize };
    for v in [c.vocab, longest, c.bos_token.unwrap_or(0) as usize, eos] {
        t.write_all(&(v as u32).to_le_bytes())?;
    }
    for (id, s) in tokens.iter().enumerate() {
        t.write_all(&(-(id as f32)).to_le_bytes())?;
        t.write_all(&(s.len() as u32).to_le_bytes())?;
        t.write_all(s.as_bytes())?;
    }
    t.flush()?;
    Ok(())
}
