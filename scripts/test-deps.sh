#!/usr/bin/env bash
# Debian packages the test suite runs for real: a PostgreSQL server (tests start their own cluster on a free
# loopback port). Installs only what is missing; uses sudo when not root.
set -euo pipefail
need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
