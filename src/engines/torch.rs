//! PyTorch: the suite's plain-PyTorch Llama (python_baseline/llama.py), embedded through PyO3.
//!
//! The baseline every Rust engine is compared with: what a team gets from PyTorch before any
//! tuning. The model is written with standard PyTorch layers and run eagerly (no torch.compile,
//! no fused or custom kernels, no CUDA graphs), in f16 on a GPU and f32 on the CPU; see the
//! Python file's docstring. Its source is compiled into this binary, so a bundle runs without the
//! repository beside it; tracebacks still name `python_baseline/llama.py` and its lines.
//!
//! Weights are read by the suite's GGUF reader (`crate::gguf`), the same bytes every other engine
//! reads: each tensor is dequantized to f32 here and handed to Python as little-endian bytes and a
//! shape, outermost dimension first. Each step of a request is one Python call that returns the
//! new token ids as a list, so the device is synchronised and the ids are on the host when the
//! call returns; that instant is the token's timestamp.
//!
//! The Python interpreter is the one this binary was built against (PyO3's `PYO3_PYTHON`). It
//! takes its prefix from the `python3` first on `PATH`, so an activated venv is used as such;
//! `VIRTUAL_ENV`'s site-packages are also put on `sys.path` in case `PATH` points elsewhere.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use crate::gguf::GgufFile;
use crate::llama::{names, LlamaConfig};
use anyhow::{anyhow, ensure, Context, Result};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyDict};
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The model, compiled into the binary.
const SOURCE: &CStr = pyo3::ffi::c_str!(include_str!("../../python_baseline/llama.py"));
/// The name tracebacks give the source (its path in the repository).
const FILE_NAME: &CStr = c"python_baseline/llama.py";
const MODULE_NAME: &CStr = c"llm_bench_torch_baseline";

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

/// The baseline's module, loaded once per process (models of several sizes may be loaded in turn).
static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

pub struct Torch {
    /// The Python `Baseline` object: the model on its device and its KV cache.
    baseline: Py<PyAny>,
    device: Device,
    version: String,
    precision: String,
    notes: String,
}

impl Torch {
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let g = GgufFile::open(path)?;
        let cfg = LlamaConfig::from_gguf(&g)?;
        // The matrices' on-disk format, for the precision line (Q8_0 for the suite's models).
        let weight_type = g.tensor(&names::layer(0, names::ATTN_Q))?.ggml_type;
        let config_json = serde_json::to_string(&cfg)?;
        Python::attach(|py| -> Result<Self> {
            let module = baseline_module(py)?;
            let torch = py.import("torch").or_traceback(py)?;
            let torch_device = match device {
                Device::Cpu => "cpu".to_string(),
                Device::Cuda(i) => {
                    check_cuda(&torch, i).or_traceback(py)??;
                    format!("cuda:{i}")
                }
            };
            let config = py
                .import("json")
                .and_then(|json| json.call_method1("loads", (config_json.as_str(),)))
                .or_traceback(py)?;
            let baseline = module
                .getattr("Baseline")
                .and_then(|b| b.call1((config, torch_device.as_str())))
                .or_traceback(py)
                .with_context(|| format!("the PyTorch baseline cannot be created on {torch_device}"))?;
            let tensors = baseline
                .call_method0("tensor_names")
                .and_then(|t| t.extract::<Vec<String>>())
                .or_traceback(py)?;
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
                    .with_context(|| format!("the PyTorch baseline cannot take tensor {name}"))?;
            }
            baseline.call_method0("finish_loading").or_traceback(py)?;
            let d = baseline.call_method0("describe").or_traceback(py)?;
            let field = |key: &str| -> Result<String> {
                d.get_item(key).and_then(|v| v.str()).and_then(|s| s.extract::<String>()).or_traceback(py)
            };
            let (torch_version, python, dtype, threads) =
                (field("torch")?, field("python")?, field("dtype")?, field("threads")?);
            let dtype = match dtype.as_str() {
                "float16" => "f16",
                "float32" => "f32",
                other => other,
            };
            let mut notes = "eager PyTorch, no torch.compile / fused kernels / CUDA graphs; attention as \
                             matmul + softmax + matmul; KV cache preallocated per request batch"
                .to_string();
            if device == Device::Cpu {
                notes.push_str(&format!("; {threads} CPU threads"));
            }
            Ok(Self {
                baseline: baseline.unbind(),
                device,
                version: format!("torch {torch_version} (Python {python})"),
                precision: format!("weights {weight_type:?} dequantized to {dtype}, activations {dtype}"),
                notes,
            })
        })
    }
}

/// The baseline's module, loaded on first use after checking that `import torch` works.
fn baseline_module(py: Python<'_>) -> Result<&Bound<'_, PyModule>> {
    let module = MODULE.get_or_try_init(py, || -> Result<Py<PyModule>> {
        let venv = prepare_interpreter(py)?;
        let globals = PyDict::new(py);
        globals.set_item("source", SOURCE.to_str().expect("llama.py is UTF-8")).or_traceback(py)?;
        globals.set_item("file_name", FILE_NAME.to_str().expect("ASCII")).or_traceback(py)?;
        py.run(REGISTER_SOURCE, Some(&globals), None).or_traceback(py)?;
        if let Err(e) = py.import("torch") {
            return Err(e).or_traceback(py).context(torch_missing(py, venv.as_deref()));
        }
        let module = PyModule::from_code(py, SOURCE, FILE_NAME, MODULE_NAME).or_traceback(py)?;
        Ok(module.unbind())
    })?;
    Ok(module.bind(py))
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
            let formatted = py
                .import("traceback")
                .and_then(|tb| {
                    tb.call_method1("format_exception", (e.get_type(py), e.value(py), e.traceback(py)))
                })
                .and_then(|lines| lines.extract::<Vec<String>>());
            match formatted {
                Ok(lines) => anyhow!("Python raised:\n{}", lines.concat().trim_end()),
                Err(_) => anyhow!("Python raised: {e}"),
            }
        })
    }
}

impl Engine for Torch {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "torch".into(),
            version: self.version.clone(),
            device: self.device,
            precision: self.precision.clone(),
            notes: self.notes.clone(),
        }
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
            let baseline = self.baseline.bind(py);
            for index in 0..n {
                let step = if index == 0 {
                    baseline.call_method1("prefill", (prompts, n))
                } else {
                    baseline.call_method0("decode")
                };
                // The call returned a list of ints: the ids are on the host.
                let at = Instant::now();
                let tokens = step.and_then(|t| t.extract::<Vec<u32>>()).or_traceback(py)?;
                ensure!(tokens.len() == b, "the PyTorch baseline returned {} tokens for {b} prompts", tokens.len());
                for (request, &token) in tokens.iter().enumerate() {
                    on_token(TokenEvent { request, index, token, at });
                    outputs[request].push(token);
                }
            }
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
