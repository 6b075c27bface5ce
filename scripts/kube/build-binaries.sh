#!/usr/bin/env bash
# Builds the Kubernetes server binaries the cluster tests run (kube-apiserver, controller-manager,
# scheduler, kubelet, kube-proxy) and the pod sandbox binary, offline, from Debian's `kubernetes`
# source package with Debian's Go, and caches them. A later run with the cache present does nothing.
#   scripts/kube/build-binaries.sh            build into the cache if it is not there
#   KUBE_CACHE_DIR=/path scripts/kube/build-binaries.sh
# Prints the cache directory on its last line.
set -euo pipefail

version=1.20.2
src_version='1.20.5+really1.20.2-1.1+deb12u1'
# -b2: built with reflect2 1.0.2 (see below); a cache of the first build is not reused.
cache=${KUBE_CACHE_DIR:-/var/cache/ambient-mesh/kube-v$version-b2}
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy pause)

have_all() { for b in "${bins[@]}"; do [[ -x "$cache/$b" ]] || return 1; done; }
if have_all; then
  echo "$cache"
  exit 0
fi

source "$(dirname "$0")/../debian-packages.sh"
need=()
for d in golang-go make rsync gcc libc6-dev dpkg-dev golang-github-modern-go-reflect2-dev; do deb_installed "$d" || need+=("$d"); done
if ((${#need[@]})); then
  echo "kube-build: installing Debian packages: ${need[*]}" >&2
  debs_install "${need[@]}"
fi

work=$(mktemp -d /tmp/kube-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A private deb-src list, so the machine's apt sources stay as they are.
mkdir -p "$work/apt/lists/partial"
cat >"$work/apt/sources.list" <<LIST
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
LIST
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/apt/lists" -o APT::Sandbox::User=root)
echo "kube-build: fetching the kubernetes $src_version source package" >&2
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" source -qq --download-only "kubernetes=$src_version" >/dev/null)
(cd "$work" && dpkg-source -x --no-check ./kubernetes_*.dsc src >/dev/null)
# Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, whose map iteration faults under Go 1.18 and
# later: kube-apiserver dies on the first custom resource it decodes (json-iterator marshalling
# the object's metadata). Debian's reflect2 1.0.2 is the fix upstream Kubernetes took.
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
[[ -f $reflect2/unsafe_map.go ]] || { echo "kube-build: $reflect2 missing" >&2; exit 1; }
rm -rf "$work/src/vendor/github.com/modern-go/reflect2"
mkdir -p "$work/src/vendor/github.com/modern-go/reflect2"
cp "$reflect2"/*.go "$work/src/vendor/github.com/modern-go/reflect2/"
rm -f "$work/src/vendor/github.com/modern-go/reflect2/"*_test.go

echo "kube-build: building ${bins[*]} (about 13 minutes on two cores)" >&2
start=$(date +%s)
(
  cd "$work/src"
  export GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 GOCACHE="$work/gocache" GOPATH="$work/gopath"
  export KUBE_GIT_VERSION=v$version KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
  export KUBE_GIT_COMMIT=0000000000000000000000000000000000000000
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kube-proxy" >"$work/make.log" 2>&1 ||
    { tail -40 "$work/make.log" >&2; exit 1; }
  gcc -static -O2 -DVERSION=v$version -o "$work/pause" build/pause/linux/pause.c
)
mkdir -p "$cache.tmp"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  cp "$work/src/_output/local/bin/linux/amd64/$b" "$cache.tmp/$b" 2>/dev/null ||
    cp "$(find "$work/src/_output" -type f -name "$b" | head -1)" "$cache.tmp/$b"
done
cp "$work/pause" "$cache.tmp/pause"
rm -rf "$cache" && mv "$cache.tmp" "$cache"
echo "kube-build: built in $(($(date +%s) - start)) s" >&2
echo "$cache"
