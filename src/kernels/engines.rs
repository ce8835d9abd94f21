//! The engines' own kernels at the suite's kernel shapes (issue 10; feature `cuda`, plus the
//! engine's feature): what Candle, Burn and PyTorch run for one Q8_0 matrix-vector or
//! matrix-matrix product of the 1B model, as [`Case`]s the kernels bench times next to the suite's
//! `q8_0_matvec` / `q8_0_matmul`.
//!
//! Each implementation is called the way the suite's engine calls it (src/engines/*.rs), on the
//! same GPU, with its weights in its own format, and is charged the bytes that format must move:
//!
//! | implementation | call | weights | bytes per call |
//! |---|---|---|---|
//! | `candle` | `QMatMul::forward` on a Q8_0 `QTensor` (MMVQ for <= 8 rows of x, MMQ above) | Q8_0 | rows*cols*34/32 + x + y (f32) |
//! | `burn-f32`, `burn-f16` | `x.matmul(w)`, w `[cols, rows]` as burn's `nn::Linear` holds it | dense f32 / f16 | rows*cols*4 (or 2) + x + y |
//! | `torch-bf16`, `torch-f16` | `F.linear(x, w)` (what `nn.Linear` runs), eager | dense bf16 / f16 | rows*cols*2 + x + y |
//!
//! Like the suite's cases, each cycles through enough weight copies to span `rotate_bytes`, so
//! every call reads its weights from DRAM. Candle exposes its cudarc stream, so its calls are timed
//! with CUDA events on that stream (and Criterion uses `CudaEventTime` on it); Burn exposes none,
//! so its calls are timed by the wall clock around k calls and a device sync; torch times itself
//! with `torch.cuda.Event` around k eager calls, and around a `torch.cuda.CUDAGraph` of k calls
//! (the host-free view, comparable with the suite's graph timing).

use crate::kernels::cuda::{Case, Roof};
use crate::kernels::cpu::CaseSpec;
use anyhow::Result;

