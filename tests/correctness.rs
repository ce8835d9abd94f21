//! Engines against the reference engine, on real data: SmolLM2-135M-Instruct (real weights,
//! Q8_0), its chat template, and the real Llama 3.2 tokenizer on the generated 1B model.

use llm_bench::engines::check::{self, ReferenceAnswer, AGREE_TOKENS, GENERATE};
use llm_bench::engine::{generate_tokens, Device, Engine, ModelFiles};
use llm_bench::engines::reference::Reference;
use llm_bench::model::fixtures::Fixture;
use llm_bench::model::gguf::GgufFile;
use llm_bench::model::tokenizer;
use std::sync::OnceLock;

/// The suite's engine in its default configuration, as the registry loads it.
fn variant(name: &str) -> &'static llm_bench::engines::Variant {
    llm_bench::engines::Variant::named(name).unwrap()
}

struct Smol {
    files: ModelFiles,
    answer: ReferenceAnswer,
}

/// SmolLM2 and the reference engine's answer to the chat prompt, computed once per test binary.
fn smol() -> &'static Smol {
    static SMOL: OnceLock<Smol> = OnceLock::new();
    SMOL.get_or_init(|| {
        let files = Fixture::SmolLm2.files().expect("SmolLM2 fixture");
        let answer = check::reference_answer(&files).expect("reference engine on SmolLM2");
        Smol { files, answer }
    })
}

#[test]
fn smollm2_prompt_uses_the_real_chat_template_and_tokenizer() {
    let s = smol();
    let tok = tokenizer::load(&s.files.tokenizer).unwrap();
    // <|im_start|> and <|im_end|> are single special tokens (ids 1 and 2 in SmolLM2's vocabulary).
    assert_eq!(s.answer.prompt[0], 1, "prompt starts with <|im_start|>");
    assert_eq!(s.answer.prompt.iter().filter(|&&t| t == 2).count(), 2, "system and user turns end with <|im_end|>");
    let text = tokenizer::decode(&tok, &s.answer.prompt).unwrap();
    assert!(text.contains("You are a helpful AI assistant named SmolLM"), "{text}");
    assert!(text.ends_with("<|im_start|>assistant\n"), "{text:?}");
}

#[test]
fn reference_engine_answers_like_the_real_model() {
    let s = smol();
    let tok = tokenizer::load(&s.files.tokenizer).unwrap();
    let answer = tokenizer::decode(&tok, &s.answer.tokens).unwrap();
    assert!(answer.contains("Paris"), "the reference engine's answer does not name Paris: {answer:?}");
    // Exact lengths: the model ends its answer (<|im_end|>, id 2) and generation goes on past it.
    assert_eq!(s.answer.tokens.len(), GENERATE);
    assert!(s.answer.tokens.contains(&2), "the answer should end within {GENERATE} tokens: {answer:?}");
}

