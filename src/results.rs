//! The results file: the one truth of a run. Every summary and report is rendered from it.
//!
//! A run directory holds `environment.json` (what ran where), `requests.jsonl` (one line per
//! measured request: the raw timings) and `results.jsonl` (one line per finished case, or per
//! skipped engine with its reason). Lines are appended and flushed as soon as a case finishes, so
//! an interrupted run keeps everything it measured. `withdrawn.jsonl` keeps the lines that
//! [`withdraw`] took out of the others (figures wrong for the binary going on with the run).

use crate::engine::{EngineInfo, ModelFiles};
use crate::measure::stats::Summary;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Identity of the model file a run used.
#[derive(Debug, Clone, Serialize)]
pub struct ModelIdentity {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// `general.name` from the GGUF, which says whether the weights are real or generated.
    pub description: String,
}

impl ModelIdentity {
    /// Hashes the file once and keeps the hash beside it (`<file>.sha256`, keyed by size and
    /// modification time) so repeated runs do not re-read a gigabyte.
    pub fn of(files: &ModelFiles) -> Result<Self> {
        let meta = std::fs::metadata(&files.gguf)
            .with_context(|| format!("model file {} is missing", files.gguf.display()))?;
        let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let key = format!("{} {}", meta.len(), mtime.map_or(0, |d| d.as_secs()));
        let sidecar = files.gguf.with_extension("gguf.sha256");
        let sha256 = match std::fs::read_to_string(&sidecar) {
            Ok(s) if s.lines().nth(1) == Some(key.as_str()) => s.lines().next().unwrap_or_default().to_string(),
            _ => {
                let sum = crate::model::fixtures::sha256_file(&files.gguf)?;
                std::fs::write(&sidecar, format!("{sum}\n{key}\n")).ok();
                sum
            }
        };
        let g = crate::model::gguf::GgufFile::open(&files.gguf)?;
        let description = g
            .get("general.name")
            .and_then(crate::model::gguf::Value::as_str)
            .unwrap_or("(no general.name)")
            .to_string();
        Ok(Self { name: files.name.clone(), path: files.gguf.clone(), bytes: meta.len(), sha256, description })
    }
}

/// One measured request, as the harness saw it. Times in milliseconds from the request's start.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub scenario: String,
    pub engine: String,
    pub case: String,
    /// Which Criterion sample (call of the timed routine) this request belongs to.
    pub sample: usize,
    pub prompt_tokens: usize,
    pub new_tokens: usize,
    pub ttft_ms: f64,
    pub total_ms: f64,
    /// Arrival of each new token, in ms since the request started.
    pub token_ms: Vec<f64>,
}

impl RequestRecord {
    /// Gaps between consecutive tokens, in ms.
    pub fn inter_token_ms(&self) -> Vec<f64> {
        self.token_ms.windows(2).map(|w| w[1] - w[0]).collect()
    }
    /// Decode speed after the first token, in tokens per second.
    pub fn decode_tok_s(&self) -> Option<f64> {
        let n = self.token_ms.len();
        (n >= 2).then(|| (n - 1) as f64 / ((self.token_ms[n - 1] - self.token_ms[0]) / 1e3))
    }
}

/// A figure with its unit and distribution.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    pub unit: &'static str,
    #[serde(flatten)]
    pub summary: Summary,
}

/// One line of `results.jsonl`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ResultRecord {
    Measured {
        run: String,
        scenario: String,
        engine: String,
        engine_info: EngineInfo,
        case: String,
        model: ModelIdentity,
        device: String,
        /// How the Criterion figure was timed: `wall` or `cuda-events`.
        timer: String,
        metrics: BTreeMap<String, Metric>,
        samples: usize,
        /// Relative spread (MAD / median) of the case's main figure.
        spread: f64,
        profile: String,
        /// Set when the case was measured with fewer requests than Criterion's samples (the
        /// run's time budget), with how many and why; its figures come from the raw requests.
        #[serde(skip_serializing_if = "Option::is_none")]
        reduced: Option<String>,
        /// Seconds the case took from its start (warm-up included) to this record: what the
        /// next run's estimate (`llm-bench suite --plan`) learns from.
        #[serde(skip_serializing_if = "Option::is_none")]
        wall_s: Option<f64>,
        /// What a figure that is not a request latency means, in a sentence (a rate search's
        /// answer: which bound, the bracket, the probes).
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// A rate search cut by the run's time budget before it reached its precision: its
        /// answer is a bound, and a resumed run takes the search up again from its probes
        /// instead of counting the case as measured (`measured_cases`); the later record then
        /// stands for the case (`current_records`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unfinished: bool,
    },
    Skipped {
        run: String,
        scenario: String,
        engine: String,
        case: Option<String>,
        reason: String,
        /// Seconds the case had run when a signal stopped the process (Ctrl-C, or SIGTERM from a
        /// time limit such as a device call's): a lower bound on its cost that a resumed run
        /// reads back ([`stopped_cases`]) instead of starting a request it cannot finish.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ran_s: Option<f64>,
    },
}

/// The machine and call of this process (`RunDir::process`), stamped on each result record: a
/// run spanning leases says, case by case, which machine measured it, which matters for engines
/// bound by their host's CPU (a CPU-only engine finished in a later lease).
static MACHINE: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();

/// `r` with this process's machine and call, once `RunDir::process` has noted them.
fn stamped(r: &ResultRecord) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(r)?;
    if let (Some(m), Some(o)) = (MACHINE.get(), v.as_object_mut()) {
        o.insert("machine".into(), m["machine"].clone());
        if !m["call"].is_null() {
            o.insert("call".into(), m["call"].clone());
        }
    }
    Ok(v)
}

