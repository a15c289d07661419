#!/usr/bin/env bash
# Step 3 (optional): denoise the frames in workspace/data_dst in place (asks the strength).
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" videoed denoise-image-sequence --input-dir "$WORKSPACE/data_dst" "$@"
