#!/usr/bin/env bash
# Make a CUDA 13.0 build environment on a machine without a GPU, from PyPI packages, and print
# the environment a `--features cuda` build needs:
#
#   eval "$(scripts/cuda-toolchain.sh)"
#   cargo build --release --features cuda --benches
#
# The toolkit lands in $LLM_BENCH_CUDA_ROOT (default ~/.cache/llm-bench/cuda-13.0): a venv with the
# NVIDIA wheels, and toolkit/ laid out as builds expect (bin/, include/, nvvm/, lib64/ with plain
# libX.so links, lib64/stubs/libcuda.so). libcuda.so is a link-time stub exporting the driver
# functions cudarc declares; the real driver is loaded on the GPU machine.
# Progress goes to stderr; only the `export` lines go to stdout.
set -euo pipefail

root="${LLM_BENCH_CUDA_ROOT:-$HOME/.cache/llm-bench/cuda-13.0}"
venv="$root/venv"
tk="$root/toolkit"
log() { echo "[cuda-toolchain] $*" >&2; }

# stub_library NAME SONAME SYS PREFIX: lib64/stubs/libNAME.so exporting every function `PREFIX*`
# that cudarc's bindings (src/SYS) declare, as empty functions: enough to link, never to run.
stub_library() {
  local name="$1" soname="$2" sys="$3" prefix="$4" src
  log "generating the link-time stub lib$name.so"
  src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/"$sys" 2>/dev/null | tail -n1 || true)"
  if [ -z "$src" ]; then
    (cd "$(dirname "$0")/.." && cargo fetch >&2)
    src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/"$sys" | tail -n1)"
  fi
  grep -o "fn $prefix[A-Z][A-Za-z0-9_]*" "$src" | sed 's/^fn //' | sort -u |
    awk '{ print "void " $1 "(void) {}" }' >"$root/lib${name}_stub.c"
  mkdir -p "$tk/lib64/stubs"
  gcc -shared -fPIC -Wl,-soname,"$soname" -o "$tk/lib64/stubs/lib$name.so" "$root/lib${name}_stub.c"
}

if [ ! -f "$root/.complete" ]; then
  mkdir -p "$root"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv" >&2
  fi
  log "installing the CUDA 13.0 wheels from PyPI (about 1.2 GB)"
  # nvidia-nvvm is pinned: nvcc's own dependency on it is unpinned and pulls a newer NVVM whose
  # PTX the GPU machine's 580 driver cannot load.
  "$venv/bin/python" -m pip install --disable-pip-version-check -q \
    'nvidia-cuda-nvcc==13.0.*' 'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-cccl==13.0.*' \
    'nvidia-cuda-crt==13.0.*' 'nvidia-nvvm==13.0.*' 'nvidia-cuda-nvrtc==13.0.*' \
    'nvidia-cublas==13.0.*' 'nvidia-curand==10.4.0.*' >&2
  cu="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
  [ -x "$cu/bin/nvcc" ] || { log "nvcc not found under $cu"; exit 1; }

  log "laying out $tk"
  rm -rf "$tk"
  mkdir -p "$tk/lib64/stubs"
  ln -s "$cu/bin" "$tk/bin"
  ln -s "$cu/include" "$tk/include"
  ln -s "$cu/nvvm" "$tk/nvvm"
  for lib in "$cu"/lib/lib*.so.*; do
    base="$(basename "$lib")"
    ln -sf "$lib" "$tk/lib64/$base"
    ln -sf "$lib" "$tk/lib64/${base%%.so.*}.so"
  done
  # Static archives (libcudart_static.a, ...) if the wheels ship them.
  for lib in "$cu"/lib/*.a; do [ -e "$lib" ] && ln -sf "$lib" "$tk/lib64/"; done

  stub_library cuda libcuda.so.1 driver/sys/mod.rs cu
  ln -sf stubs/libcuda.so "$tk/lib64/libcuda.so"
  "$tk/bin/nvcc" --version >&2
  touch "$root/.complete"
fi

# burn-cuda turns on cudarc's `nccl` feature, and with dynamic linking that links -lnccl. The
# suite never calls NCCL; a link-time stub (soname libnccl.so.2, as the GPU machine's real
# library) lets the binary link here. Made apart from the toolkit so older toolkits get it too.
[ -f "$tk/lib64/stubs/libnccl.so" ] || stub_library nccl libnccl.so.2 nccl/sys/mod.rs nccl

cat <<EOF
export CUDA_HOME="$tk"
export CUDA_PATH="$tk"
export CUDA_ROOT="$tk"
export CUDA_TOOLKIT_ROOT_DIR="$tk"
export NVCC="$tk/bin/nvcc"
export PATH="$tk/bin:\$PATH"
export LIBRARY_PATH="$tk/lib64:$tk/lib64/stubs\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export CUDA_COMPUTE_CAP=90
export CUDARC_CUDA_VERSION=13000
export CUDAFORGE_THREADS=\${CUDAFORGE_THREADS:-2}
EOF
