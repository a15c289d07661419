#!/usr/bin/env bash
# The README's demo command: installs what it needs, fetches the sample clips, runs the workflow.
set -e
source "$(dirname "$0")/_env.sh"
"$PY" "$MAIN" demo --non-interactive --workspace "$WORKSPACE" "$@"