/// How a run names a machine (records' `machine`, environment files, the report's warnings): its
/// first GPU's UUID, else its host.
pub fn machine_name(gpu_uuid: Option<&str>, host: Option<&str>) -> String {
    match gpu_uuid {
        Some(u) => u.to_string(),
        None => format!("host {}", host.unwrap_or("?")),
    }
}

/// `environment.<machine>.json`: the environment file of a machine that is not the run header's.
pub fn machine_environment_file(machine: &str) -> String {
    format!("environment.{}.json", machine.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>())
}

/// The machine an environment record was written on ([`machine_name`]).
pub fn environment_machine(env: &serde_json::Value) -> String {
    machine_name(env["gpu"]["devices"][0]["uuid"].as_str(), env["host"]["hostname"].as_str())
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string())
}

/// Held while a line is appended to a run's files, so that a run stopped by Ctrl-C
/// (`crate::run::interrupt`) never leaves half a line.
pub fn write_lock() -> std::sync::MutexGuard<'static, ()> {
    static WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    WRITE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The directory of one run; appends records as they come.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub dir: PathBuf,
    pub run: String,
}

impl RunDir {
    /// `LLM_BENCH_OUT` or `<cargo target dir>/llm-bench/<run id>`; the run id is
    /// `LLM_BENCH_RUN` or the start time. Benches of one run share the directory when
    /// `LLM_BENCH_RUN` is set.
    pub fn create() -> Result<Self> {
        let run = std::env::var("LLM_BENCH_RUN").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            format!("run-{secs}")
        });
        let dir = match std::env::var_os("LLM_BENCH_OUT") {
            Some(d) => PathBuf::from(d),
            None => {
                let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| "target".into());
                target.join("llm-bench").join(&run)
            }
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create run directory {}", dir.display()))?;
        Ok(Self { dir, run })
    }

    fn append(&self, file: &str, line: &impl Serialize) -> Result<()> {
        let _whole_lines = write_lock();
        self.append_locked(file, line)
    }

    /// Append with [`write_lock`] already held.
    fn append_locked(&self, file: &str, line: &impl Serialize) -> Result<()> {
        let path = self.dir.join(file);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        f.write_all(text.as_bytes())?;
        f.sync_data().ok();
        Ok(())
    }

    pub fn record(&self, r: &ResultRecord) -> Result<()> {
        self.append("results.jsonl", &stamped(r)?)
    }

    /// [`RunDir::record`] with [`write_lock`] already held (the Ctrl-C handler's last record).
    pub fn record_locked(&self, r: &ResultRecord) -> Result<()> {
        self.append_locked("results.jsonl", &stamped(r)?)
    }

    pub fn requests(&self, records: &[RequestRecord]) -> Result<()> {
        for r in records {
            self.append("requests.jsonl", r)?;
        }
        Ok(())
    }

    /// The background telemetry of one case, sample by sample (`telemetry.jsonl`): what the
    /// report plots over time. `t` is seconds since the case's first measured batch (a latency
    /// case's: since its timed requests began, Criterion's own warm-up included).
    pub fn telemetry(&self, scenario: &str, engine: &str, case: &str, samples: &[crate::measure::telemetry::Sample]) -> Result<()> {
        for s in samples {
            self.append("telemetry.jsonl", &serde_json::json!({"scenario": scenario, "engine": engine, "case": case, "sample": s}))?;
        }
        Ok(())
    }

    /// Set `section.key` (e.g. `calibration.end`) of this machine's environment file
    /// ([`RunDir::environment_file`]), keeping everything else.
    pub fn amend_environment(&self, section: &str, key: &str, value: serde_json::Value) -> Result<()> {
        let path = self.dir.join(self.environment_file());
        let mut env: serde_json::Value = match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t).with_context(|| format!("{} is not JSON", path.display()))?,
            Err(_) => serde_json::json!({}),
        };
        if !env[section].is_object() {
            env[section] = serde_json::json!({});
        }
        env[section][key] = value;
        std::fs::write(&path, serde_json::to_string_pretty(&env)?).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Note this process in `processes.jsonl` (once per process and run directory): a run that
    /// spans processes, device calls, binaries or GPUs says so in its report.
    /// `engines`: the variants this process was given (`LLM_BENCH_ENGINES`; `None`: every built
    /// one) and whether each is CPU-only, so the report can tell a CPU-only engine measured on
    /// another machine from a second GPU. The first process of a run begun with CPU-only
    /// engines that runs others sets their environment aside (`set_cpu_environment_aside`).
    pub fn process(&self, gpu_uuid: Option<String>, engines: Option<Vec<(&str, bool)>>) -> Result<()> {
        static NOTED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        let mut noted = NOTED.lock().unwrap_or_else(|e| e.into_inner());
        if noted.contains(&self.dir) {
            return Ok(());
        }
        noted.push(self.dir.clone());
        let machine = machine_name(gpu_uuid.as_deref(), hostname().as_deref());
        let call = std::env::var("LLM_BENCH_CALL").ok().filter(|c| !c.is_empty());
        MACHINE.get_or_init(|| serde_json::json!({"machine": machine, "call": call}));
        let cpu_only = engines.as_ref().is_some_and(|e| !e.is_empty() && e.iter().all(|(_, cpu)| *cpu));
        if !cpu_only {
            self.set_cpu_environment_aside()?;
        }
        self.append(
            "processes.jsonl",
            &serde_json::json!({
                "pid": std::process::id(),
                "started_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                "git_commit": crate::measure::telemetry::git_commit(),
                "gpu_uuid": gpu_uuid,
                "host": hostname(),
                // What CPU-only engines' figures depend on (a VM may name only the family).
                "cpu": crate::measure::telemetry::cpu_model(),
                // The device machine's call this process ran in, where the caller names one.
                "call": call,
                "command": std::env::args().collect::<Vec<_>>(),
                "engines": engines.as_ref().map(|e| e.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
                "cpu_only": cpu_only,
            }),
        )
    }

    /// A run begun with CPU-only engines (the lm.rs design, in a lease of its own) and continued
    /// with the others: the first process of the others moves the CPU lease's `environment.json`
    /// to `environment.cpu.json`, so that process writes its own and the run's header names the
    /// machine and GPU the GPU engines ran on, with the CPU-only engines' host beside it.
    fn set_cpu_environment_aside(&self) -> Result<()> {
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(self.dir.join("processes.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let (from, to) = (self.dir.join("environment.json"), self.dir.join("environment.cpu.json"));
        if !lines.is_empty() && lines.iter().all(|p| p["cpu_only"] == true) && from.exists() && !to.exists() {
            std::fs::rename(&from, &to).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
        }
        Ok(())
    }

    /// Write this machine's environment file unless an earlier bench of the same run on this
    /// machine already did.
    pub fn environment(&self, env: &serde_json::Value) -> Result<()> {
        let path = self.dir.join(self.environment_file());
        if !path.exists() {
            std::fs::write(&path, serde_json::to_string_pretty(env)?)?;
        }
        Ok(())
    }

    /// `environment.json`, the machine of the run's header; a process on another machine (a
    /// CPU-only engine finished in a later lease) keeps its own as `environment.<machine>.json`,
    /// so its calibration never overwrites the header machine's and the header can list it.
    pub fn environment_file(&self) -> String {
        let header = std::fs::read_to_string(self.dir.join("environment.json")).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        match (header, MACHINE.get().and_then(|m| m["machine"].as_str())) {
            (Some(env), Some(mine)) if environment_machine(&env) != mine => machine_environment_file(mine),
            _ => "environment.json".into(),
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Where Criterion writes its estimates and pages in this process, as Criterion decides it:
    /// `CRITERION_HOME`, else `<cargo target dir>/criterion`.
    pub fn criterion_dir() -> PathBuf {
        match std::env::var_os("CRITERION_HOME") {
            Some(d) => PathBuf::from(d),
            None => std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| "target".into()).join("criterion"),
        }
    }
}

/// `(scenario, engine, case)` of every measured record of a run so far: what a resumed run
/// (`llm-bench suite --resume`, `LLM_BENCH_RESUME=1`) does not measure again.
pub fn measured_cases(dir: &Path) -> std::collections::BTreeSet<(String, String, String)> {
    read_results(&dir.join("results.jsonl"))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["status"] == "measured" && r["unfinished"] != true)
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (s("scenario"), s("engine"), s("case"))
        })
        .collect()
}

