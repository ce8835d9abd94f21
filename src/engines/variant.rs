//! The engines and their configurations as data: which libraries the suite knows, the variants
//! it runs each in, and the selection `LLM_BENCH_ENGINES` makes. Nothing here loads an engine
//! (the registry in `mod.rs` does), so the adapters can read their variant without a cycle.

use crate::engine::Device;
use anyhow::Result;

/// Every engine library the suite knows, built or not, in report order. Each is one cargo
/// feature and one adapter file; its configurations are [`Variant`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Torch,
    Lmrs,
    Candle,
    Burn,
    Mistralrs,
    Llamacpp,
}

impl EngineKind {
    pub const ALL: [EngineKind; 6] =
        [EngineKind::Torch, EngineKind::Lmrs, EngineKind::Candle, EngineKind::Burn, EngineKind::Mistralrs, EngineKind::Llamacpp];

    /// The library's name; also the cargo feature that builds it and its plain variant's name.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Torch => "torch",
            EngineKind::Lmrs => "lmrs",
            EngineKind::Candle => "candle",
            EngineKind::Burn => "burn",
            EngineKind::Mistralrs => "mistralrs",
            EngineKind::Llamacpp => "llamacpp",
        }
    }

    /// Whether this binary was built with the engine.
    pub fn built(self) -> bool {
        match self {
            EngineKind::Torch => cfg!(feature = "torch"),
            EngineKind::Lmrs => cfg!(feature = "lmrs"),
            EngineKind::Candle => cfg!(feature = "candle"),
            EngineKind::Burn => cfg!(feature = "burn"),
            EngineKind::Mistralrs => cfg!(feature = "mistralrs"),
            EngineKind::Llamacpp => cfg!(feature = "llamacpp"),
        }
    }
}

/// What a variant changes in its engine, for the adapter to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The engine as its documentation runs it by default for this workload.
    Default,
    /// Candle: Q8_0 `QMatMul` (MMVQ) up to 8 rows, f16 weights and cuBLAS GEMMs above.
    F16Batches,
    /// mistral.rs: paged attention and its scheduler.
    PagedAttention,
    /// Burn: `Linear` weights in burn-nn's `LinearLayout::Col`, `(out, in)` as the GGUF stores
    /// them, read through a transposed view.
    ColumnWeights,
    /// Burn: [`Setting::ColumnWeights`] on burn-cuda's CubeCL backend without its kernel fusion.
    ColumnWeightsUnfused,
    /// PyTorch: the suite's Llama with a static KV cache and its decode step under
    /// `torch.compile(mode="reduce-overhead")`.
    Compiled,
    /// The lm.rs design with the suite's own faster kernels (i16 multiply-add, precomputed RoPE
    /// frequencies): not lm.rs, so never under its name.
    FastKernels,
}

/// An engine as the suite runs it: one library in one configuration. Its name is what results,
/// reports and Criterion ids say (`<engine>` for the default, `<engine>-<what changed>` for
/// another configuration: reports group variants under the part before the first `-`).
#[derive(Debug)]
pub struct Variant {
    pub name: &'static str,
    pub engine: EngineKind,
    pub setting: Setting,
    /// The configuration in one line, as every result's engine info repeats it.
    pub config: &'static str,
    /// Where the engine documents this configuration.
    pub source: &'static str,
    /// Only runs on a GPU (on the CPU the variant is recorded as skipped, with the reason).
    pub gpu_only: bool,
    /// An experiment on the engine's configuration: neither what its documentation recommends nor
    /// its default, or a configuration an upstream fault makes give wrong output. Measured only when
    /// `LLM_BENCH_ENGINES` names it, so the table a team decides from holds what they would deploy.
    /// The text says what it found.
    pub experiment: Option<&'static str>,
}

