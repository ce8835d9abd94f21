# Call b of a GPU lease: SmolLM2's second and third parts.
CALL_S=${CALL_S:-100}; . scripts/lease/common.sh
OUT=$OUTROOT/b-stash bash scripts/device-run.sh stash bundle/smollm2.part-ab bundle/smollm2.part-ac
