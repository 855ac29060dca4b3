# shellcheck shell=bash
# Profile-guided optimisation of python.wasm, sourced by build-wasm.sh when
# COMPAT_PY_PGO=yes, after configure and before the final make. It uses
# build-wasm.sh's variables (src, work, logs, jobs, py_llvm, build_python,
# images) and helpers (run_logged, fail, compat_heavy).
#
# The steps are those of CPython's own "make profile-opt", which cannot run
# a cross build's interpreter: build instrumented, run the training on the
# instrumented interpreter, merge the profiles, clean, build again with the
# profile. Here the instrumentation is clang's IR-level one
# (-fprofile-generate) with LLVM's profile runtime built for wasm32-wasi by
# images/lib/clang-rt-profile, and the training runs in the vkernel (the
# interpreter imports vkernel calls: no other runtime runs it), one
# interpreter per regrtest module, $jobs at a time, each writing its
# profile through WASI into the guest's /pgo (one file per process: %p).
# The training is CPython's PGO task, the modules "-m test --pgo" runs
# (PGO_TESTS in Lib/test/libregrtest/pgo.py of the pinned source), not the
# benchmark's workloads. A module's failing tests do not stop the build
# (they do not stop CPython's either); an interpreter that does not run,
# or no profile at all, does.

# The longest one training module may run (instrumented, in the vkernel).
pgo_module_timeout=900

