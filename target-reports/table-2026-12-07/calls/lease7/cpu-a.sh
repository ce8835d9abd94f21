# Call a of a CPU-only lease: unpack the bundle, make the 1B fixture (no llama.cpp, no caches, no SmolLM2).
CALL_S=${CALL_S:-300}; . scripts/lease/common.sh
grep -m1 "model name" /proc/cpuinfo; nproc; free -g | head -2
LLM_BENCH_LLAMACPP=0 OUT=$OUTROOT/a-prep bash scripts/device-run.sh prepare bundle/llm-bench-bundle.tar.xz
echo "== call a done after $(( $(date +%s) - t0 )) s"