/// Every engine equivalent of a matrix case, built or not: `(implementation, case or why not)`.
/// Non-matrix cases have none (the engines do not expose those ops as separate calls).
pub fn engine_cases(ordinal: usize, spec: &CaseSpec, rotate_bytes: usize) -> Vec<(String, Result<Case<'static>>)> {
    let Some((rows, cols, n)) = spec.matrix() else {
        return Vec::new();
    };
    let shape = spec.shape();
    #[allow(unused_mut)]
    let mut out: Vec<(String, Result<Case<'static>>)> = Vec::new();
    #[cfg(feature = "candle")]
    out.push(("candle".into(), candle::qmatmul(ordinal, rows, cols, n, rotate_bytes).map(|c| named(c, spec, &shape))));
    #[cfg(not(feature = "candle"))]
    out.push(("candle".into(), Err(anyhow::anyhow!("not built into this binary; rebuild with `--features candle`"))));
    #[cfg(feature = "burn")]
    for p in [burn::Precision::F32, burn::Precision::F16] {
        out.push((p.label().into(), burn::matmul(ordinal, rows, cols, n, p, rotate_bytes).map(|c| named(c, spec, &shape))));
    }
    #[cfg(not(feature = "burn"))]
    for label in ["burn-f32", "burn-f16"] {
        out.push((label.into(), Err(anyhow::anyhow!("not built into this binary; rebuild with `--features burn`"))));
    }
    #[cfg(feature = "torch")]
    for dtype in ["bfloat16", "float16"] {
        out.push((torch::label(dtype), torch::linear(ordinal, rows, cols, n, dtype, rotate_bytes).map(|c| named(c, spec, &shape))));
    }
    #[cfg(not(feature = "torch"))]
    for label in ["torch-bf16", "torch-f16"] {
        out.push((label.into(), Err(anyhow::anyhow!("not built into this binary; rebuild with `--features torch`"))));
    }
    let _ = (ordinal, rows, cols, n, rotate_bytes, &shape);
    out
}

/// Give an engine's case the op and shape of the suite's case it stands beside.
#[allow(dead_code)]
fn named(mut c: Case<'static>, spec: &CaseSpec, shape: &str) -> Case<'static> {
    c.op = spec.op();
    c.shape = shape.to_string();
    c
}

/// Bytes of x (n x cols) and y (n x rows), `elem` bytes each.
#[allow(dead_code)]
fn activation_bytes(rows: usize, cols: usize, n: usize, elem: usize) -> f64 {
    (elem * n * (rows + cols)) as f64
}

#[allow(dead_code)]
fn blank_case(implementation: &str, precision: String, bytes: f64, rows: usize, cols: usize, n: usize, rotation: usize) -> Case<'static> {
    Case {
        op: "",
        implementation: implementation.to_string(),
        shape: String::new(),
        precision,
        bytes,
        flops: 2.0 * (rows * cols * n) as f64,
        roof: if n == 1 { Roof::CopyBandwidth } else { Roof::Fp32Fma },
        rotation,
        stream: None,
        graphable: false,
        run: Box::new(|| Ok(())),
        sync: Box::new(|| Ok(())),
        issued_timer: None,
        graph_timer: None,
        notes: String::new(),
    }
}

#[cfg(feature = "candle")]
pub mod candle {
    //! Candle 0.10.2: `candle_core::quantized::QMatMul` on a Q8_0 `QTensor` on the CUDA device.
    use super::*;
    use crate::kernels::cpu as cpu;
    use anyhow::{ensure, Context};
    use candle_core::quantized::{GgmlDType, QMatMul, QStorage, QTensor};
    use candle_core::{Device, Module, Tensor};
    use std::borrow::Cow;

    /// `QMatMul::forward` of an `[n, cols]` f32 tensor, cycling through Q8_0 weight copies.
    pub fn qmatmul(ordinal: usize, rows: usize, cols: usize, n: usize, rotate_bytes: usize) -> Result<Case<'static>> {
        let device = Device::new_cuda(ordinal).with_context(|| format!("Candle cannot open CUDA device {ordinal}"))?;
        let stream = match &device {
            Device::Cuda(d) => d.cuda_stream(),
            _ => unreachable!("new_cuda returned a non-CUDA device"),
        };
        let wb = cpu::q8_0_bytes(rows, cols);
        let copies = rotate_bytes.div_ceil(wb).max(1);
        // QStorage::from_data reads the bytes as 2-byte-aligned Q8_0 blocks: hold them in u16s.
        let bytes = crate::kernels::cuda::random_q8_0(rows, cols, 0xca_d1e);
        let words: Vec<u16> = bytes.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]])).collect();
        // SAFETY: `words` is a live Vec of u16; viewing its memory as bytes of the same length is valid.
        let aligned: &[u8] = unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, words.len() * 2) };
        let mut mats = Vec::with_capacity(copies);
        for _ in 0..copies {
            let storage = QStorage::from_data(Cow::Borrowed(aligned), &device, GgmlDType::Q8_0)?;
            let m = QMatMul::from_qtensor(QTensor::new(storage, (rows, cols))?)?;
            ensure!(
                matches!(m, QMatMul::QTensor(_)),
                "Candle dequantized the Q8_0 weights at load (CANDLE_DEQUANTIZE_ALL or CANDLE_DEQUANTIZE_ALL_F16 is set): \
                 that is not the kernel being compared; unset it"
            );
            mats.push(m);
        }
        let x = Tensor::randn(0f32, 1f32, (n, cols), &device)?;
        device.synchronize()?;
        let kernel = if n <= 8 { "MMVQ (x quantized to Q8_1, int8 dot products)" } else { "MMQ tiles (x quantized to Q8_1)" };
        let bytes = wb as f64 + super::activation_bytes(rows, cols, n, 4);
        let mut case = blank_case("candle", format!("Q8_0 weights, {kernel}, f32 out"), bytes, rows, cols, n, copies);
        case.stream = Some(stream);
        case.notes = format!("candle-core {}; {copies} weight copies cycled", env!("LLM_BENCH_VERSION_CANDLE_CORE"));
        let mut i = 0usize;
        case.run = Box::new(move || {
            let y = mats[i % copies].forward(&x)?;
            i += 1;
            drop(y); // freed in stream order, as an engine's activations are
            Ok(())
        });
        let sync_device = device.clone();
        case.sync = Box::new(move || Ok(sync_device.synchronize()?));
        Ok(case)
    }
}