/// (scenario, engine, case) → the longest time a stopped process had spent on the case
/// without finishing it (`ran_s` of its interrupted records), for cases never measured since.
pub fn stopped_cases(dir: &Path) -> BTreeMap<(String, String, String), f64> {
    let measured = measured_cases(dir);
    let mut out: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for r in read_results(&dir.join("results.jsonl")).unwrap_or_default() {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let key = (s("scenario"), s("engine"), s("case"));
        if let (Some(t), false) = (r["ran_s"].as_f64(), measured.contains(&key)) {
            let e = out.entry(key).or_insert(t);
            *e = e.max(t);
        }
    }
    out
}

/// The measured cases of one engine in one scenario whose ids start with `prefix`, each with
/// its result record and its raw requests as written: what a resumed rate search reads back of
/// the probes it served before (`crate::run::harness`), instead of serving them again.
pub fn measured_with_requests(dir: &Path, scenario: &str, engine: &str, prefix: &str) -> Vec<(serde_json::Value, Vec<serde_json::Value>)> {
    let mine = |r: &serde_json::Value| r["scenario"] == scenario && r["engine"] == engine && r["case"].as_str().is_some_and(|c| c.starts_with(prefix));
    let results: Vec<serde_json::Value> =
        read_results(&dir.join("results.jsonl")).unwrap_or_default().into_iter().filter(|r| r["status"] == "measured" && mine(r)).collect();
    if results.is_empty() {
        return Vec::new();
    }
    let requests = read_results(&dir.join("requests.jsonl")).unwrap_or_default();
    results
        .into_iter()
        .map(|r| {
            let reqs = requests.iter().filter(|q| mine(q) && q["case"] == r["case"]).cloned().collect();
            (r, reqs)
        })
        .collect()
}

