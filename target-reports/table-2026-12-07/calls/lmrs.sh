# A call of a CPU-only lease: the lm.rs design's passes (LLM_BENCH_PASSES, default lmrs) of the run
# table-2026-12-07, which the GPU engines' lease later goes on from (LLM_BENCH_RUN_FROM).
# Usage: CALL_S=585 NAME=b bash calls-tmp/lmrs.sh   (a run dir carried in calls-tmp/run-from/<run> is gone on from)
. calls-tmp/common.sh
export LLM_BENCH_RUN=table-2026-12-07 LLM_BENCH_LLAMACPP=0
[ -d "$PWD/calls-tmp/run-from/$LLM_BENCH_RUN" ] && export LLM_BENCH_RUN_FROM=$PWD/calls-tmp/run-from/$LLM_BENCH_RUN
echo "== run $LLM_BENCH_RUN (from: ${LLM_BENCH_RUN_FROM:-none}); cpu: $(grep -m1 'model name' /proc/cpuinfo); $(nproc) cores"
LLM_BENCH_CHECK=0 LLM_BENCH_BUDGET_S=$(( $(left) - 20 )) LLM_BENCH_PACK_CACHES=0 LLM_BENCH_PASSES="${LLM_BENCH_PASSES:-lmrs}" \
  LLM_BENCH_PASS_S="${LLM_BENCH_PASS_S:-$(( $(left) - 30 ))}" OUT=$OUTROOT/$NAME-suite bash scripts/device-run.sh run - suite
