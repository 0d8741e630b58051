#!/usr/bin/env bash
# The whole test suite: unit, integration, end-to-end (real processes on
# loopback), browser (when Chromium is installed) and manifest checks.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace --no-fail-fast -- --test-threads 2
deploy/check.sh --no-cargo
