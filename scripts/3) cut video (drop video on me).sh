#!/usr/bin/env bash
# Step 3 (optional): cut a piece of the video given (or dropped) as the first argument to <name>_cut<ext>.
set -e
source "$(dirname "$0")/_env.sh"
if [ -z "${1:-}" ]; then echo "Usage: $0 VIDEO [--from-time T --to-time T ...] (or drop a video on this script)"; exit 1; fi
"$PY" "$MAIN" videoed cut-video --input-file "$1" "${@:2}"
