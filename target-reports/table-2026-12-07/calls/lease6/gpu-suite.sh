# A suite call of a GPU lease: the GPU variants' passes that fit whole (budgets: table-2026-12-07
# lease 3's pass times, with room for the cases it skipped) (LLM_BENCH_PASS_WHOLE=1; a
# pass that does not is left to the next call, which resumes the run). The first such call waits
# for the check and llama.cpp's build and checks llama.cpp; later ones set LLM_BENCH_CHECK=0.
# Usage: CALL_S=585 NAME=d bash scripts/lease/gpu-suite.sh
. scripts/lease/common.sh
[ -f calls-tmp/torch-inductor.tar.xz ] && export LLM_BENCH_TORCH_INDUCTOR=calls-tmp/torch-inductor.tar.xz
LLM_BENCH_BUDGET_S=$(( $(left) - 20 )) LLM_BENCH_PACK_CACHES="${LLM_BENCH_PACK_CACHES:-0}" LLM_BENCH_PASS_WHOLE=1 \
  LLM_BENCH_PASSES="${LLM_BENCH_PASSES:-llamacpp torch torch-compile candle-f16 candle burn mistralrs-paged mistralrs}" \
  LLM_BENCH_PASS_S="${LLM_BENCH_PASS_S:-100 140 115 100 120 210 330 360}" OUT=$OUTROOT/$NAME-suite bash scripts/device-run.sh run - suite
