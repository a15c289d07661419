#!/usr/bin/env bash
# Step 5.1: writes workspace/data_dst_aligned_contact_sheet.jpg, a grid of the aligned faces (beside data_dst/, never inside it, so it never becomes a frame).
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" util --input-dir "$WORKSPACE/data_dst/aligned" --view-aligned "$@"
