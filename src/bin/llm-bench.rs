//! The suite's command line: make fixtures, describe a model. Benchmarks run with `cargo bench`.

use anyhow::{bail, Result};
use llm_bench::fixtures::{self, Fixture};

const USAGE: &str = "usage:
  llm-bench fixtures [smollm2|llama-1b|llama-3b|all]   make model fixtures in the cache (default: smollm2 llama-1b)
  llm-bench model                                     describe the benchmark model (LLM_BENCH_MODEL or the generated 1B)";

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fixtures") => {
            let wanted: Vec<Fixture> = match args.get(1).map(String::as_str) {
                None => vec![Fixture::SmolLm2, Fixture::Llama1B],
                Some("all") => vec![Fixture::SmolLm2, Fixture::Llama1B, Fixture::Llama3B],
                Some(name) => match Fixture::parse(name) {
                    Some(f) => vec![f],
                    None => bail!("unknown fixture `{name}`\n{USAGE}"),
                },
            };
            println!("cache: {}", fixtures::cache_dir().display());
            for f in wanted {
                let files = f.files()?;
                println!("{}: {} (tokenizer {})", files.name, files.gguf.display(), files.tokenizer.display());
            }
            Ok(())
        }
        Some("model") => {
            let files = fixtures::benchmark_model()?;
            let g = llm_bench::gguf::GgufFile::open(&files.gguf)?;
            let cfg = llm_bench::llama::LlamaConfig::from_gguf(&g)?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"files": files, "config": cfg}))?);
            Ok(())
        }
        _ => {
            println!("{USAGE}");
            Ok(())
        }
    }
}
