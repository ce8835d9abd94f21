//! The correctness check every engine must pass before its speed means anything: on
//! SmolLM2-135M-Instruct (real weights), the engine's greedy tokens for a chat prompt made with
//! the model's own template agree with the reference engine's, and its last-position logits are
//! close. Used by the tests (CPU) and by `llm-bench check` (any device, e.g. the GPU machine).

use crate::engine::{argmax, generate_tokens, Engine, EngineInfo, ModelFiles};
use crate::engines::reference::Reference;
use crate::model::gguf::GgufFile;
use crate::model::tokenizer::{self, Message};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Greedy tokens an engine must reproduce.
pub const AGREE_TOKENS: usize = 16;
/// New tokens generated: long enough for SmolLM2 to end its answer, so generating past
/// end-of-sequence is exercised too.
pub const GENERATE: usize = 24;
/// Largest allowed last-position logit error, as a fraction of the largest |logit|.
pub const LOGIT_TOLERANCE: f32 = 0.05;
/// The question asked.
pub const QUESTION: &str = "What is the capital of France? Answer in one sentence.";

/// The chat prompt for SmolLM2, rendered with the chat template stored in its GGUF.
pub fn smollm2_prompt(files: &ModelFiles) -> Result<Vec<u32>> {
    let g = GgufFile::open(&files.gguf)?;
    let template = tokenizer::gguf_chat_template(&g).context("the SmolLM2 GGUF carries no chat template")?;
    let text = tokenizer::render_chat(&template, &[Message::user(QUESTION)], "<|im_start|>", "<|im_end|>")?;
    tokenizer::encode(&tokenizer::load(&files.tokenizer)?, &text)
}

/// What the reference engine answers.
#[derive(Serialize, Deserialize)]
pub struct ReferenceAnswer {
    pub prompt: Vec<u32>,
    pub tokens: Vec<u32>,
    pub logits: Vec<f32>,
}

pub fn reference_answer(files: &ModelFiles) -> Result<ReferenceAnswer> {
    reference_answer_to(files, smollm2_prompt(files)?)
}

/// The reference engine's answer to `prompt` (the SmolLM2 question, already encoded).
fn reference_answer_to(files: &ModelFiles, prompt: Vec<u32>) -> Result<ReferenceAnswer> {
    let mut reference = Reference::load(&files.gguf)?;
    let tokens = generate_tokens(&mut reference, &prompt, GENERATE)?;
    let logits = reference.logits(&prompt)?;
    Ok(ReferenceAnswer { prompt, tokens, logits })
}

/// The reference answer as a file keeps it: which binary and which model file it was computed for.
#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    git_commit: String,
    model_bytes: u64,
    #[serde(flatten)]
    answer: ReferenceAnswer,
}

/// The reference answer, read from `store` when an earlier check of this same binary computed it
/// for this same model file, else computed and written there (true: it was read). A lease checks
/// its engines side by side, one process each (scripts/device-warm.sh); each computing the f32
/// reference beside the others and llama.cpp's build took 120–146 s instead of 2.2 s alone
/// (target-reports/h200-2026-12-06-d/check.log), the longest part of the lease's untimed start.
/// `commit` is the binary's git commit (the caller's `measure::telemetry::git_commit()`): a binary
/// without a clean one (a build from a changed tree) never reuses a stored answer, since its
/// reference engine may not be the one that computed it.
pub fn reference_answer_stored(files: &ModelFiles, store: &Path, commit: &str) -> Result<(ReferenceAnswer, bool)> {
    if commit == "unknown" || commit.is_empty() || commit.ends_with("-dirty") {
        return Ok((reference_answer(files)?, false));
    }
    let model_bytes = std::fs::metadata(&files.gguf).with_context(|| format!("reading {}", files.gguf.display()))?.len();
    let prompt = smollm2_prompt(files)?;
    let stored = std::fs::read(store).ok().and_then(|b| serde_json::from_slice::<StoredAnswer>(&b).ok());
    if let Some(a) = stored.filter(|a| a.git_commit == commit && a.model_bytes == model_bytes && a.answer.prompt == prompt) {
        return Ok((a.answer, true));
    }
    let stored = StoredAnswer { git_commit: commit.to_string(), model_bytes, answer: reference_answer_to(files, prompt)? };
    // Written whole, then renamed: a check started meanwhile reads the old file or none.
    let partial = store.with_extension(format!("part-{}", std::process::id()));
    std::fs::write(&partial, serde_json::to_vec(&stored)?)
        .and_then(|()| std::fs::rename(&partial, store))
        .with_context(|| format!("writing the reference answer to {}", store.display()))?;
    Ok((stored.answer, false))
}

/// How an engine compares with the reference.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub engine: EngineInfo,
    pub tokens: Vec<u32>,
    pub reference_tokens: Vec<u32>,
    /// Leading greedy tokens equal to the reference's.
    pub agreeing_prefix: usize,
    pub max_logit_error: f32,
    pub max_abs_logit: f32,
    pub same_argmax: bool,
    pub passed: bool,
}

pub fn compare(engine: &mut dyn Engine, reference: &ReferenceAnswer) -> Result<Agreement> {
    let tokens = generate_tokens(engine, &reference.prompt, GENERATE)?;
    let logits = engine.logits(&reference.prompt)?;
    anyhow::ensure!(
        logits.len() == reference.logits.len(),
        "{} returned {} logits, the vocabulary has {}",
        engine.info().name,
        logits.len(),
        reference.logits.len()
    );
    let agreeing_prefix = tokens.iter().zip(&reference.tokens).take_while(|(a, b)| a == b).count();
    let max_logit_error = logits
        .iter()
        .zip(&reference.logits)
        .map(|(a, b)| if a.is_finite() { (a - b).abs() } else { f32::INFINITY })
        .fold(0f32, f32::max);
    let max_abs_logit = reference.logits.iter().fold(0f32, |m, x| m.max(x.abs()));
    let same_argmax = argmax(&logits) == argmax(&reference.logits);
    let passed = tokens.len() == GENERATE
        && agreeing_prefix >= AGREE_TOKENS
        && max_logit_error <= LOGIT_TOLERANCE * max_abs_logit
        && same_argmax;
    Ok(Agreement {
        engine: engine.info(),
        tokens,
        reference_tokens: reference.tokens.clone(),
        agreeing_prefix,
        max_logit_error,
        max_abs_logit,
        same_argmax,
        passed,
    })
}

impl std::fmt::Display for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} on {}: {} — {}/{} greedy tokens agree with the reference (need {}), max |logit error| {:.4} \
             ({:.2}% of max |logit| {:.2}, limit {:.0}%), same argmax: {}",
            self.engine.name,
            self.engine.version,
            self.engine.device,
            if self.passed { "PASS" } else { "FAIL" },
            self.agreeing_prefix,
            GENERATE,
            AGREE_TOKENS,
            self.max_logit_error,
            100.0 * self.max_logit_error / self.max_abs_logit,
            self.max_abs_logit,
            100.0 * LOGIT_TOLERANCE,
            self.same_argmax
        )
    }
}
