#!/usr/bin/env bash
# The tests, on a fresh CPU machine or a warm one: what a new machine lacks is installed
# (scripts/test-env.sh), fixtures are made on first use, then every engine that builds without a
# GPU is tested on real data (the real Llama 3.2 tokenizer, the real SmolLM2 weights).
#
#   scripts/test.sh            # = cargo test --release --features candle,lmrs,mistralrs,burn,torch,llamacpp
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/test-env.sh
exec cargo test --release --features "$LLM_BENCH_TEST_FEATURES" "$@"