/// The answer a check stores for the checks beside it is the reference engine's, and it is read
/// back only by the binary that wrote it, for the model it was computed on.
#[test]
fn a_stored_reference_answer_is_read_back_only_for_the_same_binary_and_model() {
    let s = smol();
    let dir = std::env::temp_dir().join(format!("llm-bench-reference-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("reference.json");
    let commit = llm_bench::measure::telemetry::git_commit();
    let (first, read) = check::reference_answer_stored(&s.files, &store, &commit).unwrap();
    assert!(!read, "nothing was stored yet");
    assert_eq!((&first.prompt, &first.tokens, &first.logits), (&s.answer.prompt, &s.answer.tokens, &s.answer.logits));
    let (second, read) = check::reference_answer_stored(&s.files, &store, &commit).unwrap();
    assert_eq!(second.tokens, s.answer.tokens);
    if commit == "unknown" || commit.ends_with("-dirty") {
        // A build from a changed tree neither trusts nor writes a stored answer.
        assert!(!read && !store.exists(), "{commit}: a stored answer was written or read");
    } else {
        assert!(read, "{commit}: the answer stored by the first call was not read back");
        // The same file for another model (its size differs) is computed again, not trusted.
        let mut stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
        stored["model_bytes"] = serde_json::json!(1);
        stored["tokens"] = serde_json::json!([0, 0, 0]);
        std::fs::write(&store, serde_json::to_vec(&stored).unwrap()).unwrap();
        let (third, read) = check::reference_answer_stored(&s.files, &store, &commit).unwrap();
        assert!(!read, "an answer stored for another model file was trusted");
        assert_eq!(third.tokens, s.answer.tokens);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "candle")]
#[test]
fn candle_cpu_matches_the_reference_on_smollm2() {
    let s = smol();
    let mut candle = variant("candle").load(&s.files, Device::Cpu).unwrap();
    let a = check::compare(candle.as_mut(), &s.answer).unwrap();
    eprintln!("{a}");
    assert_eq!(a.tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    // Candle quantizes activations to 8 bits inside its CPU Q8_0 matmul, the reference keeps
    // them in f32: the logits differ by that rounding only.
    assert!(a.agreeing_prefix >= AGREE_TOKENS, "{a}");
    assert!(a.passed, "{a}");
}

#[cfg(feature = "candle")]
#[test]
fn candle_batch_of_equal_prompts_matches_single_requests() {
    let s = smol();
    let mut candle = variant("candle").load(&s.files, Device::Cpu).unwrap();
    let single = generate_tokens(candle.as_mut(), &s.answer.prompt, 8).unwrap();
    // A second, different prompt of the same length: the prompt with its first user token changed.
    let mut other = s.answer.prompt.clone();
    let i = other.len() - 8;
    other[i] = other[i] + 1;
    let single_other = generate_tokens(candle.as_mut(), &other, 8).unwrap();
    let batch = candle
        .generate(&[s.answer.prompt.clone(), other], &llm_bench::engine::GenerateOptions::greedy(8), &mut |_| {})
        .unwrap();
    assert_eq!(batch, vec![single, single_other]);
    // Unequal lengths are refused with a reason, not served some other way.
    let err = candle
        .generate(&[s.answer.prompt.clone(), s.answer.prompt[1..].to_vec()], &llm_bench::engine::GenerateOptions::greedy(2), &mut |_| {})
        .unwrap_err();
    assert!(format!("{err}").contains("equal-length"), "{err}");
}

#[cfg(feature = "candle")]
#[test]
fn generated_1b_model_loads_in_candle_with_finite_logits_matching_the_reference() {
    let files = Fixture::Llama1B.files().unwrap();
    let g = GgufFile::open(&files.gguf).unwrap();
    let cfg = llm_bench::model::llama::LlamaConfig::from_gguf(&g).unwrap();
    assert_eq!((cfg.n_layers, cfg.hidden, cfg.ffn, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.vocab),
               (16, 2048, 8192, 32, 8, 64, 128_256));
    assert!(cfg.tied_embeddings && cfg.rope_freq_factors.is_some());
    let tok = tokenizer::load(&files.tokenizer).unwrap();
    let prompt = llm_bench::run::workload::prompt(&tok, cfg.bos_token, 12).unwrap();
    let mut candle = variant("candle").load(&files, Device::Cpu).unwrap();
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

#[cfg(feature = "lmrs")]
#[test]
fn lmrs_and_lmrs_fast_match_the_reference_on_smollm2() {
    let s = smol();
    // Upstream's kernel and the suite's faster one: the same int8 arithmetic, summed differently.
    for (name, kernel) in [("lmrs", "matmul as upstream's matmul_q8"), ("lmrs-fast", "i16 multiply-add")] {
        let mut lmrs = variant(name).load(&s.files, Device::Cpu).unwrap();
        let a = check::compare(lmrs.as_mut(), &s.answer).unwrap();
        eprintln!("{a}");
        assert_eq!(a.tokens.len(), GENERATE, "{name}: exact output length, end-of-sequence ignored");
        // int8 activations in groups of 64 (SmolLM2's width 576 is not a multiple of 128).
        assert!(a.engine.precision.contains("groups of 64"), "{name}: {}", a.engine.precision);
        assert!(a.engine.notes.contains(kernel), "{name}: {}", a.engine.notes);
        assert!(a.passed, "{a}");
    }
}

#[cfg(feature = "mistralrs")]
#[test]
fn mistralrs_cpu_matches_the_reference_on_smollm2_past_end_of_sequence() {
    let s = smol();
    let mut m = variant("mistralrs").load(&s.files, Device::Cpu).unwrap();
    let a = check::compare(m.as_mut(), &s.answer).unwrap();
    eprintln!("{a}");
    // The reference answer contains <|im_end|> (checked above): mistral.rs went on past it.
    assert_eq!(a.tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    assert!(a.tokens.contains(&2), "mistral.rs stopped before the model's end-of-sequence: {:?}", a.tokens);
    assert!(a.passed, "{a}");

    // Several requests in flight at once through mistral.rs's scheduler give each request what
    // it gets alone; the events name each request's tokens in order.
    let mut other = s.answer.prompt.clone();
    let i = other.len() - 8;
    other[i] += 1;
    let single_other = generate_tokens(m.as_mut(), &other, 8).unwrap();
    let mut events = Vec::new();
    let batch = m
        .generate(&[s.answer.prompt.clone(), other], &llm_bench::engine::GenerateOptions::greedy(8), &mut |e| events.push(e))
        .unwrap();
    assert_eq!(batch, vec![a.tokens[..8].to_vec(), single_other]);
    assert_eq!(events.len(), 16);
    for r in 0..2 {
        let mine: Vec<_> = events.iter().filter(|e| e.request == r).collect();
        assert!(mine.windows(2).all(|w| w[0].index + 1 == w[1].index && w[0].at <= w[1].at), "request {r}: events out of order");
        assert_eq!(mine.iter().map(|e| e.token).collect::<Vec<_>>(), batch[r]);
    }
}

#[cfg(feature = "burn")]
#[test]
fn burn_ndarray_matches_the_reference_on_smollm2_and_batches_like_single_requests() {
    let s = smol();
    let mut b = variant("burn").load(&s.files, Device::Cpu).unwrap();
    let a = check::compare(b.as_mut(), &s.answer).unwrap();
    eprintln!("{a}");
    assert_eq!(a.tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    assert!(a.engine.precision.contains("f32"), "{}", a.engine.precision);
    assert!(a.passed, "{a}");

    // A batch of two different prompts of equal length gives each what it gets alone.
    let mut other = s.answer.prompt.clone();
    let i = other.len() - 8;
    other[i] += 1;
    let single_other = generate_tokens(b.as_mut(), &other, 6).unwrap();
    let batch = b
        .generate(&[s.answer.prompt.clone(), other], &llm_bench::engine::GenerateOptions::greedy(6), &mut |_| {})
        .unwrap();
    assert_eq!(batch, vec![a.tokens[..6].to_vec(), single_other]);
}

/// `burn-col` runs only on CUDA, where its layout matters; its layout code is backend-generic, so
/// it is checked here on burn-ndarray: every `Linear` weight held as the GGUF's `(out, in)` behind
/// a transposed view must give the reference's tokens, as the transposed copy of `burn` does.
#[cfg(feature = "burn")]
#[test]
fn burn_column_layout_matches_the_reference_on_smollm2() {
    let s = smol();
    let col = variant("burn-col");
    assert!(col.unsupported(Device::Cpu).is_some(), "burn-col is a GPU configuration in the registry");
    let mut b = llm_bench::engines::burn::load(&s.files.gguf, Device::Cpu, col).unwrap();
    let a = check::compare(b.as_mut(), &s.answer).unwrap();
    eprintln!("{a}");
    assert_eq!(a.engine.name, "burn-col");
    assert_eq!(a.tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    assert!(a.passed, "{a}");
}

/// Needs a Python with torch (scripts/torch-venv.sh; .ci/run activates it).
#[cfg(feature = "torch")]
#[test]
fn torch_baseline_cpu_matches_the_reference_on_smollm2() {
    let s = smol();
    let mut t = variant("torch").load(&s.files, Device::Cpu).unwrap();
    let a = check::compare(t.as_mut(), &s.answer).unwrap();
    eprintln!("{a}");
    assert_eq!(a.tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    assert!(a.engine.version.starts_with("transformers 5."), "{}", a.engine.version);
    assert!(a.engine.precision.contains("f32"), "{}", a.engine.precision);
    assert!(a.passed, "{a}");

    let mut events = Vec::new();
    let out = t.generate(&[s.answer.prompt.clone()], &llm_bench::engine::GenerateOptions::greedy(5), &mut |e| events.push(e)).unwrap();
    assert_eq!(out[0], a.tokens[..5].to_vec());
    assert_eq!(events.iter().map(|e| e.index).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);

    // A batch of two different prompts of equal length (transformers' attention mask, no padding)
    // gives each what it gets alone.
    let mut other = s.answer.prompt.clone();
    let i = other.len() - 8;
    other[i] += 1;
    let single_other = generate_tokens(t.as_mut(), &other, 5).unwrap();
    let batch = t.generate(&[s.answer.prompt.clone(), other], &llm_bench::engine::GenerateOptions::greedy(5), &mut |_| {}).unwrap();
    assert_eq!(batch, vec![a.tokens[..5].to_vec(), single_other]);
}

/// A Python exception inside the model is a Rust error that says the exception first (what a
/// record keeps), then the Python traceback (what the bench log keeps).
#[cfg(feature = "torch")]
#[test]
fn torch_error_names_python_exceptions_first_then_their_traceback() {
    let s = smol();
    let mut t = variant("torch").load(&s.files, Device::Cpu).unwrap();
    let e = t.logits(&[u32::MAX - 1]).unwrap_err().to_string();
    let first = e.lines().next().unwrap_or_default();
    assert!(first.starts_with("Python raised ") && first.contains("Error") && !first.contains("File "), "{e}");
    let frames = e.split_once("\nPython traceback (innermost last):\n").map(|(_, f)| f).unwrap_or_else(|| panic!("no traceback: {e}"));
    assert!(frames.contains("python_baseline/transformers_baseline.py"), "{e}");
}

/// `torch-compile`'s model (the suite's Llama with a static KV cache): on the CPU the same
/// static-cache decode step runs uncompiled, so its math is checked here; the compiled step is
/// checked on the GPU by `llm-bench check cuda`.
#[cfg(feature = "torch")]
#[test]
fn torch_static_cache_model_matches_the_reference_and_batches_like_single_requests() {
    let s = smol();
    let mut t = llm_bench::engines::torch::Torch::load(&s.files.gguf, Device::Cpu, variant("torch-compile")).unwrap();
    let a = check::compare(&mut t, &s.answer).unwrap();
    eprintln!("{a}");
    assert_eq!(a.tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    assert!(a.engine.notes.contains("uncompiled"), "{}", a.engine.notes);
    assert!(a.passed, "{a}");
    let mut other = s.answer.prompt.clone();
    let i = other.len() - 8;
    other[i] += 1;
    let single_other = generate_tokens(&mut t, &other, 6).unwrap();
    let batch = t.generate(&[s.answer.prompt.clone(), other], &llm_bench::engine::GenerateOptions::greedy(6), &mut |_| {}).unwrap();
    assert_eq!(batch, vec![a.tokens[..6].to_vec(), single_other]);
}

/// llama.cpp on the CPU: the same greedy tokens as the reference on SmolLM2 past end-of-sequence,
/// and a batch of two sequences in one `llama_batch` gives each what it gets alone.
#[cfg(feature = "llamacpp")]
#[test]
fn llamacpp_cpu_matches_the_reference_and_batches_like_single_requests() {
    let s = smol();
    let mut l = variant("llamacpp").load(&s.files, Device::Cpu).unwrap();
    let a = check::compare(l.as_mut(), &s.answer).unwrap();
    eprintln!("{a}");
    assert_eq!(a.tokens.len(), GENERATE, "exact output length, end-of-sequence ignored");
    assert!(a.engine.version.starts_with("llama.cpp"), "{}", a.engine.version);
    assert!(a.passed, "{a}");
    let mut other = s.answer.prompt.clone();
    let i = other.len() - 8;
    other[i] += 1;
    let single_other = generate_tokens(l.as_mut(), &other, 6).unwrap();
    let batch = l.generate(&[s.answer.prompt.clone(), other], &llm_bench::engine::GenerateOptions::greedy(6), &mut |_| {}).unwrap();
    assert_eq!(batch, vec![a.tokens[..6].to_vec(), single_other]);
}
