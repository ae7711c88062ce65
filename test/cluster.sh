#!/usr/bin/env bash
#
# cluster.sh JOB: everything `make demo`, `make test` and `make bench` need.
#
# Installs missing Debian packages (as root), builds and installs retrain,
# starts a throwaway PostgreSQL 15 cluster in a fresh temporary directory
# (owned by the Debian `postgres` user when run as root, on a free port and
# a private socket directory, with retrain and pg_cron preloaded), runs JOB
# against it, and always stops and removes the cluster afterwards, also on
# failure or Ctrl-C.  Nothing is fixed (port, directory), so two runs can go
# on at once.
#
# JOB is one of:
#   demo    test/demo.sh      (KEEP=1 leaves the cluster running)
#   test    test/run_tests.sh
#   bench   test/bench.py
#   suites  test/run_tests.sh with only the suites named in RETRAIN_SUITES
#
# RETRAIN_PG_CONFIG names another PostgreSQL's pg_config (one of the trees
# test/versions.sh unpacks): retrain is then built out of tree in
# RETRAIN_BUILD (default: a directory beside that pg_config's tree) and
# installed into that tree, and the cluster runs its binaries.
#
# JOB sees the cluster through the usual libpq variables (PGHOST, PGPORT,
# PGUSER, PGDATABASE) and, for suites that restart or signal the server,
# RETRAIN_PGBIN, RETRAIN_PGDATA, RETRAIN_TMP and RETRAIN_RUNAS (the command
# prefix that runs a program as the cluster's owner; empty when that is us).

set -euo pipefail

