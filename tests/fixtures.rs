//! The fixtures are what they claim to be: the real Llama 3.2 tokenizer, a generated model with
//! the real model's layout, and the same bytes from the same seed.

use llm_bench::model::fixtures::{self, Fixture};
use llm_bench::model::gguf::{GgmlType, GgufFile, Value};
use llm_bench::model::tokenizer;

#[test]
fn llama_tokenizer_is_the_real_llama3_tokenizer() {
    let dir = fixtures::llama_tokenizer_dir().unwrap();
    let tok = tokenizer::load(&dir.join("tokenizer.json")).unwrap();
    // Llama 3's ids for these words, as the Meta tokenizer gives them.
    assert_eq!(tokenizer::encode(&tok, "Hello world").unwrap(), vec![9906, 1917]);
    assert_eq!(tok.get_vocab_size(false), 128_000);
    let chat = tokenizer::render_chat(
        fixtures::LLAMA3_CHAT_TEMPLATE,
        &[tokenizer::Message::user("Hi")],
        "<|begin_of_text|>",
        "<|eot_id|>",
    )
    .unwrap();
    let ids = tokenizer::encode(&tok, &chat).unwrap();
    assert_eq!(&ids[..2], &[128_000, 128_006], "<|begin_of_text|><|start_header_id|>");
    assert!(chat.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"), "{chat:?}");
}

#[test]
fn generated_1b_has_the_layout_of_llama_3_2_1b_instruct_q8_0() {
    let files = Fixture::Llama1B.files().unwrap();
    let g = GgufFile::open(&files.gguf).unwrap();
    // 16 blocks of 9 tensors, embedding, final norm and rope factors; classifier tied.
    assert_eq!(g.tensors.len(), 16 * 9 + 3);
    assert!(!g.tensors.contains_key("output.weight"));
    assert_eq!(g.tensor("token_embd.weight").unwrap().dims, vec![2048, 128_256]);
    assert_eq!(g.tensor("blk.15.ffn_down.weight").unwrap().dims, vec![8192, 2048]);
    assert_eq!(g.tensor("blk.0.attn_k.weight").unwrap().dims, vec![2048, 512]);
    assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ggml_type, GgmlType::Q8_0);
    assert_eq!(g.tensor("blk.0.attn_norm.weight").unwrap().ggml_type, GgmlType::F32);
    let file_bytes = std::fs::metadata(&files.gguf).unwrap().len();
    // The real Llama-3.2-1B-Instruct-Q8_0.gguf is 1.32 GB; the generated one moves the same bytes.
    assert!((1_300_000_000..1_340_000_000).contains(&file_bytes), "{file_bytes}");
    let meta_u = |k: &str| g.get(k).and_then(Value::as_u64).unwrap();
    assert_eq!(meta_u("llama.rope.dimension_count"), 64);
    assert_eq!(meta_u("tokenizer.ggml.eos_token_id"), 128_009);
    assert_eq!(g.get("llama.rope.freq_base").and_then(Value::as_f32), Some(500_000.0));
    assert_eq!(g.get("tokenizer.ggml.pre").and_then(Value::as_str), Some("llama-bpe"));
    let tokens = g.get("tokenizer.ggml.tokens").and_then(Value::as_array).unwrap();
    assert_eq!(tokens.len(), 128_256);
    assert_eq!(tokens[9906].as_str(), Some("Hello"));
    assert_eq!(tokens[128_009].as_str(), Some("<|eot_id|>"));
    assert!(tokenizer::gguf_chat_template(&g).unwrap().contains("<|start_header_id|>"));
}

#[test]
fn same_seed_gives_the_same_bytes() {
    // The manifest records the sha256 of each generated model; a new machine must reproduce it.
    let manifest: serde_json::Value = serde_json::from_str(include_str!("../fixtures/manifest.json")).unwrap();
    let files = Fixture::Llama1B.files().unwrap();
    let expected = manifest["generated"][&files.name]["sha256"].as_str().expect("manifest has the 1B sha256");
    assert_eq!(fixtures::sha256_file(&files.gguf).unwrap(), expected);
    let smol = Fixture::SmolLm2.files().unwrap();
    let expected = manifest["generated"][&smol.name]["sha256"].as_str().unwrap();
    assert_eq!(fixtures::sha256_file(&smol.gguf).unwrap(), expected, "re-quantization is deterministic");
}

#[test]
fn requantized_smollm2_keeps_the_real_weights() {
    let smol = Fixture::SmolLm2.files().unwrap();
    let g = GgufFile::open(&smol.gguf).unwrap();
    let src = GgufFile::open(&fixtures::cache_dir().join("smollm2-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    assert_eq!(g.tensors.len(), src.tensors.len());
    let name = "blk.3.ffn_up.weight";
    assert_eq!(src.tensor(name).unwrap().ggml_type, GgmlType::Q4_1);
    assert_eq!(g.tensor(name).unwrap().ggml_type, GgmlType::Q8_0);
    let (a, b) = (src.f32_tensor(name).unwrap(), g.f32_tensor(name).unwrap());
    let max_abs = a.iter().fold(0f32, |m, x| m.max(x.abs()));
    let max_err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(max_err <= max_abs / 127.0, "Q8_0 re-quantization error {max_err} exceeds one step of {max_abs}/127");
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let err = fixtures::user_model(std::path::Path::new("/nonexistent/model.gguf")).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("/nonexistent/model.gguf") && msg.contains("fixture name"), "{msg}");
    let err = GgufFile::open(std::path::Path::new("/nonexistent/model.gguf")).err().unwrap();
    assert!(format!("{err:#}").contains("LLM_BENCH_MODEL"), "{err:#}");
}
