#!/usr/bin/env bash
# Installs what the station needs on a fresh Debian machine with Node 20:
# the Debian packages (when root; otherwise names the missing ones) and the npm packages
# (npm ci, which also builds dist/ and the `station` bin through the prepare script).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(softhsm2 socat opensc libusb-1.0-0 udev build-essential python3 zbar-tools fonts-dejavu-core openssl hostapd chromium postgresql)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" != "20" ]; then
  echo "setup: warning: this project is built and tested on Node 20; found $(node --version)" >&2
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci (builds pkcs11js and better-sqlite3 from source; takes a minute)" >&2
  npm ci --no-fund --no-audit
fi