job=${1:-}
case "$job" in
	demo | test | bench | suites) ;;
	*)
		echo "usage: $0 demo|test|bench|suites" >&2
		exit 2
		;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pg_config=${RETRAIN_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
if [ -n "${RETRAIN_PG_CONFIG:-}" ]; then
	[ -x "$pg_config" ] || { echo "retrain: RETRAIN_PG_CONFIG=$pg_config is not a program" >&2; exit 1; }
	pgbin=$("$pg_config" --bindir)
	pgver=$("$pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
	# The checkout's own build is PostgreSQL 15's: build beside the tree.
	build=${RETRAIN_BUILD:-$(dirname "$pgbin")/retrain-build}
else
	pgver=15
	pgbin=/usr/lib/postgresql/$pgver/bin
	build=$repo
fi
python=/usr/bin/python3
dbname=retrain
keep=${KEEP:-}

say() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'retrain: %s\n' "$*" >&2
	exit 1
}

packages=(libcjson-dev python3-sklearn python3-scipy python3-psycopg)
# Real components the test suites run: test_clients.py's connection pooler,
# test_exporter.py's Prometheus exporter.
[ "$job" = test ] && packages+=(pgbouncer prometheus-postgres-exporter)
# Another version's tree brings its own server, headers and pg_cron.
[ -n "${RETRAIN_PG_CONFIG:-}" ] ||
	packages=(postgresql-$pgver postgresql-server-dev-$pgver postgresql-$pgver-cron "${packages[@]}")

ensure_packages() {
	local p missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages: ${missing[*]}
retrain: install them with: sudo apt-get install ${missing[*]}"
	fi
	say "installing missing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Another run may hold apt's lock; wait for it rather than fail.
	apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
	apt-get -q -y -o DPkg::Lock::Timeout=600 install "${missing[@]}" >/dev/null
}

# Citus for test_citus.py (and make bench's Citus cases): Debian has no
# package, so ../shared/citus provides one built for PostgreSQL 15.  Only
# root can install it; without it those suites say they did not run.
ensure_citus() {
	local deb
	[ -z "${RETRAIN_PG_CONFIG:-}" ] && [ "$job" != demo ] || return 0
	[ -f "$("$pg_config" --sharedir)/extension/citus.control" ] && return 0
	deb=$(ls "$repo"/../shared/citus/postgresql-$pgver-citus-*.deb 2>/dev/null | tail -n 1)
	[ -n "$deb" ] && [ "$(id -u)" -eq 0 ] || return 0
	say "installing Citus from $(basename "$deb")"
	apt-get -q -y -o DPkg::Lock::Timeout=600 install "$(realpath "$deb")" >/dev/null
}

# True when the installed extension files are the ones just built.
installed_is_current() {
	local pkglib share f
	pkglib=$("$pg_config" --pkglibdir)
	share=$("$pg_config" --sharedir)/extension
	cmp -s "$build/retrain.so" "$pkglib/retrain.so" || return 1
	cmp -s "$repo/retrain.control" "$share/retrain.control" || return 1
	# the scripts built from sql/install/ and the released ones
	for f in "$build"/sql/retrain--*.sql "$repo"/sql/released/retrain--*.sql; do
		cmp -s "$f" "$share/$(basename "$f")" || return 1
	done
}

build_and_install() {
	local lock=/tmp/retrain-build.lock
	# Builds and installs from concurrent runs must not interleave: they
	# write the same object files and the same installed files.
	[ -e "$lock" ] || (umask 0 && : >>"$lock")
	exec 8<"$lock"
	flock 8
	say "building retrain for PostgreSQL $pgver"
	mkdir -p "$build"
	make -s -C "$build" -f "$repo/Makefile" PG_CONFIG="$pg_config" all >/dev/null
	if ! installed_is_current; then
		if [ "$(id -u)" -eq 0 ] || [ -w "$("$pg_config" --pkglibdir)" ]; then
			make -s -C "$build" -f "$repo/Makefile" PG_CONFIG="$pg_config" install >/dev/null
		else
			say "installing retrain into PostgreSQL's directories ($("$pg_config" --pkglibdir)," \
				"$("$pg_config" --sharedir)/extension); they belong to root, so this step uses sudo"
			command -v sudo >/dev/null ||
				die "sudo is not installed: run 'make install' as root, then this command again"
			sudo make -s -C "$build" -f "$repo/Makefile" PG_CONFIG="$pg_config" install >/dev/null
		fi
	fi
	flock -u 8
	exec 8<&-
}

tmp=
runas=()
port=

# Stop the server and remove its directory: on success, failure or signal.
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -z "$tmp" ]; then
		exit "$rc"
	fi
	if [ "$job" = demo ] && [ -n "$keep" ] && [ "$rc" -eq 0 ]; then
		local prefix=""
		[ ${#runas[@]} -gt 0 ] && prefix="${runas[*]} "
		cat <<EOF

The cluster is still running (KEEP=1). Connect with:
    psql -h $tmp -p $port -U postgres $dbname
Stop and remove it with:
    ${prefix}$pgbin/pg_ctl -D $tmp/data -m fast stop && rm -rf $tmp
EOF
		exit 0
	fi
	# run_tests.sh shows the log itself, before its closing count.
	if [ "$rc" -ne 0 ] && [ "$job" != test ] && [ "$job" != suites ] && [ -f "$tmp/server.log" ]; then
		echo "--- last lines of the server log ($tmp/server.log) ---" >&2
		tail -n 20 "$tmp/server.log" >&2 || true
	fi
	if [ -f "$tmp/data/postmaster.pid" ]; then
		"${runas[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			"${runas[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	exit "$rc"
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_cluster() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/retrain-$job.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	chmod 755 "$tmp"
	if [ "$(id -u)" -eq 0 ]; then
		# The server refuses to run as root: the cluster belongs to postgres.
		id postgres >/dev/null 2>&1 || die "the Debian 'postgres' user is missing (package postgresql-common)"
		chown postgres: "$tmp"
		runas=(runuser -u postgres --)
	fi

	say "starting a throwaway PostgreSQL $pgver cluster in $tmp"
	"${runas[@]}" "$pgbin/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --locale=C \
		>"$tmp/initdb.log" 2>&1 || {
		cat "$tmp/initdb.log" >&2
		die "initdb failed"
	}

	# Create the database before the first start, so that pg_cron's launcher
	# finds cron.database_name at once instead of failing until it exists.
	echo "CREATE DATABASE $dbname;" |
		"${runas[@]}" "$pgbin/postgres" --single -D "$tmp/data" postgres >/dev/null 2>"$tmp/single.log" || {
		cat "$tmp/single.log" >&2
		die "could not create database $dbname"
	}

	local attempt
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 40000))
		port_in_use "$port" && continue
		{
			echo
			echo "# --- set by test/cluster.sh ---"
			echo "port = $port"
			echo "listen_addresses = '127.0.0.1'"
			echo "unix_socket_directories = '$tmp'"
			echo "cron.database_name = '$dbname'"
			echo "cron.host = '$tmp'"
			echo "# --- test/postgresql.conf ---"
			cat "$repo/test/postgresql.conf"
		} | "${runas[@]}" tee -a "$tmp/data/postgresql.conf" >/dev/null
		if "${runas[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 start >/dev/null; then
			break
		fi
		# Most likely another process took the port in between: try another.
		"${runas[@]}" sed -i '/^# --- set by test\/cluster.sh ---$/,$d' "$tmp/data/postgresql.conf"
		port=
	done
	[ -n "$port" ] || die "could not start PostgreSQL (see $tmp/server.log)"

	export PGHOST=$tmp PGPORT=$port PGUSER=postgres PGDATABASE=$dbname
	export RETRAIN_PGBIN=$pgbin RETRAIN_PGDATA=$tmp/data RETRAIN_TMP=$tmp RETRAIN_BUILD=$build
	export RETRAIN_RUNAS="${runas[*]}" RETRAIN_PYTHON=$python
}

ensure_packages
ensure_citus
build_and_install
start_cluster

case "$job" in
	demo) bash "$repo/test/demo.sh" ;;
	test | suites) bash "$repo/test/run_tests.sh" ;;
	bench) "$python" "$repo/test/bench.py" ;;
esac
