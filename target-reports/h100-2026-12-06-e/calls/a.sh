# Call a of the next lease: prepare (llama.cpp's CUDA libraries unpacked from the H200 build of h200-2026-12-06-d,
# no build), Burn's and Inductor's caches; on an H100 also wait for the fixtures (issue 26's recipe follows).
CALL_S=${CALL_S:-300}; . calls-tmp/common.sh
grep -m1 "model name" /proc/cpuinfo; nproc
for f in avx512f avx512_bf16 avx512_vnni amx_tile amx_int8 amx_bf16; do grep -m1 -qw $f /proc/cpuinfo && echo "has $f" || echo "LACKS $f"; done
export LLM_BENCH_LLAMACPP_LIB=$PWD/calls-tmp/llamacpp-cuda-lib.tar.xz LLM_BENCH_TORCH_INDUCTOR=$PWD/calls-tmp/torch-inductor.tar.xz LLM_BENCH_BURN_AUTOTUNE=$PWD/calls-tmp/burn-kernel-cache.tar.xz
OUT=$OUTROOT/a-prep bash scripts/device-run.sh prepare bundle/llm-bench-bundle.tar.xz
if [ "$gpu_kind" != h200 ]; then
  while [ -f /root/llm-bench/.fixtures-running ] && [ "$(left)" -gt 20 ]; do sleep 5; done
  echo "fixtures: $( [ -f /root/llm-bench/.fixtures-running ] && echo still running || echo done)"; tail -n 3 /root/llm-bench/fixtures.log
fi
echo "== call a done after $(( $(date +%s) - t0 )) s"
