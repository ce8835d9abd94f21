#!/usr/bin/env bash
# Build llama.cpp's shared libraries with its CUDA backend from the source the llama-cpp-sys-2
# crate vendors, with the options the crate's build.rs gives CMake plus GGML_CUDA (llama.cpp's
# defaults otherwise: flash attention and CUDA graphs on, its own CPU tuning for this host):
#
#   scripts/llamacpp-cuda.sh <llama.cpp source dir> <out dir>
#
# <out dir>/lib then holds libllama.so*, libggml*.so* with libggml-cuda.so: put it first in
# LD_LIBRARY_PATH for a `--features cuda,llamacpp` binary (which links the same source's CPU
# build; the Rust side is the same). scripts/device-run.sh runs this on the GPU machine, whose
# image has nvcc, CMake and ninja: 16 cores build it in minutes, where this project's 2-core
# build machine needs about two hours. Env: CMAKE_CUDA_ARCHITECTURES (default 90-real: SASS for
# the H100/H200 only), JOBS (default: every core).
set -euo pipefail
src="${1:?usage: $0 <llama.cpp source dir> <out dir>}"
out="${2:?usage: $0 <llama.cpp source dir> <out dir>}"
export PATH="$PATH:/usr/local/cuda/bin"
command -v nvcc >/dev/null || { echo "[llamacpp-cuda] no nvcc on PATH: install the CUDA toolkit (or set PATH)" >&2; exit 1; }
command -v cmake >/dev/null || { echo "[llamacpp-cuda] no cmake on PATH" >&2; exit 1; }
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
start=$(date +%s)
cmake -S "$src" -B "$out/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90-real}" \
  -DGGML_NATIVE=ON -DGGML_OPENMP=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF \
  -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF \
  -DCMAKE_INSTALL_PREFIX="$out" -DCMAKE_INSTALL_LIBDIR=lib
cmake --build "$out/build" --config Release -j "${JOBS:-$(nproc)}"
cmake --install "$out/build" --config Release >/dev/null
nvcc --version | tail -n2
echo "[llamacpp-cuda] built in $(( $(date +%s) - start )) s on $(nproc) cores: $out/lib"
ls "$out"/lib/lib*.so*
