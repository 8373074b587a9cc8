#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: everything the tests need is installed or started
# from here, and a test whose tool is missing fails loudly (nothing is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked "$@"
