# shellcheck shell=bash
# openssl_recipe_files prints the files of the OpenSSL wasm recipe,
# relative to images/ (set $images first): the recipe's cache key, and the
# part of python's and nginx's keys that says which OpenSSL they link (a
# change here rebuilds them too). vkposix's sources are in it: OpenSSL is
# compiled against its socket headers.
openssl_recipe_files() {
	local p
	printf '%s ' openssl/build-wasm.sh openssl/versions.env openssl/recipe-files.sh openssl/wasm32-wasi.conf
	for p in "$images"/openssl/patches/*/*.patch; do
		if [ -e "$p" ]; then printf '%s ' "openssl/${p#"$images"/openssl/}"; fi
	done
	(cd "$images" && find lib/vkposix/build.sh lib/vkposix/ldflags lib/vkposix/src lib/vkposix/include -type f | LC_ALL=C sort | tr '\n' ' ')
}
