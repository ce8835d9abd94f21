//! Kernel-level analysis (issue 10): the suite's own CUDA kernels (`kernels/llama_ops.cu`) and the
//! engines' equivalent calls at the Llama-3.2-1B shapes, as Criterion groups `kernels/<op>` with
//! ids `<implementation>/<shape>`, e.g. `kernels/q8_0_matvec/llm-bench/lm_head_128256x2048` and
//! `kernels/q8_0_matvec/candle/lm_head_128256x2048`.
//!
//! ```sh
//! cargo bench --features cuda,candle,burn,torch,mistralrs --bench kernels
//! ```
//!
//! In order:
//! 1. every kernel is checked against its f64 CPU reference on random inputs, output poisoned
//!    with NaN first (`llm_bench::kernels::cuda::check_all`); a kernel that fails is not timed;
//! 2. the device's copy bandwidth (read + write, `llm_bench::measure::gpu::copy_bandwidth`) and f32 FMA
//!    rate (`fma_peak`) are measured once: the two roofs;
//! 3. per case, Criterion times one call per iteration with CUDA events on the implementation's
//!    stream (`llm_bench::measure::cuda_events::CudaEventTime`), or the wall clock around a call and a device sync
//!    when the implementation exposes no stream (Burn, torch);
//! 4. outside Criterion's loop, 50 samples of k back-to-back calls (k at least the number of input
//!    copies cycled) give the median time per call as the host issues them, and, where possible,
//!    50 replays of a CUDA graph of k calls give it without the host (launch overhead gone); from
//!    these medians: GB/s, GFLOP/s, and fractions of the copy bandwidth and the f32 FMA rate, one
//!    JSON line per case in `<run dir>/kernels.jsonl`, then a decode-step summary (16 layers of
//!    q, k, v, o, gate, up, down plus the classifier) per implementation. Among the cases, a whole
//!    decode step's matvecs back to back (each layer its own weights), unfused and with q/k/v and
//!    gate/up fused, launched plainly and with programmatic dependent launch;
//! 5. each GPU engine is loaded on the benchmark model and its decode step broken down
//!    (`llm_bench::kernels::breakdown`): wall time, kernel launches, copies and GPU busy time per step
//!    (CUPTI activity records), and its most expensive kernels.
//!
//! `LLM_BENCH_KERNELS=ops` runs steps 1-4 only, `breakdown` step 5 only;
//! `LLM_BENCH_KERNELS_CASES=decode_step,lm_head` times only the cases whose `<op>/<shape>` contains
//! one of the parts.
//!
//! Without the `cuda` feature (or without a GPU) it writes a skipped record and exits 0.
//!
//! Like the scenario benches, this file is also compiled into the `llm-bench` binary (a link
//! named `kernels` runs it), so a bundle built elsewhere runs it on a GPU machine without cargo.

use anyhow::Result;
use serde_json::{json, Value};
use std::io::Write;

/// Samples of k calls behind each median.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const MEDIAN_SAMPLES: usize = 50;
/// Calls per sample, at least (more when a case cycles through more input copies).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
const MIN_CALLS_PER_SAMPLE: usize = 16;

fn append(run: &llm_bench::results::RunDir, line: &Value) -> Result<()> {
    let path = run.path("kernels.jsonl");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    writeln!(f, "{line}")?;
    Ok(())
}

fn skip(run: &llm_bench::results::RunDir, engine: &str, case: Option<&str>, reason: &str) -> Result<()> {
    eprintln!("[llm-bench] kernels/{engine}{}: skipped: {reason}", case.map(|c| format!("/{c}")).unwrap_or_default());
    append(run, &json!({"kind": "skipped", "run": run.run, "implementation": engine, "case": case, "reason": reason}))?;
    run.record(&llm_bench::results::ResultRecord::Skipped {
        run: run.run.clone(),
        scenario: "kernels".into(),
        engine: engine.into(),
        case: case.map(Into::into),
        reason: reason.into(),
        ran_s: None,
    })
}

