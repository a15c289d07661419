# Sourced by the numbered scripts: sets ROOT, WORKSPACE and PY (installing on first use).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKSPACE="${WORKSPACE:-$ROOT/workspace}"
bash "$ROOT/scripts/setup.sh" requirements.txt
PY="$ROOT/.venv/bin/python"
# the Keras backend setup.sh chose for this machine's GPU, unless VISAGE_BACKEND says otherwise
[ -f "$ROOT/.venv/visage-backend" ] && export VISAGE_BACKEND="${VISAGE_BACKEND:-$(cat "$ROOT/.venv/visage-backend")}"
MAIN="$ROOT/main.py"
