#!/usr/bin/env bash
# Make (or reuse) the Python venv with PyTorch and Hugging Face transformers that the `torch`
# feature's embedded interpreter imports, and print its path on stdout (progress goes to stderr):
#
#   venv="$(scripts/torch-venv.sh)"
#   export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
#   cargo test --release --features torch
#
# The venv must be made with the Python that llm-bench is built against (PyO3 embeds that one):
# $PYO3_PYTHON if set, else `python3`. Its path: $LLM_BENCH_TORCH_VENV, default
# ${LLM_BENCH_CACHE:-~/.cache/llm-bench}/torch-venv.
#
# PyPI's Linux torch wheel is the CUDA build and cannot be imported without its nvidia-* wheels
# (libtorch links cuBLAS, cuDNN, NCCL, ... directly; `pip install --no-deps torch` fails at
# `import torch`), so this is the ordinary install: about 3.0 GB downloaded (torch 0.54 GB, CUDA
# libraries and triton 2.45 GB), 5.3 GB on disk. The same venv runs on the CPU and on a GPU.
# numpy is there because torch warns at import without it. transformers (the `torch` baseline),
# accelerate (which transformers' GGUF loading requires) and gguf (which dequantizes the file) are
# the versions of the GPU machine (transformers 5.17, accelerate 1.15) and the gguf wheel the
# bundle carries there.
set -euo pipefail

torch_version="2.15.0"
hf_packages=("transformers==5.17.0" "accelerate==1.15.0" "gguf==0.19.0")
python="${PYO3_PYTHON:-python3}"
venv="${LLM_BENCH_TORCH_VENV:-${LLM_BENCH_CACHE:-$HOME/.cache/llm-bench}/torch-venv}"
log() { echo "[torch-venv] $*" >&2; }

want="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
ready() {
  [ -x "$venv/bin/python" ] &&
    "$venv/bin/python" - "$want" "$torch_version" <<'PY' >/dev/null 2>&1
import sys
import torch
ok = "%d.%d" % sys.version_info[:2] == sys.argv[1] and torch.__version__.split("+")[0] == sys.argv[2]
sys.exit(0 if ok else 1)
PY
}
hf_ready() {
  "$venv/bin/python" - "${hf_packages[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(0 if all(version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)
PY
}

if ! ready; then
  if [ -x "$venv/bin/python" ]; then
    have="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo '?')"
    if [ "$have" != "$want" ]; then
      [ -f "$venv/pyvenv.cfg" ] || { log "$venv is not a venv; remove it or set LLM_BENCH_TORCH_VENV"; exit 1; }
      log "$venv is a Python $have venv, llm-bench embeds Python $want ($python): making it again"
      rm -rf "$venv"
    fi
  fi
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv with $python (Python $want)"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" >&2
  fi
  log "installing torch==$torch_version and numpy from PyPI (about 3 GB with torch's CUDA libraries)"
  started=$(date +%s)
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "torch==$torch_version" numpy >&2
  log "installed in $(( $(date +%s) - started ))s"
  ready || { log "torch $torch_version does not import in $venv"; exit 1; }
fi
if ! hf_ready; then
  log "installing ${hf_packages[*]} from PyPI"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "${hf_packages[@]}" >&2
  hf_ready || { log "${hf_packages[*]} do not import in $venv"; exit 1; }
fi
log "$("$venv/bin/python" -c 'import sys, torch; print("Python", sys.version.split()[0], "torch", torch.__version__)' 2>/dev/null)"
echo "$venv"