#[cfg(not(feature = "cuda"))]
pub fn main() -> Result<()> {
    let run = llm_bench::results::RunDir::create()?;
    let reason = "the kernels bench needs an NVIDIA GPU (compute capability 9.0+) and a build with `--features cuda` \
                  (cargo bench --features cuda,candle,burn,torch,mistralrs --bench kernels)";
    let cases: Vec<String> = llm_bench::kernels::cpu::case_specs().iter().map(|s| format!("{}/{}", s.op(), s.shape())).collect();
    eprintln!("[llm-bench] kernels: {} cases not run", cases.len());
    skip(&run, "llm-bench", None, reason)
}

#[cfg(feature = "cuda")]
pub fn main() -> Result<()> {
    gpu::main()
}

#[cfg(feature = "cuda")]
mod gpu {
    use super::*;
    use criterion::measurement::Measurement;
    use criterion::{BenchmarkId, Criterion};
    use llm_bench::measure::cuda_events::CudaEventTime;
    use llm_bench::kernels::cuda::{self as kernels, Case, Kernels, Roof};
    use llm_bench::kernels::cpu::{self as cpu, llama_1b, CaseSpec};
    use llm_bench::measure::clock::Wall;
    use llm_bench::results::RunDir;
    use llm_bench::run::workload::Profile;
    use std::collections::{BTreeMap, BTreeSet};

    /// One matvec shape's medians, for the decode-step summary.
    struct MatvecTime {
        issued: f64,
        graph: Option<f64>,
        bytes: f64,
    }

    /// The device roofs every fraction is taken against.
    struct Roofs {
        copy_bytes_per_s: f64,
        fp32_flop_per_s: f64,
    }

    fn ordinal() -> Result<Option<usize>> {
        match std::env::var("LLM_BENCH_DEVICE").as_deref() {
            Ok("cpu") => Ok(None),
            Ok(s) if s.starts_with("cuda:") => Ok(Some(s[5..].parse()?)),
            _ => Ok(llm_bench::measure::gpu::device_count().filter(|&n| n > 0).map(|_| 0)),
        }
    }

    fn criterion<M: Measurement>(m: M, profile: Profile) -> Criterion<M> {
        let c = Criterion::default()
            .with_measurement(m)
            .sample_size(profile.samples().max(10))
            .nresamples(profile.nresamples())
            .warm_up_time(profile.warm_up_time())
            .measurement_time(profile.measurement_time());
        if llm_bench::run::harness::started_as_bench() {
            c.configure_from_args()
        } else {
            c
        }
    }

    /// One Criterion figure for `case` with measurement `m`: one call per iteration (plus a sync
    /// when timed by the wall clock). Returns the first error a call returned, if any.
    fn criterion_figure<M: Measurement>(m: M, profile: Profile, case: &mut Case, with_sync: bool) -> Option<anyhow::Error> {
        let mut c = criterion(m, profile);
        let mut group = c.benchmark_group(format!("kernels/{}", case.op));
        let mut failure: Option<anyhow::Error> = None;
        let id = BenchmarkId::new(case.implementation.clone(), case.shape.clone());
        group.bench_function(id, |b| {
            b.iter(|| {
                if failure.is_none() {
                    let r = (case.run)().and_then(|_| if with_sync { (case.sync)() } else { Ok(()) });
                    if let Err(e) = r {
                        failure = Some(e);
                    }
                }
            })
        });
        group.finish();
        failure
    }

    /// Rates and fractions from a median time per call.
    fn figures(case: &Case, median_s: f64, roofs: &Roofs) -> Value {
        let bytes_per_s = case.bytes / median_s;
        let flop_per_s = case.flops / median_s;
        json!({
            "median_s": median_s,
            "gb_per_s": bytes_per_s / 1e9,
            "gflop_per_s": flop_per_s / 1e9,
            "fraction_of_copy_bandwidth": bytes_per_s / roofs.copy_bytes_per_s,
            "fraction_of_fp32_fma_rate": flop_per_s / roofs.fp32_flop_per_s,
        })
    }

