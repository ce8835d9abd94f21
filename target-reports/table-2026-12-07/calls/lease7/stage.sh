#!/usr/bin/env bash
# Here, before a lease (scripts/lease/README.md): fill the git-excluded calls-tmp/ with what the
# calls carry: plan/ (earlier runs' results, for the estimate), run-from/<run> (the run's committed
# records, which the first suite call copies in), Burn's and Inductor's committed caches.
#
#   scripts/lease/stage.sh [run id, default table-2026-12-07]
#   scripts/lease/stage.sh <run id> --supersede <GPU UUID> <reason>
#
# --supersede: the lease measures again every case one machine measured (a GPU table measured
# whole on one new machine): on the staged copy only, `llm-bench withdraw --machine` moves that
# machine's records, processes and environment to withdrawn.jsonl (a resumed run takes any case
# it has a record of as done), and its check, warm-up and suite logs are left out (the lease writes
# its own); target-reports/<run> keeps them until the lease's run directory replaces it. Needs a
# CPU build of llm-bench (`cargo build --release --bin llm-bench`, in $CARGO_TARGET_DIR,
# ~/.cache/llm-bench/target or ./target; or LLM_BENCH_BIN).
set -euo pipefail
cd "$(dirname "$0")/../.."
run="${1:-table-2026-12-07}"
supersede="" reason=""
if [ "${2:-}" = --supersede ]; then
  supersede="${3:?--supersede <GPU UUID> <reason>}" reason="${4:?--supersede <GPU UUID> <reason>}"
  # The CPU build where scripts/test-env.sh puts it, else a plain `cargo build`'s.
  bin="${LLM_BENCH_BIN:-}"
  for b in "${CARGO_TARGET_DIR:-$HOME/.cache/llm-bench/target}/release/llm-bench" target/release/llm-bench; do
    [ -z "$bin" ] && [ -x "$b" ] && bin="$b"
  done
  [ -x "$bin" ] || { echo "[stage] --supersede needs a CPU build of llm-bench: cargo build --release --bin llm-bench (found in \$CARGO_TARGET_DIR, ~/.cache/llm-bench/target or ./target), or LLM_BENCH_BIN=<its path>" >&2; exit 1; }
fi
grep -qx '/calls-tmp/' .git/info/exclude 2>/dev/null || echo /calls-tmp/ >>.git/info/exclude
rm -rf calls-tmp/plan calls-tmp/run-from
mkdir -p calls-tmp/plan "calls-tmp/run-from/$run"
# The runs the estimate learns from: the latest of each engine's quick-profile figures.
plan_runs="${LLM_BENCH_LEASE_PLAN:-h100-2026-12-06-b h100-2026-12-06-c h100-2026-12-06-e h100-2026-12-06-table h200-2026-12-02-b h200-2026-12-03-rate3 h200-2026-12-03-whole h200-2026-12-04-burn h200-2026-12-04-table h200-2026-12-06-d $run}"
for r in $plan_runs; do
  [ -f "target-reports/$r/results.jsonl" ] || continue
  mkdir -p "calls-tmp/plan/$r" && cp "target-reports/$r/results.jsonl" "calls-tmp/plan/$r/"
done
# The run's records as committed (device-run.sh unpacks the .xz ones there).
# The run's withdrawn records still say what their cases cost (table-2026-12-07: lmrs's concurrent
# cases, withdrawn for how they were served, not for their time): an estimate source of their own,
# named to be read first, so any record of a later run replaces theirs.
# (committed compressed once it grew: table-2026-12-07's is 39 MB plain, lease 3's requests mostly)
withdrawn="target-reports/$run/withdrawn.jsonl"
[ -f "$withdrawn" ] || withdrawn="$withdrawn.xz"
if [ -f "$withdrawn" ]; then
  mkdir -p "calls-tmp/plan/0-withdrawn-$run"
  python3 -c 'import json,lzma,sys
f = lzma.open(sys.argv[1], "rt") if sys.argv[1].endswith(".xz") else open(sys.argv[1])
for l in f:
    w = json.loads(l)
    if w.get("file") == "results.jsonl": print(json.dumps(w["line"]))' \
    "$withdrawn" >"calls-tmp/plan/0-withdrawn-$run/results.jsonl"
fi
src="target-reports/$run"
if [ -d "$src" ]; then
  for f in "$src"/*.jsonl "$src"/*.jsonl.xz "$src"/environment*.json "$src"/suite.*.log "$src"/suite.*.log.xz "$src"/check.log "$src"/warm.log; do
    [ -f "$f" ] && cp "$f" "calls-tmp/run-from/$run/"
  done
else
  rmdir "calls-tmp/run-from/$run"
  echo "[stage] no committed $src: the lease begins the run" >&2
fi
if [ -n "$supersede" ]; then
  d="calls-tmp/run-from/$run"
  for f in requests telemetry withdrawn; do [ -f "$d/$f.jsonl.xz" ] && xz -d "$d/$f.jsonl.xz"; done
  # The engines that machine measured (not those it only recorded as not selected): their suite
  # logs are that lease's.
  engines=$(python3 -c 'import json,sys
seen = set()
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("machine") == sys.argv[2] and r.get("status") == "measured": seen.add(r["engine"])
print(" ".join(sorted(seen)))' "$d/results.jsonl" "$supersede")
  "$bin" withdraw "$d" --machine "$supersede" --reason "$reason" >&2
  rm -f "$d/check.log" "$d/warm.log"
  for e in $engines; do rm -f "$d/suite.$e.log" "$d/suite.$e.log.xz"; done
  echo "[stage] $supersede's records withdrawn on the staged copy; its logs left out (engines: $engines)" >&2
  # Under the call's 64 MiB: the withdrawn requests and telemetry are most of it.
  for f in requests telemetry withdrawn; do [ -f "$d/$f.jsonl" ] && xz -T2 "$d/$f.jsonl"; done
fi
cp target-reports/h200-2026-12-04-burn/burn-kernel-cache.tar.xz target-reports/h100-2026-12-06-table/torch-inductor.tar.xz calls-tmp/
du -sh calls-tmp/* >&2
