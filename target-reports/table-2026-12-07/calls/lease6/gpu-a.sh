# Call a of a GPU lease: keep SmolLM2's first part, unpack the bundle, start llama.cpp's CUDA build
# in the background (or unpack an earlier one: LLM_BENCH_LLAMACPP_LIB), Burn's kernel cache in.
CALL_S=${CALL_S:-170}; . scripts/lease/common.sh
OUT=$OUTROOT/a-stash bash scripts/device-run.sh stash bundle/smollm2.part-aa
LLM_BENCH_BURN_AUTOTUNE=calls-tmp/burn-kernel-cache.tar.xz OUT=$OUTROOT/a-prep bash scripts/device-run.sh prepare bundle/llm-bench-bundle.tar.xz
echo "== call a done after $(( $(date +%s) - t0 )) s"
