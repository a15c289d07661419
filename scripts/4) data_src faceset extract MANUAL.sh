#!/usr/bin/env bash
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" extract --input-dir "$WORKSPACE/data_src" --output-dir "$WORKSPACE/data_src/aligned" --detector manual "$@"
