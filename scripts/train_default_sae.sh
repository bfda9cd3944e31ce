#!/usr/bin/env bash
# Reproduce saesteer's shipped default SAE (saesteer/default_sae/) from scratch, offline.
#
#   scripts/train_default_sae.sh [CACHE_DIR]      (default: $SAESTEER_TRAIN_CACHE, else /work/train_cache)
#
# 1. fetches the multilingual Debian text into CACHE_DIR (scripts/fetch_training_text.sh; apt, no hub),
#    unless it is there already;
# 2. runs `saesteer train-sae`, which tokenizes the text, caches the activations of both candidate hooks
#    under CACHE_DIR/runs (a rerun repeats no forward pass), compares the hooks with short sae-lens runs,
#    trains the final TopK SAE with sae-lens' runner, and writes the SAE with REPORT.md and report.json.
# Extra arguments after CACHE_DIR go to `saesteer train-sae` (e.g. --final-tokens 1000000 on a bigger machine).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${1:-${SAESTEER_TRAIN_CACHE:-/work/train_cache}}"
shift || true
PY="${PYTHON:-$HERE/.venv/bin/python}"

if [ -d "$CACHE/pkgs" ] && [ -d "$CACHE/ddtp" ] && [ "${FORCE_FETCH:-0}" != 1 ]; then
    echo "using the text already fetched into $CACHE (FORCE_FETCH=1 fetches it again)"
else
    "$HERE/scripts/fetch_training_text.sh" "$CACHE"
fi
export HF_HUB_OFFLINE=1
exec "$PY" -m saesteer -v train-sae \
    --text-dir "$CACHE" --cache-dir "$CACHE/runs" --out "$HERE/saesteer/default_sae" \
    --hooks blocks.6.hook_resid_post,blocks.9.hook_resid_post \
    --train-tokens-per-lang 49152 --heldout-tokens-per-lang 256 --context-size 128 \
    --compare-tokens 20480 --final-tokens 4194304 --width 5120 --k 64 --batch-tokens 1024 --lr 1e-3 \
    --ce-seqs-per-lang 1 --ce-context 64 --probe-last-line 225 --dtype auto --seed 0 --forward-batch 8 "$@"
