# Call c of a GPU lease: SmolLM2's last part; the check of every engine but llama.cpp (one process
# each) and untimed warm-ups, in the background while llama.cpp builds; Inductor's caches in
# (and llama.cpp's libraries, where a lease carries them).
# `torch` is warmed too: its first load of the 1B model (transformers' GGUF loader, 50 s in
# table-2026-12-07 lease 3, inside its timed pass) saves the copy its timed pass then loads.
CALL_S=${CALL_S:-100}; . scripts/lease/common.sh
OUT=$OUTROOT/c-stash bash scripts/device-run.sh stash bundle/smollm2.part-ad
[ -f calls-tmp/torch-inductor.tar.xz ] && export LLM_BENCH_TORCH_INDUCTOR=calls-tmp/torch-inductor.tar.xz
# llama.cpp's CUDA libraries from an earlier lease, when carried (call a then ran with
# LLM_BENCH_LLAMACPP=0, so no build started): unpacked before anything else, no build at all.
[ -f calls-tmp/llamacpp-cuda-lib.tar.xz ] && export LLM_BENCH_LLAMACPP_LIB=calls-tmp/llamacpp-cuda-lib.tar.xz
LLM_BENCH_WARM="${LLM_BENCH_WARM:-torch torch-compile candle candle-f16 mistralrs mistralrs-paged}" LLM_BENCH_WARM_SUITE="${LLM_BENCH_WARM_SUITE:-burn}" \
  OUT=$OUTROOT/c-warm bash scripts/device-run.sh warm -
