# Every target runs on the pinned Node 24 (npm package node@24), never the machine's node.
NODE := node_modules/.bin/node
TSC := $(NODE) node_modules/typescript/bin/tsc
VITEST := $(NODE) node_modules/vitest/vitest.mjs

.PHONY: deps system-deps build binaries image image-dockerfile test-images run test unit lint typecheck bench bench-features crd crd-check

# Debian packages (root installs what is missing; otherwise prints the apt-get line and stops),
# then the pinned npm toolchain.
deps: system-deps node_modules/.deps-stamp

system-deps:
	@bash hack/system-deps.sh

# A node_modules that is a symlink (a git worktree sharing another checkout's install) is left
# alone: `npm ci` would empty the directory it points to, under everyone using it.
node_modules/.deps-stamp: package.json package-lock.json
	@if [ -L node_modules ]; then echo "node_modules is a symlink to $$(readlink node_modules): not running npm ci there"; else npm ci --no-audit --no-fund; fi
	@$(NODE) -e 'if (!process.version.startsWith("v24.")) { console.error("pinned node is " + process.version); process.exit(1) }'
	@touch $@

# Compiled JavaScript in build/dist (tsc, no type check: `make typecheck`), rebuilt only when
# src/, package.json or the tsconfigs changed. bin/breakwater runs it while it is current, the
# sources otherwise; the image ships it (hack/build.sh).
build: deps
	@bash hack/build.sh

run: deps build
	@bash hack/demo.sh

typecheck: deps
	$(TSC) --noEmit

lint: typecheck

# Kubernetes binaries for the e2e and real-node tests (built once, cached by version).
binaries:
	@bash hack/control-plane.sh --node >/dev/null

# The Breakwater image as an OCI archive (build/breakwater.oci.tar), built without a Docker engine.
image: deps build
	@bash hack/image.sh breakwater

# The Dockerfile itself, built with buildah on a local node:24-bookworm-slim look-alike, started once.
image-dockerfile: deps
	@bash hack/dockerfile-check.sh

# Breakwater + the images the real-node tests run (test app, pause).
test-images: deps build
	@bash hack/image.sh all

test: deps typecheck build binaries test-images
	$(VITEST) run

unit: deps
	$(VITEST) run test/unit

crd: deps
	$(NODE) hack/gen-crd.ts
	$(NODE) hack/gen-check.ts

crd-check: deps
	$(NODE) hack/gen-crd.ts --check
	$(NODE) hack/gen-check.ts --check

# Breakwater next to nginx, the Portkey gateway, the LiteLLM proxy and a minimal Node proxy, in one
# run (bench/compare.ts, at most 20 min): installs the peers first (bench/peers/install.sh, pinned
# versions, cached in ~/.cache/breakwater/bench), rewrites docs/bench.md and docs/bench/*.svg.
bench: deps build
	$(NODE) bench/compare.ts

# CPU per request with each traffic-shaping feature on, next to the plain config, in one run.
bench-features: deps build
	@bash bench/features.sh
