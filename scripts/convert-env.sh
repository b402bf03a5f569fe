#!/usr/bin/env bash
# The LiteRT converter's own environment (latbench.convert.litert): litert-torch pins typing-extensions<4.13
# (through xdsl), which would downgrade pydantic in the main environment, so it gets a venv of its own that
# still sees the main environment's packages. torch is pinned to the main environment's version so no
# CUDA build is pulled. Idempotent; the venv goes to $LATBENCH_HOME/convert-venv (~/.local/share/latbench).
set -euo pipefail
venv="${LATBENCH_HOME:-$HOME/.local/share/latbench}/convert-venv"
[ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import litert_torch" 2> /dev/null && exit 0
python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q "torch==2.13.0" "litert-torch==0.10.*" "ai-edge-litert==2.3.*"
