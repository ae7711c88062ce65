#!/usr/bin/env bash
#
# run_tests.sh: every test suite, against the cluster that cluster.sh started.
#
# First the pg_regress suite (sql/*.sql against expected/*.out, through
# PGXS's installcheck), then each test/test_*.py suite, which prints its own
# "N passed, N failed" as its last line.  Then, for each other PostgreSQL
# version that ../shared/postgresql/ provides as a tarball (or each pg_config
# in RETRAIN_PG_CONFIGS, separated by spaces), the suites whose outcome can
# depend on the version (VERSION_SUITES) on a throwaway cluster of that
# version.  Ends with one line counting every test of every suite and run,
# and exits non-zero if anything failed or could not run.
#
# RETRAIN_SUITES (set by cluster.sh's `suites` job) limits a run to the
# suites it names, on the one cluster, with no other versions.

set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${RETRAIN_TMP:?run through test/cluster.sh (make test)}"

total_passed=0
total_failed=0
summary=()
suites=${RETRAIN_SUITES:-}
build=${RETRAIN_BUILD:-$repo}
VERSION_SUITES="pg_regress test_upgrade.py test_worker.py test_partitions.py"

# A suite's counts from the "N passed, N failed" its log ends with; a suite
# that died before it could count, or exited non-zero with nothing failed,
# counts as one failure.
record_log() {
	local name=$1 log=$2 rc=$3 counts failed
	counts=$(tail -n 1 "$log" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p')
	if [ -z "$counts" ]; then
		record "$name" 0 1
		return
	fi
	set -- $counts
	failed=$2
	[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
	record "$name" "$1" "$failed"
}

wanted() {
	[ -z "$suites" ] || [[ " $suites " == *" $1 "* ]]
}

record() {
	summary+=("$(printf '%-28s %s passed, %s failed' "$1:" "$2" "$3")")
	total_passed=$((total_passed + $2))
	total_failed=$((total_failed + $3))
}

# pg_regress
if wanted pg_regress; then
	out=$RETRAIN_TMP/regress
	mkdir -p "$out"
	log=$RETRAIN_TMP/pg_regress.log
	echo "== pg_regress: sql/ against expected/"
	# pg_regress's "ok" lines became "ok N" in PostgreSQL 16: count both.
	make -s -C "$build" -f "$repo/Makefile" PG_CONFIG="$RETRAIN_PGBIN/pg_config" installcheck \
		EXTRA_REGRESS_OPTS="--outputdir=$out" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	passed=$(grep -cE '(\.\.\. +ok|^ok +[0-9]+ )' "$log")
	failed=$(grep -cE '(\.\.\. +(FAILED|failed)|^not ok +[0-9]+ )' "$log")
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1 # pg_regress itself could not run
	fi
	if [ -s "$out/regression.diffs" ]; then
		echo "--- regression.diffs ---"
		cat "$out/regression.diffs"
		echo "--- end of regression.diffs ---"
	fi
	record pg_regress "$passed" "$failed"
fi

# Python suites
for suite in "$repo"/test/test_*.py; do
	[ -e "$suite" ] || continue
	name=$(basename "$suite")
	wanted "$name" || continue
	# runs below, once, when Citus is installed
	[ "$name" = test_citus.py ] && continue
	log=$RETRAIN_TMP/$name.log
	echo
	echo "== $name"
	(cd "$repo/test" && "$RETRAIN_PYTHON" "$suite") 2>&1 | tee "$log"
	record_log "$name" "$log" "${PIPESTATUS[0]}"
done

if [ "$total_failed" -ne 0 ]; then
	echo
	echo "== last lines of the server log"
	tail -n 20 "$RETRAIN_TMP/server.log"
fi

# A run limited to some suites is one version's part of a larger run.
if [ -n "$suites" ]; then
	echo
	printf '%s\n' "${summary[@]}"
	echo "$total_passed passed, $total_failed failed"
	[ "$total_failed" -eq 0 ]
	exit
fi

# The other versions: each built, installed and run on its own cluster.
shared=$repo/../shared/postgresql
others=()
skipped=()
if [ -n "${RETRAIN_PG_CONFIGS:-}" ]; then
	for pg_config in $RETRAIN_PG_CONFIGS; do
		others+=("$pg_config")
	done
elif ls "$shared"/pg*.tar.xz >/dev/null 2>&1; then
	echo
	echo "== other PostgreSQL versions from $shared"
	if [ -f "$shared/SHA256SUMS" ] && ! (cd "$shared" && sha256sum --quiet -c SHA256SUMS); then
		record "$shared" 0 1
	else
		for tarball in "$shared"/pg*.tar.xz; do
			tree=$RETRAIN_TMP/$(basename "$tarball" .tar.xz)
			mkdir -p "$tree"
			if tar -xJf "$tarball" -C "$tree"; then
				others+=("$tree/bin/pg_config")
			else
				record "$(basename "$tarball")" 0 1
			fi
		done
	fi
else
	skipped+=("PostgreSQL 16, 17 and 18 (no tarballs in ../shared/postgresql and no RETRAIN_PG_CONFIGS)")
fi
for pg_config in "${others[@]}"; do
	version=$("$pg_config" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	label="PostgreSQL ${version:-?} suites"
	log=$RETRAIN_TMP/pg${version:-unknown}.log
	echo
	echo "== $label: $VERSION_SUITES ($pg_config)"
	RETRAIN_PG_CONFIG=$pg_config RETRAIN_SUITES=$VERSION_SUITES RETRAIN_BUILD= \
		bash "$repo/test/cluster.sh" suites 2>&1 | tee "$log"
	record_log "$label" "$log" "${PIPESTATUS[0]}"
done

# Citus: test_citus.py starts its own coordinator and two workers on the
# system's PostgreSQL 15, with the package from ../shared/citus that
# cluster.sh installs as root.  Before deb_check.sh, which replaces the
# installed retrain with its package's and removes it afterwards.
citus_deb=$(ls "$repo"/../shared/citus/*.deb 2>/dev/null | tail -n 1)
if [ -f "$("$RETRAIN_PGBIN/pg_config" --sharedir)/extension/citus.control" ]; then
	log=$RETRAIN_TMP/test_citus.py.log
	echo
	echo "== test_citus.py"
	(cd "$repo/test" && "$RETRAIN_PYTHON" "$repo/test/test_citus.py") 2>&1 | tee "$log"
	record_log test_citus.py "$log" "${PIPESTATUS[0]}"
elif [ -n "$citus_deb" ]; then
	skipped+=("Citus (../shared/citus has the package, but installing it needs root: sudo make test)")
else
	skipped+=("Citus (../shared/citus provides no package)")
fi

# The Debian package: built, installed into the system, checked, removed.
if [ "$(id -u)" -eq 0 ]; then
	log=$RETRAIN_TMP/deb_check.log
	echo
	echo "== deb_check.sh: the Debian package"
	bash "$repo/test/deb_check.sh" 2>&1 | tee "$log"
	record_log deb_check.sh "$log" "${PIPESTATUS[0]}"
else
	skipped+=("the Debian package (deb_check.sh installs it, so it needs root: sudo make deb-check)")
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
# What was not run, in one line, so a green run does not read as "tested
# on every version".
if [ ${#skipped[@]} -eq 0 ]; then
	echo "skipped: nothing"
else
	echo "skipped: $(IFS=';'; echo "${skipped[*]}" | sed 's/;/; /g')"
fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
