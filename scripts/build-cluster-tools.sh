#!/usr/bin/env bash
# Builds the test cluster's kube-apiserver, kube-proxy, etcd and helm from
# their published Go modules at pinned versions, and caches the binaries keyed by version under
# ${PALISADE_CACHE:-~/.cache/palisade}. A second run finds them and returns at once.
# The real nodes' tools (kubelet, kube-controller-manager, kube-scheduler,
# containerd and its shim and ctr; issue 9, ../shared/REAL-NODES.md,
# e2e/cluster/real-cluster.ts) build the same way; `all` includes them.
#
#   build-cluster-tools.sh [all|TOOL]   build what is missing
#   build-cluster-tools.sh real-nodes   the real nodes' tools only
#   build-cluster-tools.sh path NAME                         print NAME's binary (building it if needed)
#
# Why a scratch module per tool: k8s.io/kubernetes (and etcd's server module)
# carry `replace` directives to their in-repo staging trees, so `go install
# pkg@version` refuses them. A scratch go.mod that requires the module and
# replaces each staging module with its published v0.X.Y release builds them
# as they were released.
set -euo pipefail

KUBERNETES_VERSION=v1.37.2   # staging modules: v0.37.2
ETCD_VERSION=v3.6.16
CONTAINERD_VERSION=v2.4.2
HELM_VERSION=v4.3.1

cache=${PALISADE_CACHE:-$HOME/.cache/palisade}
bin="$cache/bin"
mkdir -p "$bin"

log() { printf '[cluster-tools] %s\n' "$*" >&2; }

k8s_minor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION")
k8s_patch=$(cut -d. -f3 <<<"$KUBERNETES_VERSION")

# Cached file name of each tool; the "-stamped" suffix marks binaries whose
# version is set at link time (a change of flags must not reuse an old binary).
binary() {
  case "$1" in
    kube-apiserver | kube-proxy | kubelet | kube-controller-manager | kube-scheduler) echo "$bin/$1-$KUBERNETES_VERSION-stamped" ;;
    containerd | containerd-shim-runc-v2 | ctr) echo "$bin/$1-$CONTAINERD_VERSION" ;;
    etcd) echo "$bin/etcd-$ETCD_VERSION" ;;
    helm) echo "$bin/helm-$HELM_VERSION" ;;
    *) echo "unknown tool '$1' (kube-apiserver, kube-proxy, kubelet, kube-controller-manager, kube-scheduler, etcd, helm, containerd, containerd-shim-runc-v2, ctr)" >&2; return 2 ;;
  esac
}

# build OUT "MODULE VERSION" PACKAGE LDFLAGS [replace lines...]
build() {
  local out=$1 require=$2 pkg=$3 ldflags=$4; shift 4
  [ -x "$out" ] && return 0
  log "building $(basename "$out") (first run only; takes minutes)"
  local work; work=$(mktemp -d)
  {
    echo "module palisade.local/build/tool"
    echo "go 1.26"
    echo "require $require"
    for r in "$@"; do echo "replace $r"; done
  } >"$work/go.mod"
  if ! (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w $ldflags" -o "$out.tmp" "$pkg"); then
    rm -rf "$work" "$out.tmp"
    return 1
  fi
  rm -rf "$work"
  mv "$out.tmp" "$out"
  log "built $out"
}

# build_kubernetes NAME: one command of k8s.io/kubernetes at KUBERNETES_VERSION,
# each staging module replaced by its published release, the version stamped
# as Kubernetes' own build does (so /version and --version tell the truth).
# kube-apiserver and kube-proxy share the module set and so the module cache.
build_kubernetes() {
  local name=$1
  local mods=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
    cloud-provider cluster-bootstrap code-generator component-base component-helpers
    controller-manager cri-api cri-client cri-streaming csi-translation-lib
    dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
    kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
    mount-utils pod-security-admission sample-apiserver sample-cli-plugin
    sample-controller streaming)
  local reps=() m
  for m in "${mods[@]}"; do reps+=("k8s.io/$m => k8s.io/$m v0.$k8s_minor.$k8s_patch"); done
  local v=k8s.io/component-base/version
  build "$(binary "$name")" "k8s.io/kubernetes $KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/$name" \
    "-X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$k8s_minor -X $v.gitTreeState=clean" \
    "${reps[@]}"
}

build_tool() {
  case "$1" in
    kube-apiserver | kube-proxy | kubelet | kube-controller-manager | kube-scheduler) build_kubernetes "$1" ;;
    containerd | containerd-shim-runc-v2 | ctr) build "$(binary "$1")" "github.com/containerd/containerd/v2 $CONTAINERD_VERSION" \
      "github.com/containerd/containerd/v2/cmd/$1" "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION" ;;
    etcd) build "$(binary etcd)" "go.etcd.io/etcd/server/v3 $ETCD_VERSION" go.etcd.io/etcd/server/v3 "" ;;
    helm) build "$(binary helm)" "helm.sh/helm/v4 $HELM_VERSION" helm.sh/helm/v4/cmd/helm \
      "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" ;;
    *) binary "$1" ;;
  esac
}

# One build at a time per cache: a concurrent run waits instead of building twice.
exec 9>"$bin/.lock"
flock 9

if [ "${1:-}" = path ]; then
  build_tool "${2:-}"
  binary "$2"
  exit
fi
case "${1:-all}" in
  all) for tool in etcd kube-apiserver kube-proxy helm kube-scheduler kube-controller-manager kubelet containerd containerd-shim-runc-v2 ctr; do build_tool "$tool"; done ;;
  real-nodes) for tool in kube-scheduler kube-controller-manager kubelet containerd containerd-shim-runc-v2 ctr; do build_tool "$tool"; done ;;
  *) build_tool "$1" ;;
esac
