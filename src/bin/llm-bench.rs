//! The suite's command line: make fixtures, describe a model, check engines, run every scenario
//! in one process (`suite`), render a run's summary. Benchmarks also run with `cargo bench`.
//!
//! The five scenario benches are compiled in here too, from the same files: started under a
//! scenario's name (a link `single_request -> llm-bench`), this binary is that bench and takes
//! Criterion's arguments. One binary then carries every engine's GPU kernels once, which keeps
//! what is sent to a GPU machine small (each bench binary would carry them again).

use anyhow::{bail, Result};
use llm_bench::model::fixtures::{self, Fixture};
use llm_bench::run::scenarios::Scenario;

#[path = "../../benches/concurrent_load.rs"]
mod concurrent_load;
#[path = "../../benches/kernels.rs"]
mod kernels;
#[path = "../../benches/long_context.rs"]
mod long_context;
#[path = "../../benches/memory_efficiency.rs"]
mod memory_efficiency;
#[path = "../../benches/single_request.rs"]
mod single_request;
#[path = "../../benches/sustained_throughput.rs"]
mod sustained_throughput;

/// The benches this binary can be, by the name it was started under (the five scenarios and
/// the kernel micro-benchmarks).
const SCENARIOS: [(&str, fn() -> Result<()>); 6] = [
    ("single_request", single_request::main),
    ("sustained_throughput", sustained_throughput::main),
    ("concurrent_load", concurrent_load::main),
    ("memory_efficiency", memory_efficiency::main),
    ("long_context", long_context::main),
    ("kernels", kernels::main),
];

