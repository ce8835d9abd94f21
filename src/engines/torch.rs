//! PyTorch, embedded through PyO3, in two configurations ([`Setting`]):
//!
//! - `torch`, the baseline every speedup is divided by: Hugging Face transformers' `generate()`,
//!   what a team deploys first (python_baseline/transformers_baseline.py). The model is loaded from
//!   the same GGUF file by transformers' own GGUF loading (dequantized, bf16 on a GPU as its Llama
//!   3.2 documentation uses, f32 on the CPU), decoded greedily past end-of-sequence, attention as
//!   transformers' default for the model.
//! - `torch-compile` (GPU), what a PyTorch team gets by optimizing without leaving PyTorch: the
//!   suite's own Llama (python_baseline/llama.py) with a static KV cache and its decode step under
//!   `torch.compile(mode="reduce-overhead")` (CUDA graphs). transformers' documented static-cache +
//!   `torch.compile` path failed on the GPU machine's versions (transformers 5.17, torch 2.11: "accessing
//!   tensor output of CUDAGraphs that has been overwritten", its cache's `cumulative_length` is
//!   mutated in place), so the suite's model carries this variant. Its weights are the suite's GGUF
//!   reader's: each tensor dequantized to f32 here and handed over as little-endian bytes.
//!
//! Both Python files are compiled into this binary, so a bundle runs without the repository beside
//! it; tracebacks still name them and their lines. Both take a streamer with transformers' protocol
//! ([`Stamps`]): `put` gets the prompt, then each step's new tokens already on the host; the instant
//! of each `put` is the tokens' timestamp.
//!
//! The Python interpreter is the one this binary was built against (PyO3's `PYO3_PYTHON`). It
//! takes its prefix from the `python3` first on `PATH`, so an activated venv is used as such;
//! `VIRTUAL_ENV`'s site-packages are also put on `sys.path` in case `PATH` points elsewhere.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::engines::variant::{Setting, Variant};
use crate::model::gguf::GgufFile;
use crate::model::llama::{names, Llama3RopeScaling, LlamaConfig};
use anyhow::{anyhow, ensure, Context, Result};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyDict};
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A Python module of the baseline, compiled into the binary, and where tracebacks say it is.
struct Source {
    code: &'static CStr,
    /// The name tracebacks give the source (its path in the repository).
    file: &'static CStr,
    module: &'static CStr,
    /// The module, loaded once per process (models of several sizes may be loaded in turn).
    loaded: &'static PyOnceLock<Py<PyModule>>,
}

static TRANSFORMERS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static COMPILED_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Positions `torch-compile`'s model holds (its rotary table, made once at a fixed address:
/// `positions` in python_baseline/llama.py's `finish_loading`).
const COMPILED_POSITIONS: usize = 16384;

/// `torch`: transformers' `generate()`.
const TRANSFORMERS: Source = Source {
    code: pyo3::ffi::c_str!(include_str!("../../python_baseline/transformers_baseline.py")),
    file: c"python_baseline/transformers_baseline.py",
    module: c"llm_bench_transformers_baseline",
    loaded: &TRANSFORMERS_MODULE,
};

/// `torch-compile`: the suite's Llama with a static cache and a compiled decode step.
const COMPILED: Source = Source {
    code: pyo3::ffi::c_str!(include_str!("../../python_baseline/llama.py")),
    file: c"python_baseline/llama.py",
    module: c"llm_bench_torch_compiled",
    loaded: &COMPILED_MODULE,
};

/// Run before `import torch`: embedded interpreters have no `sys.argv`, which some libraries read;
/// `site_dir` (a venv's site-packages, or None) goes before the other site-packages, with its
/// `.pth` files.
const PREPARE: &CStr = c"
import site, sys
if not hasattr(sys, 'argv'):
    sys.argv = ['llm-bench']
if site_dir is not None and site_dir not in sys.path:
    at = [i for i, p in enumerate(sys.path) if p.endswith('site-packages')]
    sys.path.insert(at[0] if at else len(sys.path), site_dir)
    site.addsitedir(site_dir)
";

/// The embedded source registered with `linecache`, so tracebacks show its lines from any
/// working directory.
const REGISTER_SOURCE: &CStr = c"
import linecache
linecache.cache[file_name] = (len(source), None, source.splitlines(True), file_name)
";

