#!/usr/bin/env bash
# Installs what the real-JupyterHub and deploy tests need, under target/real-hub (or
# $HUBSOAK_REAL_HUB_ROOT): a venv per tested JupyterHub version (with jupyter_server and
# ipykernel, for real single-user servers and kernels), configurable-http-proxy
# from npm, and a tools venv with kubernetes-validate. Cached: a rerun with the same pins
# does nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${HUBSOAK_REAL_HUB_ROOT:-$PWD/target/real-hub}
JUPYTER_SERVER=2.21.1
IPYKERNEL=7.4.0
CHP=5.3.0
KUBERNETES_VALIDATE=1.37.0
mkdir -p "$ROOT"
for pin in 5.5.4 6.1.1; do
  venv="$ROOT/jh${pin%%.*}"
  stamp="$venv/.installed-$pin-$JUPYTER_SERVER-$IPYKERNEL"
  if [ ! -f "$stamp" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "jupyterhub==$pin" "jupyter_server==$JUPYTER_SERVER" "ipykernel==$IPYKERNEL"
    touch "$stamp"
  fi
  echo "JupyterHub $("$venv/bin/jupyterhub" --version) in $venv"
done
if [ ! -x "$ROOT/node_modules/.bin/configurable-http-proxy" ] || \
   [ "$("$ROOT/node_modules/.bin/configurable-http-proxy" --version)" != "$CHP" ]; then
  npm install --prefix "$ROOT" --no-audit --no-fund --loglevel=error "configurable-http-proxy@$CHP" >/dev/null
fi
echo "configurable-http-proxy $("$ROOT/node_modules/.bin/configurable-http-proxy" --version)"
tools="$ROOT/tools"
if [ ! -f "$tools/.installed-$KUBERNETES_VALIDATE" ]; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KUBERNETES_VALIDATE"
  touch "$tools/.installed-$KUBERNETES_VALIDATE"
fi
echo "kubernetes-validate $("$tools/bin/kubernetes-validate" --version 2>&1 | tail -n 1)"
