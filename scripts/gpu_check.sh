#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU where PyTorch and/or JAX are installed and TensorFlow may be
# absent. Installs only Visage's light dependencies (everything in requirements.txt but TensorFlow) into
# .gpu_check/site, leaving the machine's own torch / jax / tensorflow untouched, then for each backend it
# finds trains Quick96 and SAEHD liae-ud res 128 batch 8 for 50 iterations (`bench train`) and prints
# ms/iter, peak GPU memory and the precision `auto` picked, one table.
#   PYTHON=python3.11 bash scripts/gpu_check.sh [--faces ALIGNED_DIR] [--iterations N]
set -euo pipefail
HERE=.
[[ "${BASH_SOURCE[0]}" == */* ]] && HERE="${BASH_SOURCE[0]%/*}"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
SITE="$ROOT/.gpu_check/site"
mkdir -p "$SITE"
grep -v -E '^(tensorflow|#)' "$ROOT/requirements.txt" > "$ROOT/.gpu_check/requirements-light.txt"
if ! cmp -s "$ROOT/.gpu_check/requirements-light.txt" "$ROOT/.gpu_check/installed.txt" 2>/dev/null; then
  echo "Installing Visage's light dependencies into .gpu_check/site (no TensorFlow) ..."
  "$PY" -m pip install --quiet --target "$SITE" -r "$ROOT/.gpu_check/requirements-light.txt"
  cp "$ROOT/.gpu_check/requirements-light.txt" "$ROOT/.gpu_check/installed.txt"
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
FOUND=()
for b in torch jax tensorflow; do
  if "$PY" -c "import $b" >/dev/null 2>&1; then FOUND+=(--backend "$b"); fi
done
if [ ${#FOUND[@]} -eq 0 ]; then
  echo "none of torch, jax, tensorflow can be imported by $PY; install one with its GPU build first" >&2
  exit 1
fi
"$PY" "$ROOT/main.py" doctor "${FOUND[1]/#/--backend=}" || true
exec "$PY" "$ROOT/main.py" bench train "${FOUND[@]}" --model Quick96 --model SAEHD --batch-size 8 \
  --precision auto --iterations 50 --warmup 5 --opt resolution=128 --opt ae_dims=256 --opt e_dims=64 \
  --opt d_dims=64 --opt d_mask_dims=22 "$@"
