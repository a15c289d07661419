#!/usr/bin/env bash
# Creates .venv with a Python >= 3.11 and installs the pinned requirements; does nothing when they are already in.
# The interpreter: $PYTHON if set, else the first of python3.13, python3.12, python3.11, python3 that is new
# enough and has the venv module. `setup.sh --find-python` prints the one it would use and exits.
# `--gpu nvidia|amd|apple|none` adds that vendor's GPU build (asked once at a terminal, remembered in .venv).
# `--dry-run` prints the venv and pip commands it would run on this OS, and runs and writes nothing.
set -euo pipefail
HERE=.
[[ "${BASH_SOURCE[0]}" == */* ]] && HERE="${BASH_SOURCE[0]%/*}"
ROOT="$(cd "$HERE/.." && pwd)"
NEED="3.11"

# Prints the interpreter's path, or one line saying what to install (stderr) and returns 1.
find_python() {
  local candidates=(python3.13 python3.12 python3.11 python3) old="" novenv="" c path ver
  [ -n "${PYTHON:-}" ] && candidates=("$PYTHON")
  for c in "${candidates[@]}"; do
    path="$(command -v "$c" 2>/dev/null)" || continue
    ver="$("$path" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || continue
    if [ "${ver%%.*}" != 3 ] || [ "${ver#*.}" -lt "${NEED#*.}" ]; then
      old="${old:-$ver at $path}"
    elif ! "$path" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      novenv="${novenv:-$ver $path}"
    else
      echo "$path"
      return 0
    fi
  done
  if [ -n "$novenv" ]; then
    ver="${novenv%% *}"
    echo "Python $ver at ${novenv#* } has no venv module; install python$ver-venv (Debian/Ubuntu: apt install" \
         "python$ver-venv), or set PYTHON=/path/to/python$NEED" >&2
  else
    echo "Visage needs Python $NEED or newer; found ${old:-no python3 on PATH}. Install python$NEED and" \
         "python$NEED-venv (Debian/Ubuntu: apt install python$NEED python$NEED-venv), or set" \
         "PYTHON=/path/to/python$NEED" >&2
  fi
  return 1
}

# What a GPU vendor gets on top of requirements.txt, and the Keras backend it trains with (README "GPU").
gpu_packages() {
  local tf torch os
  tf="$(sed -n 's/^tensorflow==//p' "$ROOT/requirements.txt")"
  torch="$(sed -n 's/^torch==//p' "$ROOT/requirements-dev.txt")"
  os="$(uname -s)"
  case "$1/$os" in
    nvidia/Linux) echo "tensorflow tensorflow[and-cuda]==$tf" ;;
    amd/Linux) echo "torch torch==$torch --index-url https://download.pytorch.org/whl/rocm6.4" ;;
    apple/Darwin) echo "torch torch==$torch" ;;
    none/*) echo "tensorflow" ;;
    *) echo "no GPU build of Visage's backends for $1 on $os; training will use the CPU (see README \"GPU\")" >&2
       echo "tensorflow" ;;
  esac
}

GPU="" ARGS=() DRY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --gpu) GPU="${2:-}"; shift $(( $# > 1 ? 2 : 1 )) ;;
    --gpu=*) GPU="${1#--gpu=}"; shift ;;
    -h|--help) sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
               echo "Usage: setup.sh [REQUIREMENTS_FILE] [--gpu nvidia|amd|apple|none] [--dry-run] [--find-python]"; exit 0 ;;
    -*) [ "$1" = --find-python ] || { echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2; }
        ARGS+=("$1"); shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
set -- ${ARGS[@]+"${ARGS[@]}"}
if [ "${1:-}" = "--find-python" ]; then
  find_python
  exit
fi
REQ="$ROOT/${1:-requirements.txt}"
# run CMD...: runs it, or with --dry-run prints it (the commands a user would type, one a line)
run() {
  if [ -n "$DRY" ]; then echo "$*"; else "$@"; fi
}
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  PY="$(find_python)"
  [ -z "$DRY" ] && echo "Creating virtual environment in .venv with $PY ..."
  run "$PY" -m venv "$ROOT/.venv"
fi
# The GPU vendor: --gpu, else the one remembered, else asked once at a terminal; none otherwise.
GPU_FILE="$ROOT/.venv/visage-gpu"
if [ -z "$GPU" ] && [ -f "$GPU_FILE" ]; then
  GPU="$(cat "$GPU_FILE")"
elif [ -z "$GPU" ] && [ -t 0 ] && [ -z "$DRY" ]; then
  read -r -p "Which GPU trains here? nvidia / amd / apple / none [none]: " GPU
  GPU="${GPU:-none}"
fi
case "${GPU:-none}" in nvidia|amd|apple|none) ;; *) echo "--gpu must be nvidia, amd, apple or none, not '$GPU'" >&2; exit 2 ;; esac
read -r BACKEND EXTRA <<< "$(gpu_packages "${GPU:-none}")"
if [ -n "$DRY" ]; then
  echo "# --gpu ${GPU:-none} on $(uname -s): the Keras backend is $BACKEND (remembered in .venv/visage-backend)"
else
  [ -n "$GPU" ] && echo "$GPU" > "$GPU_FILE"
  echo "$BACKEND" > "$ROOT/.venv/visage-backend"
fi
STAMP="$ROOT/.venv/.installed-$(basename "$REQ")"
SHA=(sha256sum)
command -v sha256sum >/dev/null 2>&1 || SHA=(shasum -a 256)     # macOS has shasum only
HASH="$( (cat "$ROOT"/requirements*.txt; echo "$EXTRA") | "${SHA[@]}" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
  [ -z "$DRY" ] && echo "Installing dependencies from $(basename "$REQ") ..."
  run "$ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
  run "$ROOT/.venv/bin/python" -m pip install --quiet -r "$REQ"
  if [ -n "$EXTRA" ]; then
    [ -z "$DRY" ] && echo "Installing the ${GPU} GPU build: $EXTRA ..."
    # shellcheck disable=SC2086
    run "$ROOT/.venv/bin/python" -m pip install --quiet $EXTRA
  fi
  [ -z "$DRY" ] && echo "$HASH" > "$STAMP"
elif [ -n "$DRY" ]; then
  echo "# nothing to install: .venv already has $(basename "$REQ") and this GPU build"
fi
exit 0
