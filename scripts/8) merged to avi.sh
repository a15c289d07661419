#!/usr/bin/env bash
# Step 8: workspace/data_dst/merged into workspace/result.avi (H.264) with the fps and sound of data_dst.*; merged frames give a video labelled as synthetic media.
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" videoed video-from-sequence --input-dir "$WORKSPACE/data_dst/merged" --output-file "$WORKSPACE/result.avi" --reference-file "$WORKSPACE/data_dst.*" --include-audio --no-lossless "$@"
