#!/usr/bin/env bash
#
# deb_check.sh: build the Debian package from this checkout as Debian would
# (dpkg-buildpackage -b, debian/rules with the pgxs sequence, which runs the
# regression suite against the staged package on a throwaway cluster), install
# it into the system, run the regression suite against the installed package
# (pg_buildext installcheck, as debian/tests does), check what it installed,
# and remove it again.  `make deb-check` runs it alone; `make test` runs it
# after the other suites when run as root.
#
# Needs root (it installs a package).  Ends with "N passed, N failed".
# Whatever `make install` had put in PostgreSQL's directories before is put
# back afterwards (the package's files are the same paths).

set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
package=postgresql-15-retrain
pg_config=/usr/lib/postgresql/15/bin/pg_config
passed=0
failed=0

say() { printf '==> %s\n' "$*"; }
check() {
	local what=$1
	shift
	if "$@"; then
		echo "ok: $what"
		passed=$((passed + 1))
	else
		echo "FAILED: $what"
		failed=$((failed + 1))
	fi
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}

# The libpq variables of a running test cluster (make test sets them) would
# point pg_virtualenv's clusters at it: they could not start.
for v in $(compgen -e | grep '^PG'); do
	unset "$v"
done

if [ "$(id -u)" -ne 0 ]; then
	echo "deb-check needs root: it installs $package into the system"
	exit 2
fi

# What the build needs beyond make test's packages.
missing=()
for p in dpkg-dev debhelper postgresql-server-dev-all postgresql-server-dev-15 postgresql-15; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing missing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
	apt-get -q -y -o DPkg::Lock::Timeout=600 install "${missing[@]}" >/dev/null ||
		{ echo "could not install ${missing[*]}"; failed=1; finish; }
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/retrain-deb.XXXXXX")
# The throwaway clusters of the installchecks run as postgres and read the
# staged extension files from here.
chmod 755 "$work"
had_install=
[ -e "$($pg_config --pkglibdir)/retrain.so" ] && had_install=1
cleanup() {
	if dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q 'installed'; then
		dpkg -r "$package" >/dev/null 2>&1
	fi
	# The package's removal took make install's files with it.
	[ -n "$had_install" ] && make -s -C "$repo" PG_CONFIG="$pg_config" install >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

# The sources as a release tarball would have them: tracked and new files,
# no build products (an in-tree build's objects would be taken as built).
say "copying the sources to $work/retrain"
mkdir "$work/retrain"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$work/retrain"
else
	tar -C "$repo" --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude='sql/retrain--*.sql' \
		--exclude=results --exclude=log -cf - . | tar -xf - -C "$work/retrain"
fi

say "dpkg-buildpackage -b -us -uc (builds, then runs the regression suite on the staged package)"
check "dpkg-buildpackage builds $package and its build-time installcheck passes" \
	bash -c 'cd "$1" && dpkg-buildpackage -b -us -uc >"$2" 2>&1 || { tail -n 60 "$2"; exit 1; }' \
	_ "$work/retrain" "$work/build.log"
grep -E '^(ok|not ok|test )|tests passed|failed' "$work/build.log" | tail -n 3
deb=$(ls "$work"/${package}_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || finish

version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$repo/retrain.control")
check "the package's version is retrain.control's ($version)" \
	bash -c 'dpkg-deb -f "$1" Version | grep -q "^$2-"' _ "$deb" "$version"

say "installing $(basename "$deb")"
check "dpkg -i installs it" dpkg -i "$deb"

listed=$(dpkg -L "$package")
share=$($pg_config --sharedir)/extension
for f in "$($pg_config --pkglibdir)/retrain.so" "$share/retrain.control" "$share/retrain--$version.sql" \
	"$share/retrain--0.1.0.sql" "$share/retrain--0.1.0--$version.sql" \
	"$($pg_config --docdir)/extension/retrain/operations.md"; do
	# (dh_compress gzips the larger documents)
	check "it installs $f" grep -qxE "$f(\.gz)?" <<<"$listed"
done

say "pg_buildext installcheck against the installed package"
check "installcheck against the installed package passes" \
	bash -c 'cd "$1" && pg_buildext installcheck >"$2" 2>&1 || { tail -n 60 "$2"; exit 1; }' \
	_ "$work/retrain" "$work/installcheck.log"
grep -E 'tests passed|tests failed|failed \(ignored\)' "$work/installcheck.log" | tail -n 2

check "dpkg -r removes it" dpkg -r "$package"
check "no file of it is left" bash -c '! [ -e "$1" ]' _ "$($pg_config --pkglibdir)/retrain.so"

finish
