//! The engines under test, one file each, and the one place that knows which are built.

#[cfg(feature = "burn")]
pub mod burn;
#[cfg(feature = "candle")]
pub mod candle;
#[cfg(feature = "lmrs")]
pub mod lmrs;
#[cfg(feature = "mistralrs")]
pub mod mistralrs;
pub mod reference;
pub mod stub;
#[cfg(feature = "torch")]
pub mod torch;

use crate::engine::{Device, Engine, ModelFiles};
use anyhow::Result;

/// Every engine the suite knows, built or not, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Torch,
    Lmrs,
    Candle,
    Burn,
    Mistralrs,
}

impl EngineKind {
    pub const ALL: [EngineKind; 5] =
        [EngineKind::Torch, EngineKind::Lmrs, EngineKind::Candle, EngineKind::Burn, EngineKind::Mistralrs];

    /// The name used in Criterion ids and results; also the cargo feature that builds it.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Torch => "torch",
            EngineKind::Lmrs => "lmrs",
            EngineKind::Candle => "candle",
            EngineKind::Burn => "burn",
            EngineKind::Mistralrs => "mistralrs",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Whether this binary was built with the engine.
    pub fn built(self) -> bool {
        match self {
            EngineKind::Torch => cfg!(feature = "torch"),
            EngineKind::Lmrs => cfg!(feature = "lmrs"),
            EngineKind::Candle => cfg!(feature = "candle"),
            EngineKind::Burn => cfg!(feature = "burn"),
            EngineKind::Mistralrs => cfg!(feature = "mistralrs"),
        }
    }

    /// The device this engine is measured on: the GPU when there is one and the engine can use it.
    pub fn device(self, gpu: Option<usize>) -> Device {
        match (self, gpu) {
            (EngineKind::Lmrs, _) | (_, None) => Device::Cpu,
            (_, Some(i)) => Device::Cuda(i),
        }
    }

    /// Load the engine; `Err` says why it cannot run here (not built, no GPU, bad model, ...).
    pub fn load(self, model: &ModelFiles, device: Device) -> Result<Box<dyn Engine>> {
        match self {
            #[cfg(feature = "torch")]
            EngineKind::Torch => Ok(Box::new(torch::Torch::load(&model.gguf, device)?)),
            #[cfg(feature = "candle")]
            EngineKind::Candle => Ok(Box::new(candle::Candle::load(&model.gguf, device)?)),
            #[cfg(feature = "burn")]
            EngineKind::Burn => burn::load(&model.gguf, device),
            #[cfg(feature = "lmrs")]
            EngineKind::Lmrs => {
                anyhow::ensure!(device == Device::Cpu, "the lm.rs design runs on the CPU only");
                Ok(Box::new(lmrs::LmRs::load(&model.gguf)?))
            }
            #[cfg(feature = "mistralrs")]
            EngineKind::Mistralrs => Ok(Box::new(mistralrs::MistralRs::load(&model.gguf, &model.tokenizer, device)?)),
            #[allow(unreachable_patterns)]
            other => {
                let _ = (model, device);
                anyhow::bail!(
                    "engine `{}` is not built into this binary; rebuild with `--features {}`",
                    other.name(),
                    other.name()
                )
            }
        }
    }
}
