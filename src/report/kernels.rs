//! The kernels bench's section of a run's report, rendered from `kernels.jsonl` (the bench's one
//! results file: checks, the device's roofs, one line per timed case, the decode-step summaries
//! and each engine's traced decode step). Nothing here measures; it only prints those lines.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The lines of `<run>/kernels.jsonl`, empty when the run has none.
pub fn read(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("kernels.jsonl"))
        .map(|t| t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
        .unwrap_or_default()
}

fn of_kind<'a>(lines: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> + 'a {
    let kind = kind.to_string();
    lines.iter().filter(move |l| l["kind"] == kind.as_str())
}

fn f(v: &Value, d: usize) -> String {
    v.as_f64().filter(|x| x.is_finite()).map_or("—".to_string(), |x| format!("{x:.d$}"))
}

/// Implementations in a stable order: the suite's first, then the engines as they appear.
fn implementations(cases: &[&Value]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for c in cases {
        let i = c["implementation"].as_str().unwrap_or("?").to_string();
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out.sort_by_key(|i| i != "llm-bench");
    out
}

/// A table of `op`'s cases: one row per shape, one column per implementation, `cell` per case.
fn op_table(md: &mut String, cases: &[&Value], op: &str, cell: &dyn Fn(&Value) -> String) -> std::fmt::Result {
    let cases: Vec<&Value> = cases.iter().copied().filter(|c| c["op"] == op).collect();
    if cases.is_empty() {
        return Ok(());
    }
    let imps = implementations(&cases);
    let mut shapes: Vec<String> = vec![];
    for c in &cases {
        let s = c["shape"].as_str().unwrap_or("?").to_string();
        if !shapes.contains(&s) {
            shapes.push(s);
        }
    }
    writeln!(md, "| shape | {} |", imps.join(" | "))?;
    writeln!(md, "|---|{}", "---:|".repeat(imps.len()))?;
    for s in shapes {
        let row: Vec<String> = imps
            .iter()
            .map(|i| cases.iter().find(|c| c["shape"] == s.as_str() && c["implementation"] == i.as_str()).map_or("—".to_string(), |c| cell(c)))
            .collect();
        writeln!(md, "| {s} | {} |", row.join(" | "))?;
    }
    writeln!(md)
}

/// Fraction as issued, and as a graph replay where there is one: `0.43 / 0.51`.
fn fractions(c: &Value, key: &str) -> String {
    let issued = f(&c["issued"][key], 2);
    match c["graph"][key].as_f64() {
        Some(_) => format!("{issued} / {}", f(&c["graph"][key], 2)),
        None => issued,
    }
}

fn micros(c: &Value) -> String {
    let issued = c["issued"]["median_s"].as_f64().map(|s| s * 1e6);
    let graph = c["graph"]["median_s"].as_f64().map(|s| s * 1e6);
    match (issued, graph) {
        (Some(i), Some(g)) => format!("{i:.2} / {g:.2}"),
        (Some(i), None) => format!("{i:.2}"),
        _ => "—".to_string(),
    }
}

/// One row of the decode-step comparison.
pub struct StepRow {
    pub label: String,
    pub how: String,
    pub ms: Option<f64>,
    pub fraction: Option<f64>,
    pub launches: Option<f64>,
    pub busy_share: Option<f64>,
}

/// The decode-step rows: the suite's kernels back to back, each implementation's matvecs summed
/// from their single timings, and each engine's measured step (wall and GPU busy).
pub fn step_rows(lines: &[Value]) -> Vec<StepRow> {
    let mut rows = Vec::new();
    for c in of_kind(lines, "case").filter(|c| c["op"] == "decode_step_matvecs") {
        let shape = c["shape"].as_str().unwrap_or("?");
        let persistent = shape.ends_with("_persistent");
        for (view, label) in [("graph", "CUDA graph"), ("issued", "issued by the host")] {
            if c[view].is_object() {
                rows.push(StepRow {
                    label: format!("llm-bench ({shape})"),
                    how: if persistent {
                        format!("the suite's Q8_0 matvecs in one persistent kernel, {label}")
                    } else {
                        format!("the suite's Q8_0 matvecs back to back, {label}")
                    },
                    ms: c[view]["median_s"].as_f64().map(|s| s * 1e3),
                    fraction: c[view]["fraction_of_copy_bandwidth"].as_f64(),
                    // "113 launches: ..." in the case's notes; the persistent kernel is one launch.
                    launches: if persistent { Some(1.0) } else { c["notes"].as_str().and_then(|n| n.split(' ').next()?.parse().ok()) },
                    busy_share: None,
                });
            }
        }
    }
    for s in of_kind(lines, "decode_step_matvecs") {
        for (key, label) in [("graph", "graph"), ("issued", "issued")] {
            if let Some(t) = s[format!("{key}_s")].as_f64() {
                rows.push(StepRow {
                    label: s["implementation"].as_str().unwrap_or("?").to_string(),
                    how: format!("sum of its 8 matvec shapes timed alone ({label})"),
                    ms: Some(t * 1e3),
                    fraction: s[format!("{key}_fraction_of_copy_bandwidth")].as_f64(),
                    launches: None,
                    busy_share: None,
                });
            }
        }
    }
    for e in of_kind(lines, "engine_decode") {
        let engine = engine_label(e);
        let t = &e["trace"];
        rows.push(StepRow {
            label: engine.clone(),
            how: "whole decode step, wall time (untraced)".into(),
            ms: e["wall_s_per_step"].as_f64().map(|s| s * 1e3),
            fraction: e["wall_fraction_of_copy_bandwidth"].as_f64(),
            launches: t["launches_per_step"].as_f64(),
            busy_share: t["gpu_busy_fraction_of_wall"].as_f64(),
        });
        if let Some(b) = t["gpu_busy_s_per_step"].as_f64() {
            rows.push(StepRow {
                label: engine,
                how: "whole decode step, GPU busy time (CUPTI)".into(),
                ms: Some(b * 1e3),
                fraction: t["busy_fraction_of_copy_bandwidth"].as_f64(),
                launches: t["launches_per_step"].as_f64(),
                busy_share: None,
            });
        }
    }
    rows
}

/// An engine's decode breakdown as named in the tables: the engine, and its batch when more than
/// one request ran at once (records before batches were recorded ran one).
fn engine_label(e: &Value) -> String {
    let engine = e["engine"].as_str().unwrap_or("?");
    match e["batch"].as_u64() {
        Some(b) if b > 1 => format!("{engine} (batch {b})"),
        _ => engine.to_string(),
    }
}

/// The Markdown section; empty when the run has no kernels results.
pub fn write(md: &mut String, lines: &[Value]) -> std::fmt::Result {
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(md, "## Kernels (the kernels bench)\n")?;
    if let Some(d) = of_kind(lines, "device").next() {
        writeln!(
            md,
            "Roofs measured on {} ({} SMs, L2 {} MB): copy bandwidth **{} GB/s** (read + write), f32 FMA rate **{} TFLOP/s**. \
             Fractions below are of these; a kernel that only reads can pass the copy figure by a few percent (reads alone turn the bus around less than a copy does). Issued: calls back to back as the host issues them; graph: the same calls replayed from a CUDA graph (no host in the loop).\n",
            d["device"].as_str().unwrap_or("?"),
            d["sm_count"],
            d["l2_bytes"].as_u64().unwrap_or(0) >> 20,
            f(&(d["copy_bandwidth_bytes_per_s"].as_f64().unwrap_or(f64::NAN) / 1e9).into(), 0),
            f(&(d["fp32_fma_flop_per_s"].as_f64().unwrap_or(f64::NAN) / 1e12).into(), 1),
        )?;
    }
    let checks: Vec<&Value> = of_kind(lines, "check").collect();
    if !checks.is_empty() {
        let failed: Vec<&&Value> = checks.iter().filter(|c| c["passed"] != true).collect();
        let worst = checks.iter().filter_map(|c| c["error"].as_f64()).fold(0.0f64, f64::max);
        writeln!(
            md,
            "Checks against the f64 CPU references (outputs poisoned first): {} of {} passed, largest error {worst:.1e} (bound {:.0e}).{}\n",
            checks.len() - failed.len(),
            checks.len(),
            checks[0]["bound"].as_f64().unwrap_or(f64::NAN),
            failed
                .iter()
                .map(|c| format!(" FAILED: {} {} (error {})", c["kernel"].as_str().unwrap_or("?"), c["shape"].as_str().unwrap_or("?"), f(&c["error"], 6)))
                .collect::<String>()
        )?;
    }

    let rows = step_rows(lines);
    if !rows.is_empty() {
        writeln!(md, "### A decode step: the suite's kernels next to each engine\n")?;
        writeln!(md, "A decode step of the 1B model reads every weight once; the fraction is those weight bytes (Q8_0, as in the model file) over the time, against the copy bandwidth. The engines' rows are whole steps (attention, norms, sampling and the host included); the suite's rows are the matrix-vector products alone, the bulk of the bytes.\n")?;
        writeln!(md, "| implementation | what | ms per step | fraction of copy bandwidth | kernel launches per step | GPU busy % of wall |")?;
        writeln!(md, "|---|---|---:|---:|---:|---:|")?;
        for r in &rows {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                r.label,
                r.how,
                r.ms.map_or("—".into(), |v| format!("{v:.3}")),
                r.fraction.map_or("—".into(), |v| format!("{v:.2}")),
                r.launches.map_or("—".into(), |v| format!("{v:.0}")),
                r.busy_share.map_or("—".into(), |v| format!("{:.0}", 100.0 * v))
            )?;
        }
        writeln!(md)?;
    }
    let traced: Vec<&Value> = of_kind(lines, "engine_decode").collect();
    if !traced.is_empty() {
        writeln!(md, "### Where each engine's decode step goes (CUPTI)\n")?;
        writeln!(md, "Per decode step: a request of 1 + 32 new tokens minus one of 1, divided by 32 (prompt of 50 tokens). Tracing adds host work to each launch: the traced wall time is beside the untraced one, not instead of it. The median inter-token gap is from the same untraced requests' token timestamps (the scenario benches' ITL); an engine marked \"CUPTI loaded\" was measured after CUPTI had been loaded into its process for an earlier engine. This section is about where the GPU time of a step goes (launches, copies, busy time, kernels), which does not depend on how fast the host is; its wall times are a few requests in a fresh process: on one machine they matched `single_request`'s inter-token latency within 2% for Candle and torch (mistral.rs measured 10% slower in the scenario), while machines of the same GPU model differ by tens of percent for engines bound by host work, so compare them only with figures from the same machine (`target-reports/h200-2026-11-30-breakdown-ab/`). Host CPU cores busy: this process's CPU time over wall time during the untraced requests (1.00: one core never idle, the step bound by one host thread); the SM clock and NVML's GPU busy of the same moments are in each record (`untraced_conditions`). Weights as stored: what the engine holds, which is not always what a step reads (an f32 copy of the embedding table for lookups, for one, is read a row at a time); the fractions above count the Q8_0 model's bytes for every engine.\n")?;
        writeln!(md, "| engine | wall ms (untraced) | median inter-token ms | host CPU cores busy (untraced) | wall ms (traced) | GPU busy ms | kernel launches | copies | distinct kernels | weights as stored GB |")?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for e in &traced {
            let t = &e["trace"];
            writeln!(
                md,
                "| {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                engine_label(e),
                if e["cupti_loaded_before_untraced"] == true { " (CUPTI loaded)" } else { "" },
                f(&(e["wall_s_per_step"].as_f64().unwrap_or(f64::NAN) * 1e3).into(), 3),
                f(&(e["inter_token_median_s"].as_f64().unwrap_or(f64::NAN) * 1e3).into(), 3),
                f(&e["untraced_conditions"]["process_cpu_cores_median"], 2),
                f(&(t["traced_wall_s_per_step"].as_f64().unwrap_or(f64::NAN) * 1e3).into(), 3),
                f(&(t["gpu_busy_s_per_step"].as_f64().unwrap_or(f64::NAN) * 1e3).into(), 3),
                f(&t["launches_per_step"], 1),
                f(&t["copies_per_step"], 1),
                f(&t["distinct_kernels_per_step"], 0),
                f(&(e["engine_weight_bytes"].as_f64().unwrap_or(f64::NAN) / 1e9).into(), 2),
            )?;
        }
        writeln!(md)?;
        for e in &traced {
            let t = &e["trace"];
            if let Some(why) = t["skipped"].as_str() {
                writeln!(md, "- {}: not traced: {why}", engine_label(e))?;
                continue;
            }
            let top: Vec<String> = t["top_kernels_per_step"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .take(5)
                        .map(|k| format!("`{}` {}× {} µs", k["name"].as_str().unwrap_or("?").replace('|', "\\|"), f(&k["launches"], 1), f(&(k["seconds"].as_f64().unwrap_or(f64::NAN) * 1e6).into(), 1)))
                        .collect()
                })
                .unwrap_or_default();
            writeln!(md, "- {}, most GPU time per step: {}", engine_label(e), top.join("; "))?;
        }
        writeln!(md)?;
    }

    let cases: Vec<&Value> = of_kind(lines, "case").collect();
    // A run that timed only some cases (LLM_BENCH_KERNELS_CASES, or the breakdown alone) shows
    // only the sections it has figures for.
    let has = |op: &str| cases.iter().any(|c| c["op"] == op);
    if has("q8_0_matvec") {
        writeln!(md, "### Q8_0 matrix-vector products (decode): fraction of copy bandwidth, issued / graph\n")?;
        writeln!(md, "Each implementation moves its own weight format (Q8_0 for the suite and Candle, f32/f16 for Burn, bf16/f16 for torch): the fraction says how well the kernel streams, the time what the format costs.\n")?;
        op_table(md, &cases, "q8_0_matvec", &|c| fractions(c, "fraction_of_copy_bandwidth"))?;
        writeln!(md, "Median µs per call, issued / graph:\n")?;
        op_table(md, &cases, "q8_0_matvec", &micros)?;
    }
    if has("q8_0_matmul") {
        writeln!(md, "### Q8_0 matrix-matrix products (prefill, batches): fraction of the f32 FMA rate, issued / graph\n")?;
        writeln!(md, "Implementations on tensor cores (torch bf16/f16, Burn f16) can exceed 1: the roof is the SIMT f32 rate the suite's kernel is bound by.\n")?;
        op_table(md, &cases, "q8_0_matmul", &|c| fractions(c, "fraction_of_fp32_fma_rate"))?;
    }
    let mut others: BTreeMap<&str, ()> = BTreeMap::new();
    for c in &cases {
        if let Some(op) = c["op"].as_str().filter(|o| !["q8_0_matvec", "q8_0_matmul", "decode_step_matvecs"].contains(o)) {
            others.insert(op, ());
        }
    }
    if !others.is_empty() {
        writeln!(md, "### Other kernels: median µs per call, issued / graph (fraction of copy bandwidth)\n")?;
        writeln!(md, "| kernel | shape | µs | GB/s (issued) | fraction |")?;
        writeln!(md, "|---|---|---:|---:|---:|")?;
        for c in cases.iter().filter(|c| c["op"].as_str().is_some_and(|o| others.contains_key(o))) {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                c["op"].as_str().unwrap_or("?"),
                c["shape"].as_str().unwrap_or("?"),
                micros(c),
                f(&c["issued"]["gb_per_s"], 0),
                fractions(c, "fraction_of_copy_bandwidth")
            )?;
        }
        writeln!(md)?;
    }
    let skipped: Vec<&Value> = of_kind(lines, "skipped").collect();
    if !skipped.is_empty() {
        writeln!(md, "Not measured in the kernels bench:\n")?;
        for s in skipped {
            writeln!(md, "- {}{}: {}", s["implementation"].as_str().unwrap_or("?"), s["case"].as_str().map(|c| format!("/{c}")).unwrap_or_default(), s["reason"].as_str().unwrap_or("?"))?;
        }
        writeln!(md)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_cases_steps_and_engines() {
        let lines = vec![
            json!({"kind": "device", "device": "GPU X", "sm_count": 132, "l2_bytes": 62914560u64, "copy_bandwidth_bytes_per_s": 4.0e12, "fp32_fma_flop_per_s": 6.0e13}),
            json!({"kind": "check", "kernel": "q8_0_matvec", "shape": "2048x2048", "error": 1e-8, "bound": 1e-5, "passed": true}),
            json!({"kind": "case", "op": "q8_0_matvec", "implementation": "candle", "shape": "q_2048x2048",
                   "issued": {"median_s": 2e-5, "fraction_of_copy_bandwidth": 0.11}, "graph": null}),
            json!({"kind": "case", "op": "q8_0_matvec", "implementation": "llm-bench", "shape": "q_2048x2048",
                   "issued": {"median_s": 1e-5, "fraction_of_copy_bandwidth": 0.22}, "graph": {"median_s": 8e-6, "fraction_of_copy_bandwidth": 0.276}}),
            json!({"kind": "case", "op": "decode_step_matvecs", "implementation": "llm-bench", "shape": "16x7_plus_lm_head", "notes": "113 launches: ...",
                   "issued": {"median_s": 8e-4, "fraction_of_copy_bandwidth": 0.4}, "graph": {"median_s": 6e-4, "fraction_of_copy_bandwidth": 0.53}}),
            json!({"kind": "engine_decode", "engine": "candle", "wall_s_per_step": 2e-3, "wall_fraction_of_copy_bandwidth": 0.16, "engine_weight_bytes": 1.3e9,
                   "trace": {"launches_per_step": 300.0, "copies_per_step": 2.0, "gpu_busy_s_per_step": 1.5e-3, "traced_wall_s_per_step": 2.5e-3,
                             "gpu_busy_fraction_of_wall": 0.6, "busy_fraction_of_copy_bandwidth": 0.21, "distinct_kernels_per_step": 12,
                             "top_kernels_per_step": [{"name": "mmvq|x", "launches": 113.0, "seconds": 1e-3}]}}),
            json!({"kind": "engine_decode", "engine": "burn", "wall_s_per_step": 9e-3, "trace": {"skipped": "CUPTI missing"}}),
        ];
        let mut md = String::new();
        write(&mut md, &lines).unwrap();
        // The suite's column comes first, whatever order the lines were in.
        assert!(md.contains("| shape | llm-bench | candle |"), "{md}");
        assert!(md.contains("| q_2048x2048 | 0.22 / 0.28 | 0.11 |"), "{md}");
        assert!(md.contains("| llm-bench (16x7_plus_lm_head) | the suite's Q8_0 matvecs back to back, CUDA graph | 0.600 | 0.53 | 113 | — |"), "{md}");
        assert!(md.contains("| candle | whole decode step, wall time (untraced) | 2.000 | 0.16 | 300 | 60 |"), "{md}");
        assert!(md.contains("| candle | whole decode step, GPU busy time (CUPTI) | 1.500 | 0.21 | 300 | — |"), "{md}");
        assert!(md.contains("`mmvq\\|x` 113.0× 1000.0 µs"), "{md}");
        assert!(md.contains("- burn: not traced: CUPTI missing"), "{md}");
        assert!(md.contains("1 of 1 passed, largest error 1.0e-8 (bound 1e-5)"), "{md}");
        let mut empty = String::new();
        write(&mut empty, &[]).unwrap();
        assert!(empty.is_empty());
    }
}