const USAGE: &str = "usage:
  llm-bench fixtures [smollm2|llama-1b|llama-3b|all]   make model fixtures in the cache (default: smollm2 llama-1b)
  llm-bench model                                     describe the benchmark model (LLM_BENCH_MODEL or the generated 1B)
  llm-bench generate <prompt tokens> <new tokens> [cpu|cuda|cuda:N]
                                                      one timed request per built engine on the benchmark model
                                                      (e.g. an 8K-token context), no Criterion
  llm-bench lmrs-export <dir>                         the benchmark model in upstream lm.rs's formats (<dir>/model.lmrs,
                                                      <dir>/tokenizer.bin) for timing its own chat binary beside the lmrs
                                                      engine (scripts/lmrs-upstream.sh); the final norm is zero and the end
                                                      token 0, so chat stops right after the prompt
  llm-bench report <run dir> [--criterion DIR] [--gpu-price USD_PER_HOUR]
                                                      render results.jsonl as summary.html (charts), summary.md and
                                                      summary.json in the run dir; Criterion's estimates and links
                                                      from DIR (its output, e.g. target/criterion); default price $2.50/h
  llm-bench summary <run dir> [criterion dir]         the same with the default price
  llm-bench compare <run A> <run B> [--pair X=Y ...]  every figure both runs measured: change and a noise-aware verdict;
                                                      --pair compares A's engine X with B's engine Y (e.g. candle=candle-f16,
                                                      also within one run given twice); the hosts' calibrations first
  llm-bench withdraw <run dir> --scenario S --engine E --case C [--case C ...] --reason TEXT
                                                      take cases whose figures are wrong for the binary that goes on
                                                      with the run out of it: their lines of results.jsonl, requests.jsonl
                                                      and telemetry.jsonl move to withdrawn.jsonl with the reason, each
                                                      case gets a skipped record saying so, and a resumed run measures it
                                                      again; C is a case id (clients/10) or, ending in /, every id under
                                                      it (probe/)
  llm-bench withdraw <run dir> --machine UUID --reason TEXT
                                                      the same for every case one machine (GPU UUID, or `host NAME`)
                                                      measured, with its processes.jsonl lines; its environment.json
                                                      becomes environment.<machine>.json (a table measured again whole
                                                      on another machine supersedes it)
  llm-bench suite [--budget SECONDS] [--resume RUN_DIR] [--plan [--from RUN_DIR ...]] [scenario ...]
                                                      every scenario (or those named), engine by engine in one process:
                                                      each engine loaded once; with a budget, cases that would not fit
                                                      are recorded as skipped with their estimated cost (LLM_BENCH_*
                                                      variables as for the benches; Criterion output as for cargo bench);
                                                      --resume continues a run cut short: only cases it has not measured,
                                                      appended to its files (benches: LLM_BENCH_RESUME=1, same LLM_BENCH_RUN);
                                                      --plan prints how long it would take per engine and scenario,
                                                      estimated from earlier runs (--from, LLM_BENCH_PLAN_FROM), and exits;
                                                      a suite prints the same estimate first and a progress line per case
  llm-bench check [cpu|cuda|cuda:N]                   every built engine variant against the reference engine on
                                                      SmolLM2 (greedy tokens and logits); exits 1 if one disagrees
  llm-bench engines                                   every engine variant: its configuration, where it is documented,
                                                      whether this binary has it (LLM_BENCH_ENGINES takes these names)
  <scenario> [criterion args]                         started through a link named single_request, sustained_throughput,
                                                      concurrent_load, memory_efficiency or long_context: that bench";

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let scenario = SCENARIOS.iter().find(|(s, _)| *s == name).map(|(_, f)| f);
    if let Err(e) = scenario.map_or_else(run, |f| f()) {
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
            let g = llm_bench::model::gguf::GgufFile::open(&files.gguf)?;
            let cfg = llm_bench::model::llama::LlamaConfig::from_gguf(&g)?;
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"files": files, "config": cfg}))?);
            Ok(())
        }
        Some("generate") => {
            let num = |i: usize, what: &str| -> Result<usize> {
                args.get(i).and_then(|v| v.parse().ok()).ok_or_else(|| anyhow::anyhow!("generate needs <{what}> as a number\n{USAGE}"))
            };
            generate(num(1, "prompt tokens")?, num(2, "new tokens")?, args.get(3).map(String::as_str).unwrap_or("cpu"))
        }
        Some("lmrs-export") => {
            let dir = args.get(1).map(std::path::PathBuf::from).ok_or_else(|| anyhow::anyhow!("lmrs-export needs an output directory\n{USAGE}"))?;
            let files = fixtures::benchmark_model()?;
            let tok = llm_bench::model::tokenizer::load(&files.tokenizer)?;
            llm_bench::model::lmrs_export::export(&files.gguf, &tok, &dir, true)?;
            println!("{} in lm.rs's formats: {} and {}", files.name, dir.join("model.lmrs").display(), dir.join("tokenizer.bin").display());
            Ok(())
        }
        Some("summary") => {
            let run = args.get(1).map(std::path::PathBuf::from).ok_or_else(|| anyhow::anyhow!("summary needs a run directory\n{USAGE}"))?;
            let criterion = args.get(2).map(std::path::PathBuf::from);
            llm_bench::report::write_summary(&run, criterion.as_deref())?;
            println!("{}", std::fs::read_to_string(run.join("summary.md"))?);
            Ok(())
        }
        Some("report") => {
            let run = args.get(1).map(std::path::PathBuf::from).ok_or_else(|| anyhow::anyhow!("report needs a run directory\n{USAGE}"))?;
            let mut criterion = None;
            let mut options = llm_bench::report::Options::default();
            let mut rest = args[2..].iter();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--criterion" => criterion = rest.next().map(std::path::PathBuf::from),
                    "--gpu-price" => {
                        options.gpu_price_per_hour = rest
                            .next()
                            .and_then(|v| v.parse().ok())
                            .filter(|p: &f64| *p > 0.0)
                            .ok_or_else(|| anyhow::anyhow!("--gpu-price needs a price in dollars per GPU-hour, e.g. 2.50"))?
                    }
                    other => bail!("unknown report option `{other}`\n{USAGE}"),
                }
            }
            llm_bench::report::write_reports(&run, criterion.as_deref(), options)?;
            for f in ["summary.html", "summary.md", "summary.json"] {
                println!("{}", run.join(f).display());
            }
            Ok(())
        }
        Some("compare") => {
            let (Some(a), Some(b)) = (args.get(1), args.get(2)) else { bail!("compare needs two run directories\n{USAGE}") };
            let mut pairs = Vec::new();
            let mut rest = args[3..].iter();
            while let Some(o) = rest.next() {
                let pair = rest.next().filter(|_| o == "--pair").and_then(|p| p.split_once('='));
                let Some((x, y)) = pair else { bail!("compare takes `--pair A_ENGINE=B_ENGINE` after the two runs, not `{o}`\n{USAGE}") };
                pairs.push((x.to_string(), y.to_string()));
            }
            print!("{}", llm_bench::report::compare::compare_paired(std::path::Path::new(a), std::path::Path::new(b), &pairs)?);
            Ok(())
        }
        Some("suite") => {
            let mut budget = None;
            let mut scenarios = Vec::new();
            let (mut plan, mut from) = (false, Vec::new());
            let mut rest = args[1..].iter();
            while let Some(a) = rest.next() {
                if a == "--plan" {
                    plan = true;
                } else if a == "--from" {
                    let dir = rest.next().ok_or_else(|| anyhow::anyhow!("--from needs an earlier run directory\n{USAGE}"))?;
                    from.push(std::path::PathBuf::from(dir));
                } else if a == "--resume" {
                    let dir = rest.next().ok_or_else(|| anyhow::anyhow!("--resume needs the run directory to continue\n{USAGE}"))?;
                    let dir = std::path::Path::new(dir);
                    anyhow::ensure!(
                        dir.join("results.jsonl").is_file(),
                        "--resume {}: no results.jsonl there; give the run directory a suite or bench wrote (it prints it at the start)",
                        dir.display()
                    );
                    // SAFETY: set before any thread of this process exists.
                    unsafe {
                        std::env::set_var("LLM_BENCH_OUT", dir);
                        std::env::set_var("LLM_BENCH_RESUME", "1");
                        if let Some(id) = dir.file_name() {
                            std::env::set_var("LLM_BENCH_RUN", id);
                        }
                    }
                } else if a == "--budget" {
                    let v = rest.next().and_then(|v| v.parse::<f64>().ok()).filter(|v| *v > 0.0);
                    let v = v.ok_or_else(|| anyhow::anyhow!("--budget needs a number of seconds\n{USAGE}"))?;
                    budget = Some(std::time::Duration::from_secs_f64(v));
                } else {
                    let s = Scenario::parse(a).ok_or_else(|| anyhow::anyhow!("unknown scenario `{a}`\n{USAGE}"))?;
                    scenarios.push(s);
                }
            }
            if scenarios.is_empty() {
                scenarios = Scenario::ALL.to_vec();
            }
            if plan {
                return llm_bench::run::scenarios::plan(&scenarios, &from);
            }
            anyhow::ensure!(from.is_empty(), "--from goes with --plan (a suite learns its estimate from LLM_BENCH_PLAN_FROM)\n{USAGE}");
            llm_bench::run::scenarios::suite(&scenarios, budget)
        }
        Some("withdraw") => {
            let run = args.get(1).map(std::path::PathBuf::from).ok_or_else(|| anyhow::anyhow!("withdraw needs a run directory\n{USAGE}"))?;
            let (mut scenario, mut engine, mut cases, mut reason, mut machine) = (None, None, Vec::new(), None, None);
            let mut rest = args[2..].iter();
            while let Some(a) = rest.next() {
                let value = rest.next().ok_or_else(|| anyhow::anyhow!("{a} needs a value\n{USAGE}"))?.clone();
                match a.as_str() {
                    "--scenario" => scenario = Some(Scenario::parse(&value).ok_or_else(|| anyhow::anyhow!("unknown scenario `{value}`\n{USAGE}"))?),
                    "--engine" => engine = Some(value),
                    "--case" => cases.push(value),
                    "--reason" => reason = Some(value),
                    "--machine" => machine = Some(value),
                    other => bail!("unknown withdraw option `{other}`\n{USAGE}"),
                }
            }
            if let Some(machine) = machine {
                anyhow::ensure!(scenario.is_none() && engine.is_none() && cases.is_empty(), "withdraw --machine takes every case of that machine: leave out --scenario, --engine and --case\n{USAGE}");
                let reason = reason.ok_or_else(|| anyhow::anyhow!("withdraw needs a --reason\n{USAGE}"))?;
                let w = llm_bench::results::withdraw_machine(&run, &machine, &reason)?;
                for (scenario, engine, w) in &w.withdrawals {
                    println!("withdrew {engine}'s {} in {scenario}: {} record(s), {} request(s), {} telemetry row(s)", w.cases.join(", "), w.records, w.requests, w.telemetry);
                }
                println!(
                    "withdrew {} process line(s) of {machine}{}; everything moved is in {}",
                    w.processes,
                    w.environment.map_or(String::new(), |f| format!(", and set its environment.json aside as {f}")),
                    run.join("withdrawn.jsonl").display()
                );
                return Ok(());
            }
            let (Some(scenario), Some(engine), Some(reason)) = (scenario, engine, reason) else {
                bail!("withdraw needs --scenario, --engine, --case and --reason\n{USAGE}")
            };
            let w = llm_bench::results::withdraw(&run, scenario.name(), &engine, &cases, &reason)?;
            println!(
                "withdrew {engine}'s {} in {}: {} record(s), {} request(s), {} telemetry row(s) moved to {}",
                w.cases.join(", "),
                scenario.name(),
                w.records,
                w.requests,
                w.telemetry,
                run.join("withdrawn.jsonl").display()
            );
            Ok(())
        }
        Some("check") => check(args.get(1).map(String::as_str).unwrap_or("cpu")),
        Some("engines") => {
            for v in llm_bench::engines::VARIANTS {
                let built = if v.built() { "built".to_string() } else { format!("not built (--features {})", v.engine.name()) };
                let gpu = if v.gpu_only { ", GPU only" } else { "" };
                let experiment = if v.experiment.is_some() { ", experiment (measured only when LLM_BENCH_ENGINES names it)" } else { "" };
                println!("{:<16} {built}{gpu}{experiment}\n  {}\n  source: {}", v.name, v.config, v.source);
                if let Some(found) = v.experiment {
                    println!("  found: {found}");
                }
            }
            Ok(())
        }
        _ => {
            println!("{USAGE}");
            Ok(())
        }
    }
}

