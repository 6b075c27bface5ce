#!/usr/bin/env bash
# Builds the chained CNI plugin: a static executable from the Go standard library only.
#   packages/cni/plugin/build.sh   ->   packages/cni/plugin/bin/ambient-cni
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p bin
export GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/ambient-cni-gocache}"
CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o bin/ambient-cni .
