//! Tokenizers and chat templates.
//!
//! The benchmark model uses the real Llama 3.2 `tokenizer.json`. A GGUF that carries only its
//! tokenizer in metadata (SmolLM2, or a user's checkpoint) gets an equivalent `tokenizer.json`
//! built from that metadata, so every engine is fed token ids made by one Hugging Face tokenizer.

use crate::model::gguf::{GgufFile, Value};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::Path;
pub use tokenizers::Tokenizer;

/// The Llama 3 pre-tokenizer split (llama.cpp's `llama-bpe`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// token_type values in GGUF metadata: 3 is a control token, 4 a user-defined one.
const CONTROL: u64 = 3;
const USER_DEFINED: u64 = 4;

pub fn load(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_file(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load tokenizer {}: {e}; make the fixtures again or set LLM_BENCH_TOKENIZER to a tokenizer.json",
            path.display()
        )
    })
}

pub fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    Ok(tok
        .encode(text, false)
        .map_err(|e| anyhow::anyhow!("tokenizer failed on the prompt: {e}"))?
        .get_ids()
        .to_vec())
}

pub fn decode(tok: &Tokenizer, ids: &[u32]) -> Result<String> {
    tok.decode(ids, false).map_err(|e| anyhow::anyhow!("tokenizer failed to decode: {e}"))
}

/// A `tokenizer.json` (as text) equivalent to the BPE tokenizer stored in a GGUF's metadata.
pub fn tokenizer_json_from_gguf(g: &GgufFile) -> Result<String> {
    let model = g.get("tokenizer.ggml.model").and_then(Value::as_str).unwrap_or("");
    if model != "gpt2" {
        bail!(
            "{} has a `{model}` tokenizer; only byte-level BPE (`gpt2`) tokenizers are built from GGUF \
             metadata — set LLM_BENCH_TOKENIZER to the model's tokenizer.json",
            g.path.display()
        );
    }
    let strings = |key: &str| -> Result<Vec<String>> {
        g.get(key)
            .and_then(Value::as_array)
            .with_context(|| format!("{} has no {key}", g.path.display()))?
            .iter()
            .map(|v| v.as_str().map(str::to_owned).context("non-string token"))
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?;
    let types: Vec<u64> = g
        .get("tokenizer.ggml.token_type")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(1)).collect())
        .unwrap_or_else(|| vec![1; tokens.len()]);
    let vocab: serde_json::Map<String, serde_json::Value> =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    let added: Vec<_> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, &ty))| ty == CONTROL || ty == USER_DEFINED)
        .map(|(id, (t, &ty))| {
            json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": ty == CONTROL})
        })
        .collect();
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
    };
    let pre = g.get("tokenizer.ggml.pre").and_then(Value::as_str).unwrap_or("default");
    let pre_tokenizer = match pre {
        "llama-bpe" | "llama3" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": false},
            byte_level(false)]}),
        "smollm" | "starcoder" | "refact" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        _ => byte_level(true),
    };
    let doc = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges},
    });
    Ok(serde_json::to_string(&doc)?)
}

/// One chat message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn user(content: &str) -> Self {
        Self { role: "user".into(), content: content.into() }
    }
}

/// Render a Hugging Face chat template (Jinja) the way `apply_chat_template` does, with the
/// generation prompt for the assistant's turn appended.
pub fn render_chat(template: &str, messages: &[Message], bos: &str, eos: &str) -> Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(false);
    env.add_template("chat", template).context("the chat template does not parse")?;
    let out = env
        .get_template("chat")?
        .render(minijinja::context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => bos,
            eos_token => eos,
        })
        .context("the chat template failed to render")?;
    Ok(out)
}

/// The chat template stored in a GGUF, if any.
pub fn gguf_chat_template(g: &GgufFile) -> Option<String> {
    g.get("tokenizer.chat_template").and_then(Value::as_str).map(str::to_owned)
}
