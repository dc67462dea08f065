#!/usr/bin/env bash
# README command 2: exactly what CI runs (.ci/run).
exec bash "$(dirname "$0")/../.ci/run" "$@"
