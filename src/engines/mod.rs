//! The engines under test, one file each, the one place that knows which are built (the
//! registry below), and the agreement check of every engine against the reference.
//! May use: `crate::engine` and `crate::model` only; engines know nothing of scenarios,
//! measurement or reports.

#[cfg(feature = "burn")]
pub mod burn;
#[cfg(feature = "candle")]
pub mod candle;
#[cfg(feature = "llamacpp")]
pub mod llamacpp;
#[cfg(feature = "lmrs")]
pub mod lmrs;
#[cfg(feature = "mistralrs")]
pub mod mistralrs;
pub mod check;
pub mod fault;
pub mod reference;
pub mod stub;
#[cfg(feature = "torch")]
pub mod torch;

pub mod variant;

pub use variant::{listing, select, EngineKind, Setting, Variant, VARIANTS};

use crate::engine::{Device, Engine, ModelFiles};
use anyhow::Result;

impl Variant {
    /// Load the engine in this configuration; `Err` says why it cannot run here (not built, no
    /// GPU, bad model, ...).
    pub fn load(&'static self, model: &ModelFiles, device: Device) -> Result<Box<dyn Engine>> {
        if let Some(why) = self.unsupported(device) {
            anyhow::bail!(why);
        }
        match self.engine {
            #[cfg(feature = "torch")]
            EngineKind::Torch => Ok(Box::new(torch::Torch::load(&model.gguf, device, self)?)),
            #[cfg(feature = "candle")]
            EngineKind::Candle => Ok(Box::new(candle::Candle::load(&model.gguf, device, self)?)),
            #[cfg(feature = "burn")]
            EngineKind::Burn => burn::load(&model.gguf, device, self),
            #[cfg(feature = "lmrs")]
            EngineKind::Lmrs => {
                anyhow::ensure!(device == Device::Cpu, "the lm.rs design runs on the CPU only");
                Ok(Box::new(lmrs::LmRs::load(&model.gguf, self)?))
            }
            #[cfg(feature = "mistralrs")]
            EngineKind::Mistralrs => {
                Ok(Box::new(mistralrs::MistralRs::load(&model.gguf, &model.tokenizer, device, self)?))
            }
            #[cfg(feature = "llamacpp")]
            EngineKind::Llamacpp => Ok(Box::new(llamacpp::LlamaCpp::load(&model.gguf, device, self)?)),
            #[allow(unreachable_patterns)]
            other => {
                let _ = (model, device);
                anyhow::bail!(
                    "engine `{}` is not built into this binary; rebuild with `--features {}`",
                    self.name,
                    other.name()
                )
            }
        }
    }

}
