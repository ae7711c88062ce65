/*-------------------------------------------------------------------------
 *
 * rollup.c
 *	  Merging the aggregates' own serialized partial states.
 *
 * A rollup keeps, per model, version and time bucket, the serialized state
 * of an aggregate over the bucket's rows (its serial function made it); a
 * window's figure is then the merge of its buckets' states finished by the
 * aggregate's own final function.  Merging is the aggregate's combine step
 * applied to a deserialized state, so a figure from rollups goes through
 * the same code as a parallel plan's: the rank states keep every key, so
 * AUC and average precision come out exactly as over the rows.
 *
 * _rank_merge and _loss_merge are the transition functions of the internal
 * aggregates _auc_merged(bytea), _average_precision_merged(bytea) and the
 * loss family's _*_merged(bytea).
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "util.h"

extern Datum retrain_rank_deserial(PG_FUNCTION_ARGS);
extern Datum retrain_rank_combine(PG_FUNCTION_ARGS);
extern Datum retrain_loss_deserial(PG_FUNCTION_ARGS);
extern Datum retrain_loss_combine(PG_FUNCTION_ARGS);

/*
 * A serialized state's size must be what its header says: a state that is
 * not one is refused here, with its kind named, rather than by the reader
 * half-way.  Ranking: two counts, then 8 bytes a key; loss: fixed.
 */
#define LOSS_SERIAL_BYTES (2 * sizeof(int64) + sizeof(int32) + 1 + 12 * sizeof(double))

static void
check_serialized(bytea *bytes, bool rank)
{
	Size		len = VARSIZE_ANY_EXHDR(bytes);
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(bytes);
	bool		ok;

	if (rank)
	{
		uint64		n[2] = {0, 0};

		ok = len >= 2 * sizeof(int64);
		for (int k = 0; ok && k < 2; k++)
			for (int i = 0; i < 8; i++)
				n[k] = (n[k] << 8) | p[k * 8 + i];
		ok = ok && n[0] <= len / 8 && n[1] <= len / 8 && len == 2 * sizeof(int64) + 8 * (n[0] + n[1]);
	}
	else
		ok = len == LOSS_SERIAL_BYTES;
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("retrain: %zu bytes are not a serialized %s state", len, rank ? "ranking" : "mean-loss")));
}

/*
 * state := combine(state, deserial(bytes)), both called with this call's
 * aggregate context, as the executor calls them for a parallel plan.  A
 * NULL state (a bucket without such rows) changes nothing.
 */
static Datum
merge_serialized(FunctionCallInfo fcinfo, PGFunction deserial, PGFunction combine, bool rank)
{
	LOCAL_FCINFO(d, 2);
	LOCAL_FCINFO(c, 2);
	Datum		part;
	Datum		result;

	if (!AggCheckCallContext(fcinfo, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("retrain: a merge of serialized states was called outside an aggregate")));
	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	check_serialized(PG_GETARG_BYTEA_PP(1), rank);

	InitFunctionCallInfoData(*d, fcinfo->flinfo, 2, fcinfo->fncollation, fcinfo->context, NULL);
	d->args[0].value = PG_GETARG_DATUM(1);
	d->args[0].isnull = false;
	d->args[1].value = (Datum) 0;
	d->args[1].isnull = true;
	part = deserial(d);

	InitFunctionCallInfoData(*c, fcinfo->flinfo, 2, fcinfo->fncollation, fcinfo->context, NULL);
	c->args[0] = fcinfo->args[0];
	c->args[1].value = part;
	c->args[1].isnull = false;
	result = combine(c);
	if (c->isnull)
		PG_RETURN_NULL();
	return result;
}

PG_FUNCTION_INFO_V1(retrain_rank_merge);
Datum
retrain_rank_merge(PG_FUNCTION_ARGS)
{
	return merge_serialized(fcinfo, retrain_rank_deserial, retrain_rank_combine, true);
}

PG_FUNCTION_INFO_V1(retrain_loss_merge);
Datum
retrain_loss_merge(PG_FUNCTION_ARGS)
{
	return merge_serialized(fcinfo, retrain_loss_deserial, retrain_loss_combine, false);
}