fn parse_gpu(device: &str) -> Result<Option<usize>> {
    Ok(match device {
        "cpu" => None,
        "cuda" => Some(0),
        d => match d.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(i) => Some(i),
            None => bail!("unknown device `{d}`; use cpu, cuda or cuda:N"),
        },
    })
}

/// One request per built engine (`LLM_BENCH_ENGINES` filters), timed by the host clock.
fn generate(prompt_tokens: usize, new_tokens: usize, device: &str) -> Result<()> {
    let gpu = parse_gpu(device)?;
    // The check decodes a few tokens of one request: torch-compile compiles the one graph it
    // uses on first use instead of every graph a run needs (python_baseline/llama.py).
    if std::env::var_os("LLM_BENCH_TORCH_PRECOMPILE").is_none() {
        std::env::set_var("LLM_BENCH_TORCH_PRECOMPILE", "0");
    }
    let variants = llm_bench::engines::select(std::env::var("LLM_BENCH_ENGINES").ok().as_deref())?;
    let files = fixtures::benchmark_model()?;
    let g = llm_bench::model::gguf::GgufFile::open(&files.gguf)?;
    let cfg = llm_bench::model::llama::LlamaConfig::from_gguf(&g)?;
    if prompt_tokens + new_tokens > cfg.context_length {
        bail!(
            "a prompt of {prompt_tokens} tokens plus {new_tokens} new ones is {} positions, more than the {} the model {} ({}) \
             was trained for; ask for at most {} tokens in all",
            prompt_tokens + new_tokens,
            cfg.context_length,
            files.name,
            files.gguf.display(),
            cfg.context_length
        );
    }
    let tok = llm_bench::model::tokenizer::load(&files.tokenizer)?;
    let prompt = llm_bench::run::workload::prompt(&tok, cfg.bos_token, prompt_tokens)?;
    println!("model {}: prompt {prompt_tokens} tokens, {new_tokens} new tokens", files.name);
    for v in variants.into_iter().filter(|v| v.built()) {
        let dev = v.device(gpu);
        if let Some(why) = v.unsupported(dev) {
            println!("{} on {dev}: skipped — {why}", v.name);
            continue;
        }
        let result = v.load(&files, dev).and_then(|mut e| {
            let need = prompt_tokens + new_tokens;
            let limit = e.context_limit().map_or(cfg.context_length, |l| l.min(cfg.context_length));
            anyhow::ensure!(
                need <= limit,
                "a prompt of {prompt_tokens} tokens plus {new_tokens} new ones is {need} positions, more than the {limit} that {} \
                 with {} holds (the model's trained context is {}); ask for fewer tokens",
                v.name,
                files.name,
                cfg.context_length
            );
            let t = llm_bench::run::requests::run_requests(e.as_mut(), std::slice::from_ref(&prompt), new_tokens)?;
            Ok((t, e.memory()))
        });
        match result {
            Ok((t, mem)) => {
                let r = &t.records("generate", v.name, "one", 0, prompt_tokens)[0];
                println!(
                    "{} on {dev}: TTFT {:.1} ms, total {:.1} ms, decode {} tok/s, weights {:.2} GB, KV cache {:.2} GB",
                    v.name,
                    r.ttft_ms,
                    r.total_ms,
                    r.decode_tok_s().map_or("—".into(), |v| format!("{v:.1}")),
                    mem.weights_bytes as f64 / 1e9,
                    mem.kv_cache_bytes as f64 / 1e9
                );
            }
            Err(e) => println!("{} on {dev}: FAILED — {e:#}", v.name),
        }
    }
    Ok(())
}

