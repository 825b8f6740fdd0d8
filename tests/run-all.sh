#!/usr/bin/env bash
# Runs every check and test hubsoak has, on a fresh machine: installs what the tests
# need, builds once, and fails loudly if anything is missing. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== toolchain"
cargo --version
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== test dependencies"
# promtool (from Debian's prometheus package) checks /metrics in the soak tests.
if ! command -v promtool >/dev/null 2>&1; then
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
promtool --version | head -n 1
# JupyterHub 5.x and 6.x venvs and configurable-http-proxy, for the real-hub tests.
./tests/realhub/install.sh

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
cargo test --all-targets --locked --no-fail-fast
