//! The harness's own cost: an engine that does no work. It answers every request at once with
//! token 0 as often as asked, so a figure measured on it is what the suite itself adds to every
//! request (batching, callbacks, record keeping, the clock). Measured once per run by the
//! single-request scenario and reported as `stub`, never as an engine under test.

use crate::engine::{Device, Engine, EngineInfo, GenerateOptions, MemoryUse, TokenEvent};
use anyhow::Result;
use std::time::Instant;

pub struct Stub;

impl Engine for Stub {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "stub".into(),
            config: "returns at once: the harness's own cost".into(),
            version: format!("llm-bench {}", env!("CARGO_PKG_VERSION")),
            device: Device::Cpu,
            precision: "none".into(),
            notes: "returns at once: the harness's own overhead per request".into(),
        }
    }

    fn generate(
        &mut self,
        prompts: &[Vec<u32>],
        options: &GenerateOptions,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Vec<Vec<u32>>> {
        for index in 0..options.max_new_tokens {
            for request in 0..prompts.len() {
                on_token(TokenEvent { request, index, token: 0, at: Instant::now() });
            }
        }
        Ok(vec![vec![0; options.max_new_tokens]; prompts.len()])
    }

    fn logits(&mut self, _prompt: &[u32]) -> Result<Vec<f32>> {
        anyhow::bail!("the stub engine has no model")
    }

    fn memory(&self) -> MemoryUse {
        MemoryUse::default()
    }
}