/// Make the embedded interpreter ready to `import torch` from `VIRTUAL_ENV` (see [`PREPARE`]);
/// returns the venv, for error messages. Also used by the kernels bench's torch equivalents.
pub(crate) fn prepare_interpreter(py: Python<'_>) -> Result<Option<PathBuf>> {
    let venv = std::env::var_os("VIRTUAL_ENV").map(PathBuf::from);
    let v = py.version_info();
    let site_dir = venv
        .as_ref()
        .map(|venv| venv.join("lib").join(format!("python{}.{}", v.major, v.minor)).join("site-packages"))
        .filter(|dir| dir.is_dir())
        .map(|dir| dir.to_string_lossy().into_owned());
    let globals = PyDict::new(py);
    globals.set_item("site_dir", site_dir.as_deref()).or_traceback(py)?;
    py.run(PREPARE, Some(&globals), None).or_traceback(py)?;
    Ok(venv)
}

pub struct Torch {
    variant: &'static Variant,
    /// The Python `Baseline` object: the model on its device (and, compiled, its caches).
    baseline: Py<PyAny>,
    device: Device,
    version: String,
    precision: String,
    notes: String,
}

/// One model load at a time in the process. transformers builds a model on the `meta` device by
/// patching `torch.nn.Module` for the whole interpreter while it loads (accelerate's
/// `init_empty_weights`), and torch releases the GIL inside its operators: two loads on two
/// threads (the tests run in parallel) interleave, and one finds its parameters left on `meta`
/// ("Cannot copy out of meta tensor").
static LOADING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Torch {
    pub fn load(path: &Path, device: Device, variant: &'static Variant) -> Result<Self> {
        let g = GgufFile::open(path)?;
        let cfg = LlamaConfig::from_gguf(&g)?;
        // The matrices' on-disk format, for the precision line (Q8_0 for the suite's models).
        let weight_type = g.tensor(&names::layer(0, names::ATTN_Q))?.ggml_type;
        // Taken before the GIL (a thread holding the GIL while it waits here would stop the one
        // that loads).
        let _one_load_at_a_time = LOADING.lock().unwrap_or_else(|e| e.into_inner());
        Python::attach(|py| -> Result<Self> {
            let source = match variant.setting {
                Setting::Compiled => &COMPILED,
                _ => &TRANSFORMERS,
            };
            let module = load_module(py, source)?;
            let torch = py.import("torch").or_traceback(py)?;
            let torch_device = match device {
                Device::Cpu => "cpu".to_string(),
                Device::Cuda(i) => {
                    check_cuda(&torch, i).or_traceback(py)??;
                    format!("cuda:{i}")
                }
            };
            let baseline = match variant.setting {
                Setting::Compiled => compiled_model(py, module, &g, &cfg, &torch_device)?,
                _ => transformers_model(py, module, path, &cfg, &torch_device)?,
            };
            let d = baseline.call_method0("describe").or_traceback(py)?;
            let field = |key: &str| -> Result<String> {
                d.get_item(key).and_then(|v| v.str()).and_then(|s| s.extract::<String>()).or_traceback(py)
            };
            let (torch_version, python, dtype, threads) =
                (field("torch")?, field("python")?, field("dtype")?, field("threads")?);
            let dtype = match dtype.as_str() {
                "float16" => "f16",
                "bfloat16" => "bf16",
                "float32" => "f32",
                other => other,
            }
            .to_string();
            let (version, precision, mut notes) = match variant.setting {
                Setting::Compiled => (
                    format!("torch {torch_version} (Python {python})"),
                    format!("weights {weight_type:?} dequantized to {dtype} by the suite's reader, activations {dtype}"),
                    format!(
                        "the suite's Llama (python_baseline/llama.py): static KV cache, decode step under torch.compile(mode=\"reduce-overhead\", \
                         fullgraph) with CUDA graphs, batch padded to 1/2/4/../64 rows, prefill eager; the step's graphs are compiled at load (start-up), \
                         a new batch size or cache length records its CUDA graph in the case's warm-up request; {}",
                        field("compile")?
                    ),
                ),
                _ => (
                    format!("transformers {} + torch {torch_version} (Python {python})", field("transformers")?),
                    format!("weights {weight_type:?} dequantized to {dtype} by transformers' GGUF loader, activations {dtype}"),
                    format!(
                        "Hugging Face transformers generate(), greedy, no end-of-sequence token (exactly max_new_tokens); attention \
                         `{}` (transformers' default), dynamic KV cache; tokens stamped by a streamer; weights from {}",
                        field("attention")?,
                        field("weights_from")?
                    ),
                ),
            };
            if device == Device::Cpu {
                notes.push_str(&format!("; {threads} CPU threads"));
            }
            Ok(Self { variant, baseline: baseline.unbind(), device, version, precision, notes })
        })
    }
}

