#!/usr/bin/env bash
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" train --training-data-src-dir "$WORKSPACE/data_src/aligned" --training-data-dst-dir "$WORKSPACE/data_dst/aligned" --model-dir "$WORKSPACE/model" --model AMP "$@"
