# build.awk: assembles retrain's install and upgrade scripts from the
# feature files of sql/install/ (see CONTRIBUTING.md, "The SQL surface").
#
#   awk -v mode=install -v version=V -f build.awk FILES...
#   awk -v mode=upgrade -v from=F -v version=V -f build.awk FILES...
#
# Every feature file is cut into sections by marker lines:
#
#   -- @once      objects PostgreSQL cannot replace in place (tables, types,
#                 sequences, indexes, operators) with their comments, grants
#                 and pg_extension_config_dump, and a base type's I/O
#                 functions (*_in, *_out, *_recv, *_send), which must exist
#                 before its CREATE TYPE: run by the install script
#                 only; a change to them ships in sql/updates/.
#   -- @replace   functions, aggregates, views and triggers (CREATE OR
#                 REPLACE) and their comments: run by the install script and
#                 again by every upgrade script, so a changed function ships
#                 in the upgrade without being written twice.  Who may
#                 execute a function is decided by privileges.sql.
#
# mode=install prints every section of every file; mode=upgrade prints the
# @replace sections only, and files under sql/updates/ whole (the Makefile
# passes the update file first and its .post.sql file, if any, last).
# A statement outside a section, or one in the wrong kind of section, stops
# the build with the file and line: the upgrade test would catch the
# consequence, but later and less plainly.

BEGIN {
	if (mode == "install") {
		printf "-- retrain %s: install script, built by make from sql/install/ (see CONTRIBUTING.md).\n", version
		printf "-- Loaded by CREATE EXTENSION retrain; edit the feature files, not this file.\n"
		printf "\\echo Use \"CREATE EXTENSION retrain\" to load this file. \\quit\n"
	} else if (mode == "upgrade") {
		printf "-- retrain %s to %s: upgrade script, built by make from sql/updates/ and the\n", from, version
		printf "-- @replace sections of sql/install/ (see CONTRIBUTING.md); edit those, not this file.\n"
		printf "\\echo Use \"ALTER EXTENSION retrain UPDATE TO '%s'\" to load this file. \\quit\n", version
	} else {
		print "build.awk: mode must be install or upgrade" > "/dev/stderr"
		failed = 1
		exit 1
	}
}

FNR == 1 {
	section = ""
	# an update file is the upgrade's own: all of it runs
	verbatim = (FILENAME ~ /(^|\/)updates\//)
	printf "\n-- %s\n", FILENAME
}

verbatim {
	print
	next
}

function fail(msg) {
	printf "%s:%d: %s\n", FILENAME, FNR, msg > "/dev/stderr"
	failed = 1
	exit 1
}

/^-- @once([ \t]|$)/ {
	section = "once"
	if (mode == "install")
		print
	next
}

/^-- @replace([ \t]|$)/ {
	section = "replace"
	print
	next
}

# A statement starts at the beginning of a line in this project's style.
/^[A-Za-z]/ {
	if (section == "")
		fail("statement before the first -- @once or -- @replace marker")
	if (section == "replace" && ($0 ~ /^CREATE[ \t]+(FUNCTION|AGGREGATE|VIEW|TRIGGER|PROCEDURE)[ \t]/))
		fail("an @replace section creates with CREATE OR REPLACE, so that upgrades can run it again")
	if (section == "replace" && ($0 ~ /^CREATE[ \t]+(TABLE|TYPE|INDEX|UNIQUE[ \t]+INDEX|SEQUENCE|OPERATOR|SCHEMA)[ \t]/ ||
	                             $0 ~ /^ALTER[ \t]+TABLE[ \t]/ ||
	                             $0 ~ /pg_extension_config_dump/))
		fail("this belongs in an @once section: an @replace section only creates what CREATE OR REPLACE can replace")
	# Privileges granted or revoked again by an upgrade would make the site's
	# own grants the extension's initial privileges (see privileges.sql).
	if (section == "replace" && $0 ~ /^(GRANT|REVOKE)[ \t]/)
		fail("privileges are set in an @once section beside a table, or by sql/install/privileges.sql for functions")
	# ... but a base type's input, output, receive and send functions must
	# exist before its CREATE TYPE, so they sit beside it.
	if (section == "once" && $0 ~ /^CREATE[ \t]+(OR[ \t]+REPLACE[ \t]+)?(FUNCTION|AGGREGATE|VIEW|TRIGGER|PROCEDURE)[ \t]/ &&
	    $0 !~ /^CREATE[ \t]+FUNCTION[ \t]+[^ \t(]+_(in|out|recv|send)\(/)
		fail("functions, aggregates, views and triggers belong in an @replace section")
}

{
	if (mode == "install" || section == "replace")
		print
}

END {
	if (failed)
		exit 1
}
