#!/usr/bin/env bash
# Step 2: frames of workspace/data_src.* into workspace/data_src (asks fps and png/jpg).
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" videoed extract-video --input-file "$WORKSPACE/data_src.*" --output-dir "$WORKSPACE/data_src" "$@"
