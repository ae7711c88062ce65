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

#include "retrain.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(retrain_version);

void
_PG_init(void)
{
	/*
	 * The worker's settings are defined whether or not the library is
	 * preloaded, so that they show (and are checked) in every session.
	 */
	retrain_define_worker_gucs();

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