/// Every variant, in report order (each engine's default first).
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "torch",
        engine: EngineKind::Torch,
        setting: Setting::Default,
        config: "Hugging Face transformers generate() (eager, default attention, dynamic cache), bf16 on the GPU, f32 on the CPU",
        source: "transformers' Llama docs (from_pretrained with gguf_file, generate); the specification's unoptimized baseline",
        gpu_only: false,
        experiment: None,
    },
    Variant {
        name: "torch-compile",
        engine: EngineKind::Torch,
        setting: Setting::Compiled,
        config: "the suite's Llama with a static KV cache, decode step torch.compile(mode=\"reduce-overhead\") (CUDA graphs), f16",
        source: "PyTorch torch.compile docs (reduce-overhead: CUDA graphs); the static-cache pattern of gpt-fast and transformers' StaticCache",
        gpu_only: true,
        experiment: None,
    },
    Variant {
        name: "lmrs",
        engine: EngineKind::Lmrs,
        setting: Setting::Default,
        config: "lm.rs as upstream computes it: int8 weights and activations in groups of 128, i32x8 widening multiplies on \
                 4 rows at a time, token-by-token prefill, greedy (chat --temperature 0), all cores, CPU only",
        source: "github.com/samuel-vitorino/lm.rs (src/functional.rs matmul_q8, src/transformer.rs, src/bin/chat.rs) at aa6db5c",
        gpu_only: false,
        experiment: None,
    },
    Variant {
        name: "lmrs-fast",
        engine: EngineKind::Lmrs,
        setting: Setting::FastKernels,
        config: "the lm.rs design with the suite's kernels: int8 dot products by i16 multiply-add (twice the MACs per \
                 instruction), direct scale indexing, RoPE frequencies precomputed; not upstream lm.rs",
        source: "the suite's own (src/engines/lmrs.rs); what lm.rs's design gives with a denser int8 kernel",
        gpu_only: false,
        experiment: None,
    },
    Variant {
        name: "candle",
        engine: EngineKind::Candle,
        setting: Setting::Default,
        config: "Q8_0 QMatMul throughout (CUDA: MMVQ up to 8 rows, MMQ tiles above), f32 activations and KV cache",
        source: "candle-core quantized::QMatMul, candle-examples quantized",
        gpu_only: false,
        experiment: None,
    },
    Variant {
        name: "candle-f16",
        engine: EngineKind::Candle,
        setting: Setting::F16Batches,
        config: "Q8_0 QMatMul (MMVQ) up to 8 rows; above, weights dequantized to f16 at load and cuBLAS f16 GEMMs \
                 over all rows at once; f32 activations and KV cache",
        source: "candle-core QMatMul::TensorF16 / forward_via_f16 and CANDLE_DEQUANTIZE_ALL_F16 (candle #2136)",
        gpu_only: true,
        experiment: None,
    },
    Variant {
        name: "burn",
        engine: EngineKind::Burn,
        setting: Setting::Default,
        config: "burn-cuda with its default features (kernel fusion, autotune), f16, batches padded to 1/2/4/../64 rows (the suite's, so per-shape compilation is bounded and done at start-up); burn-ndarray f32 on the CPU",
        source: "burn-cuda's default features (std, fusion, autotune)",
        gpu_only: false,
        experiment: None,
    },
    Variant {
        name: "burn-col",
        engine: EngineKind::Burn,
        setting: Setting::ColumnWeights,
        config: "as `burn`, with every Linear weight in burn-nn's LinearLayout::Col ((out, in) as the GGUF stores it, a transposed view), \
                 so a one-row input is a column-major vec-mat, which CubeCL's matmul autotune ranks its gemv kernels first for",
        source: "burn-nn LinearConfig::layout (LinearLayout::Col: \"this can have performance impacts\"); burn-cubecl's matmul \
                 autotune, gemv group (vec-mat with a transposed matrix: \"best algo is col major vec mat\")",
        gpu_only: true,
        experiment: Some(
            "its decode output is wrong on CUDA: burn-cubecl-fusion's autotune may pick cubek 0.2.0's unit-perpendicular GEMV \
             for a one-row matmul, which reads a column-major weight as if it were row-major (tracel-ai/cubek#262, fixed \
             upstream after the cubek 0.2.0 that burn 0.21 uses); SmolLM2 check: 1 of 24 greedy tokens agree, and its decode \
             was no faster than burn's, 79.9 against 87.2 tok/s (target-reports/h100-2026-12-06-table)",
        ),
    },
    Variant {
        name: "burn-col-unfused",
        engine: EngineKind::Burn,
        setting: Setting::ColumnWeightsUnfused,
        config: "as `burn-col`, on burn-cuda's CubeCL backend without kernel fusion (burn-cuda built without its `fusion` \
                 feature), autotune kept: every matmul reaches CubeCL's matmul autotune on its own, none fused with its consumer",
        source: "burn-cuda's Cargo features (`fusion` is optional: without it `Cuda` is the `CubeBackend` itself); burn-nn \
                 LinearLayout::Col",
        gpu_only: true,
        experiment: Some(
            "burn-cuda without its default kernel fusion, to see where Burn's decode step goes: the GPU's work per step fell \
             from 10.3 to 2.6 ms, but 964 kernel launches per step kept decode host-bound at 74 tok/s against burn-col's 78 \
             (target-reports/h200-2026-12-03-burn-unfused); neither Burn's documented setting nor its default",
        ),
    },
    Variant {
        name: "mistralrs",
        engine: EngineKind::Mistralrs,
        setting: Setting::Default,
        config: "GGUF pipeline, default scheduler (no paged attention; up to 32 sequences at once, its builder's default max_num_seqs, the rest wait; unequal lengths wait), bf16",
        source: "mistralrs GgufModelBuilder default (no paged attention); mistralrs-bench --no_paged_attn",
        gpu_only: false,
        experiment: None,
    },
    Variant {
        name: "mistralrs-paged",
        engine: EngineKind::Mistralrs,
        setting: Setting::PagedAttention,
        config: "GGUF pipeline, paged attention (block 32, fixed 4096 MB pool) and its scheduler (up to 32 sequences at once, mistral.rs's default max_num_seqs), bf16",
        source: "mistralrs-server's default on CUDA (paged attention); PagedAttentionMeta scheduler",
        gpu_only: true,
        experiment: None,
    },
    Variant {
        name: "llamacpp",
        engine: EngineKind::Llamacpp,
        setting: Setting::Default,
        config: "llama.cpp (llama-cpp-2): all layers on the GPU, flash attention auto, CUDA graphs, one llama_batch of sequences per batch",
        source: "llama.cpp's defaults (llama_context_default_params) and its batched/parallel examples",
        gpu_only: false,
        experiment: None,
    },
];

