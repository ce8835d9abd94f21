//! The PyTorch baseline's saved copy of its GGUF load (`LLM_BENCH_TORCH_WEIGHTS`), on the real
//! SmolLM2 weights: a second load reads the copy the first one saved, says so in the engine info,
//! and computes the same logits, bit for bit. A test binary of its own: the variable is the process's.
#![cfg(feature = "torch")]

use llm_bench::engine::{Device, Engine};
use llm_bench::engines::check;
use llm_bench::model::fixtures::Fixture;

#[test]
fn a_second_load_reads_the_saved_copy_and_computes_the_same_logits() {
    let files = Fixture::SmolLm2.files().expect("SmolLM2 fixture");
    let folder = std::env::temp_dir().join(format!("llm-bench-torch-weights-{}", std::process::id()));
    std::env::set_var("LLM_BENCH_TORCH_WEIGHTS", &folder);
    let prompt = check::smollm2_prompt(&files).unwrap();
    let torch = llm_bench::engines::Variant::named("torch").unwrap();

    let mut first = torch.load(&files, Device::Cpu).unwrap();
    let notes = first.info().notes;
    assert!(notes.contains("through transformers' GGUF loader"), "{notes}");
    let from_gguf = first.logits(&prompt).unwrap();
    drop(first);
    let saved: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(saved.len(), 1, "one saved copy, no partial one left: {saved:?}");
    assert!(saved[0].contains("float32") && saved[0].contains(&format!("{}", std::fs::metadata(&files.gguf).unwrap().len())), "{saved:?}");

    let mut second = torch.load(&files, Device::Cpu).unwrap();
    let notes = second.info().notes;
    assert!(notes.contains("as an earlier process saved it"), "{notes}");
    assert_eq!(second.logits(&prompt).unwrap(), from_gguf, "the saved copy changed the weights");
    drop(second);
    std::fs::remove_dir_all(&folder).unwrap();
}
