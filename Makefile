# Every target runs on the pinned Node 24 (npm package node@24), never the machine's node.
NODE := node_modules/.bin/node
TSC := $(NODE) node_modules/typescript/bin/tsc
VITEST := $(NODE) node_modules/vitest/vitest.mjs

.PHONY: deps run test unit lint typecheck bench crd crd-check

deps: node_modules/.deps-stamp

node_modules/.deps-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@$(NODE) -e 'if (!process.version.startsWith("v24.")) { console.error("pinned node is " + process.version); process.exit(1) }'
	@touch $@

run: deps
	@bash hack/demo.sh

typecheck: deps
	$(TSC) --noEmit

lint: typecheck

test: deps typecheck
	$(VITEST) run

unit: deps
	$(VITEST) run test/unit

crd: deps
	$(NODE) hack/gen-crd.ts

crd-check: deps
	$(NODE) hack/gen-crd.ts --check

bench: deps
	$(NODE) bench/run.ts