    /// Criterion figure, then the two medians; one JSON line. Returns (issued, graph) medians.
    fn measure(run: &RunDir, profile: Profile, roofs: &Roofs, case: &mut Case, device: &str) -> Result<(Option<f64>, Option<f64>)> {
        let criterion_timer = if case.stream.is_some() { "cuda-events" } else { "wall (call + device sync)" };
        let failure = match case.stream.clone() {
            Some(stream) => criterion_figure(CudaEventTime::new(stream)?, profile, case, false),
            None => criterion_figure(Wall, profile, case, true),
        };
        if let Some(e) = failure {
            skip(run, &case.implementation, Some(&format!("{}/{}", case.op, case.shape)), &format!("a call failed during measurement: {e:#}"))?;
            return Ok((None, None));
        }
        let k = MIN_CALLS_PER_SAMPLE.max(case.rotation);
        let (issued, issued_method) = kernels::time_issued(case, k, MEDIAN_SAMPLES)?;
        let issued_median = cpu::median(&issued);
        // A case whose calls cannot be captured into a graph still has its issued figure.
        let (graph, graph_error) = match kernels::time_graph(case, k, MEDIAN_SAMPLES) {
            Ok(g) => (g, None),
            Err(e) => {
                eprintln!("[llm-bench] kernels/{}/{}: no graph timing: {e:#}", case.op, case.id());
                (None, Some(format!("{e:#}")))
            }
        };
        let graph_median = graph.as_ref().map(|(t, _)| cpu::median(t));
        let spread = |t: &[f64]| {
            let m = cpu::median(t);
            let dev: Vec<f64> = t.iter().map(|x| (x - m).abs()).collect();
            cpu::median(&dev) / m
        };
        let mut line = json!({
            "kind": "case",
            "run": run.run,
            "device": device,
            "op": case.op,
            "implementation": case.implementation,
            "shape": case.shape,
            "precision": case.precision,
            "bytes_per_call": case.bytes,
            "flop_per_call": case.flops,
            "roof": case.roof,
            "input_copies_cycled": case.rotation,
            "calls_per_sample": k,
            "criterion": {"group": format!("kernels/{}", case.op), "id": case.id(), "timer": criterion_timer},
            "issued": figures(case, issued_median, roofs),
            "notes": case.notes,
        });
        line["issued"]["method"] = issued_method.into();
        line["issued"]["samples"] = issued.len().into();
        line["issued"]["rel_mad"] = spread(&issued).into();
        line["graph"] = match &graph {
            Some((t, method)) => {
                let mut g = figures(case, cpu::median(t), roofs);
                g["method"] = (*method).into();
                g["samples"] = t.len().into();
                g["rel_mad"] = spread(t).into();
                g
            }
            None => Value::Null,
        };
        if let Some(e) = graph_error {
            line["graph_error"] = e.into();
        }
        append(run, &line)?;
        let (rate, frac) = match case.roof {
            Roof::CopyBandwidth => (format!("{:8.1} GB/s", case.bytes / issued_median / 1e9), line["issued"]["fraction_of_copy_bandwidth"].as_f64()),
            Roof::Fp32Fma => (format!("{:8.1} GFLOP/s", case.flops / issued_median / 1e9), line["issued"]["fraction_of_fp32_fma_rate"].as_f64()),
        };
        eprintln!(
            "[llm-bench] kernels/{}/{}: {:9.2} us issued ({rate}, {:.3} of roof){}",
            case.op,
            case.id(),
            issued_median * 1e6,
            frac.unwrap_or(f64::NAN),
            graph_median.map(|g| format!(", {:9.2} us graph ({:.3} of roof)", g * 1e6, frac.unwrap_or(f64::NAN) * issued_median / g)).unwrap_or_default()
        );
        Ok((Some(issued_median), graph_median))
    }

