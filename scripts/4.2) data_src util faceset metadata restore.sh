#!/usr/bin/env bash
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" util --input-dir "$WORKSPACE/data_src/aligned" --restore-faceset-metadata "$@"
