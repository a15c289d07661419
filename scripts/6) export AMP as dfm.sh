#!/usr/bin/env bash
# Step 6: the AMP model in workspace/model as <name>_AMP_model.dfm beside it, for DeepFaceLive (asks "Export quantized?").
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" exportdfm --model-dir "$WORKSPACE/model" --model AMP "$@"