#[cfg(feature = "burn")]
pub mod burn {
    //! Burn 0.21: `Tensor::matmul` on burn-cuda (CubeCL kernels compiled by NVRTC), dense weights.
    use super::*;
    use ::burn::backend::cuda::{Cuda, CudaDevice};
    use ::burn::tensor::backend::Backend;
    use ::burn::tensor::{f16, Distribution, Tensor};
    use anyhow::bail;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::panic::AssertUnwindSafe;
    use std::rc::Rc;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Precision {
        F32,
        /// What the suite's Burn engine runs on a GPU.
        F16,
    }

    impl Precision {
        pub fn label(self) -> &'static str {
            match self {
                Precision::F32 => "burn-f32",
                Precision::F16 => "burn-f16",
            }
        }
    }

    /// burn-cuda reports failures (no device, NVRTC errors, out of memory) by panicking.
    fn catch<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match std::panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                bail!("burn panicked while {what}: {msg}")
            }
        }
    }

    /// `x.matmul(w)` with x `[n, cols]` and w `[cols, rows]` (burn's `nn::Linear` layout).
    pub fn matmul(ordinal: usize, rows: usize, cols: usize, n: usize, p: Precision, rotate_bytes: usize) -> Result<Case<'static>> {
        match p {
            Precision::F32 => case::<Cuda<f32>>(CudaDevice::new(ordinal), p, 4, rows, cols, n, rotate_bytes),
            Precision::F16 => case::<Cuda<f16>>(CudaDevice::new(ordinal), p, 2, rows, cols, n, rotate_bytes),
        }
    }

    fn case<B: Backend>(device: B::Device, p: Precision, elem: usize, rows: usize, cols: usize, n: usize, rotate_bytes: usize) -> Result<Case<'static>> {
        let wb = elem * rows * cols;
        let copies = rotate_bytes.div_ceil(wb).max(1);
        let (ws, x) = catch("allocating the weights on CUDA", || {
            let ws: Vec<Tensor<B, 2>> = (0..copies).map(|_| Tensor::random([cols, rows], Distribution::Uniform(-1.0, 1.0), &device)).collect();
            let x = Tensor::<B, 2>::random([n, cols], Distribution::Uniform(-1.0, 1.0), &device);
            B::sync(&device).map_err(|e| anyhow::anyhow!("burn could not synchronize: {e}"))?;
            Ok((ws, x))
        })?;
        let dtype = if elem == 4 { "f32" } else { "f16" };
        let bytes = wb as f64 + super::activation_bytes(rows, cols, n, elem);
        let mut case = blank_case(p.label(), format!("dense {dtype} weights and activations"), bytes, rows, cols, n, copies);
        case.notes = format!("burn {}; {copies} weight copies cycled; timed by wall clock (burn exposes no stream)", env!("LLM_BENCH_VERSION_BURN"));
        // Outputs are kept until the next sync (at most 64), so that no lazy backend can skip them.
        let outs: Rc<RefCell<VecDeque<Tensor<B, 2>>>> = Rc::new(RefCell::new(VecDeque::new()));
        let run_outs = outs.clone();
        let mut i = 0usize;
        case.run = Box::new(move || {
            catch("running a matmul", || {
                let y = x.clone().matmul(ws[i % copies].clone());
                i += 1;
                let mut o = run_outs.borrow_mut();
                o.push_back(y);
                if o.len() > 64 {
                    o.pop_front();
                }
                Ok(())
            })
        });
        case.sync = Box::new(move || {
            catch("synchronizing", || {
                B::sync(&device).map_err(|e| anyhow::anyhow!("burn could not synchronize: {e}"))?;
                outs.borrow_mut().clear();
                Ok(())
            })
        });
        Ok(case)
    }
}

#[cfg(feature = "torch")]
pub mod torch {
    //! PyTorch through PyO3: `torch.nn.functional.linear` on CUDA, as the PyTorch baseline's
    //! `nn.Linear` layers run it, timed by torch itself with `torch.cuda.Event`.
    use super::*;
    use crate::engines::torch::OrTraceback;
    use anyhow::Context;
    use pyo3::prelude::*;
    use std::ffi::CStr;
    use std::sync::Arc;

    const SOURCE: &CStr = c"
import torch
import torch.nn.functional as F


class LinearBench:
    '''F.linear(x, w) on one GPU, cycling through `copies` weight copies.'''