    pub fn main() -> Result<()> {
        let run = RunDir::create()?;
        let profile = Profile::from_env()?;
        let Some(ordinal) = ordinal()? else {
            return skip(&run, "llm-bench", None, "no CUDA device (or LLM_BENCH_DEVICE=cpu): the kernels bench runs on a GPU only");
        };
        let mut env = llm_bench::measure::telemetry::environment();
        env["profile"] = profile.name().into();
        // The decode breakdown runs the engines on the benchmark model: every report names it.
        if parts()?.1 {
            if let Ok(id) = llm_bench::model::fixtures::benchmark_model().and_then(|m| llm_bench::results::ModelIdentity::of(&m)) {
                env["model"] = serde_json::to_value(&id)?;
            }
        }
        run.environment(&env)?;
        let k = match Kernels::new(ordinal) {
            Ok(k) => k,
            Err(e) => return skip(&run, "llm-bench", None, &format!("the suite's kernels cannot run on cuda:{ordinal}: {e:#}")),
        };
        eprintln!("[llm-bench] kernels: {} ({}, {} SMs, L2 {} MB), results in {}", k.device_name, k.arch, k.sm_count, k.l2_bytes >> 20, run.dir.display());

        let (ops, breakdown) = parts()?;
        let copy_bytes_per_s = llm_bench::measure::gpu::copy_bandwidth(ordinal)?;
        if ops {
            measure_ops(&run, profile, &k, ordinal, copy_bytes_per_s)?;
        }
        if breakdown {
            drop(k);
            engine_breakdown(&run, copy_bytes_per_s)?;
        }
        eprintln!("[llm-bench] kernels: done; {}", run.path("kernels.jsonl").display());
        Ok(())
    }

