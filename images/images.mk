# Image recipes. Include from the top-level Makefile:
#     include images/images.mk
# Targets: images-base, python-wasm, python-image, redis-wasm, redis-image,
# openssl-wasm (python-wasm and nginx-wasm build it themselves),
# runner-image (not in images),
# images (all of them);
# deps (alias images-deps) installs the Debian packages they need (root).
# Each prints where its output went (an image name or a cache directory).

IMAGES_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# A recipe's failure inside $$(recipe | tail -n 1) must stop the make.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -ec

.PHONY: images images-deps images-base python-wasm python-image

images: images-base python-wasm python-image redis-wasm redis-image

# Every recipe needs the Debian packages first; the top-level Makefile
# defines deps (a stamp), a standalone make -f images/images.mk installs them.
ifeq ($(origin DEPS_STAMP),undefined)
deps:
	@$(IMAGES_DIR)/install-deps.sh all
endif
images-base python-wasm redis-wasm nginx-wasm nginx-test-deps: deps

images-base:
	@img=$$($(IMAGES_DIR)/base/build.sh | tail -n 1) && \
	  echo "images-base: docker image $$img"

python-wasm:
	@out=$$($(IMAGES_DIR)/python/build-wasm.sh | tail -n 1) && \
	  echo "python-wasm: $$out (python.wasm, lib/python3.11, build-info.json)"

python-image: images-base
	@img=$$($(IMAGES_DIR)/python/build-image.sh | tail -n 1) && \
	  echo "python-image: docker image $$img"

.PHONY: redis-wasm redis-image

redis-wasm:
	@out=$$($(IMAGES_DIR)/redis/build-wasm.sh | tail -n 1) && \
	  echo "redis-wasm: $$out (redis-server.wasm, suite/, build-info.json)"

redis-image: images-base
	@img=$$($(IMAGES_DIR)/redis/build-image.sh | tail -n 1) && \
	  echo "redis-image: docker image $$img"

.PHONY: nginx-wasm nginx-image nginx-test-deps

# NGINX joins "images", so "make test" (CI) runs adapters/nginx's tests on
# real builds instead of skipping them.
images: nginx-wasm nginx-image nginx-test-deps

# OpenSSL for wasm32 (python-wasm and nginx-wasm run it themselves).
.PHONY: openssl-wasm
openssl-wasm: deps
	@out=$$($(IMAGES_DIR)/openssl/build-wasm.sh | tail -n 1) && \
	  echo "openssl-wasm: $$out (include/, lib/libcrypto.a, lib/libssl.a, build-info.json)"

nginx-wasm:
	@out=$$($(IMAGES_DIR)/nginx/build-wasm.sh | tail -n 1) && \
	  echo "nginx-wasm: $$out (nginx.wasm, build-info.json)"

nginx-image: images-base
	@img=$$($(IMAGES_DIR)/nginx/build-image.sh | tail -n 1) && \
	  echo "nginx-image: docker image $$img"

# Test::Nginx (from Debian sid) and its Perl dependencies (root).
nginx-test-deps:
	@lib=$$($(IMAGES_DIR)/nginx/fetch-test-nginx.sh --deps | tail -n 1) && \
	  echo "nginx-test-deps: Test::Nginx in $$lib"

images-deps: deps

.PHONY: runner-image

# The runner image for CI (images/runner): compat and the builds above in
# one image; not part of "images", since make run and make test need it not.
runner-image: images-base python-wasm redis-wasm nginx-wasm nginx-test-deps
	@img=$$($(IMAGES_DIR)/runner/build-image.sh | tail -n 1) && \
	  echo "runner-image: docker image $$img"
