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
sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_="sudo"
apt_updated=""
apt_update() { [ -n "$apt_updated" ] || { $sudo_ apt-get update -qq; apt_updated=1; }; }
if ! command -v promtool >/dev/null 2>&1; then
  apt_update
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# kubectl renders the kustomizations in deploy/ (kubectl kustomize).
if ! command -v kubectl >/dev/null 2>&1; then
  apt_update
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq kubectl >/dev/null
fi
# Chromium opens the `report html` page in a test (headless).
if ! command -v chromium >/dev/null 2>&1; then
  apt_update
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
promtool --version | sed -n 1p
kubectl version --client 2>/dev/null | sed -n 1p
chromium --version 2>/dev/null | sed -n 1p
# JupyterHub 5.x and 6.x venvs and configurable-http-proxy, for the real-hub tests.
./tests/realhub/install.sh

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
cargo test --all-targets --locked --no-fail-fast