/// `torch`'s model: transformers loads the GGUF itself. Llama 3's RoPE scaling, which its GGUF
/// loader does not read, is passed when the file's `rope_freqs` are Llama 3.2's.
fn transformers_model<'py>(
    py: Python<'py>,
    module: &Bound<'py, PyModule>,
    path: &Path,
    cfg: &LlamaConfig,
    torch_device: &str,
) -> Result<Bound<'py, PyAny>> {
    let rope = match &cfg.rope_freq_factors {
        None => None,
        Some(factors) => {
            let s = Llama3RopeScaling::LLAMA_3_2;
            let expected = s.freq_factors(cfg.head_dim, cfg.rope_theta);
            ensure!(
                factors.len() == expected.len() && factors.iter().zip(&expected).all(|(a, b)| (a - b).abs() <= 1e-3 * b.abs()),
                "the model's rope_freqs are not Llama 3.2's scaling; the transformers baseline cannot reproduce them"
            );
            Some(serde_json::json!({
                "rope_type": "llama3",
                "rope_theta": cfg.rope_theta,
                "factor": s.factor,
                "low_freq_factor": s.low_freq_factor,
                "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_context,
            }))
        }
    };
    let rope = match rope {
        None => py.None().into_bound(py),
        Some(r) => py.import("json").and_then(|json| json.call_method1("loads", (r.to_string(),))).or_traceback(py)?,
    };
    module
        .getattr("Baseline")
        .and_then(|b| b.call1((path.to_string_lossy().into_owned(), torch_device, rope)))
        .or_traceback(py)
        .with_context(|| format!("transformers cannot load {} on {torch_device}", path.display()))
}

/// `torch-compile`'s model: the suite's Llama, its tensors handed over from the suite's reader.
fn compiled_model<'py>(
    py: Python<'py>,
    module: &Bound<'py, PyModule>,
    g: &GgufFile,
    cfg: &LlamaConfig,
    torch_device: &str,
) -> Result<Bound<'py, PyAny>> {
    let config_json = serde_json::to_string(cfg)?;
    let config = py.import("json").and_then(|json| json.call_method1("loads", (config_json,))).or_traceback(py)?;
    let baseline = module
        .getattr("Baseline")
        .and_then(|b| b.call1((config, torch_device, true)))
        .or_traceback(py)
        .with_context(|| format!("the compiled PyTorch model cannot be created on {torch_device}"))?;
    let tensors = baseline.call_method0("tensor_names").and_then(|t| t.extract::<Vec<String>>()).or_traceback(py)?;
    for name in &tensors {
        let info = g.tensor(name)?;
        let values = g.f32_tensor(name)?;
        let shape: Vec<usize> = info.dims.iter().rev().copied().collect();
        let data = PyByteArray::new_with(py, values.len() * 4, |bytes| {
            for (b, v) in bytes.chunks_exact_mut(4).zip(&values) {
                b.copy_from_slice(&v.to_le_bytes());
            }
            Ok(())
        })
        .or_traceback(py)?;
        drop(values);
        baseline
            .call_method1("load_tensor", (name.as_str(), data, shape))
            .or_traceback(py)
            .with_context(|| format!("the compiled PyTorch model cannot take tensor {name}"))?;
    }
    baseline.call_method0("finish_loading").or_traceback(py)?;
    Ok(baseline)
}

