/*-------------------------------------------------------------------------
 *
 * retrain.c
 *	  Library entry point: initialisation and version reporting.
 *
 * The SQL-callable functions of this library work whether or not it is
 * listed in shared_preload_libraries; only the background worker needs
 * preloading, so _PG_init must make sense in both cases.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include <limits.h>

#include "retrain.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			retrain_max_bins = 10000;
char	   *retrain_check_at = NULL;
static int	retrain_prediction_retention = 0;

PG_FUNCTION_INFO_V1(retrain_version);

void
_PG_init(void)
{
	/*
	 * The worker's settings are defined whether or not the library is
	 * preloaded, so that they show (and are checked) in every session.
	 */
	retrain_define_worker_gucs();
	DefineCustomIntVariable("retrain.check_timeout",
							"Longest time one model's checks, or its canary's guard, may take in a check cycle.",
							"A model that takes longer is stopped and logged as check_failed; the cycle goes on with the next. 0: no limit.",
							&retrain_check_timeout,
							60000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	/*
	 * Set by retrain around a model owner's check, so that the check can
	 * answer for the time asked about (check(model, at) in the past, a test
	 * of a schedule).  A string, not a timestamptz: GUCs have no such type;
	 * ISO 8601 in UTC, which reads back the same whatever the DateStyle.
	 */
	DefineCustomStringVariable("retrain.check_at",
							   "Inside a model owner's eligibility or rollback check: the time the check is asked about.",
							   "ISO 8601 in UTC; empty outside a check. Read it as current_setting('retrain.check_at')::timestamptz.",
							   &retrain_check_at,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("retrain.max_bins",
							"Most buckets a histogram, PSI or quantile_edges may be asked for.",
							"A bound on what one call may allocate; a superuser may raise it.",
							&retrain_max_bins,
							10000, 2, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	/*
	 * Dropping the prediction log's old partitions deletes data: the server's
	 * configuration decides it (postgresql.conf, ALTER SYSTEM), not a
	 * session's SET, and the check cycle reads it.
	 */
	DefineCustomIntVariable("retrain.prediction_retention",
							"How long the check cycle keeps predictions and their outcomes, by prediction time.",
							"Partitions of retrain.predictions wholly older than this are dropped, with the outcomes of their predictions. 0: kept for ever.",
							&retrain_prediction_retention,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_MIN,
							NULL, NULL, NULL);

	/*
	 * Any retrain.* setting this library does not define is a typo.  Reserve
	 * the prefix so that such a setting is refused once the library is
	 * loaded, instead of silently becoming a placeholder nobody reads.
	 */
	MarkGUCPrefixReserved("retrain");

	/* Only a library loaded at server start can have a background worker. */
	if (process_shared_preload_libraries_in_progress)
		retrain_register_worker();
}

/*
 * retrain.version() returns the library's version and the PostgreSQL
 * version it was compiled against, e.g.
 * "retrain 0.1.0 (built against PostgreSQL 15.18)".  PG_VERSION may carry a
 * packager's suffix ("15.18 (Debian ...)"), so the number is used instead.
 */
Datum
retrain_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(psprintf("retrain %s (built against PostgreSQL %d.%d)",
											  RETRAIN_VERSION,
											  PG_VERSION_NUM / 10000,
											  PG_VERSION_NUM % 10000)));
}
