# Image for the Palisade agent (and, later, the operator): Node 24 running the
# TypeScript sources directly, plus the C programs built in a first stage.
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      clang llvm libbpf-dev libelf-dev zlib1g-dev make gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY cni cni
COPY e2e/podserver e2e/podserver
COPY e2e/prober e2e/prober
RUN make all

FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 util-linux \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/palisade
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY agent agent
COPY datapath datapath
COPY --from=build /src/build/bin/palisade-cni /opt/cni/bin/palisade-cni
ENTRYPOINT ["node", "agent/main.ts"]
