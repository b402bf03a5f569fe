#!/usr/bin/env bash
# The LiteRT converter's own environment, as `latbench setup converter` (latbench.convert.environment) makes it,
# for CI, which runs this before latbench is installed: a venv that sees the main environment's packages, with
# the requirements both share (latbench/convert/requirements.txt), stamped once pip succeeded. Idempotent; the
# venv goes to $LATBENCH_HOME/convert-venv (~/.local/share/latbench) and is removed if pip fails.
set -euo pipefail
requirements="$(cd "$(dirname "$0")/.." && pwd)/latbench/convert/requirements.txt"
venv="${LATBENCH_HOME:-$HOME/.local/share/latbench}/convert-venv"
[ -f "$venv/.latbench-ready" ] && exit 0
trap 'rm -rf "$venv"' ERR
python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install -q -r "$requirements"
cp "$requirements" "$venv/.latbench-ready"
