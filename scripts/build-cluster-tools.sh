#!/usr/bin/env bash
# Builds the test cluster's kube-apiserver, etcd and helm from their published
# Go modules at pinned versions, and caches the binaries keyed by version under
# ${PALISADE_CACHE:-~/.cache/palisade}. A second run finds them and returns at once.
#
# Why a scratch module per tool: k8s.io/kubernetes (and etcd's server module)
# carry `replace` directives to their in-repo staging trees, so `go install
# pkg@version` refuses them. A scratch go.mod that requires the module and
# replaces each staging module with its published v0.X.Y release builds them
# as they were released.
set -euo pipefail

KUBERNETES_VERSION=v1.37.2   # staging modules: v0.37.2
ETCD_VERSION=v3.6.16
HELM_VERSION=v4.3.1

cache=${PALISADE_CACHE:-$HOME/.cache/palisade}
bin="$cache/bin"
mkdir -p "$bin"

log() { printf '[cluster-tools] %s\n' "$*" >&2; }

# build NAME VERSION MODULE@VERSION PACKAGE [replace lines...]
build() {
  local name=$1 version=$2 require=$3 pkg=$4; shift 4
  local out="$bin/$name-$version"
  [ -x "$out" ] && return 0
  local work; work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building $name $version (first run only; takes minutes)"
  {
    echo "module palisade.local/build/$name"
    echo "go 1.26"
    echo "require ${require% *} ${require#* }"
    for r in "$@"; do echo "replace $r"; done
  } >"$work/go.mod"
  printf 'package tools\nimport _ "%s"\n' "$pkg" >"$work/tools.go"
  (cd "$work" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
   cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  log "built $out"
}

staging_replaces() {
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local patch=${KUBERNETES_VERSION##*.}
  local mods=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client cri-streaming csi-translation-lib
    dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
    kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
    mount-utils pod-security-admission sample-apiserver sample-cli-plugin
    sample-controller streaming)
  for m in "${mods[@]}"; do echo "k8s.io/$m => k8s.io/$m v0.$minor.$patch"; done
}

# `build-cluster-tools.sh path NAME` prints the cached binary's path (building it if needed).
if [ "${1:-}" = path ]; then
  case "${2:-}" in
    kube-apiserver) v=$KUBERNETES_VERSION ;; etcd) v=$ETCD_VERSION ;; helm) v=$HELM_VERSION ;;
    *) echo "unknown tool '${2:-}' (kube-apiserver, etcd, helm)" >&2; exit 2 ;;
  esac
  "$0" "$2" && echo "$bin/$2-$v"; exit
fi

want=${1:-all}
if [ "$want" = all ] || [ "$want" = kube-apiserver ]; then
  mapfile -t reps < <(staging_replaces)
  build kube-apiserver "$KUBERNETES_VERSION" "k8s.io/kubernetes $KUBERNETES_VERSION" \
    k8s.io/kubernetes/cmd/kube-apiserver "${reps[@]}"
fi
if [ "$want" = all ] || [ "$want" = etcd ]; then
  build etcd "$ETCD_VERSION" "go.etcd.io/etcd/server/v3 $ETCD_VERSION" go.etcd.io/etcd/server/v3
fi
if [ "$want" = all ] || [ "$want" = helm ]; then
  build helm "$HELM_VERSION" "helm.sh/helm/v4 $HELM_VERSION" helm.sh/helm/v4/cmd/helm
fi
