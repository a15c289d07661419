#!/usr/bin/env bash
# The README's test command: installs what it needs, fetches the sample media, runs pytest.
set -e
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh" requirements-dev.txt
cd "$ROOT"
.venv/bin/python -m core.sample_media
.venv/bin/python -m pytest -q "$@"
