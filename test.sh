#!/usr/bin/env bash
# The whole test suite: unit, integration, end-to-end (real processes on
# loopback), browser (when Chromium is installed) and manifest checks.
set -euo pipefail
cd "$(dirname "$0")"
# Runs record into the per-user history by default: keep the tests' runs
# out of the real one.
XDG_STATE_HOME="$(mktemp -d)"
export XDG_STATE_HOME
trap 'rm -rf "$XDG_STATE_HOME"' EXIT
cargo test --workspace --no-fail-fast -- --test-threads 2
deploy/check.sh --no-cargo
