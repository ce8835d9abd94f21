# Sourced by each device call of a lease (scripts/lease/README.md). CALL_S: the seconds this call
# may use. RUN: the run id (default table-2026-12-07, the whole table's run); its committed
# records, staged in calls-tmp/run-from/$RUN and carried, are gone on from.
t0=$(date +%s)
left() { echo $(( CALL_S - ($(date +%s) - t0) )); }
OUTROOT=$OUT
# The device tool brings back at most 8 files: every folder under $OUT in one tar (in parts
# below 16 MB each).
pack() {
  cd "$OUTROOT" || return
  tar -cf all.tar --exclude=all.tar --exclude='all.tar.part-*' */ 2>/dev/null
  if [ "$(stat -c %s all.tar)" -gt 15000000 ]; then split -b 15000000 all.tar all.tar.part- && rm all.tar; fi
  ls -la "$OUTROOT"
}
trap pack EXIT
plan=""
for d in "$PWD"/calls-tmp/plan/*/; do [ -d "$d" ] && plan="$plan${plan:+,}${d%/}"; done
export LLM_BENCH_RUN=${RUN:-table-2026-12-07} LLM_BENCH_RESUME=1 LLM_BENCH_PLAN_FROM="$plan"
[ -d "$PWD/calls-tmp/run-from/$LLM_BENCH_RUN" ] && export LLM_BENCH_RUN_FROM=$PWD/calls-tmp/run-from/$LLM_BENCH_RUN
echo "== call: CALL_S=$CALL_S, run $LLM_BENCH_RUN, $(date -u +%FT%TZ), $(hostname), $(nvidia-smi --query-gpu=name,uuid --format=csv,noheader 2>/dev/null)"