/// Run the SmolLM2 agreement check for every built engine variant on `device`
/// (`LLM_BENCH_ENGINES` selects).
fn check(device: &str) -> Result<()> {
    let gpu = parse_gpu(device)?;
    // The check decodes a few tokens of one request: torch-compile compiles the one graph it
    // uses on first use instead of every graph a run needs (python_baseline/llama.py).
    if std::env::var_os("LLM_BENCH_TORCH_PRECOMPILE").is_none() {
        std::env::set_var("LLM_BENCH_TORCH_PRECOMPILE", "0");
    }
    let variants = llm_bench::engines::select(std::env::var("LLM_BENCH_ENGINES").ok().as_deref())?;
    let files = Fixture::SmolLm2.files()?;
    let started = std::time::Instant::now();
    // LLM_BENCH_CHECK_REFERENCE=<file>: checks running side by side share one reference answer.
    let (reference, read) = match std::env::var_os("LLM_BENCH_CHECK_REFERENCE").filter(|p| !p.is_empty()) {
        Some(store) => llm_bench::engines::check::reference_answer_stored(
            &files,
            std::path::Path::new(&store),
            &llm_bench::measure::telemetry::git_commit(),
        )?,
        None => (llm_bench::engines::check::reference_answer(&files)?, false),
    };
    let tok = llm_bench::model::tokenizer::load(&files.tokenizer)?;
    println!(
        "reference engine (f32, CPU, {:.1}s{}): {:?}",
        started.elapsed().as_secs_f64(),
        if read { ", read back from an earlier check of this binary" } else { "" },
        llm_bench::model::tokenizer::decode(&tok, &reference.tokens)?
    );
    let mut failed = Vec::new();
    for v in variants.into_iter().filter(|v| v.built()) {
        let dev = v.device(gpu);
        if let Some(why) = v.unsupported(dev) {
            println!("{} on {dev}: not checked — {why}", v.name);
            continue;
        }
        let engine_started = std::time::Instant::now();
        let outcome = v.load(&files, dev).and_then(|mut e| llm_bench::engines::check::compare(e.as_mut(), &reference));
        match outcome {
            Ok(a) => {
                println!("{a} [{:.1} s to load and check]", engine_started.elapsed().as_secs_f64());
                println!("  tokens: {:?}", llm_bench::model::tokenizer::decode(&tok, &a.tokens)?);
                println!("  json: {}", serde_json::to_string(&a)?);
                if !a.passed {
                    failed.push(v.name);
                }
            }
            Err(e) => {
                println!("{} on {dev}: FAIL — {e:#}", v.name);
                failed.push(v.name);
            }
        }
    }
    if failed.is_empty() {
        println!("check passed");
        Ok(())
    } else {
        bail!("check failed for: {}", failed.join(", "))
    }
}