/// The records of a run as its reports read them: a skip that a later measured record of the
/// same case (or, for a whole engine's skip, of the same engine and scenario) made good, in a
/// resumed run, is left out; so is an unfinished rate search that a resumed run took up again
/// (a later measured record of the same case).
pub fn current_records(records: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let key = |r: &serde_json::Value| {
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        (s("scenario"), s("engine"), s("case"))
    };
    let measured: Vec<(String, String, String)> = records.iter().filter(|r| r["status"] == "measured").map(key).collect();
    let taken_up = |i: usize, r: &serde_json::Value| r["unfinished"] == true && records[i + 1..].iter().any(|later| later["status"] == "measured" && key(later) == key(r));
    let kept: Vec<bool> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if r["status"] == "measured" {
                return !taken_up(i, r);
            }
            if r["status"] != "skipped" {
                return true;
            }
            let (scenario, engine) = (r["scenario"].as_str().unwrap_or(""), r["engine"].as_str().unwrap_or(""));
            !measured.iter().any(|(s, e, c)| s == scenario && e == engine && r["case"].as_str().is_none_or(|rc| rc == c))
        })
        .collect();
    records.into_iter().zip(kept).filter_map(|(r, keep)| keep.then_some(r)).collect()
}

/// Whether a case id is chosen by a `llm-bench withdraw --case` pattern: the same id, or any id
/// under it when the pattern ends with `/` (`probe/` chooses every rate-search probe;
/// `clients/10` chooses `clients/10`, not `clients/100`).
fn case_matches(pattern: &str, case: &str) -> bool {
    case == pattern || (pattern.ends_with('/') && case.starts_with(pattern))
}

/// What [`withdraw`] took out of a run.
#[derive(Debug, Default, PartialEq)]
pub struct Withdrawal {
    /// The cases withdrawn, in the order the results file first named them.
    pub cases: Vec<String>,
    /// Lines moved out of `results.jsonl`, `requests.jsonl` and `telemetry.jsonl`.
    pub records: usize,
    pub requests: usize,
    pub telemetry: usize,
}

/// Withdraw cases of one engine in one scenario from the run in `dir`, because `reason` makes
/// their figures wrong for the binary that goes on with the run (the lm.rs design served by
/// the batcher in batches of 64 before it was served one request at a time). Every line of
/// those cases in `results.jsonl`, `requests.jsonl` and `telemetry.jsonl` moves to
/// `withdrawn.jsonl` (each with the reason, the time and the file it came from: nothing
/// measured is lost), and each case gets a skipped record saying it was withdrawn and why. The
/// report then lists the case as not measured, and a resumed run measures it again.
pub fn withdraw(dir: &Path, scenario: &str, engine: &str, cases: &[String], reason: &str) -> Result<Withdrawal> {
    anyhow::ensure!(!cases.is_empty(), "withdraw needs at least one --case (an id such as clients/10, or probe/ for every id under it)");
    anyhow::ensure!(!reason.trim().is_empty(), "withdraw needs a --reason: the report shows it in place of the figures");
    let results_path = dir.join("results.jsonl");
    anyhow::ensure!(results_path.is_file(), "{}: no results.jsonl: give the run directory", dir.display());
    for name in ["requests.jsonl", "telemetry.jsonl"] {
        let xz = dir.join(format!("{name}.xz"));
        anyhow::ensure!(
            dir.join(name).is_file() || !xz.is_file(),
            "{} is compressed: withdrawing rewrites it, so unpack it first (`xz -d {}`) and compress it again after",
            xz.display(),
            xz.display()
        );
    }
    let chosen = |v: &serde_json::Value| {
        v["scenario"] == scenario && v["engine"] == engine && v["case"].as_str().is_some_and(|c| cases.iter().any(|p| case_matches(p, c)))
    };
    // Each file's lines split into kept and moved, as written (the kept ones byte for byte).
    let split = |name: &str| -> Result<(Vec<String>, Vec<serde_json::Value>)> {
        let text = match std::fs::read_to_string(dir.join(name)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.join(name).display())),
        };
        let (mut kept, mut moved) = (Vec::new(), Vec::new());
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("bad line in {}: {line}", dir.join(name).display()))?;
            if chosen(&v) {
                moved.push(v);
            } else {
                kept.push(line.to_string());
            }
        }
        Ok((kept, moved))
    };
    let (results_kept, results_moved) = split("results.jsonl")?;
    let withdrawn = |r: &serde_json::Value| r["status"] == "skipped" && r["reason"].as_str().and_then(withdrawal).is_some();
    anyhow::ensure!(
        results_moved.iter().any(|r| !withdrawn(r)),
        "{}: no record of {engine} in {scenario} for {} (earlier withdrawals aside): nothing to withdraw",
        results_path.display(),
        cases.join(", ")
    );
    let (requests_kept, requests_moved) = split("requests.jsonl")?;
    let (telemetry_kept, telemetry_moved) = split("telemetry.jsonl")?;
    let mut done = Withdrawal { records: results_moved.len(), requests: requests_moved.len(), telemetry: telemetry_moved.len(), ..Default::default() };
    for r in &results_moved {
        let case = r["case"].as_str().unwrap_or_default().to_string();
        if !done.cases.contains(&case) {
            done.cases.push(case);
        }
    }
    // First the moved lines, appended (a withdrawal cut short leaves them twice, never lost).
    let _whole_lines = write_lock();
    append_withdrawn(dir, reason, &[("results.jsonl", &results_moved), ("requests.jsonl", &requests_moved), ("telemetry.jsonl", &telemetry_moved)])?;
    let run = results_moved[0]["run"].as_str().unwrap_or_default().to_string();
    let mut results_out = results_kept;
    for case in &done.cases {
        let n = |lines: &[serde_json::Value]| lines.iter().filter(|v| v["case"] == case.as_str()).count();
        let skip = ResultRecord::Skipped {
            run: run.clone(),
            scenario: scenario.to_string(),
            engine: engine.to_string(),
            case: Some(case.clone()),
            reason: format!(
                "withdrawn: {reason} ({} record(s) and {} request(s) moved to withdrawn.jsonl; a resumed run measures it again)",
                n(&results_moved),
                n(&requests_moved)
            ),
            ran_s: None,
        };
        results_out.push(serde_json::to_string(&skip)?);
    }
    // Then each file rewritten whole.
    for (name, lines, moved) in [("requests.jsonl", requests_kept, requests_moved.len()), ("telemetry.jsonl", telemetry_kept, telemetry_moved.len()), ("results.jsonl", results_out, 1)] {
        if moved > 0 {
            replace_lines(dir, name, &lines)?;
        }
    }
    Ok(done)
}

