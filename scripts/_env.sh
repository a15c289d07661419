# Sourced by the numbered scripts: sets ROOT, WORKSPACE and PY (installing on first use).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORKSPACE="${WORKSPACE:-$ROOT/workspace}"
bash "$ROOT/scripts/setup.sh" requirements.txt
PY="$ROOT/.venv/bin/python"
MAIN="$ROOT/main.py"
