# A suite call of a CPU-only lease: the CPU-only variants' passes (LLM_BENCH_PASSES, default lmrs)
# of the run, resumed. Usage: CALL_S=585 NAME=b bash scripts/lease/cpu-suite.sh
. scripts/lease/common.sh
export LLM_BENCH_LLAMACPP=0
echo "== run $LLM_BENCH_RUN (from: ${LLM_BENCH_RUN_FROM:-none}); cpu: $(grep -m1 'model name' /proc/cpuinfo); $(nproc) cores"
LLM_BENCH_CHECK=0 LLM_BENCH_BUDGET_S=$(( $(left) - 20 )) LLM_BENCH_PACK_CACHES=0 LLM_BENCH_PASSES="${LLM_BENCH_PASSES:-lmrs}" \
  LLM_BENCH_PASS_S="${LLM_BENCH_PASS_S:-$(( $(left) - 30 ))}" OUT=$OUTROOT/$NAME-suite bash scripts/device-run.sh run - suite
