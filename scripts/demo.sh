#!/usr/bin/env bash
# README command 1: set up and run the end-to-end example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
.venv/bin/python examples/hello_net.py "$@"
