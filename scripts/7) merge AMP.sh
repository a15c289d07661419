#!/usr/bin/env bash
# Step 7: the AMP model in workspace/model swaps the faces of workspace/data_dst into data_dst/merged (+ merged_mask).
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" merge --input-dir "$WORKSPACE/data_dst" --output-dir "$WORKSPACE/data_dst/merged" --output-mask-dir "$WORKSPACE/data_dst/merged_mask" --aligned-dir "$WORKSPACE/data_dst/aligned" --model-dir "$WORKSPACE/model" --model AMP "$@"
