#!/usr/bin/env bash
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" xseg fetch --input-dir "$WORKSPACE/data_dst/aligned" "$@"
