#!/usr/bin/env bash
# Here, before a lease (scripts/lease/README.md): fill the git-excluded calls-tmp/ with what the
# calls carry: plan/ (earlier runs' results, for the estimate), run-from/<run> (the run's committed
# records, which the first suite call copies in), Burn's and Inductor's committed caches.
#
#   scripts/lease/stage.sh [run id, default table-2026-12-07]
set -euo pipefail
cd "$(dirname "$0")/../.."
run="${1:-table-2026-12-07}"
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
if [ -f "target-reports/$run/withdrawn.jsonl" ]; then
  mkdir -p "calls-tmp/plan/0-withdrawn-$run"
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    w = json.loads(l)
    if w.get("file") == "results.jsonl": print(json.dumps(w["line"]))' \
    "target-reports/$run/withdrawn.jsonl" >"calls-tmp/plan/0-withdrawn-$run/results.jsonl"
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
cp target-reports/h200-2026-12-04-burn/burn-kernel-cache.tar.xz target-reports/h100-2026-12-06-table/torch-inductor.tar.xz calls-tmp/
du -sh calls-tmp/* >&2
