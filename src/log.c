/*-------------------------------------------------------------------------
 *
 * log.c
 *	  The retraining log's head, written where an edit of retrain's tables
 *	  cannot reach it.
 *
 * The hash chain of retrain.log detects an edited or deleted row, but not a
 * superuser who cuts the tail and rewrites retrain.log_head to match.  So
 * every check cycle (and every verify_log()) writes the head's id and hash
 * to the server log, which log shipping and collectors keep apart from the
 * database, and verify_log(expected_head_id, expected_hash) checks a chain
 * against a head recorded there.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

/*
 * _announce_log_head(head_id bigint, head_hash text, how text) → void: one
 * server log line, "retrain log head: id N, hash H (how)", without the
 * PL/pgSQL context a RAISE would add.
 */
PG_FUNCTION_INFO_V1(retrain_announce_log_head);
Datum
retrain_announce_log_head(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("retrain._announce_log_head: head_id and head_hash must not be NULL")));
	ereport(LOG,
			(errmsg("retrain log head: id " INT64_FORMAT ", hash %s (%s)",
					PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
					PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2))),
			 errhidestmt(true),
			 errhidecontext(true)));
	PG_RETURN_VOID();
}
