# retrain: model-retraining runbooks inside PostgreSQL (PGXS build)
#
#   make demo      set up everything, start a throwaway PostgreSQL, run the demo
#   make test      set up everything, run every test suite
#   make bench     set up everything, run the benchmarks
#
# The usual PGXS targets (all, install, installcheck, clean) work as for any
# extension once PostgreSQL 15's server headers are installed.

EXTENSION = retrain

# The source tree: "./" in the usual build, or the directory of this Makefile
# when it is run from elsewhere (make -f /path/to/retrain/Makefile), as
# Debian's pg_buildext does and as test/versions.sh does to build for several
# PostgreSQL versions from one checkout.  PGXS sets srcdir and VPATH the same
# way, but only once it is included below.
top := $(dir $(firstword $(MAKEFILE_LIST)))
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(top)$(EXTENSION).control)
ifneq ($(abspath $(top)),$(abspath .))
# Out of tree: objects and built scripts go into src/ and sql/ here.
$(shell mkdir -p src sql)
endif

MODULE_big = retrain
OBJS = \
	src/retrain.o \
	src/util.o \
	src/agg_state.o \
	src/metrics_rank.o \
	src/metrics_confusion.o \
	src/metrics_loss.o \
	src/drift_hist.o \
	src/drift_category.o \
	src/drift_features.o \
	src/drift_ks.o \
	src/drift_kstest.o \
	src/rollup.o \
	src/rollup_read.o \
	src/labels.o \
	src/rollup_latency.o \
	src/policy.o \
	src/route.o \
	src/owner.o \
	src/monitoring.o \
	src/log.o \
	src/worker.o

# The SQL surface: feature files in sql/install/, assembled by sql/build.awk
# (see CONTRIBUTING.md) into the install script of this version and the
# upgrade script from the last released one.  Released scripts are kept in
# sql/released/ as they were released and never edited.
UPGRADE_FROM = 0.1.0
FEATURES = \
	header \
	agg_state \
	metrics_rank \
	metrics_confusion \
	metrics_loss \
	drift_stats \
	log \
	registry \
	baselines \
	routing \
	policy \
	lifecycle \
	citus \
	monitoring \
	partitions \
	queue \
	owner_checks \
	sources \
	evidence \
	guard \
	triggers \
	results \
	rollups \
	exporter \
	cron
FEATURE_FILES = $(addprefix $(top)sql/install/,$(addsuffix .sql,$(FEATURES)))
# Every built script ends with it, install and upgrade alike.
EPILOGUE = $(top)sql/install/privileges.sql

RETRAIN_INSTALL_SQL = sql/$(EXTENSION)--$(EXTVERSION).sql
RETRAIN_UPGRADE_SQL = $(foreach v,$(UPGRADE_FROM),sql/$(EXTENSION)--$(v)--$(EXTVERSION).sql)
# PGXS installs DATA from $(srcdir), so these names are relative to it.
DATA = $(patsubst $(top)%,%,$(wildcard $(top)sql/released/$(EXTENSION)--*.sql))
DATA_built = $(RETRAIN_INSTALL_SQL) $(RETRAIN_UPGRADE_SQL)

# pg_regress inputs sit in sql/ beside the install script; outputs in expected/.
REGRESS = \
	extension \
	conventions \
	version \
	metrics_rank \
	metrics_confusion \
	metrics_loss \
	metrics_parallel \
	agg_state \
	drift_stats \
	drift_baselines \
	drift_parallel \
	monitoring \
	guard \
	triggers \
	eligibility \
	sources \
	registry \
	bounds \
	decisions \
	freeze \
	gates \
	schedules_queue \
	evidence \
	versions \
	schedules \
	data_quality \
	report \
	results \
	rollups \
	exporter \
	request_ids
REGRESS_OPTS = --load-extension=$(EXTENSION)

# The documentation, installed into a directory of its own under PostgreSQL's
# (docs/*.md keep their names, which other extensions' may share; the
# index docs/README.md would meet README.md, which links to the same pages).
DOCS = README.md CHANGELOG.md LICENSE \
	$(filter-out docs/README.md,$(patsubst $(top)%,%,$(wildcard $(top)docs/*.md $(top)docs/*.yaml)))

PG_CPPFLAGS = -I$(srcdir)/src -DRETRAIN_VERSION='"$(EXTVERSION)"'
# -Wextra's unused-parameter check fires inside PostgreSQL's own headers
# (inline functions and PG_FUNCTION_ARGS), so it alone is switched off.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Werror

# Prefer PostgreSQL 15's own pg_config: /usr/bin/pg_config on Debian answers for
# the newest server installed, which need not be 15.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(wildcard $(shell $(PG_CONFIG) --pgxs 2>/dev/null))

ifneq ($(PGXS),)
include $(PGXS)
docmoduledir := extension/$(EXTENSION)
else
# Without the server headers only the set-up targets below can run; they
# install the headers first.
all install installcheck:
	@echo "retrain: PostgreSQL 15's server headers are missing (pg_config --pgxs found nothing)." >&2
	@echo "retrain: install postgresql-server-dev-15, or run 'make test', which sets everything up." >&2
	@exit 1
endif

ifneq ($(abspath $(top)),$(abspath .))
# PGXS searches the whole source tree (VPATH) for every file a rule names;
# then an in-tree build's objects and scripts there would pass for this
# build's.  Only sources are looked for there.
VPATH =
vpath %.c $(top)
vpath %.h $(top)
vpath %.control $(top)
endif

$(RETRAIN_INSTALL_SQL): $(FEATURE_FILES) $(EPILOGUE) $(top)sql/build.awk $(top)$(EXTENSION).control
	awk -v mode=install -v version=$(EXTVERSION) -f $(top)sql/build.awk $(FEATURE_FILES) $(EPILOGUE) > $@.tmp
	mv $@.tmp $@

# An upgrade runs the update file (what CREATE OR REPLACE cannot do: table
# changes, dropped functions), then every @replace section of the feature
# files, then the update's .post.sql file if there is one, then the epilogue.
sql/$(EXTENSION)--%--$(EXTVERSION).sql: $(top)sql/updates/%--$(EXTVERSION).sql $(FEATURE_FILES) $(EPILOGUE) \
		$(top)sql/build.awk $(top)$(EXTENSION).control $(wildcard $(top)sql/updates/*.post.sql)
	awk -v mode=upgrade -v from=$* -v version=$(EXTVERSION) -f $(top)sql/build.awk $< $(FEATURE_FILES) \
		$(wildcard $(top)sql/updates/$*--$(EXTVERSION).post.sql) $(EPILOGUE) > $@.tmp
	mv $@.tmp $@

# PGXS does not track header dependencies unless the server was configured
# with --enable-depend; every object depends on our few headers.
$(OBJS): $(wildcard $(top)src/*.h)
# The library reports the version it was built as (retrain.version()).
src/retrain.o: $(top)$(EXTENSION).control

.PHONY: demo test bench deb-check uninstall-docs

# PGXS removes DOCS by their names in the source tree, so docs/... would
# stay behind: the directory goes whole.
uninstall: uninstall-docs
uninstall-docs:
	rm -rf '$(DESTDIR)$(docdir)/$(docmoduledir)'

demo:
	@KEEP='$(KEEP)' bash $(top)test/cluster.sh demo

test:
	@bash $(top)test/cluster.sh test

bench:
	@bash $(top)test/cluster.sh bench

deb-check:
	@bash $(top)test/deb_check.sh
