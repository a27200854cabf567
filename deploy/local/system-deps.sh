#!/usr/bin/env bash
# Debian packages the tests need beyond Python: make, Python venv/headers and gcc (the compiled
# OTLP pass), docker-compose (only to validate docker-compose.yml; no Docker engine is used),
# Chromium + ChromeDriver for the browser tests, and Node.js + npm for the npm tracing clients
# the receiver tests use.
# Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail
need=()
python3 -m venv --help >/dev/null 2>&1 || need+=(python3 python3-venv python3-dev gcc)
command -v make >/dev/null 2>&1 || need+=(make)
# The compiled OTLP pass (streams/_otlp_scan.pyx) is built by `make setup`.
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] \
  || need+=(python3-dev)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (install them with: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
