#!/usr/bin/env bash
# Installs everything the demo, the tests and the benchmarks need on a machine that has only
# Node.js and npm: Debian packages, pnpm, the workspace's node packages. Safe to run repeatedly.
#   scripts/setup.sh          packages for the demo, and the native capture addon
#   scripts/setup.sh --test   also what only the tests use: the HTTP/2 interop peers, etcd and kubectl,
#                             containerd and what the one-node cluster needs, the Kubernetes binaries
#                             built from Debian's source package (cached in /var/cache/ambient-mesh;
#                             about 13 minutes on two cores, once), and Helm
#   scripts/setup.sh --bench  also the benchmark baselines and load tools (stunnel4, iperf3, haproxy, wrk)
# SETUP_DRY_RUN=1 prints the Debian packages it would install, one line, and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
debs=(openssl ca-certificates iproute2 iptables gcc libc6-dev curl tcpdump)
if [[ "$mode" == "--test" ]]; then
  # Independent HTTP/2 peers for the engine's interop tests (packages/shared/src/h2/h2-peers.test.ts):
  # nghttp, nghttpd, nghttpx; python3-h2 for Debian's /usr/bin/python3; Go's net/http. golang-go is
  # the large one (about 80 MB to download, 450 MB installed); it also builds the Kubernetes
  # binaries. etcd and kubectl for the suites on a real API server (test/kube). containerd and runc
  # for the image suite (test/images), which imports and runs the images in a containerd of its own.
  debs+=(nghttp2-client nghttp2-server nghttp2-proxy python3-h2 golang-go etcd-server)
  # Debian's kubectl, unless the machine has a kubectl already: a kubectl package of another origin
  # owns /usr/bin/kubectl, and Debian's would fail to unpack over it.
  command -v kubectl >/dev/null 2>&1 || debs+=(kubernetes-client)
  # perf (linux-perf) samples processes for the CPU breakdown of the benchmarks and its test.
  debs+=(linux-perf)
  # The one-node cluster (test/cluster, KubeCluster) and the image suite (test/images): containerd and runc, the CNI plugins,
  # conntrack for kube-proxy, socat for the API forward, dnsmasq for cluster DNS, busybox in pods.
  debs+=(containerd runc containernetworking-plugins conntrack socat dnsmasq-base busybox-static)
fi
if [[ "$mode" == "--bench" ]]; then
  debs+=(stunnel4 iperf3 haproxy wrk linux-perf)
fi

source scripts/debian-packages.sh
missing=()
for d in "${debs[@]}"; do
  deb_installed "$d" || missing+=("$d")
done
if [[ "${SETUP_DRY_RUN:-}" == 1 ]]; then
  echo "setup: would install Debian packages: ${missing[*]}"
  exit 0
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  debs_install "${missing[@]}"
  # Where systemd runs, nghttp2-proxy's package starts an nghttpx service; the tests start their own.
  if [[ " ${missing[*]} " == *" nghttp2-proxy "* ]] && command -v systemctl >/dev/null 2>&1; then
    "${sudo_cmd[@]}" systemctl disable --now nghttpx >/dev/null 2>&1 || true
  fi
  # The suites start their own etcd on loopback; a packaged service would only hold port 2379.
  if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null 2>&1; then
    "${sudo_cmd[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
  # Likewise containerd: each cluster and the image suite run a private one with its own socket
  # and directories.
  if [[ " ${missing[*]} " == *" containerd "* ]] && command -v systemctl >/dev/null 2>&1; then
    "${sudo_cmd[@]}" systemctl disable --now containerd >/dev/null 2>&1 || true
  fi
fi

want_pnpm=$(node -p "require('./package.json').packageManager.split('@')[1]")
if ! command -v pnpm >/dev/null 2>&1 || [[ "$(pnpm --version)" != "$want_pnpm" ]]; then
  echo "setup: installing pnpm $want_pnpm"
  npm install -g --silent "pnpm@$want_pnpm" >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent

# The ztunnel's netns socket addon: plain C against the running Node's N-API headers.
node packages/ztunnel/native/build.mjs >/dev/null

if [[ "$mode" == "--test" ]]; then
  bash scripts/kube/build-binaries.sh >/dev/null
  bash scripts/kube/install-helm.sh >/dev/null
  # The chained CNI plugin (Go standard library only), for the suites in test/cni.
  bash packages/cni/plugin/build.sh
fi
