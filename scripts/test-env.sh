# Sourced (not run) by scripts/test.sh and .ci/run: install what a new CPU machine lacks for the
# test build, make the PyTorch venv, and export the environment every cargo call of the tests
# needs. Keeps the cargo target directory and the fixture cache outside the clone.
#
#   . scripts/test-env.sh      # sets LLM_BENCH_TEST_FEATURES, CARGO_TARGET_DIR, VIRTUAL_ENV, ...

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llm-bench/target}"
export LLM_BENCH_CACHE="${LLM_BENCH_CACHE:-$HOME/.cache/llm-bench}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Every engine that builds on a CPU-only machine; one feature set for every cargo call, so the
# library is built once.
export LLM_BENCH_TEST_FEATURES="candle,lmrs,mistralrs,burn,torch,llamacpp"

command -v cargo >/dev/null || { echo "cargo is required (rustup.rs)" >&2; return 1; }
scripts/build-deps.sh || return 1

# The PyTorch venv (torch, transformers, accelerate, gguf), outside the clone and reused. It is
# activated before every cargo call: PyO3 builds against the venv's Python and the embedded
# interpreter imports torch and transformers from it.
_venv="$(scripts/torch-venv.sh)" || { echo "scripts/torch-venv.sh failed (above)" >&2; return 1; }
export VIRTUAL_ENV="$_venv" PATH="$_venv/bin:$PATH"
# The shared libpython the binaries link, from the same installation as the venv's Python.
LD_LIBRARY_PATH="$("$_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
unset _venv
