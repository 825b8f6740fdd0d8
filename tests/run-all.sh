#!/usr/bin/env bash
# Runs every check and test hubsoak has, on a fresh machine: installs what the tests
# need, builds once, and fails loudly if anything is missing. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
cargo test --all-targets --locked --no-fail-fast
