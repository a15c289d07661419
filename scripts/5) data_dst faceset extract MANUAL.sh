#!/usr/bin/env bash
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" extract --input-dir "$WORKSPACE/data_dst" --output-dir "$WORKSPACE/data_dst/aligned" --detector manual --output-debug "$@"
