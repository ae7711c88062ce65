/*-------------------------------------------------------------------------
 *
 * rollup_read.c
 *	  retrain._read_planned(query text, times timestamptz[]) → jsonb: a read
 *	  of retrain's own prediction log whose plan is kept for the session.
 *
 * A check merges a window's rollups and reads from the rows only its edges:
 * the partial bucket it starts in, and what arrived since the last fold.
 * That read is a few rows, but its text (the states of the model's
 * features and threshold, built by _state_list) is long, and PL/pgSQL's
 * EXECUTE plans it again at every check: planning was the larger part of
 * its cost.  Its text is the same at every check of a model and version;
 * only the times change.  So the times are a parameter ($1, an array),
 * and so are the model, version, threshold and the numeric features'
 * names, edges and ends ($2 to $8, as _feature_histograms takes them): one
 * text then serves every model of a task whose features are numeric, and
 * its plan is prepared once and kept (SPI_keepplan): the plan cache
 * replans it when a table it reads changes.  The plan is generic from the
 * first execution: the plan cache would otherwise plan every execution
 * for its values, since a generic plan's estimate (default selectivities
 * of the time ranges) is far above the custom plans' of a few rows, while
 * both read the same index ranges (the window's edges, a bitmap of two
 * ranges of (model, predicted_at)).  The read of rows that arrived after
 * the last fold, whose generic plan would read the window's whole index
 * range, never comes here (_rollup_sum).
 *
 * Only for reads of retrain.predictions and retrain.outcomes as the
 * extension (a model with a set_source relation is read as its owner, by
 * _as_owner, which keeps nothing).  At most MAX_PLANS texts are kept (a
 * handful serve every model); the next one empties the cache.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "commands/extension.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "util.h"

#define MAX_PLANS 64
#define NPARAMS 7

typedef struct PlannedRead
{
	uint32		hash;			/* the key: the text's hash */
	char	   *query;			/* the text, in TopMemoryContext */
	SPIPlanPtr	plan;			/* kept by SPI_keepplan */
} PlannedRead;

static HTAB *planned_reads = NULL;

/* Forget every kept plan (the cache is full). */
static void
forget_plans(void)
{
	HASH_SEQ_STATUS status;
	PlannedRead *entry;

	hash_seq_init(&status, planned_reads);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->plan != NULL)
			SPI_freeplan(entry->plan);
		pfree(entry->query);
	}
	hash_destroy(planned_reads);
	planned_reads = NULL;
}

/* The types of $1 to $7 of a planned read. */
static const Oid read_argtypes[NPARAMS] = {TIMESTAMPTZARRAYOID, TEXTOID, TEXTOID, FLOAT8OID, TEXTARRAYOID,
FLOAT8ARRAYOID, INT4ARRAYOID};

/*
 * Whether Citus is installed in this database.  Its planner cannot plan
 * such a read of a distributed log generically (a plan kept with its
 * parameters unknown); given their values, as a one-shot plan, it can.
 */
static bool
citus_installed(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

/*
 * The kept plan of a text, prepared if it has none.  Called between
 * SPI_connect and SPI_finish.  Two texts with the same hash take turns: the
 * later one replaces the earlier.  Nothing is entered before the plan is
 * made and kept, so an error leaves the cache as it was.
 */
static SPIPlanPtr
planned(const char *query)
{
	uint32		hash = hash_bytes((const unsigned char *) query, strlen(query));
	PlannedRead *entry;
	bool		found;
	SPIPlanPtr	plan;

	if (planned_reads != NULL)
	{
		entry = hash_search(planned_reads, &hash, HASH_FIND, NULL);
		if (entry != NULL && strcmp(entry->query, query) == 0)
			return entry->plan;
	}
	plan = SPI_prepare_cursor(query, NPARAMS, (Oid *) read_argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "retrain._read_planned: SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "retrain._read_planned: SPI_keepplan failed");

	if (planned_reads != NULL && hash_get_num_entries(planned_reads) >= MAX_PLANS)
		forget_plans();
	if (planned_reads == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(PlannedRead);
		planned_reads = hash_create("retrain planned reads", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(planned_reads, &hash, HASH_ENTER, &found);
	if (found)
	{
		SPI_freeplan(entry->plan);
		pfree(entry->query);
	}
	entry->query = MemoryContextStrdup(TopMemoryContext, query);
	entry->plan = plan;
	return plan;
}

/*
 * _read_planned(query text, times timestamptz[], model text, version text,
 * threshold float8, names text[], edges float8[], ends int[]) → jsonb: the
 * first column of the first row of the query, run with the other arguments
 * as $1 to $7 (NULL: no row, or a NULL value).  The query must return one
 * jsonb column.
 */
PG_FUNCTION_INFO_V1(retrain_read_planned);
Datum
retrain_read_planned(PG_FUNCTION_ARGS)
{
	char	   *query;
	Datum		values[NPARAMS];
	char		nulls[NPARAMS];
	MemoryContext caller = CurrentMemoryContext;
	SPIPlanPtr	plan;
	Datum		result = (Datum) 0;
	bool		isnull = true;
	int			ret;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("retrain._read_planned: query and times must not be NULL")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	for (int i = 0; i < NPARAMS; i++)
	{
		nulls[i] = PG_ARGISNULL(i + 1) ? 'n' : ' ';
		/*
		 * flat values: an expanded array (a PL/pgSQL variable) would make
		 * _feature_histograms compare its arguments the slow way each row
		 */
		values[i] = PG_ARGISNULL(i + 1) ? (Datum) 0
			: i == 1 || i == 2 || i == 3 ? PG_GETARG_DATUM(i + 1)
			: PointerGetDatum(PG_DETOAST_DATUM(PG_GETARG_DATUM(i + 1)));
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (citus_installed())
		ret = SPI_execute_with_args(query, NPARAMS, (Oid *) read_argtypes, values, nulls, false, 1);
	else
	{
		plan = planned(query);
		ret = SPI_execute_plan(plan, values, nulls, false, 1);
	}
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "retrain._read_planned: the query failed: %s", SPI_result_code_string(ret));
	if (SPI_tuptable->tupdesc->natts != 1 || SPI_gettypeid(SPI_tuptable->tupdesc, 1) != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("retrain._read_planned: the query must return one jsonb column")));
	if (SPI_processed > 0)
	{
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
		{
			MemoryContext spi = MemoryContextSwitchTo(caller);

			result = datumCopy(value, false, -1);
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