# pgo_profile: sets pgo_profdata (the merged profile), pgo_info (a JSON
# file for build-info.json), t_pgo_gen and t_pgo_train, and leaves the
# source tree clean for the profile-guided build.
pgo_profile() {
	local pgo=$work/pgo rt_out rt libs t0 compat root lib mod n st failed
	mkdir -p "$pgo" "$logs/pgo-train"

	rt_out=$("$images/lib/clang-rt-profile/build.sh" "$py_llvm" 2>"$logs/clang-rt-profile.log" | tail -n 1) ||
		fail "building the profile runtime (images/lib/clang-rt-profile)" "$logs/clang-rt-profile.log"
	rt=$rt_out/libclang_rt.profile-wasm32.a
	[ -f "$rt" ] || fail "the profile runtime's build (no $rt)" "$logs/clang-rt-profile.log"

	# ----------------------------------------------- instrumented build
	# configure's LIBS (vkposix, wasi-libc's emulations) plus the runtime,
	# after every object: clang's wasm driver does not link it.
	libs=$(sed -n 's/^LIBS=[[:space:]]*//p' "$src/Makefile")
	[ -n "$libs" ] || compat_die "no LIBS line in $src/Makefile"
	t0=$(date +%s)
	run_logged "make -j$jobs (instrumented)" "$logs/make-instrumented.log" \
		compat_heavy make -C "$src" -j"$jobs" CFLAGS_NODIST=-fprofile-generate \
		LDFLAGS_NODIST=-fprofile-generate LIBS="$libs $rt"
	compat_need_output "make (instrumented)" "$logs/make-instrumented.log" "$src/python.wasm"
	run_logged "make install (instrumented)" "$logs/install-instrumented.log" \
		nice make -C "$src" install DESTDIR="$pgo/stage"
	lib=$pgo/stage/usr/lib
	[ -f "$lib/python3.11/test/libregrtest/pgo.py" ] ||
		compat_die "the instrumented install has no $lib/python3.11/test/libregrtest/pgo.py"
	# The test packages make install leaves out (test_sqlite3 is one of
	# the training's modules), as in the build's own stdlib.
	for t in test_capi test_sqlite3 test_tomllib; do
		[ -d "$lib/python3.11/test/$t" ] || cp -a "$src/Lib/test/$t" "$lib/python3.11/test/$t"
	done
	t_pgo_gen=$(($(date +%s) - t0))

	# ------------------------------------------------ the vkernel, a guest
	if [ -n "${COMPAT_BIN:-}" ]; then
		compat=$COMPAT_BIN
	else
		compat=$pgo/compat
		run_logged "go build compat (to run the training)" "$logs/go-build.log" \
			env -C "$images/.." nice go build -o "$compat" ./cmd/compat
	fi
	# The guest's root as the python adapter lays it out: the interpreter
	# at /usr/bin/python3.11 (sys.executable: tests run it as a child), the
	# stdlib read-only at /usr/lib, /tmp, /dev/null, and /pgo for profiles.
	root=$pgo/root
	mkdir -p "$root/tmp" "$root/usr/lib" "$root/usr/bin" "$root/dev" "$root/pgo"
	mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || : >"$root/dev/null"
	cp "$src/python.wasm" "$root/usr/bin/python3.11"
	cat >"$pgo/spec.json" <<-EOF
		{"entries": [{"name": "python3.11", "wasm": "$root/usr/bin/python3.11",
		  "paths": ["/usr/bin/python3.11"],
		  "resources": {"mounts": [{"guest": "/"}, {"guest": "/usr/lib", "read_only": true}],
		    "connect": ["127.0.0.0/8"], "processes": 16}}]}
	EOF
	# A private cache (AOT code, audit log): the instrumented module's
	# compiled code is of no use after this build.
	run_logged "compat keygen" "$logs/pgo-keygen.log" \
		env COMPAT_CACHE="$pgo/cache" "$compat" keygen -out "$pgo/key"
	run_logged "compat megabinary build (instrumented python.wasm)" "$logs/pgo-megabinary.log" \
		compat_heavy env COMPAT_CACHE="$pgo/cache" "$compat" megabinary build \
		-spec "$pgo/spec.json" -out "$pgo/python.mb" -key "$pgo/key" -audit "$pgo/audit.jsonl"

	# pgo_exec PROFILE ARG...: runs the instrumented interpreter with ARGs,
	# writing its profile to the guest path PROFILE.
	pgo_exec() {
		local profile=$1
		shift
		env COMPAT_CACHE="$pgo/cache" timeout -k 10 "$pgo_module_timeout" nice "$compat" exec \
			-megabinary "$pgo/python.mb" -pubkey "$pgo/key.pub" -cache "$pgo/cache" -audit "$pgo/audit.jsonl" \
			-mount "/=$root" -mount "/usr/lib=$lib:ro" \
			-env TMPDIR=/tmp -env HOME=/tmp -env LC_ALL=C.UTF-8 -env PYTHONHASHSEED=0 \
			-env PYTHONDONTWRITEBYTECODE=1 -env "LLVM_PROFILE_FILE=$profile" \
			-argv0 /usr/bin/python3.11 "$root/usr/bin/python3.11" "$@"
	}
	# One run first: the interpreter starts, exits and writes a profile.
	run_logged "instrumented python.wasm in the vkernel" "$logs/pgo-smoke.log" \
		pgo_exec /tmp/smoke-%p.profraw -c 'import sys; print(sys.version)'
	ls "$root"/tmp/smoke-*.profraw >/dev/null 2>&1 ||
		fail "the instrumented python.wasm wrote no profile (LLVM_PROFILE_FILE=/tmp/smoke-%p.profraw)" "$logs/pgo-smoke.log"

	# --------------------------------------------------------- training
	if [ -n "$py_pgo_tests" ]; then
		pgo_tests=$py_pgo_tests
	else
		pgo_tests=$("$build_python" -E -c 'import sys; sys.path.insert(0, sys.argv[1]); import pgo; print(" ".join(pgo.PGO_TESTS))' \
			"$src/Lib/test/libregrtest") || compat_die "could not read PGO_TESTS from $src/Lib/test/libregrtest/pgo.py"
	fi
	[ -n "$pgo_tests" ] || compat_die "the PGO training list is empty"
	mkdir -p "$pgo/status"
	compat_log "PGO training: $(wc -w <<<"$pgo_tests") regrtest modules, $jobs at a time (logs in $logs/pgo-train)"
	t0=$(date +%s)
	# Heavy: the training holds the heavy-build lock as a whole (fd 8).
	exec 8>"$COMPAT_HEAVY_LOCK"
	flock 8
	for mod in $pgo_tests; do
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
		(
			st=0
			pgo_exec "/pgo/$mod-%p.profraw" -m test --pgo "$mod" >"$logs/pgo-train/$mod.log" 2>&1 || st=$?
			echo "$st" >"$pgo/status/$mod"
		) &
	done
	wait
	flock -u 8
	exec 8>&-
	t_pgo_train=$(($(date +%s) - t0))
	failed=
	for mod in $pgo_tests; do
		st=$(cat "$pgo/status/$mod" 2>/dev/null || echo missing)
		if [ "$st" != 0 ]; then failed="$failed $mod:$st"; fi
	done
	n=$(find "$root/pgo" -name '*.profraw' | wc -l)
	compat_log "PGO training took ${t_pgo_train} s: $n profiles; modules not exiting 0:${failed:- none}"
	[ "$n" -gt 0 ] || compat_die "the PGO training wrote no profile (logs in $logs/pgo-train)"

	pgo_profdata=$pgo/python.profdata
	run_logged "llvm-profdata-$py_llvm merge ($n profiles)" "$logs/pgo-merge.log" \
		nice "llvm-profdata-$py_llvm" merge -o "$pgo_profdata" "$root"/pgo/*.profraw
	"llvm-profdata-$py_llvm" show "$pgo_profdata" >"$logs/pgo-show.log" 2>&1 ||
		fail "llvm-profdata-$py_llvm show" "$logs/pgo-show.log"
	run_logged "make clean (the instrumented objects)" "$logs/make-clean.log" nice make -C "$src" clean

	pgo_info=$work/pgo.json
	PGO_TESTS_RUN=$pgo_tests PGO_FAILED=$failed PGO_PROFILES=$n PGO_RT=$rt_out \
		PGO_PROFDATA=$pgo_profdata PGO_SHOW=$logs/pgo-show.log PGO_TRAIN_S=$t_pgo_train \
		PGO_GEN_S=$t_pgo_gen PGO_OUT=$pgo_info "$build_python" -E - <<-'PY' || compat_die "writing $pgo_info failed"
		import hashlib, json, os
		e = os.environ
		with open(e["PGO_PROFDATA"], "rb") as f:
		    digest = hashlib.sha256(f.read()).hexdigest()
		show = {}
		with open(e["PGO_SHOW"]) as f:
		    for line in f:
		        k, sep, v = line.partition(":")
		        if sep and k.strip() in ("Instrumentation level", "Total functions", "Maximum function count"):
		            show[k.strip()] = v.strip()
		info = {
		    "instrumentation": "clang -fprofile-generate (IR), -fprofile-use",
		    "profile_runtime": e["PGO_RT"],
		    "training": "python -m test --pgo MODULE, one interpreter per module, in the vkernel",
		    "training_modules": e["PGO_TESTS_RUN"].split(),
		    "modules_not_exiting_0": e["PGO_FAILED"].split(),
		    "profiles": int(e["PGO_PROFILES"]),
		    "profdata_sha256": digest,
		    "profdata": show,
		    "timings_s": {"instrumented_build": int(e["PGO_GEN_S"]), "training": int(e["PGO_TRAIN_S"])},
		}
		with open(e["PGO_OUT"], "w") as f:
		    json.dump(info, f, indent=2)
		PY
}
