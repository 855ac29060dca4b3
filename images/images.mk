# Image recipes. Include from the top-level Makefile:
#     include images/images.mk
# Targets: images-base, python-wasm, python-image, redis-wasm, redis-image,
# images (all of them);
# images-deps installs the Debian packages the recipes need (root).
# Each prints where its output went (an image name or a cache directory).

IMAGES_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: images images-deps images-base python-wasm python-image

images: images-base python-wasm python-image redis-wasm redis-image

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

images-deps:
	@$(IMAGES_DIR)/install-deps.sh all
