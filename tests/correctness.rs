//! Engines against the reference engine, on real data: SmolLM2-135M-Instruct (real weights,
//! Q8_0), its chat template, and the real Llama 3.2 tokenizer on the generated 1B model.

use llm_bench::engine::{argmax, generate_tokens, Device, Engine};
use llm_bench::engines::reference::Reference;
use llm_bench::fixtures::Fixture;
use llm_bench::gguf::GgufFile;
use llm_bench::tokenizer::{self, Message};
use std::sync::OnceLock;

/// Greedy tokens every engine must reproduce on SmolLM2.
const AGREE_TOKENS: usize = 16;
/// New tokens generated in the checks: long enough for the model to finish its answer, so
/// generating past end-of-sequence is exercised.
const GENERATE: usize = 24;

struct Smol {
    files: llm_bench::engine::ModelFiles,
    prompt: Vec<u32>,
    reference_tokens: Vec<u32>,
    reference_logits: Vec<f32>,
}

/// The SmolLM2 chat prompt and the reference engine's answer, computed once per test binary.
fn smol() -> &'static Smol {
    static SMOL: OnceLock<Smol> = OnceLock::new();
    SMOL.get_or_init(|| {
        let files = Fixture::SmolLm2.files().expect("SmolLM2 fixture");
        let g = GgufFile::open(&files.gguf).unwrap();
        let template = tokenizer::gguf_chat_template(&g).expect("SmolLM2 GGUF carries a chat template");
        let text = tokenizer::render_chat(
            &template,
            &[Message::user("What is the capital of France? Answer in one sentence.")],
            "<|im_start|>",
            "<|im_end|>",
        )
        .unwrap();
        let tok = tokenizer::load(&files.tokenizer).unwrap();
        let prompt = tokenizer::encode(&tok, &text).unwrap();
        let mut reference = Reference::load(&files.gguf).unwrap();
        let reference_tokens = generate_tokens(&mut reference, &prompt, GENERATE).unwrap();
        let reference_logits = reference.logits(&prompt).unwrap();
        Smol { files, prompt, reference_tokens, reference_logits }
    })
}

#[test]
fn smollm2_prompt_uses_the_real_chat_template_and_tokenizer() {
    let s = smol();
    let tok = tokenizer::load(&s.files.tokenizer).unwrap();
    // <|im_start|> and <|im_end|> are single special tokens (ids 1 and 2 in SmolLM2's vocabulary).
    assert_eq!(s.prompt[0], 1, "prompt starts with <|im_start|>");
    assert_eq!(s.prompt.iter().filter(|&&t| t == 2).count(), 2, "system and user turns end with <|im_end|>");
    let text = tokenizer::decode(&tok, &s.prompt).unwrap();
    assert!(text.contains("You are a helpful AI assistant named SmolLM"), "{text}");
    assert!(text.ends_with("<|im_start|>assistant\n"), "{text:?}");
}

#[test]
fn reference_engine_answers_like_the_real_model() {
    let s = smol();
    let tok = tokenizer::load(&s.files.tokenizer).unwrap();
    let answer = tokenizer::decode(&tok, &s.reference_tokens).unwrap();
    assert!(answer.contains("Paris"), "the reference engine's answer does not name Paris: {answer:?}");
    // Exact lengths: the model ends its answer (<|im_end|>, id 2) and generation goes on past it.
    assert_eq!(s.reference_tokens.len(), GENERATE);
    assert!(s.reference_tokens.contains(&2), "the answer should end within {GENERATE} tokens: {answer:?}");
}

#[cfg(feature = "candle")]
#[test]
fn candle_cpu_matches_the_reference_on_smollm2() {
    use llm_bench::engines::candle::Candle;
    let s = smol();
    let mut candle = Candle::load(&s.files.gguf, Device::Cpu).unwrap();
    let tokens = generate_tokens(&mut candle, &s.prompt, GENERATE).unwrap();
    assert_eq!(tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    assert_eq!(
        tokens[..AGREE_TOKENS],
        s.reference_tokens[..AGREE_TOKENS],
        "Candle's greedy tokens differ from the reference engine's"
    );
    // Candle quantizes activations to 8 bits inside its CPU Q8_0 matmul, the reference keeps
    // them in f32: the logits differ by that rounding only.
    let logits = candle.logits(&s.prompt).unwrap();
    assert_eq!(logits.len(), s.reference_logits.len());
    let max_err = logits.iter().zip(&s.reference_logits).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let scale = s.reference_logits.iter().fold(0f32, |m, x| m.max(x.abs()));
    eprintln!("candle vs reference, last-position logits: max |diff| {max_err:.4} (max |logit| {scale:.2})");
    assert!(max_err < 0.05 * scale, "max logit error {max_err} is above 5% of the largest logit {scale}");
    assert_eq!(argmax(&logits), argmax(&s.reference_logits));
}

#[cfg(feature = "candle")]
#[test]
fn candle_batch_of_equal_prompts_matches_single_requests() {
    use llm_bench::engines::candle::Candle;
    let s = smol();
    let mut candle = Candle::load(&s.files.gguf, Device::Cpu).unwrap();
    let single = generate_tokens(&mut candle, &s.prompt, 8).unwrap();
    // A second, different prompt of the same length: the prompt with its first user token changed.
    let mut other = s.prompt.clone();
    let i = other.len() - 8;
    other[i] = other[i] + 1;
    let single_other = generate_tokens(&mut candle, &other, 8).unwrap();
    let batch = candle
        .generate(&[s.prompt.clone(), other], &llm_bench::engine::GenerateOptions::greedy(8), &mut |_| {})
        .unwrap();
    assert_eq!(batch, vec![single, single_other]);
    // Unequal lengths are refused with a reason, not served some other way.
    let err = candle
        .generate(&[s.prompt.clone(), s.prompt[1..].to_vec()], &llm_bench::engine::GenerateOptions::greedy(2), &mut |_| {})
        .unwrap_err();
    assert!(format!("{err}").contains("equal-length"), "{err}");
}

#[cfg(feature = "candle")]
#[test]
fn generated_1b_model_loads_in_candle_with_finite_logits_matching_the_reference() {
    use llm_bench::engines::candle::Candle;
    let files = Fixture::Llama1B.files().unwrap();
    let g = GgufFile::open(&files.gguf).unwrap();
    let cfg = llm_bench::llama::LlamaConfig::from_gguf(&g).unwrap();
    assert_eq!((cfg.n_layers, cfg.hidden, cfg.ffn, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.vocab),
               (16, 2048, 8192, 32, 8, 64, 128_256));
    assert!(cfg.tied_embeddings && cfg.rope_freq_factors.is_some());
    let tok = tokenizer::load(&files.tokenizer).unwrap();
    let prompt = llm_bench::workload::prompt(&tok, cfg.bos_token, 12).unwrap();
    let mut candle = Candle::load(&files.gguf, Device::Cpu).unwrap();
    let logits = candle.logits(&prompt).unwrap();
    assert_eq!(logits.len(), 128_256);
    assert!(logits.iter().all(|x| x.is_finite()), "non-finite logits");
    let mut reference = Reference::load(&files.gguf).unwrap();
    let expected = reference.logits(&prompt).unwrap();
    let max_err = logits.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let scale = expected.iter().fold(0f32, |m, x| m.max(x.abs()));
    eprintln!("1B: candle vs reference max |diff| {max_err:.4}, max |logit| {scale:.3}");
    assert!(max_err < 0.05 * scale, "1B logits differ: {max_err} vs scale {scale}");
}
