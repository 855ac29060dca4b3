# shellcheck shell=bash
# Helpers shared by the image recipes. Source this file; do not run it.
#
# Nothing here names a package mirror: every repository URI is read at run
# time from the host's own apt configuration (/etc/apt).

COMPAT_DIST=${COMPAT_DIST:-bookworm}

compat_log() { printf '[%s] %s\n' "${COMPAT_LOG_TAG:-images}" "$*" >&2; }

compat_die() {
	printf '[%s] ERROR: %s\n' "${COMPAT_LOG_TAG:-images}" "$*" >&2
	exit 1
}

compat_need() { # compat_need CMD "apt package that provides it"
	command -v "$1" >/dev/null 2>&1 ||
		compat_die "'$1' not found; install it with: apt-get install -y $2"
}

# Root of the build cache (outputs never go into git).
compat_cache_root() {
	printf '%s\n' "${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/compat}"
}

# Prints one line per host apt source entry:
#   TYPE<TAB>URI<TAB>SUITE<TAB>COMPONENTS<TAB>SIGNED-BY
# from deb822 files (sources.list.d/*.sources) and one-line files
# (sources.list, sources.list.d/*.list). Disabled deb822 stanzas are skipped.
compat_apt_entries() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '
		function flush(   nt, nu, ns, t, u, s, i, j, k, T, U, S) {
			if (tolower(F["enabled"]) != "no" && F["types"] != "" && F["uris"] != "" && F["suites"] != "") {
				nt = split(F["types"], T, /[ \t]+/)
				nu = split(F["uris"], U, /[ \t]+/)
				ns = split(F["suites"], S, /[ \t]+/)
				for (i = 1; i <= nt; i++) for (j = 1; j <= nu; j++) for (k = 1; k <= ns; k++)
					if (T[i] != "" && U[j] != "" && S[k] != "")
						printf "%s\t%s\t%s\t%s\t%s\n", T[i], U[j], S[k], F["components"], F["signed-by"]
			}
			delete F; key = ""
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { if (key != "") { sub(/^[ \t]+/, ""); F[key] = F[key] " " $0 } ; next }
		{
			i = index($0, ":"); if (i == 0) next
			key = tolower(substr($0, 1, i - 1)); v = substr($0, i + 1)
			gsub(/^[ \t]+|[ \t]+$/, "", v); F[key] = v
		}
		END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '
		/^[ \t]*(#|$)/ { next }
		{
			sub(/#.*/, ""); n = split($0, W, /[ \t]+/); i = 1; if (W[1] == "") i++
			type = W[i++]; sb = ""
			if (substr(W[i], 1, 1) == "[") {
				opts = ""
				while (i <= n) { opts = opts " " W[i]; if (W[i] ~ /\]$/) { i++; break } ; i++ }
				if (match(opts, /signed-by=[^] ]+/)) sb = substr(opts, RSTART + 10, RLENGTH - 10)
			}
			uri = W[i++]; suite = W[i++]; comps = ""
			for (; i <= n; i++) if (W[i] != "") comps = comps (comps == "" ? "" : " ") W[i]
			if (type != "" && uri != "" && suite != "") printf "%s\t%s\t%s\t%s\t%s\n", type, uri, suite, comps, sb
		}' "$f"
	done
}

# Prints the host's Debian archive entries re-targeted at $COMPAT_DIST:
#   URI<TAB>SUITE<TAB>COMPONENTS<TAB>SIGNED-BY
# A host suite NAME maps to DIST, NAME-updates to DIST-updates and
# NAME-security to DIST-security; other suites (backports, ...) are dropped.
compat_debian_entries() {
	compat_apt_entries | awk -F '\t' -v dist="$COMPAT_DIST" '
	$1 != "deb" && $1 != "deb-src" { next }
	{
		s = $3
		if (s ~ /^[a-z]+$/) t = dist
		else if (s ~ /^[a-z]+-updates$/) t = dist "-updates"
		else if (s ~ /^[a-z]+-security$/) t = dist "-security"
		else next
		line = $2 "\t" t "\t" $4 "\t" $5
		if (!(line in seen)) { seen[line] = 1; print line }
	}'
}

# The URI of the main archive (the entry whose suite is DIST itself).
compat_debian_mirror() {
	local uri
	uri=$(compat_debian_entries | awk -F '\t' -v dist="$COMPAT_DIST" '$2 == dist { print $1; exit }')
	[ -n "$uri" ] || compat_die "no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources; add a 'deb URI <codename> main' entry for Debian and retry"
	printf '%s\n' "$uri"
}

# compat_write_sources_list TYPE FILE [KEEP_SIGNED_BY=yes]
# Writes a one-line-format list of TYPE ("deb" or "deb-src") entries for
# $COMPAT_DIST, derived from the host's Debian entries.
compat_write_sources_list() {
	local type=$1 out=$2 keep_sb=${3:-yes} uri suite comps sb n=0
	: >"$out"
	while IFS=$'\t' read -r uri suite comps sb; do
		[ -n "$comps" ] || comps=main
		if [ "$keep_sb" = yes ] && [ -n "$sb" ] && [ -r "$sb" ]; then
			printf '%s [signed-by=%s] %s %s %s\n' "$type" "$sb" "$uri" "$suite" "$comps" >>"$out"
		else
			printf '%s %s %s %s\n' "$type" "$uri" "$suite" "$comps" >>"$out"
		fi
		n=$((n + 1))
	done < <(compat_debian_entries)
	[ "$n" -gt 0 ] || compat_die "could not derive any Debian $type entry from the host's /etc/apt sources"
}

