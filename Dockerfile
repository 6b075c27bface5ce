# syntax=docker/dockerfile:1
# The ambient-mesh images, one target each (tag = the packages' version):
#   docker build --target controlplane -t ambient-mesh/controlplane:0.1.0 .
#   docker build --target ztunnel      -t ambient-mesh/ztunnel:0.1.0 .
#   docker build --target waypoint     -t ambient-mesh/waypoint:0.1.0 .
#   docker build --target cni          -t ambient-mesh/cni:0.1.0 .      (needs packages/cni)
# scripts/image/build-images.mjs builds the same images without a registry from this machine's
# Node; both lay out /app with its `stage` step, and set the same entrypoints, users and env.
# docs/images.md says what each image holds.

FROM node:20-bookworm AS build
WORKDIR /src
RUN corepack enable
COPY . .
# The ztunnel's addon is built against this Node's headers (N-API: any Node 20 loads it).
RUN pnpm install --frozen-lockfile \
 && node packages/ztunnel/native/build.mjs \
 && pnpm exec tsc -b
RUN for image in controlplane ztunnel waypoint cni; do \
      mkdir -p /stage/$image; \
      if [ -f packages/$image/package.json ]; then node scripts/image/build-images.mjs stage $image /stage/$image; fi; \
    done

FROM node:20-bookworm-slim AS runtime
RUN groupadd --gid 1337 mesh \
 && useradd --uid 1337 --gid 1337 --home-dir /app --no-create-home --shell /usr/sbin/nologin mesh
ENV NODE_ENV=production
WORKDIR /app

FROM runtime AS controlplane
COPY --from=build /stage/controlplane/ /
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/node", "/app/packages/controlplane/dist/main.js"]

FROM runtime AS ztunnel
COPY --from=build /stage/ztunnel/ /
USER 0:0
# V8 settings, as the lab's launcher; the chart's env.NODE_OPTIONS replaces them (docs/performance-ztunnel-memory.md).
ENV NODE_OPTIONS="--max-semi-space-size=8"
ENTRYPOINT ["/usr/local/bin/node", "/app/packages/ztunnel/dist/main.js"]

FROM runtime AS waypoint
COPY --from=build /stage/waypoint/ /
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/node", "/app/packages/waypoint/dist/main.js"]

# Last, so that a builder building every stage in order fails here only when asked for it.
FROM runtime AS cni
# iptables (Debian's default is the nft backend) and iproute2 for the in-pod rules; nsenter comes
# with util-linux, which every Debian image has.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 \
 && rm -rf /var/lib/apt/lists/*
# The agent, and the chained CNI plugin at /opt/ambient-cni/bin when packages/cni/plugin/bin has it.
COPY --from=build /stage/cni/ /
RUN test -f /app/packages/cni/dist/main.js
USER 0:0
ENTRYPOINT ["/usr/local/bin/node", "/app/packages/cni/dist/main.js"]