    def __init__(self, rows, cols, n, dtype, device, copies):
        self.dev = torch.device(device)
        dt = getattr(torch, dtype)
        g = torch.Generator(device=self.dev)
        g.manual_seed(1234)
        self.ws = [torch.randn(rows, cols, device=self.dev, dtype=dt, generator=g) for _ in range(copies)]
        self.x = torch.randn(n, cols, device=self.dev, dtype=dt, generator=g)
        self.i = 0
        self.out = None
        torch.cuda.synchronize(self.dev)

    def step(self):
        self.out = F.linear(self.x, self.ws[self.i % len(self.ws)])
        self.i += 1

    def synchronize(self):
        torch.cuda.synchronize(self.dev)

    def _timed(self, k, reps, body):
        stream = torch.cuda.current_stream(self.dev)
        times = []
        for _ in range(reps):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record(stream)
            body(k)
            b.record(stream)
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3 / k)
        return times

    def time_eager(self, k, reps):
        def body(k):
            for _ in range(k):
                self.step()
        return self._timed(k, reps, body)

    def time_graph(self, k, reps):
        # Warm up on a side stream, as torch's CUDA-graph documentation asks, then capture k calls.
        side = torch.cuda.Stream(self.dev)
        side.wait_stream(torch.cuda.current_stream(self.dev))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.step()
        torch.cuda.current_stream(self.dev).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        outs = []
        with torch.cuda.graph(graph):
            for j in range(k):
                outs.append(F.linear(self.x, self.ws[j % len(self.ws)]))
        graph.replay()
        torch.cuda.synchronize(self.dev)
        times = self._timed(k, reps, lambda k: graph.replay())
        del graph, outs
        return times

    def describe(self):
        return {'torch': torch.__version__, 'cuda': str(torch.version.cuda), 'device': torch.cuda.get_device_name(self.dev)}
";

    pub fn label(dtype: &str) -> String {
        match dtype {
            "bfloat16" => "torch-bf16".into(),
            "float16" => "torch-f16".into(),
            other => format!("torch-{other}"),
        }
    }

    /// `F.linear(x, w)` with x `[n, cols]`, w `[rows, cols]` in `dtype` ("bfloat16" or "float16").
    pub fn linear(ordinal: usize, rows: usize, cols: usize, n: usize, dtype: &'static str, rotate_bytes: usize) -> Result<Case<'static>> {
        let wb = 2 * rows * cols;
        let copies = rotate_bytes.div_ceil(wb).max(1);
        let (obj, describe) = Python::attach(|py| -> Result<(Py<PyAny>, String)> {
            crate::engines::torch::prepare_interpreter(py)?;
            let module = PyModule::from_code(py, SOURCE, c"llm_bench_kernels_torch.py", c"llm_bench_kernels_torch")
                .or_traceback(py)
                .context("the torch kernel bench needs `import torch` to work (see the PyTorch baseline in the README)")?;
            let obj = module
                .getattr("LinearBench")
                .and_then(|c| c.call1((rows, cols, n, dtype, format!("cuda:{ordinal}"), copies)))
                .or_traceback(py)?;
            let describe = obj.call_method0("describe").and_then(|d| d.str()).map(|s| s.to_string()).or_traceback(py)?;
            Ok((obj.unbind(), describe))
        })?;
        let obj = Arc::new(obj);
        let short = if dtype == "bfloat16" { "bf16" } else { "f16" };
        let bytes = wb as f64 + super::activation_bytes(rows, cols, n, 2);
        let mut case = blank_case(&label(dtype), format!("dense {short} weights and activations (cuBLAS)"), bytes, rows, cols, n, copies);
        case.notes = format!("{describe}; eager F.linear; {copies} weight copies cycled");
        let call = |obj: Arc<Py<PyAny>>, method: &'static str| {
            move || -> Result<()> { Python::attach(|py| obj.bind(py).call_method0(method).map(drop).or_traceback(py)) }
        };
        case.run = Box::new(call(obj.clone(), "step"));
        case.sync = Box::new(call(obj.clone(), "synchronize"));
        let timer = |obj: Arc<Py<PyAny>>, method: &'static str| {
            move |k: usize, reps: usize| -> Result<Vec<f64>> {
                Python::attach(|py| obj.bind(py).call_method1(method, (k, reps)).and_then(|t| t.extract::<Vec<f64>>()).or_traceback(py))
            }
        };
        case.issued_timer = Some(Box::new(timer(obj.clone(), "time_eager")));
        case.graph_timer = Some(Box::new(timer(obj, "time_graph")));
        Ok(case)
    }
}