/// The withdrawal a skipped record's reason stands for, as [`withdraw`] wrote it, without its
/// per-case tail ("(1 record(s) and 65 request(s) moved to withdrawn.jsonl; …)"), so the cases
/// of one withdrawal read as one reason; None for any other reason.
pub fn withdrawal(reason: &str) -> Option<&str> {
    reason.starts_with("withdrawn: ").then(|| {
        reason.rsplit_once(" (").filter(|(_, tail)| tail.contains("moved to withdrawn.jsonl")).map_or(reason, |(head, _)| head)
    })
}

/// Append lines taken out of a run's files to its `withdrawn.jsonl`, each with the reason, the
/// time and the file it came from. The caller holds [`write_lock`].
fn append_withdrawn(dir: &Path, reason: &str, moved: &[(&str, &[serde_json::Value])]) -> Result<()> {
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let path = dir.join("withdrawn.jsonl");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    for (file, lines) in moved {
        for line in lines.iter() {
            writeln!(f, "{}", serde_json::json!({"withdrawn_at_unix_s": at, "reason": reason, "file": file, "line": line}))?;
        }
    }
    f.sync_data().ok();
    Ok(())
}

/// Rewrite a run's `name` whole with `lines`, through a temporary file renamed over it.
fn replace_lines(dir: &Path, name: &str, lines: &[String]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.withdraw"));
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot replace {}", path.display()))
}

/// What [`withdraw_machine`] moved.
#[derive(Debug, Default)]
pub struct MachineWithdrawal {
    /// One per scenario and engine whose cases the machine measured.
    pub withdrawals: Vec<(String, String, Withdrawal)>,
    /// Lines of `processes.jsonl` moved to `withdrawn.jsonl`.
    pub processes: usize,
    /// Where `environment.json` went, when it was the machine's.
    pub environment: Option<String>,
}

/// Withdraw every case one machine (a GPU UUID, or `host <name>`: [`machine_name`]) measured in
/// the run in `dir`, with [`withdraw`] per scenario and engine, and that machine's processes:
/// a lease whose table is measured again whole on another machine supersedes it (the whole
/// table must come from one GPU: table-2026-12-07's lease 3 left 8 cases unmeasured). Its
/// `processes.jsonl` lines move to `withdrawn.jsonl` too, so the report's header no longer
/// counts its processes and binary, and `environment.json`, when it is that machine's, becomes
/// `environment.<machine>.json`, so the next machine's first process writes the header's.
pub fn withdraw_machine(dir: &Path, machine: &str, reason: &str) -> Result<MachineWithdrawal> {
    let results = read_results(&dir.join("results.jsonl"))?;
    let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in results.iter().filter(|r| r["status"] == "measured" && r["machine"] == machine) {
        let (Some(scenario), Some(engine), Some(case)) = (r["scenario"].as_str(), r["engine"].as_str(), r["case"].as_str()) else { continue };
        match groups.iter_mut().find(|(s, e, _)| s == scenario && e == engine) {
            Some((_, _, cases)) if !cases.iter().any(|c| c == case) => cases.push(case.to_string()),
            Some(_) => {}
            None => groups.push((scenario.to_string(), engine.to_string(), vec![case.to_string()])),
        }
    }
    let machines: std::collections::BTreeSet<&str> = results.iter().filter_map(|r| r["machine"].as_str()).collect();
    anyhow::ensure!(
        !groups.is_empty(),
        "{}: no measured record names machine `{machine}` (the run's records name: {})",
        dir.display(),
        machines.into_iter().collect::<Vec<_>>().join(", ")
    );
    let mut done = MachineWithdrawal::default();
    for (scenario, engine, cases) in groups {
        let w = withdraw(dir, &scenario, &engine, &cases, reason)?;
        done.withdrawals.push((scenario, engine, w));
    }
    let path = dir.join("processes.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (mut kept, mut moved) = (Vec::new(), Vec::new());
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let p: serde_json::Value = serde_json::from_str(line).with_context(|| format!("bad line in {}: {line}", path.display()))?;
        if machine_name(p["gpu_uuid"].as_str(), p["host"].as_str()) == machine {
            moved.push(p);
        } else {
            kept.push(line.to_string());
        }
    }
    if !moved.is_empty() {
        let _whole_lines = write_lock();
        append_withdrawn(dir, reason, &[("processes.jsonl", &moved)])?;
        replace_lines(dir, "processes.jsonl", &kept)?;
        done.processes = moved.len();
    }
    let env_path = dir.join("environment.json");
    let header = std::fs::read_to_string(&env_path).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    if header.is_some_and(|env| environment_machine(&env) == machine) {
        let aside = machine_environment_file(machine);
        std::fs::rename(&env_path, dir.join(&aside)).with_context(|| format!("cannot move {} to {aside}", env_path.display()))?;
        done.environment = Some(aside);
    }
    Ok(done)
}

