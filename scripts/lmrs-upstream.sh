#!/usr/bin/env bash
# Upstream lm.rs beside the suite's `lmrs` engine on one host (issue: the lm.rs row measures
# lm.rs). Upstream's code is never committed here: `build` clones and builds it outside the
# repository; `run` times it and the suite's engines on the same model and threads.
#
#   scripts/lmrs-upstream.sh build <dir>                    clone github.com/samuel-vitorino/lm.rs at
#                                                           aa6db5c into <dir>/src and build its chat
#                                                           binary as its README does (needs network);
#                                                           prints the binary's path
#   scripts/lmrs-upstream.sh run <chat> <llm-bench> <out>   in <out>: the benchmark model in lm.rs's
#                                                           formats (llm-bench lmrs-export), then at 16
#                                                           and 8 threads (LMRS_THREADS) upstream's chat
#                                                           (--temperature 0, greedy) on a short and a
#                                                           long prompt, and `llm-bench generate` for
#                                                           lmrs and lmrs-fast; every raw output in <out>
#
# Upstream's chat has no token limit and no prompt argument: the exported model stops right after
# the prompt (its final norm is zero and the end token is 0, see src/model/lmrs_export.rs), and
# the prompt arrives on stdin. Chat feeds the prompt one token at a time through the whole
# forward (classifier included), so each prompt token costs what a decode step costs; it prints
# `Speed: X tok/s` from whole milliseconds per token (truncated: reads up to ~5 % high at 20 ms
# per token); the process's wall time is recorded beside it (start-up included: mmap and the
# embedding's dequantization). The suite's side: `llm-bench generate 128 32` gives the prompt's
# time (token by token, as chat) and the decode rate.
set -euo pipefail
commit=aa6db5c7b5253daebc0070c809bf093d2ebfc2e8

case "${1:-}" in
build)
  dir="${2:?build needs a directory}"
  mkdir -p "$dir"
  if [ ! -d "$dir/src/.git" ]; then
    git clone https://github.com/samuel-vitorino/lm.rs "$dir/src"
  fi
  git -C "$dir/src" checkout -q "$commit"
  # The README's build. LMRS_TARGET_CPU=x86-64-v3 builds for another host of the same family
  # (the suite's own target), where `native` would not run.
  (cd "$dir/src" && RUSTFLAGS="-C target-cpu=${LMRS_TARGET_CPU:-native}" cargo build --release --bin chat >&2)
  echo "$dir/src/target/release/chat"
  ;;
run)
  chat="${2:?run needs the chat binary}"
  bench="${3:?run needs the llm-bench binary}"
  out="${4:?run needs an output directory}"
  mkdir -p "$out"
  "$bench" lmrs-export "$out/model" | tee "$out/export.log"
  short="The quarterly report summarises revenue."
  long="$(printf 'The quarterly report summarises revenue, operating costs and the outlook for each region. %.0s' $(seq 1 12))"
  {
    echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') · $(nproc) logical CPUs"
    echo "upstream: lm.rs $commit, $(sha256sum "$chat" | cut -c1-16) $chat"
  } | tee "$out/host.txt"
  for t in ${LMRS_THREADS:-16 8}; do
    for which in short long; do
      prompt="$short"; [ "$which" = long ] && prompt="$long"
      start=$(date +%s.%N)
      # rc 101 is chat's normal end here: after the answer it reads EOF as an empty prompt and
      # its tokenizer asserts on it.
      printf '%s\n' "$prompt" | RAYON_NUM_THREADS=$t "$chat" --model "$out/model/model.lmrs" --tokenizer "$out/model/tokenizer.bin" \
        --temperature 0 --show-metrics >"$out/chat-t$t-$which.log" 2>&1 || true
      end=$(date +%s.%N)
      echo "$t $which $(awk "BEGIN{print $end - $start}")" >>"$out/chat-wall.txt"
      echo "upstream chat, $t threads, $which prompt: $(grep -o 'Speed: [0-9.]* tok/s' "$out/chat-t$t-$which.log" || echo 'no Speed line (see the log)'), wall $(awk "BEGIN{print $end - $start}") s"
    done
    LLM_BENCH_ENGINES=lmrs,lmrs-fast LLM_BENCH_LMRS_THREADS=$t "$bench" generate 128 32 cpu 2>&1 | tee "$out/suite-t$t.log"
  done | tee "$out/summary.txt"
  ;;
*)
  sed -n '2,25p' "$0" >&2
  exit 2
  ;;
esac
