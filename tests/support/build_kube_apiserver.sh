#!/usr/bin/env bash
# Build kube-apiserver from the Go module proxy (no release downloads reachable here)
# and cache it under ~/.cache/wasmetool-ci/kube-apiserver-vVERSION/kube-apiserver.
# A second run finds the cached binary and does nothing. Used by install.sh --dev;
# the deploy integration tests start it (with etcd) against a throw-away data dir.
#
#   tests/support/build_kube_apiserver.sh            # prints the binary's path
# Environment: KUBE_VERSION (default 1.37.2), GO (default: go on PATH or /usr/local/go/bin/go).
set -euo pipefail

version="${KUBE_VERSION:-1.37.2}"
staging_version="0.${version#1.}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/wasmetool-ci/kube-apiserver-v$version"
binary="$cache/kube-apiserver"
if [ -x "$binary" ] && "$binary" --version >/dev/null 2>&1; then
  echo "$binary"
  exit 0
fi

go="${GO:-}"
if [ -z "$go" ]; then
  for candidate in go /usr/local/go/bin/go; do
    if command -v "$candidate" >/dev/null 2>&1; then go="$candidate"; break; fi
  done
fi
[ -n "$go" ] || { echo "build_kube_apiserver.sh: Go is needed to build kube-apiserver" >&2; exit 1; }

mkdir -p "$cache"
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client cri-streaming csi-translation-lib
  dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
  kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
  mount-utils pod-security-admission sample-apiserver sample-cli-plugin
  sample-controller streaming)
{
  echo "module kubewrap"
  echo
  echo "go 1.24"
  echo
  echo "require k8s.io/kubernetes v$version"
  echo
  for name in "${staging[@]}"; do
    echo "replace k8s.io/$name => k8s.io/$name v$staging_version"
  done
} > "$work/go.mod"
cat > "$work/tools.go" <<'GO'
//go:build tools

package kubewrap

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO

echo "build_kube_apiserver.sh: building kube-apiserver v$version (several minutes, once)" >&2
(cd "$work" && "$go" mod tidy >&2 && \
  "$go" build -trimpath -ldflags="-s -w" -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2)
mv "$work/kube-apiserver" "$binary"
echo "$binary"