impl Variant {
    /// The variant called `name`, if this suite knows one.
    pub fn named(name: &str) -> Option<&'static Variant> {
        VARIANTS.iter().find(|v| v.name == name)
    }

    /// Whether this binary was built with the variant's engine.
    pub fn built(&self) -> bool {
        self.engine.built()
    }

    /// The engine library the variant belongs to, from its name (`candle-f16` -> `candle`).
    pub fn family(name: &str) -> &str {
        name.split('-').next().unwrap_or(name)
    }

    /// Whether the variant never uses a GPU (the lm.rs design): its figures depend on the host's
    /// CPU alone, so a run may measure it on another machine than its GPU engines (flagged).
    pub fn cpu_only(&self) -> bool {
        self.engine == EngineKind::Lmrs
    }

    /// The most requests the suite's batcher hands the engine at once (the concurrent-load
    /// scenario). The lm.rs design serves one request at a time, as lm.rs's chat does: its
    /// `generate` runs a batch's requests one after another, so a batch of several would only
    /// hold every answer back until the batch's last was done (and, in a closed loop, keep the
    /// clients whose answers were ready from sending their next). It is handed one request at a
    /// time, as a server in front of it would; every other engine batches, up to
    /// [`crate::engine::MAX_BATCH`].
    pub fn max_batch(&self) -> usize {
        if self.engine == EngineKind::Lmrs {
            1
        } else {
            crate::engine::MAX_BATCH
        }
    }

    /// [`Variant::max_batch`] of the variant called `name`; [`crate::engine::MAX_BATCH`] for a
    /// name the suite does not know.
    pub fn max_batch_of(name: &str) -> usize {
        Variant::named(name).map_or(crate::engine::MAX_BATCH, Variant::max_batch)
    }

    /// The device this variant is measured on: the GPU when there is one and the engine can use it.
    pub fn device(&self, gpu: Option<usize>) -> Device {
        match gpu {
            Some(i) if !self.cpu_only() => Device::Cuda(i),
            _ => Device::Cpu,
        }
    }

    /// Why the variant cannot run on `device` before anything is loaded, if it cannot.
    pub fn unsupported(&self, device: Device) -> Option<String> {
        (self.gpu_only && !device.is_gpu()).then(|| {
            format!("`{}` is a GPU configuration ({}); on the CPU the engine runs as `{}`", self.name, self.config, self.engine.name())
        })
    }

    /// The engine info every result of this variant carries: the adapter's `info` with the
    /// variant's name and configuration.
    pub fn info(&self, device: Device, version: String, precision: String, notes: String) -> crate::engine::EngineInfo {
        crate::engine::EngineInfo { name: self.name.into(), config: self.config.into(), version, device, precision, notes }
    }
}

