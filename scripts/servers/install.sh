#!/usr/bin/env bash
# Installs the servers the scale-out tests start on 127.0.0.1 (DESIGN §7), from Debian's packages,
# the way a fresh machine would: PostgreSQL, Redis, Chromium + ChromeDriver. Idempotent: a package
# already there is not fetched again. Needs root (or sudo) and Debian's apt; where it cannot install,
# it says so and exits non-zero, and the tests that need the server skip naming this script.
set -euo pipefail
need=()
command -v /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then
  echo "servers: postgresql, redis-server, chromium already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && SUDO="sudo -n" || { echo "servers: need root or sudo to install ${need[*]}"; exit 1; }
fi
command -v apt-get >/dev/null 2>&1 || { echo "servers: no apt-get here; install ${need[*]} by hand"; exit 1; }
echo "servers: installing ${need[*]} (Debian packages) ..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null || true  # a stale index is still worth one try
$SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/alvh-servers-install.log 2>&1 \
  || { tail -20 /tmp/alvh-servers-install.log; echo "servers: apt-get install ${need[*]} failed"; exit 1; }
# Debian starts the packaged services; the tests run their own throwaway instances on other ports.
echo "servers: installed ${need[*]}"
