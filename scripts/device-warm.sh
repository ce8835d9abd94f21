#!/usr/bin/env bash
# Started by `scripts/device-run.sh warm` on the GPU machine, in a process session of its own,
# while llama.cpp's CUDA build keeps the host busy: the work of a lease that times nothing.
#
#   scripts/device-warm.sh <warm dir> <bundle bin dir>      (env: as device-run.sh sets it)
#
# 1. The SmolLM2 check (`llm-bench check cuda`) of the engines in LLM_BENCH_CHECK_ENGINES (device-run
#    names every built one but llama.cpp and the experiments), one process per engine, all at once: the check compares tokens and logits, so sharing the GPU and the host
#    changes nothing it reports, and Burn's and torch.compile's compiles for SmolLM2's shapes
#    (minutes each on a fresh machine) run side by side instead of one after another.
# 2. Warm-ups at a lower CPU priority (nice 5), ended by `device-run.sh run` before it times anything:
#    LLM_BENCH_WARM="torch-compile candle ..." loads each engine on the benchmark model and
#    sends one request (`llm-bench generate 50 4`; torch-compile compiles all its graphs), and
#    LLM_BENCH_WARM_SUITE="burn-col ..." runs a throwaway suite of each into a scratch run
#    (<warm dir>/run-<engine>, never the measured run), so the kernels an engine compiles per
#    shape land in the on-disk caches (the driver's, CubeCL's, Inductor's) that the timed
#    processes load from. Start-up is then not a cold one; device.log and the run's README say so.
#
# Leaves <warm dir>/check.log (the engines' check output in order, each with its exit status and
# seconds), check.<engine>.log, generate.<engine>.log, suite.<engine>.log; this script's own
# output is <warm dir>/warm.log.
set -u
warm="${1:?usage: $0 <warm dir> <bundle bin dir>}"
bin="${2:?usage: $0 <warm dir> <bundle bin dir>}"
home="$(dirname "$warm")"
log() { echo "[warm +$(( $(date +%s) - start ))s] $*"; }
start=$(date +%s)
echo $$ >"$warm/pgid" # setsid made this script its group's leader: `run` ends the group with it
touch "$warm/.checking"

"$bin/llm-bench" fixtures smollm2 >"$warm/fixtures-smollm2.log" 2>&1 || log "SmolLM2 fixture FAILED: $(tail -n 3 "$warm/fixtures-smollm2.log")"
checks="${LLM_BENCH_CHECK_ENGINES:?device-run.sh warm names the engines to check}"
# lmrs first when it is checked: the first check computes the reference answer the others wait
# for, and lmrs's own check is then seconds (torch's, first before, loads Python and transformers).
case ",$checks," in *,lmrs,*) checks="lmrs,$(echo ",$checks," | sed 's/,lmrs,/,/; s/^,//; s/,$//')"; checks="${checks%,}" ;; esac
log "check of ${checks//,/, } on cuda, one process each"
# The first check computes the f32 reference answer and stores it (LLM_BENCH_CHECK_REFERENCE,
# set by device-run.sh); the others start once it is there and read it instead of each computing
# it beside the rest (nine at once took 120-146 s each, against 2.2 s alone). It runs at a higher
# priority (nice -10, where the machine allows it; otherwise nice says so and runs it as it is):
# beside llama.cpp's CUDA build and the fixture's generation it took 62 s (table-2026-12-07,
# lease 5) and every other check waited for it.
rm -f "${LLM_BENCH_CHECK_REFERENCE:-}"
pids=()
for v in ${checks//,/ }; do
  prio=()
  [ ${#pids[@]} = 0 ] && prio=(nice -n "${LLM_BENCH_CHECK_FIRST_NICE:--10}")
  (
    s=$(date +%s)
    LLM_BENCH_ENGINES="$v" "${prio[@]}" "$bin/llm-bench" check cuda >"$warm/check.$v.log" 2>&1
    rc=$?
    echo "[$v: check exit $rc after $(( $(date +%s) - s )) s, beside the other engines' checks and llama.cpp's build]" >>"$warm/check.$v.log"
  ) &
  pids+=($!)
  if [ ${#pids[@]} = 1 ] && [ -n "${LLM_BENCH_CHECK_REFERENCE:-}" ]; then
    waited=0
    while [ ! -f "$LLM_BENCH_CHECK_REFERENCE" ] && kill -0 "${pids[0]}" 2>/dev/null && [ "$waited" -lt 120 ]; do sleep 1; waited=$((waited + 1)); done
    log "reference answer: $( [ -f "$LLM_BENCH_CHECK_REFERENCE" ] && echo "stored by $v's check after ${waited} s; the other checks read it" || echo "not stored (a build from a changed tree, or $v's check ended first): each check computes its own")"
  fi
done

# Warm-ups need the benchmark model, which `prepare` makes in the background.
waited=0
while [ -f "$home/.fixtures-running" ] && [ "$waited" -lt 300 ]; do sleep 2; waited=$((waited + 2)); done
for v in ${LLM_BENCH_WARM:-}; do
  (
    s=$(date +%s)
    LLM_BENCH_ENGINES="$v" LLM_BENCH_TORCH_PRECOMPILE=1 nice -n 5 "$bin/llm-bench" generate 50 4 cuda >"$warm/generate.$v.log" 2>&1
    log "warm-up of $v (load + one request) exit $? after $(( $(date +%s) - s )) s"
  ) &
done
for v in ${LLM_BENCH_WARM_SUITE:-}; do
  (
    s=$(date +%s)
    unset LLM_BENCH_RESUME LLM_BENCH_PLAN_FROM
    CARGO_TARGET_DIR="$warm/target-$v" LLM_BENCH_RUN="warm-$v" LLM_BENCH_OUT="$warm/run-$v" LLM_BENCH_ENGINES="$v" \
      nice -n 5 "$bin/llm-bench" suite --budget "${LLM_BENCH_WARM_S:-900}" >"$warm/suite.$v.log" 2>&1
    log "throwaway suite of $v exit $? after $(( $(date +%s) - s )) s"
  ) &
done

wait "${pids[@]}"
for v in ${checks//,/ }; do cat "$warm/check.$v.log"; done >"$warm/check.log.part"
mv "$warm/check.log.part" "$warm/check.log"
rm -f "$warm/.checking"
log "check done: $(grep -h '^\[.*: check exit' "$warm"/check.*.log | tr '\n' ' ')"
wait
log "warm-ups done"
