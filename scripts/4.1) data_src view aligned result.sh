#!/usr/bin/env bash
# Step 4.1: writes workspace/data_src_aligned_contact_sheet.jpg, a grid of the aligned faces (beside data_src/, never inside it, so it never becomes a frame).
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" util --input-dir "$WORKSPACE/data_src/aligned" --view-aligned "$@"
