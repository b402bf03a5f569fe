#!/usr/bin/env bash
# Debian packages the test suite runs for real: a PostgreSQL server (tests start their own cluster on a free
# loopback port), headless Chromium with its WebDriver (the dashboard's browser test) and an OpenSSH server
# (remote-runner and deploy tests start their own sshd on a free loopback port). Installs only what is
# missing; uses sudo when not root.
set -euo pipefail
bash "$(dirname "$0")/convert-env.sh"  # the LiteRT converter's own venv (pip, not Debian): see that script
need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || need+=(postgresql)
command -v chromium > /dev/null || need+=(chromium)
command -v chromedriver > /dev/null || need+=(chromium-driver)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ ${#need[@]} -eq 0 ] && exit 0
as_root=(); [ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
