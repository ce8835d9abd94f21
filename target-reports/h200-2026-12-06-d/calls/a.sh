# Call a of the lease (2026-12-06 fourth session): on an H200 the whole table's call a (stash SmolLM2's first part,
# prepare); on any other GPU issue 26's call a (prepare, then wait for llama.cpp's CUDA build and the fixtures).
CALL_S=${CALL_S:-420}; . calls-tmp/common.sh
grep -m1 "model name" /proc/cpuinfo; nproc
for f in avx512f avx512_bf16 avx512_vnni amx_tile amx_int8 amx_bf16; do grep -m1 -qw $f /proc/cpuinfo && echo "has $f" || echo "LACKS $f"; done
export LLM_BENCH_TORCH_INDUCTOR=$PWD/calls-tmp/torch-inductor.tar.xz LLM_BENCH_BURN_AUTOTUNE=$PWD/calls-tmp/burn-kernel-cache.tar.xz
if [ "$gpu_kind" = h200 ]; then
  OUT=$OUTROOT/a-stash bash scripts/device-run.sh stash bundle/smollm2.part-aa
  OUT=$OUTROOT/a-prep bash scripts/device-run.sh prepare bundle/llm-bench-bundle.tar.xz
else
  OUT=$OUTROOT/a-prep bash scripts/device-run.sh prepare bundle/llm-bench-bundle.tar.xz
  for d in /root/llm-bench/llamacpp/*/; do
    while [ -f "$d/.building" ] && [ "$(left)" -gt 25 ]; do sleep 5; done
    echo "llama.cpp $d: $(ls -a "$d" | grep -E '^\.(done|failed|building)$') $(grep 'built in' "$d/build.log")"
  done
  while [ -f /root/llm-bench/.fixtures-running ] && [ "$(left)" -gt 20 ]; do sleep 5; done
  echo "fixtures: $( [ -f /root/llm-bench/.fixtures-running ] && echo still running || echo done)"; tail -n 3 /root/llm-bench/fixtures.log
fi
echo "== call a done after $(( $(date +%s) - t0 )) s"