/// The variants `LLM_BENCH_ENGINES` selects (comma-separated names; empty or unset: every variant
/// but the experiments), in report order. An unknown name is an error that lists what this binary has.
pub fn select(list: Option<&str>) -> Result<Vec<&'static Variant>> {
    let Some(list) = list.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(VARIANTS.iter().filter(|v| v.experiment.is_none()).collect());
    };
    let wanted: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let unknown: Vec<&str> = wanted.iter().copied().filter(|w| Variant::named(w).is_none()).collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "LLM_BENCH_ENGINES names {} this suite does not know: {}. Engines and variants: {}",
            if unknown.len() == 1 { "an engine" } else { "engines" },
            unknown.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", "),
            listing()
        );
    }
    Ok(VARIANTS.iter().filter(|v| wanted.contains(&v.name)).collect())
}

/// Every variant with whether it is built (and which feature builds it), on one line.
pub fn listing() -> String {
    VARIANTS
        .iter()
        .map(|v| if v.built() { v.name.to_string() } else { format!("{} (not built: --features {})", v.name, v.engine.name()) })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_named_for_its_engine() {
        for v in VARIANTS {
            assert_eq!(Variant::family(v.name), v.engine.name(), "{}", v.name);
            assert_eq!(Variant::named(v.name).map(|x| x.name), Some(v.name));
        }
        for k in EngineKind::ALL {
            let default = VARIANTS.iter().find(|v| v.engine == k).unwrap();
            assert_eq!((default.name, default.setting), (k.name(), Setting::Default), "each engine's first variant is its default");
        }
    }

    #[test]
    fn unknown_engine_names_are_refused_with_the_list() {
        let e = select(Some("candle,mistral")).unwrap_err().to_string();
        assert!(e.contains("`mistral`") && e.contains("mistralrs-paged") && e.contains("candle-f16"), "{e}");
        assert_eq!(select(Some(" candle-f16 , burn")).unwrap().iter().map(|v| v.name).collect::<Vec<_>>(), ["candle-f16", "burn"]);
        let all = select(None).unwrap();
        assert_eq!(all.len(), VARIANTS.iter().filter(|v| v.experiment.is_none()).count());
        for experiment in ["burn-col", "burn-col-unfused"] {
            assert!(!all.iter().any(|v| v.name == experiment), "{experiment}: an experiment is not in the default selection");
        }
        assert_eq!(select(Some("burn-col-unfused")).unwrap().iter().map(|v| v.name).collect::<Vec<_>>(), ["burn-col-unfused"]);
    }
}
