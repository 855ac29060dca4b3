# compat: two commands on a fresh machine (see README.md):
#   make run    build what is missing, run the full comparison, write out/
#   make test   unit tests, then the quick profile end to end on real builds

# Recipes run in bash with pipefail, so that a failing recipe inside
# $$(recipe | tail -n 1) stops the make instead of passing an empty path on.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -ec

GO      ?= go
BIN     := bin/compat
OUT     ?= out
PROFILE ?= full
SCHEMA  ?= ../shared/schemas/junit-10.xsd
export COMPAT_CACHE ?= $(HOME)/.cache/compat

.PHONY: build run test test-unit test-integration lint bench clean deps

# The Debian packages everything needs, installed once (as root): the stamp
# is redone when images/install-deps.sh or the host's dpkg state changes,
# and then costs a dpkg-query per package.
DEPS_STAMP := $(COMPAT_CACHE)/deps.stamp
deps: $(DEPS_STAMP)
$(DEPS_STAMP): images/install-deps.sh $(wildcard /var/lib/dpkg/status)
	images/install-deps.sh all
	@mkdir -p $(dir $@) && touch $@

build:
	$(GO) build -o $(BIN) ./cmd/compat

include images/images.mk

# The main job: images (cached), then vkernel vs reference for every suite,
# diffed against baselines/. Exit 1 on regressions.
run: build images
	py=$$($(IMAGES_DIR)/python/build-wasm.sh | tail -n 1); \
	redis=$$($(IMAGES_DIR)/redis/build-wasm.sh | tail -n 1); \
	nginx=$$($(IMAGES_DIR)/nginx/build-wasm.sh | tail -n 1); \
	$(BIN) run -profile $(PROFILE) -suite python,redis,nginx -python-build "$$py" -redis-build "$$redis" -nginx-build "$$nginx" -out $(OUT)
	@$(MAKE) --no-print-directory check-junit JUNIT_DIR=$(OUT)

# Images first, so the tests that need real builds (python.wasm, the
# reference containers) run instead of skipping.
test: images
	@$(MAKE) --no-print-directory test-unit test-integration

test-unit: deps build lint
	$(GO) test -count=1 -timeout 40m ./...

# The quick profile on the real builds: python.wasm and redis-server.wasm
# in the vkernel, Debian's python3.11 and redis-server in dockertest
# containers, against the committed baselines; then every JUnit file
# against Jenkins' schema.
test-integration: build images
	py=$$($(IMAGES_DIR)/python/build-wasm.sh | tail -n 1); \
	redis=$$($(IMAGES_DIR)/redis/build-wasm.sh | tail -n 1); \
	nginx=$$($(IMAGES_DIR)/nginx/build-wasm.sh | tail -n 1); \
	$(BIN) run -profile quick -suite python,redis,nginx -python-build "$$py" -redis-build "$$redis" -nginx-build "$$nginx" -out $(OUT)/quick
	@$(MAKE) --no-print-directory check-junit JUNIT_DIR=$(OUT)/quick

check-junit:
	@if [ -f "$(SCHEMA)" ]; then \
	  xmllint --noout --schema "$(SCHEMA)" $(JUNIT_DIR)/*.xml; \
	elif [ -n "$$CI" ]; then \
	  echo "check-junit: schema $(SCHEMA) not found: CI must validate the JUnit files" >&2; exit 1; \
	else \
	  echo "check-junit: schema $(SCHEMA) not found; JUnit files not validated"; \
	fi

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: build
	$(BIN) bench exec
	$(BIN) bench concurrent
	$(BIN) bench redis
	$(BIN) bench nginx

clean:
	rm -rf bin $(OUT)