/// A baseline module, loaded on first use after checking that `import torch` works.
fn load_module<'py>(py: Python<'py>, source: &Source) -> Result<&'py Bound<'py, PyModule>> {
    let module = source.loaded.get_or_try_init(py, || -> Result<Py<PyModule>> {
        let venv = prepare_interpreter(py)?;
        let globals = PyDict::new(py);
        globals.set_item("source", source.code.to_str().expect("the baseline's Python is UTF-8")).or_traceback(py)?;
        globals.set_item("file_name", source.file.to_str().expect("ASCII")).or_traceback(py)?;
        py.run(REGISTER_SOURCE, Some(&globals), None).or_traceback(py)?;
        if let Err(e) = py.import("torch") {
            return Err(e).or_traceback(py).context(torch_missing(py, venv.as_deref()));
        }
        let module = PyModule::from_code(py, source.code, source.file, source.module).or_traceback(py)?;
        Ok(module.unbind())
    })?;
    Ok(module.bind(py))
}

/// The streamer handed to `generate`, with transformers' streamer protocol: `put` is called with
/// the prompt first, then with each step's new tokens (shape `(batch,)`, already on the host);
/// each step is stamped with the instant `put` was called.
#[pyclass]
#[derive(Default)]
struct Stamps {
    prompt_seen: bool,
    steps: Vec<(Instant, Vec<u32>)>,
}

#[pymethods]
impl Stamps {
    fn put(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let at = Instant::now();
        if !self.prompt_seen {
            self.prompt_seen = true;
            return Ok(());
        }
        let ids: Vec<u32> = value.call_method1("reshape", (-1,))?.call_method0("tolist")?.extract()?;
        self.steps.push((at, ids));
        Ok(())
    }

    fn end(&self) {}
}

/// What to do when `import torch` fails, with what the embedded interpreter is.
fn torch_missing(py: Python<'_>, venv: Option<&Path>) -> String {
    let v = py.version_info();
    let version = format!("{}.{}", v.major, v.minor);
    let prefix = py
        .import("sys")
        .and_then(|sys| sys.getattr("prefix"))
        .and_then(|p| p.extract::<String>())
        .unwrap_or_else(|_| "?".into());
    let venv_note = match venv {
        None => "VIRTUAL_ENV is not set".to_string(),
        Some(venv) if !venv.join("lib").join(format!("python{version}")).is_dir() => format!(
            "VIRTUAL_ENV={} has no lib/python{version}: it was made with another Python version",
            venv.display()
        ),
        Some(venv) => format!("VIRTUAL_ENV={}", venv.display()),
    };
    format!(
        "the PyTorch baseline cannot import torch in the Python {version} embedded in llm-bench (sys.prefix {prefix}, \
         taken from the `python3` first on PATH; {venv_note}). Install torch in a venv of Python {version} \
         (scripts/torch-venv.sh makes one) and activate it (`source <venv>/bin/activate` sets VIRTUAL_ENV and puts \
         the venv's bin first on PATH), or build llm-bench against the venv's Python with PYO3_PYTHON"
    )
}

/// `Ok(Err(..))`: torch works but cannot use GPU `index`, with the reason.
fn check_cuda(torch: &Bound<'_, PyModule>, index: usize) -> PyResult<Result<()>> {
    let cuda = torch.getattr("cuda")?;
    if !cuda.call_method0("is_available")?.extract::<bool>()? {
        let built_for: Option<String> = torch.getattr("version")?.getattr("cuda")?.extract()?;
        let version: String = torch.getattr("__version__")?.extract()?;
        return Ok(Err(match built_for {
            None => anyhow!(
                "cuda:{index} was asked for but torch {version} is a CPU-only build; install a CUDA build of torch \
                 (the Linux wheel on PyPI is one) or run the PyTorch baseline on the CPU"
            ),
            Some(cuda_version) => anyhow!(
                "cuda:{index} was asked for but torch {version} (built for CUDA {cuda_version}) finds no usable GPU: \
                 torch.cuda.is_available() is False; check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES"
            ),
        }));
    }
    let count: usize = cuda.call_method0("device_count")?.extract()?;
    if index >= count {
        return Ok(Err(anyhow!("cuda:{index} was asked for but torch sees {count} GPU(s)")));
    }
    Ok(Ok(()))
}

