#!/usr/bin/env bash
# Installs everything the demo, the tests and the benchmarks need on a machine that has only
# Node.js and npm: Debian packages, pnpm, the workspace's node packages. Safe to run repeatedly.
#   scripts/setup.sh          packages for the demo and the tests, and the native capture addon
#   scripts/setup.sh --bench  also the benchmark baselines and load tools (stunnel4, iperf3, haproxy, wrk)
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(openssl ca-certificates iproute2 iptables gcc libc6-dev curl tcpdump)
if [[ "${1:-}" == "--bench" ]]; then
  debs+=(stunnel4 iperf3 haproxy wrk)
fi

missing=()
for d in "${debs[@]}"; do
  dpkg -s "$d" >/dev/null 2>&1 || missing+=("$d")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want_pnpm=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1 || [[ "$(pnpm --version)" != "$want_pnpm" ]]; then
  echo "setup: installing pnpm $want_pnpm"
  npm install -g --silent "pnpm@$want_pnpm" >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent

# The ztunnel's netns socket addon: plain C against the running Node's N-API headers.
node packages/ztunnel/native/build.mjs >/dev/null
