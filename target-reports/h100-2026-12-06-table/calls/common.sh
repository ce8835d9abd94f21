# Sourced by each device call of run h200-2026-12-06-table (CALL_S: seconds this call may use).
t0=$(date +%s)
left() { echo $(( CALL_S - ($(date +%s) - t0) )); }
OUTROOT=$OUT
pack() {
  cd "$OUTROOT" || return
  tar -cf all.tar --exclude=all.tar --exclude='all.tar.part-*' */ 2>/dev/null
  if [ "$(stat -c %s all.tar)" -gt 15000000 ]; then split -b 15000000 all.tar all.tar.part- && rm all.tar; fi
  ls -la "$OUTROOT"
}
trap pack EXIT
plan=""
for d in "$PWD"/calls-tmp/plan/*/; do [ -d "$d" ] && plan="$plan${plan:+,}${d%/}"; done
export LLM_BENCH_RUN=h200-2026-12-06-table LLM_BENCH_RESUME=1 LLM_BENCH_PLAN_FROM="$plan"
echo "== call: CALL_S=$CALL_S, $(date -u +%FT%TZ), $(hostname), $(nvidia-smi --query-gpu=name,uuid --format=csv,noheader 2>/dev/null)"
