#!/usr/bin/env bash
# Step 3: every frame of workspace/data_dst.* into workspace/data_dst (asks png/jpg).
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" videoed extract-video --input-file "$WORKSPACE/data_dst.*" --output-dir "$WORKSPACE/data_dst" --fps 0 "$@"
