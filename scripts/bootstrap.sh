#!/usr/bin/env bash
# Installs everything `npm test`, `npm run demo`, `npm run scenarios` and
# `npm run bench` need on a fresh Debian machine, idempotently: Debian
# packages, npm modules (including the pinned Node 24), the C programs, and
# the Go-built cluster binaries. When everything is present it returns in
# well under a second, so every npm script can call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# Debian packages: compilers and libbpf for the C programs, iproute2 and
# util-linux (nsenter) for links and namespaces, socat for the API tunnel,
# openssl for the test cluster's certificates, iperf3 and ethtool for benchmarks,
# iptables (its nf_tables flavour, iptables-nft) for kube-proxy in the test nodes,
# buildah, runc and mmdebstrap for the images (scripts/build-images.sh),
# containernetworking-plugins (bridge, host-local) as the real test nodes'
# plain CNI before Palisade (e2e/cluster/bridge-cni.ts), dnsmasq-base (the
# binary alone: no service is installed or started) as the test clusters' DNS
# server pod (e2e/cluster/dns-server.ts).
apt_packages=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev make gcc
  iproute2 util-linux socat openssl iperf3 ethtool pkg-config iptables
  buildah runc mmdebstrap
  containernetworking-plugins dnsmasq-base)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm modules, re-installed only when package-lock.json changed.
stamp=node_modules/.palisade-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  log "installing npm modules"
  npm ci --no-audit --no-fund --loglevel=error >&2
  cp package-lock.json "$stamp"
fi

# C programs (CNI plugin, test pod servers and prober; later the eBPF datapath).
make -s -C . all >&2

# Cluster binaries built from their Go modules, cached by version.
bash scripts/build-cluster-tools.sh all
