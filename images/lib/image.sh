# shellcheck shell=bash
# Helpers the reference-image recipes (*/build-image.sh) share. Source after
# lib/common.sh. An image carries its recipe's hash as the label
# compat.recipe; a changed recipe rebuilds it, an unchanged one is reused.

# compat_image_args parses the recipes' only option, --force, into $force.
compat_image_args() {
	force=no
	case "${1:-}" in
	--force) force=yes ;;
	"") ;;
	*) compat_die "unknown argument '$1' (usage: $0 [--force])" ;;
	esac
	compat_need docker docker.io
	docker info >/dev/null 2>&1 || compat_die "the Docker engine does not answer ('docker info' failed); start it and retry"
}

# compat_image_current IMAGE RECIPE: true when IMAGE exists with that recipe
# label and --force was not given.
compat_image_current() {
	local image=$1 recipe=$2 have
	[ "$force" = no ] && docker image inspect "$image" >/dev/null 2>&1 || return 1
	have=$(docker image inspect -f '{{ index .Config.Labels "compat.recipe" }}' "$image" 2>/dev/null || true)
	if [ "$have" = "$recipe" ]; then
		compat_log "$image already present and up to date (use --force to rebuild)"
		return 0
	fi
	compat_log "$image exists but was built from another recipe (${have:-none}); rebuilding"
	return 1
}

# compat_image_build IMAGE RECIPE CONTEXT LOG HINT [docker build args...]
# builds IMAGE from CONTEXT with the recipe label, or dies with the log's
# tail and HINT. The id of the image it replaces goes to $replaced_id.
compat_image_build() {
	local image=$1 recipe=$2 context=$3 log=$4 hint=$5
	shift 5
	replaced_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
	compat_log "docker build $image (log: $log)"
	if ! docker build "$@" --label "compat.recipe=$recipe" -t "$image" "$context" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		compat_die "docker build of $image failed (log above); $hint"
	fi
}

# compat_image_drop_replaced IMAGE removes the image the last build replaced,
# if nothing else uses it.
compat_image_drop_replaced() {
	local new_id
	new_id=$(docker image inspect -f '{{.Id}}' "$1")
	if [ -n "$replaced_id" ] && [ "$replaced_id" != "$new_id" ]; then
		docker image rm "$replaced_id" >/dev/null 2>&1 || true
	fi
}

# compat_image_begin NAME IMAGE "EXTRA FILES" starts the recipe of
# images/NAME: builds the base image if it is missing and sets $base to its
# name and $recipe to the hash of the recipe's files (NAME/Dockerfile,
# NAME/build-image.sh, NAME/versions.env, the libraries, and EXTRA FILES,
# relative to images/) and of the base image's id, so that a change of any
# rebuilds IMAGE. When IMAGE is current, it prints its name and exits the
# recipe. Otherwise it sets $start, $tmp (a scratch directory removed when
# the recipe exits) and $log (the docker build log in it).
compat_image_begin() {
	local name=$1 image=$2 extra=$3 images base_id
	base=$("$here/../base/build.sh" | tail -n 1)
	[ -n "$base" ] || compat_die "images/base/build.sh printed no image name"
	images=$(cd "$here/.." && pwd)
	base_id=$(docker image inspect -f '{{.Id}}' "$base")
	recipe=$(compat_hash "$images" "$name/Dockerfile $name/build-image.sh $name/versions.env lib/common.sh lib/image.sh${extra:+ $extra}" "base=$base_id")
	if compat_image_current "$image" "$recipe"; then
		printf '%s\n' "$image"
		exit 0
	fi
	start=$(date +%s)
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/compat-$name-image.XXXXXX")
	# shellcheck disable=SC2064 # $tmp is meant to be expanded now
	trap "rm -rf '$tmp'" EXIT
	log=$tmp/docker-build.log
}