/// Python exceptions as errors that carry the Python traceback.
pub(crate) trait OrTraceback<T> {
    fn or_traceback(self, py: Python<'_>) -> Result<T>;
}

impl<T, E: Into<PyErr>> OrTraceback<T> for std::result::Result<T, E> {
    fn or_traceback(self, py: Python<'_>) -> Result<T> {
        self.map_err(|e| {
            let e: PyErr = e.into();
            // The exception itself first (`torch.OutOfMemoryError: CUDA out of memory. …`), then
            // the frames: a record keeps the first part (the harness cuts at "Python traceback"),
            // the bench log all of it.
            let lines = |r: PyResult<Bound<'_, PyAny>>| r.and_then(|l| l.extract::<Vec<String>>()).map(|l| l.concat().trim_end().to_string());
            let exception = lines(py.import("traceback").and_then(|tb| tb.call_method1("format_exception_only", (e.get_type(py), e.value(py)))));
            let frames = match e.traceback(py) {
                Some(t) => lines(py.import("traceback").and_then(|tb| tb.call_method1("format_tb", (t,)))),
                None => Ok(String::new()),
            };
            match (exception, frames) {
                (Ok(exception), Ok(frames)) => anyhow!("Python raised {exception}\nPython traceback (innermost last):\n{frames}"),
                _ => anyhow!("Python raised {e}"),
            }
        })
    }
}

impl Engine for Torch {
    fn info(&self) -> EngineInfo {
        self.variant.info(self.device, self.version.clone(), self.precision.clone(), self.notes.clone())
    }

    fn context_limit(&self) -> Option<usize> {
        (self.variant.setting == Setting::Compiled).then_some(COMPILED_POSITIONS)
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        let (b, _) = crate::engine::equal_length_batch("the PyTorch baseline", prompts)?;
        let n = options.max_new_tokens;
        let mut outputs = vec![Vec::with_capacity(n); b];
        if n == 0 {
            return Ok(outputs);
        }
        Python::attach(|py| -> Result<Vec<Vec<u32>>> {
            let stamps = Bound::new(py, Stamps::default()).or_traceback(py)?;
            let returned: Vec<Vec<u32>> = self
                .baseline
                .bind(py)
                .call_method1("generate", (prompts, n, stamps.clone()))
                .and_then(|t| t.extract())
                .or_traceback(py)?;
            let stamps = stamps.borrow();
            ensure!(
                stamps.steps.len() == n && stamps.steps.iter().all(|(_, ids)| ids.len() == b),
                "the PyTorch baseline streamed {} steps of {:?} tokens, {n} steps of {b} were asked for",
                stamps.steps.len(),
                stamps.steps.iter().map(|(_, ids)| ids.len()).collect::<Vec<_>>()
            );
            for (index, (at, ids)) in stamps.steps.iter().enumerate() {
                for (request, &token) in ids.iter().enumerate() {
                    on_token(TokenEvent { request, index, token, at: *at });
                    outputs[request].push(token);
                }
            }
            ensure!(returned == outputs, "the PyTorch baseline returned other tokens than it streamed");
            Ok(outputs)
        })
    }

    fn logits(&mut self, prompt: &[u32]) -> Result<Vec<f32>> {
        ensure!(!prompt.is_empty(), "the PyTorch baseline needs a non-empty prompt");
        Python::attach(|py| -> Result<Vec<f32>> {
            self.baseline
                .bind(py)
                .call_method1("logits", (prompt,))
                .and_then(|l| l.extract::<Vec<f32>>())
                .or_traceback(py)
        })
    }

    fn memory(&self) -> MemoryUse {
        Python::attach(|py| {
            let m = self.baseline.bind(py).call_method0("memory");
            match m.and_then(|m| m.extract::<(u64, u64, Option<u64>)>()) {
                Ok((weights_bytes, kv_cache_bytes, device_peak_bytes)) => {
                    MemoryUse { weights_bytes, kv_cache_bytes, device_peak_bytes }
                }
                Err(_) => MemoryUse::default(),
            }
        })
    }

    fn synchronize(&self) -> Result<()> {
        Python::attach(|py| self.baseline.bind(py).call_method0("synchronize").map(drop).or_traceback(py))
    }
}

impl Drop for Torch {
    /// Free the model's memory now rather than whenever Python next runs: the next engine or model
    /// loaded on the same GPU is measured by what the device has in use.
    fn drop(&mut self) {
        Python::try_attach(|py| {
            let _ = self.baseline.bind(py).call_method0("close");
            self.baseline = py.None();
        });
    }
}