    /// Steps 1-5: checks, roofs, every case, the decode-step summaries.
    fn measure_ops(run: &RunDir, profile: Profile, k: &Kernels, ordinal: usize, copy_bytes_per_s: f64) -> Result<()> {
        let run = run.clone();
        // 1. Checks first; a kernel that fails one is not timed.
        let checks = kernels::check_all(k)?;
        let mut failed: BTreeSet<&'static str> = BTreeSet::new();
        for c in &checks {
            eprintln!(
                "[llm-bench] check {:<17} {:<48} error {:.2e} (bound {:.0e}) {}",
                c.kernel,
                c.shape,
                c.error,
                c.bound,
                if c.passed { "ok" } else { "FAILED" }
            );
            if !c.passed {
                failed.insert(c.kernel);
            }
            let mut line = serde_json::to_value(c)?;
            line["kind"] = "check".into();
            line["run"] = run.run.clone().into();
            line["device"] = k.device_name.clone().into();
            append(&run, &line)?;
        }

        // 2. The roofs.
        let roofs = Roofs { copy_bytes_per_s, fp32_flop_per_s: k.fp32_fma_rate()? };
        eprintln!(
            "[llm-bench] kernels: copy bandwidth {:.0} GB/s (read + write), f32 FMA rate {:.1} TFLOP/s",
            roofs.copy_bytes_per_s / 1e9,
            roofs.fp32_flop_per_s / 1e12
        );
        append(
            &run,
            &json!({
                "kind": "device", "run": run.run, "device": k.device_name, "arch": k.arch, "sm_count": k.sm_count,
                "l2_bytes": k.l2_bytes, "rotate_bytes": k.rotate_bytes(),
                "copy_bandwidth_bytes_per_s": roofs.copy_bytes_per_s, "fp32_fma_flop_per_s": roofs.fp32_flop_per_s,
                "versions": {
                    "cudarc": option_env!("LLM_BENCH_VERSION_CUDARC"), "candle-core": option_env!("LLM_BENCH_VERSION_CANDLE_CORE"),
                    "burn": option_env!("LLM_BENCH_VERSION_BURN"), "pyo3": option_env!("LLM_BENCH_VERSION_PYO3"),
                    "criterion": option_env!("LLM_BENCH_VERSION_CRITERION"),
                },
            }),
        )?;

        // 3-4. Every case: the suite's kernel, then the engines' equivalents.
        // implementation -> matvec shape name -> (issued, graph) medians, for the decode-step summary.
        let mut matvec: BTreeMap<String, BTreeMap<&'static str, MatvecTime>> = BTreeMap::new();
        let selected = case_filter();
        for spec in cpu::case_specs() {
            let label = format!("{}/{}", spec.op(), spec.shape());
            if !selected.as_ref().is_none_or(|parts| parts.iter().any(|p| label.contains(p.as_str()))) {
                continue;
            }
            if spec.checked_by().iter().any(|kernel| failed.contains(kernel)) {
                skip(&run, "llm-bench", Some(&label), "the kernel failed its check against the CPU reference; not timed")?;
            } else {
                match k.case(&spec) {
                    Ok(mut case) => {
                        let (issued, graph) = measure(&run, profile, &roofs, &mut case, &k.device_name)?;
                        if let (CaseSpec::Matvec { name, .. }, Some(t)) = (&spec, issued) {
                            matvec.entry("llm-bench".into()).or_default().insert(*name, MatvecTime { issued: t, graph, bytes: case.bytes });
                        }
                    }
                    Err(e) => skip(&run, "llm-bench", Some(&label), &format!("cannot set the case up: {e:#}"))?,
                }
            }
            for (implementation, case) in llm_bench::kernels::engines::engine_cases(ordinal, &spec, k.rotate_bytes()) {
                match case {
                    Ok(mut case) => match measure(&run, profile, &roofs, &mut case, &k.device_name) {
                        Ok((issued, graph)) => {
                            if let (CaseSpec::Matvec { name, .. }, Some(t)) = (&spec, issued) {
                                matvec.entry(implementation).or_default().insert(*name, MatvecTime { issued: t, graph, bytes: case.bytes });
                            }
                        }
                        Err(e) => skip(&run, &implementation, Some(&label), &format!("{e:#}"))?,
                    },
                    Err(e) => skip(&run, &implementation, Some(&label), &format!("{e:#}"))?,
                }
            }
        }

        // 5. A decode step's matrix-vector products: 16 layers of q, k, v, o, gate, up, down and
        // the classifier, per implementation that has all eight.
        for (implementation, shapes) in &matvec {
            if shapes.len() < llama_1b::MATVEC.len() {
                continue;
            }
            let layer = |f: &dyn Fn(&MatvecTime) -> Option<f64>| -> Option<f64> {
                let per_layer: Option<f64> = llama_1b::MATVEC[..7].iter().map(|(n, _, _)| f(&shapes[n])).sum();
                Some(16.0 * per_layer? + f(&shapes["lm_head"])?)
            };
            let bytes = layer(&|v| Some(v.bytes)).unwrap_or(f64::NAN);
            let issued = layer(&|v| Some(v.issued));
            let graph = layer(&|v| v.graph);
            let frac = |t: Option<f64>| t.map(|t| bytes / t / roofs.copy_bytes_per_s);
            eprintln!(
                "[llm-bench] kernels: decode-step matvecs, {implementation}: {:.1} MB in {:.1} us issued ({:.3} of copy){}",
                bytes / 1e6,
                issued.unwrap_or(f64::NAN) * 1e6,
                frac(issued).unwrap_or(f64::NAN),
                graph.map(|g| format!(", {:.1} us as a graph ({:.3})", g * 1e6, bytes / g / roofs.copy_bytes_per_s)).unwrap_or_default()
            );
            append(
                &run,
                &json!({
                    "kind": "decode_step_matvecs", "run": run.run, "device": k.device_name, "implementation": implementation,
                    "bytes": bytes, "issued_s": issued, "graph_s": graph,
                    "issued_fraction_of_copy_bandwidth": frac(issued), "graph_fraction_of_copy_bandwidth": frac(graph),
                    "note": "16 x (q + k + v + o + gate + up + down) + lm_head, each timed alone",
                }),
            )?;
        }
        Ok(())
    }