# Private apt options: a given source list, its own lists/cache directories,
# so the host's apt state is never touched. Sets the array COMPAT_APT_OPTS.
# compat_private_apt DIR TYPE... (DIR is created; TYPE deb and/or deb-src)
compat_private_apt() {
	local dir=$1 type
	shift
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	: >"$dir/sources.list"
	for type in "$@"; do
		compat_write_sources_list "$type" "$dir/sources.list.$type"
		cat "$dir/sources.list.$type" >>"$dir/sources.list"
	done
	COMPAT_APT_DIR=$dir
	COMPAT_APT_OPTS=(
		-o "Dir::Etc::SourceList=$dir/sources.list"
		-o "Dir::Etc::SourceParts=/dev/null"
		-o "Dir::State::Lists=$dir/lists"
		-o "Dir::Cache=$dir/cache"
		-o "Dir::Cache::pkgcache=$dir/cache/pkgcache.bin"
		-o "Dir::Cache::srcpkgcache=$dir/cache/srcpkgcache.bin"
		-o "Acquire::Languages=none"
	)
}

# compat_private_apt_update LOGDIR: "apt-get update" of the private lists,
# once per private apt dir.
compat_private_apt_update() {
	local logdir=$1
	[ -n "${COMPAT_APT_DIR:-}" ] || compat_die "internal: compat_private_apt must run before compat_private_apt_update"
	[ -f "$COMPAT_APT_DIR/.updated" ] && return 0
	compat_log "apt-get update (private lists, derived from /etc/apt)"
	if ! apt-get "${COMPAT_APT_OPTS[@]}" -q update >"$logdir/apt-update.log" 2>&1; then
		tail -n 20 "$logdir/apt-update.log" >&2
		compat_die "apt-get update with the private source list failed (log $logdir/apt-update.log); check the Debian entries in /etc/apt and that the archive is reachable"
	fi
	touch "$COMPAT_APT_DIR/.updated"
}

# compat_fetch_source PKG VERSION LOGDIR
# Downloads Debian source package PKG=VERSION once into
# $(compat_cache_root)/sources/PKG_VERSION/ and prints the .dsc path.
compat_fetch_source() {
	local pkg=$1 ver=$2 logdir=$3 dir dsc offered
	dir=$(compat_cache_root)/sources/${pkg}_${ver#*:}
	dsc=$dir/${pkg}_${ver#*:}.dsc
	if [ ! -f "$dir/.complete" ]; then
		compat_private_apt_update "$logdir"
		offered=$(apt-cache "${COMPAT_APT_OPTS[@]}" showsrc "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -u)
		if ! grep -qxF -- "$ver" <<<"$offered"; then
			compat_die "source package $pkg=$ver is not offered by the Debian archive in /etc/apt (offered: $(echo $offered)); update the pin in ${here:+images/$(basename "$here")/}versions.env"
		fi
		rm -rf "$dir"
		mkdir -p "$dir"
		compat_log "apt-get source $pkg=$ver"
		if ! (cd "$dir" && apt-get "${COMPAT_APT_OPTS[@]}" -o APT::Sandbox::User=root -q \
			source --download-only "$pkg=$ver") >"$logdir/fetch-$pkg.log" 2>&1; then
			tail -n 20 "$logdir/fetch-$pkg.log" >&2
			compat_die "apt-get source $pkg=$ver failed (log $logdir/fetch-$pkg.log); the pool may not serve this version's source: pick one that 'apt-cache showsrc $pkg' lists and that downloads"
		fi
		[ -f "$dsc" ] || compat_die "apt-get source $pkg=$ver did not produce $dsc"
		touch "$dir/.complete"
	fi
	printf '%s\n' "$dsc"
}

# sha256 of a list of files (names relative to $1 are part of the hash,
# so renaming a patch changes the key) plus extra strings.
# compat_hash BASEDIR "FILE..." "EXTRA..."
compat_hash() {
	local base=$1 files=$2 extra=$3 f
	{
		for f in $files; do
			[ -f "$base/$f" ] || compat_die "recipe file missing: $base/$f"
			printf 'file %s %s\n' "$f" "$(sha256sum <"$base/$f" | cut -d' ' -f1)"
		done
		printf 'extra %s\n' "$extra"
	} | sha256sum | cut -d' ' -f1
}

# compat_reference_image NAME DEB_VERSION prints the reference image's
# default name for suite NAME built from DEB_VERSION: compat/NAME-reference
# tagged with the version without its epoch, '+' '~' ':' mapped to '_' '_' '-' (Docker tags
# allow none of them). The one place the tag is computed: build-image.sh
# builds it, build-wasm.sh records it in build-info.json, Go reads it
# there (a COMPAT_*_REFERENCE_IMAGE variable overrides it everywhere).
compat_reference_image() {
	printf 'compat/%s-reference:%s\n' "$1" "$(printf '%s' "${2#*:}" | tr '+~:' '__-')"
}
