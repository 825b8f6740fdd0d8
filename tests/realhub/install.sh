#!/usr/bin/env bash
# Installs what the real-JupyterHub tests need, under target/real-hub (or
# $HUBSOAK_REAL_HUB_ROOT): a venv per tested JupyterHub version and
# configurable-http-proxy from npm. Cached: a rerun with the same pins does nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${HUBSOAK_REAL_HUB_ROOT:-$PWD/target/real-hub}
JUPYTER_SERVER=2.21.1
CHP=5.3.0
mkdir -p "$ROOT"
for pin in 5.5.4 6.1.1; do
  venv="$ROOT/jh${pin%%.*}"
  stamp="$venv/.installed-$pin-$JUPYTER_SERVER"
  if [ ! -f "$stamp" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "jupyterhub==$pin" "jupyter_server==$JUPYTER_SERVER"
    touch "$stamp"
  fi
  echo "JupyterHub $("$venv/bin/jupyterhub" --version) in $venv"
done
if [ ! -x "$ROOT/node_modules/.bin/configurable-http-proxy" ] || \
   [ "$("$ROOT/node_modules/.bin/configurable-http-proxy" --version)" != "$CHP" ]; then
  npm install --prefix "$ROOT" --no-audit --no-fund --loglevel=error "configurable-http-proxy@$CHP" >/dev/null
fi
echo "configurable-http-proxy $("$ROOT/node_modules/.bin/configurable-http-proxy" --version)"
