#!/usr/bin/env bash
# README command 2: set up, lint, and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest tests "$@"