/// Whether a measured concurrent-load record was served by the suite's batcher in larger batches
/// than `now` (what the binary going on with the run serves its engine in,
/// `crate::engines::Variant::max_batch`): the lm.rs design's cases of an earlier binary, which
/// handed it up to 64 requests at once. A record without `max_batch` comes from a binary that
/// served every engine up to [`crate::engine::MAX_BATCH`]; one whose batches never held more
/// than `now` (one client) has the same figures either way.
pub fn served_in_larger_batches(r: &serde_json::Value, now: usize) -> bool {
    if r["status"] != "measured" || r["scenario"] != "concurrent_load" {
        return false;
    }
    let m = &r["metrics"];
    if m["mean_batch"]["median"].as_f64() == Some(0.0) {
        return false; // the engine's own scheduler served it
    }
    let now = now as f64;
    let then = m["max_batch"]["max"].as_f64().unwrap_or(crate::engine::MAX_BATCH as f64);
    then > now && !m["mean_batch"]["max"].as_f64().is_some_and(|b| b <= now)
}

/// The text of a run's `<name>`, or of the `<name>.xz` a committed report keeps instead (read
/// through the `xz` command): every committed run travels with each GPU call, so its large raw
/// files are kept compressed.
pub fn read_raw(run_dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(run_dir.join(name)).ok().or_else(|| {
        let xz = run_dir.join(format!("{name}.xz"));
        let out = std::process::Command::new("xz").arg("-dc").arg(&xz).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

/// Read a results file back (for reports and tests).
pub fn read_results(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("bad line in {}: {l}", path.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// table-2026-12-07's lmrs, finished in a second lease: that lease's processes rewrote the
    /// first machine's `calibration.end`. A process on another machine than `environment.json`'s
    /// keeps its own file; on the header's machine it amends `environment.json`.
    #[test]
    fn a_process_on_another_machine_keeps_its_own_environment() {
        let dir = std::env::temp_dir().join(format!("llm-bench-env-machine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = RunDir { dir: dir.clone(), run: "r".into() };
        run.process(Some("GPU-this-machine".into()), Some(vec![("lmrs", true)])).unwrap();
        let mine = MACHINE.get().unwrap()["machine"].as_str().unwrap().to_string();
        let header = |uuid: &str| json!({"gpu": {"devices": [{"uuid": uuid}]}, "calibration": {"end": 1.0}});
        std::fs::write(dir.join("environment.json"), header("GPU-first-lease").to_string()).unwrap();
        let own = run.environment_file();
        assert!(own != "environment.json" && own.starts_with("environment.") && own.ends_with(".json"), "{own}");
        run.environment(&json!({"gpu": {"devices": [{"uuid": mine}]}})).unwrap();
        run.amend_environment("calibration", "end", json!(2.0)).unwrap();
        let read = |f: &str| serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();
        assert_eq!(read("environment.json")["calibration"]["end"], 1.0, "the header machine's calibration stays");
        assert_eq!(read(&own)["calibration"]["end"], 2.0);
        std::fs::write(dir.join("environment.json"), header(&mine).to_string()).unwrap();
        assert_eq!(run.environment_file(), "environment.json");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// table-2026-12-07's lmrs clients/100: a device call's time limit stopped its first round
    /// after ~520 s; a resumed run reads that back (the longest stop) until the case is measured.
    #[test]
    fn a_case_stopped_unfinished_is_read_back_with_the_time_it_had_run() {
        let dir = std::env::temp_dir().join(format!("llm-bench-stopped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stop = |case: &str, t: f64| format!(r#"{{"status":"skipped","run":"r","scenario":"concurrent_load","engine":"lmrs","case":"{case}","reason":"interrupted","ran_s":{t}}}"#);
        let lines = [
            stop("clients/100", 520.3),
            stop("clients/100", 310.0),
            stop("clients/50", 200.0),
            r#"{"status":"measured","run":"r","scenario":"concurrent_load","engine":"lmrs","case":"clients/50"}"#.to_string(),
        ];
        std::fs::write(dir.join("results.jsonl"), lines.join("\n") + "\n").unwrap();
        let stopped = stopped_cases(&dir);
        std::fs::remove_dir_all(&dir).ok();
        let key = |c: &str| ("concurrent_load".to_string(), "lmrs".to_string(), c.to_string());
        assert_eq!(stopped.get(&key("clients/100")), Some(&520.3));
        assert_eq!(stopped.get(&key("clients/50")), None, "measured since: no longer a bound");
    }

    #[test]
    fn a_resumed_search_reads_back_each_probe_with_its_own_requests() {
        let dir = std::env::temp_dir().join(format!("llm-bench-probes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = |engine: &str, case: &str, status: &str| {
            serde_json::json!({"status": status, "scenario": "concurrent_load", "engine": engine, "case": case,
                "metrics": {"request_rate_rps": {"median": 8.0}}})
            .to_string()
        };
        let request = |engine: &str, case: &str, ttft: f64| {
            serde_json::json!({"scenario": "concurrent_load", "engine": engine, "case": case, "ttft_ms": ttft}).to_string()
        };
        let results = [
            result("candle", "probe/8rps", "measured"),
            result("candle", "probe/16rps", "skipped"),
            result("burn", "probe/8rps", "measured"),
            result("candle", "clients/10", "measured"),
        ];
        let requests = [request("candle", "probe/8rps", 1.0), request("burn", "probe/8rps", 2.0), request("candle", "probe/8rps", 3.0)];
        std::fs::write(dir.join("results.jsonl"), results.join("\n")).unwrap();
        std::fs::write(dir.join("requests.jsonl"), requests.join("\n")).unwrap();
        let got = measured_with_requests(&dir, "concurrent_load", "candle", "probe/");
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0["case"], "probe/8rps");
        let ttfts: Vec<f64> = got[0].1.iter().map(|q| q["ttft_ms"].as_f64().unwrap()).collect();
        assert_eq!(ttfts, [1.0, 3.0]);
        assert!(measured_with_requests(&dir, "concurrent_load", "torch", "probe/").is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A rate search cut by the time budget (torch's in h100-2026-12-06-c, recorded then as a
    /// finished case) is measured again by a resumed run, and its later record is the one the
    /// reports read; a search cut by the probe limit stays done.
    #[test]
    fn a_search_cut_by_time_is_taken_up_again_and_its_later_record_stands() {
        let dir = std::env::temp_dir().join(format!("llm-bench-unfinished-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let search = |case: &str, rate: f64, unfinished: bool| {
            let mut r = serde_json::json!({"status": "measured", "scenario": "concurrent_load", "engine": "torch", "case": case,
                "metrics": {"max_rate_rps": {"median": rate}}});
            if unfinished {
                r["unfinished"] = true.into();
            }
            r
        };
        let first = [search("max_rate/interactive", 0.0, true), search("max_rate/server", 13.2, false)];
        let text: Vec<String> = first.iter().map(|r| r.to_string()).collect();
        std::fs::write(dir.join("results.jsonl"), text.join("\n")).unwrap();
        let done = measured_cases(&dir);
        assert!(!done.contains(&("concurrent_load".into(), "torch".into(), "max_rate/interactive".into())), "{done:?}");
        assert!(done.contains(&("concurrent_load".into(), "torch".into(), "max_rate/server".into())), "{done:?}");

        let mut all = first.to_vec();
        all.push(search("max_rate/interactive", 1.2, false));
        let current = current_records(all);
        let rates: Vec<(String, f64)> =
            current.iter().map(|r| (r["case"].as_str().unwrap().to_string(), r["metrics"]["max_rate_rps"]["median"].as_f64().unwrap())).collect();
        assert_eq!(rates, [("max_rate/server".to_string(), 13.2), ("max_rate/interactive".to_string(), 1.2)]);
        // Not taken up (yet): the unfinished record is what the run has.
        assert_eq!(current_records(first.to_vec()).len(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// table-2026-12-07's lm.rs-design cases that the batcher served in batches of up to 64
    /// (before it served that engine one request at a time): withdrawn, they leave the figures
    /// and the done cases, their lines are kept in withdrawn.jsonl, the report lists each as
    /// withdrawn with the reason, and a later measured record replaces that.
    #[test]
    fn withdrawn_cases_move_to_withdrawn_jsonl_and_are_measured_again() {
        let dir = std::env::temp_dir().join(format!("llm-bench-withdraw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = |case: &str, status: &str, batch: f64| {
            serde_json::json!({"status": status, "run": "r", "scenario": "concurrent_load", "engine": "lmrs", "case": case,
                "metrics": {"mean_batch": {"median": batch, "max": batch}}})
            .to_string()
        };
        let request = |engine: &str, case: &str| serde_json::json!({"scenario": "concurrent_load", "engine": engine, "case": case}).to_string();
        let results = [
            result("clients/1", "measured", 1.0),
            result("clients/10", "measured", 10.0),
            r#"{"status":"skipped","run":"r","scenario":"concurrent_load","engine":"lmrs","case":"clients/100","reason":"interrupted","ran_s":522.0}"#.to_string(),
            result("probe/0.5rps", "measured", 8.6),
            serde_json::json!({"status": "measured", "run": "r", "scenario": "concurrent_load", "engine": "candle", "case": "clients/10",
                "metrics": {"mean_batch": {"median": 10.0, "max": 10.0}}}).to_string(),
        ];
        let requests = [request("lmrs", "clients/1"), request("lmrs", "clients/10"), request("lmrs", "probe/0.5rps"), request("candle", "clients/10")];
        std::fs::write(dir.join("results.jsonl"), results.join("\n") + "\n").unwrap();
        std::fs::write(dir.join("requests.jsonl"), requests.join("\n") + "\n").unwrap();
        let stale: Vec<String> = read_results(&dir.join("results.jsonl"))
            .unwrap()
            .iter()
            .filter(|r| served_in_larger_batches(r, if r["engine"] == "lmrs" { 1 } else { 64 }))
            .map(|r| format!("{}/{}", r["engine"].as_str().unwrap(), r["case"].as_str().unwrap()))
            .collect();
        assert_eq!(stale, ["lmrs/clients/10", "lmrs/probe/0.5rps"], "one client is one request per batch either way; candle batches");

        let cases: Vec<String> = ["clients/10", "clients/100", "probe/"].map(String::from).to_vec();
        let w = withdraw(&dir, "concurrent_load", "lmrs", &cases, "served in batches of up to 64").unwrap();
        assert_eq!(w, Withdrawal { cases: vec!["clients/10".into(), "clients/100".into(), "probe/0.5rps".into()], records: 3, requests: 2, telemetry: 0 });
        let key = |c: &str| ("concurrent_load".to_string(), "lmrs".to_string(), c.to_string());
        let done = measured_cases(&dir);
        assert!(done.contains(&key("clients/1")) && !done.contains(&key("clients/10")) && !done.contains(&key("probe/0.5rps")), "{done:?}");
        assert!(stopped_cases(&dir).is_empty(), "the stopped round went with its case");
        let left: Vec<serde_json::Value> = read_results(&dir.join("requests.jsonl")).unwrap();
        assert_eq!(left.len(), 2, "lmrs clients/1's and candle's requests stay: {left:?}");
        let kept = read_results(&dir.join("withdrawn.jsonl")).unwrap();
        assert_eq!(kept.len(), 5);
        assert!(kept.iter().all(|k| k["reason"] == "served in batches of up to 64" && k["line"]["engine"] == "lmrs"));

        let current = current_records(read_results(&dir.join("results.jsonl")).unwrap());
        let withdrawn: Vec<&str> = current
            .iter()
            .filter(|r| r["status"] == "skipped" && r["reason"].as_str().unwrap().starts_with("withdrawn: served in batches of up to 64 (1 record(s) and 1 request(s)"))
            .map(|r| r["case"].as_str().unwrap())
            .collect();
        assert_eq!(withdrawn, ["clients/10", "probe/0.5rps"]);
        let mut again = read_results(&dir.join("results.jsonl")).unwrap();
        again.push(serde_json::from_str(&result("clients/10", "measured", 1.0)).unwrap());
        let current = current_records(again);
        assert!(!current.iter().any(|r| r["case"] == "clients/10" && r["status"] == "skipped"), "measured again: the withdrawal is made good");

        let err = withdraw(&dir, "concurrent_load", "lmrs", &["clients/10".into()], "again").unwrap_err().to_string();
        assert!(err.contains("nothing to withdraw"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// table-2026-12-07: lease 3's GPU table (GPU-049af962) is superseded by a lease that measures
    /// it whole on another machine. Its cases, requests and processes move to withdrawn.jsonl and
    /// its environment file is set aside; the CPU-only engine's records of another machine stay.
    #[test]
    fn a_machine_withdrawn_takes_its_cases_processes_and_environment_with_it() {
        let dir = std::env::temp_dir().join(format!("llm-bench-withdraw-machine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = |engine: &str, scenario: &str, case: &str, machine: &str| {
            serde_json::json!({"status": "measured", "run": "r", "scenario": scenario, "engine": engine, "case": case, "machine": machine, "metrics": {}}).to_string()
        };
        let results = [
            result("lmrs", "single_request", "ttft/prompt50", "GPU-f66"),
            result("candle", "single_request", "ttft/prompt50", "GPU-049"),
            result("candle", "concurrent_load", "clients/10", "GPU-049"),
            serde_json::json!({"status": "skipped", "run": "r", "scenario": "concurrent_load", "engine": "candle", "case": "clients/100", "machine": "GPU-049", "reason": "its first round ..."}).to_string(),
            result("llamacpp", "single_request", "ttft/prompt50", "GPU-049"),
        ];
        let request = |engine: &str, case: &str| serde_json::json!({"scenario": "single_request", "engine": engine, "case": case}).to_string();
        std::fs::write(dir.join("results.jsonl"), results.join("\n") + "\n").unwrap();
        std::fs::write(dir.join("requests.jsonl"), [request("lmrs", "ttft/prompt50"), request("candle", "ttft/prompt50")].join("\n") + "\n").unwrap();
        let process = |gpu: &str, cpu_only: bool| serde_json::json!({"gpu_uuid": gpu, "host": "vm", "engines": ["x"], "cpu_only": cpu_only}).to_string();
        std::fs::write(dir.join("processes.jsonl"), [process("GPU-f66", true), process("GPU-049", false), process("GPU-049", false)].join("\n") + "\n").unwrap();
        std::fs::write(dir.join("environment.json"), serde_json::json!({"gpu": {"devices": [{"uuid": "GPU-049"}]}, "host": {"hostname": "vm"}}).to_string()).unwrap();

        let err = withdraw_machine(&dir, "GPU-abc", "superseded").unwrap_err().to_string();
        assert!(err.contains("no measured record names machine `GPU-abc`") && err.contains("GPU-049, GPU-f66"), "{err}");
        let w = withdraw_machine(&dir, "GPU-049", "superseded by lease 4").unwrap();
        let groups: Vec<(&str, &str, usize)> = w.withdrawals.iter().map(|(s, e, w)| (s.as_str(), e.as_str(), w.records)).collect();
        assert_eq!(groups, [("single_request", "candle", 1), ("concurrent_load", "candle", 1), ("single_request", "llamacpp", 1)]);
        assert_eq!((w.processes, w.environment.as_deref()), (2, Some("environment.GPU-049.json")));
        assert!(!dir.join("environment.json").exists() && dir.join("environment.GPU-049.json").is_file());
        let done = measured_cases(&dir);
        assert_eq!(done.len(), 1, "only lmrs's case of the other machine is left measured: {done:?}");
        assert_eq!(read_results(&dir.join("processes.jsonl")).unwrap().len(), 1);
        assert_eq!(read_results(&dir.join("requests.jsonl")).unwrap().len(), 1);
        let kept = read_results(&dir.join("withdrawn.jsonl")).unwrap();
        assert_eq!(kept.iter().filter(|k| k["file"] == "processes.jsonl").count(), 2);
        assert_eq!(kept.iter().filter(|k| k["file"] == "results.jsonl").count(), 3, "its measured cases; a skip of a case it never measured stays");
        std::fs::remove_dir_all(&dir).ok();
    }
}