    /// `LLM_BENCH_KERNELS_CASES=decode_step,lm_head`: only the cases whose `<op>/<shape>` contains
    /// one of the comma-separated parts (the checks always run); unset or empty: every case.
    fn case_filter() -> Option<Vec<String>> {
        let v = std::env::var("LLM_BENCH_KERNELS_CASES").ok()?;
        let parts: Vec<String> = v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
        (!parts.is_empty()).then_some(parts)
    }

    /// Which parts run: `LLM_BENCH_KERNELS=ops` (the kernels and the engines' equivalent calls),
    /// `breakdown` (each GPU engine's decode step, traced), or both (unset).
    fn parts() -> Result<(bool, bool)> {
        match std::env::var("LLM_BENCH_KERNELS").as_deref() {
            Err(_) | Ok("") | Ok("all") => Ok((true, true)),
            Ok("ops") => Ok((true, false)),
            Ok("breakdown") => Ok((false, true)),
            Ok(other) => anyhow::bail!("LLM_BENCH_KERNELS={other} is not ops, breakdown or all"),
        }
    }

    /// 6. Each GPU engine's decode step on the benchmark model: wall time, launches, copies and
    /// GPU busy time per step (`llm_bench::kernels::breakdown`), one `engine_decode` line each.
    fn engine_breakdown(run: &RunDir, copy_bytes_per_s: f64) -> Result<()> {
        const CASE: &str = "decode_breakdown";
        let model = match llm_bench::model::fixtures::benchmark_model() {
            Ok(m) => m,
            Err(e) => return skip(run, "engines", Some(CASE), &format!("no benchmark model for the decode breakdown: {e:#}")),
        };
        let h = llm_bench::run::harness::Harness::open("kernels", model, run.clone(), std::sync::Arc::new(llm_bench::run::pacer::Pacer::unlimited()))?;
        let model_bytes = h.weight_bytes_per_step() as f64;
        // LLM_BENCH_BREAKDOWN_BATCHES=1,32,64: the batch sizes each engine's step is broken down at.
        let batches: Vec<usize> = match std::env::var("LLM_BENCH_BREAKDOWN_BATCHES") {
            Ok(v) if !v.trim().is_empty() => v
                .split(',')
                .map(|b| b.trim().parse().ok().filter(|&n: &usize| n > 0))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| anyhow::anyhow!("LLM_BENCH_BREAKDOWN_BATCHES={v:?} is not a list of batch sizes such as 1,32,64"))?,
            _ => vec![1],
        };
        // CUPTI is loaded on first use, after the first engine's untraced figures.
        let tracer = || {
            let t = llm_bench::measure::cupti::Tracer::get().map_err(|e| format!("{e:#}"));
            match &t {
                Ok(t) => eprintln!("[llm-bench] kernels/decode breakdown: CUPTI from {}", t.library()),
                Err(why) => eprintln!("[llm-bench] kernels/decode breakdown: no tracing ({why}); wall times only"),
            }
            t
        };
        for variant in h.engines()? {
            if !variant.device(h.gpu).is_gpu() {
                skip(run, variant.name, Some(CASE), "runs on the CPU here: no GPU kernels to break down")?;
                continue;
            }
            match h.load(variant) {
                Ok((mut engine, _startup)) => {
                    for &batch in &batches {
                        match llm_bench::kernels::breakdown::measure(&h, engine.as_mut(), &tracer, copy_bytes_per_s, model_bytes, batch) {
                            Ok(line) => append(run, &line)?,
                            Err(e) => skip(run, variant.name, Some(&format!("{CASE}/batch{batch}")), &format!("{e:#}"))?,
                        }
                    }
                }
                Err(why) => skip(run, variant.name, Some(CASE), &why)?,
            }
        }
        Ok(())
    }
}
