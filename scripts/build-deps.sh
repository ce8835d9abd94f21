#!/usr/bin/env bash
# Install (apt) what a new Debian machine lacks to build the suite: CMake and libclang for
# llama.cpp (feature llamacpp: CMake builds it, bindgen reads its headers with libclang), pip for
# the fixtures. Run by scripts/test-env.sh (tests, CI) and scripts/build-bundle.sh (GPU bundle).
set -euo pipefail
need=()
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v cmake >/dev/null || need+=(cmake)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need+=(libclang-dev)
[ ${#need[@]} -eq 0 ] && exit 0
echo "== installing ${need[*]} (apt)" >&2
(apt-get update -qq && apt-get install -y -qq "${need[@]}") >/dev/null || { echo "cannot install ${need[*]} (apt): install them, then run again" >&2; exit 1; }
