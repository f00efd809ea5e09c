# Palisade's image: the node agent, the operator, the flow API server, the CNI
# plugin and kubectl-palisade, on Node 24 running the TypeScript sources
# directly (no build step for them).
#
#   name      docker.io/palisade/palisade:<package.json version> (scripts/build-images.sh; also :dev)
#   WORKDIR   /opt/palisade, laid out as the repository (agent/, operator/, flows-api/, datapath/,
#             policy/, lib/, cli/, node_modules/ with production dependencies only) plus build/
#             with the C programs where the code looks for them by default:
#             build/bpf/endpoint.bpf.o, build/bin/palisade-loader, build/bin/palisade-flow-reader
#   commands  node agent/main.ts --node NAME ...   as root with the capabilities the chart grants
#             node operator/main.ts ...            as the image's user, 65532
#             node flows-api/main.ts ...           as the image's user, 65532
#             kubectl-palisade ...                 on PATH (/usr/local/bin)
#   CNI       /opt/palisade/cni/palisade-cni: the agent's init step copies it to the host's CNI bin dir
#   user      65532:65532 (nonroot); no entrypoint, `node` is on PATH
#
# The base images are named in full so that docker, podman and buildah resolve
# them alike. Here, without a registry, scripts/build-images.sh makes them from
# Debian packages under these same names.

# C programs: the eBPF datapath object, its libbpf loader and flow reader, the CNI plugin.
FROM docker.io/library/debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends clang llvm libbpf-dev libelf-dev zlib1g-dev make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY bpf bpf
COPY cni cni
COPY datapath/loader datapath/loader
COPY datapath/flow-reader datapath/flow-reader
# The BPF object keeps its BTF (the loader needs it); the executables lose their debug info.
RUN make -j"$(nproc)" build/bpf/endpoint.bpf.o build/bin/palisade-loader build/bin/palisade-flow-reader build/bin/palisade-cni \
    && strip build/bin/palisade-loader build/bin/palisade-flow-reader build/bin/palisade-cni

# Production npm dependencies only (devDependencies hold Node itself, TypeScript and test
# tools), without source maps and type declarations (42 MB that nothing reads at run time).
# Behind a TLS-inspecting proxy, lend npm its CA: --secret id=npm-ca,src=/path/to/ca.pem.
FROM docker.io/library/node:24-bookworm-slim AS modules
WORKDIR /opt/palisade
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm-ca \
    if [ -s /run/secrets/npm-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm-ca; fi \
    && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
    && rm -rf /root/.npm

FROM docker.io/library/node:24-bookworm-slim
# iproute2: the agent's links and routes (`ip -batch`); iptables (iptables-nft, Debian's default):
# the masquerade chain, and its removal on uninstall; libbpf1 (with libelf1, zlib1g): the
# loader and the flow reader. nsenter, mount and umount are in the base (util-linux, mount).
RUN apt-get update \
    && apt-get install -y --no-install-recommends iproute2 iptables libbpf1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
WORKDIR /opt/palisade
COPY --from=modules /opt/palisade/node_modules node_modules
COPY --from=build /src/build/bpf/endpoint.bpf.o build/bpf/endpoint.bpf.o
COPY --from=build /src/build/bin/palisade-loader /src/build/bin/palisade-flow-reader build/bin/
COPY --from=build /src/build/bin/palisade-cni cni/palisade-cni
COPY package.json ./
COPY lib lib
COPY policy policy
COPY datapath/*.ts datapath/
COPY agent agent
COPY operator operator
COPY flows-api flows-api
COPY cli cli
# cli/kubectl-palisade runs node_modules/.bin/node: here, the image's node.
RUN mkdir -p node_modules/.bin \
    && ln -s /usr/local/bin/node node_modules/.bin/node \
    && ln -s /opt/palisade/cli/kubectl-palisade /usr/local/bin/kubectl-palisade
LABEL org.opencontainers.image.title=palisade \
      org.opencontainers.image.description="Kubernetes networking and network policy on an eBPF datapath" \
      org.opencontainers.image.licenses=Apache-2.0
USER 65532:65532
