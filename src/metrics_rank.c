/*-------------------------------------------------------------------------
 *
 * metrics_rank.c
 *	  Exact ranking metrics: retrain.auc and retrain.average_precision.
 *
 * Both need the order of every score, so the state keeps every (score,
 * label) pair until the final function: the sortable key of each score
 * (see float8_sort_key) in one array for positives and one for negatives,
 * 8 bytes a row.  The arrays are huge allocations, so one group may hold far
 * more than 1 GB of them.  The final function radix-sorts both arrays in
 * place and walks them once.
 *
 * Sorting in place leaves the multiset of keys unchanged, so the state stays
 * valid for more transitions (window aggregates) and for the other final
 * function when auc() and average_precision() over the same arguments share
 * one state; the final functions are therefore declared READ_ONLY.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "rank.h"
#include "util.h"

#ifndef HAVE_INT128
#error "retrain needs a 128-bit integer type for exact AUC rank sums"
#endif

static RankState *
rank_state_new(MemoryContext ctx)
{
	RankState  *state = MemoryContextAllocZero(ctx, sizeof(RankState));

	state->ctx = ctx;
	state->sorted = true;
	return state;
}

/*
 * _rank_accum(state, score float8, label boolean): shared by auc and
 * average_precision.  Rows with a NULL argument are skipped.
 */
PG_FUNCTION_INFO_V1(retrain_rank_accum);
Datum
retrain_rank_accum(PG_FUNCTION_ARGS)
{
	RankState  *state = PG_ARGISNULL(0) ? NULL : (RankState *) PG_GETARG_POINTER(0);
	double		score;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		RETURN_STATE_UNCHANGED();

	score = PG_GETARG_FLOAT8(1);
	retrain_reject_nan(fcinfo, score, "score");
	PG_RETURN_POINTER(rank_state_add(fcinfo, state, score, PG_GETARG_BOOL(2)));
}

RankState *
rank_state_add(FunctionCallInfo fcinfo, RankState *state, double value, bool first)
{
	if (state == NULL)
		state = rank_state_new(retrain_agg_context(fcinfo));
	key_array_push(state->ctx, first ? &state->pos : &state->neg, float8_sort_key(value));
	state->sorted = false;
	return state;
}

PG_FUNCTION_INFO_V1(retrain_rank_combine);
Datum
retrain_rank_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = retrain_agg_context(fcinfo);
	RankState  *a = PG_ARGISNULL(0) ? NULL : (RankState *) PG_GETARG_POINTER(0);
	RankState  *b = PG_ARGISNULL(1) ? NULL : (RankState *) PG_GETARG_POINTER(1);

	if (b == NULL)
		RETURN_STATE_UNCHANGED();
	/* b may live in a short-lived context: a new state copies it */
	if (a == NULL)
		a = rank_state_new(ctx);
	key_array_append(a->ctx, &a->pos, &b->pos);
	key_array_append(a->ctx, &a->neg, &b->neg);
	a->sorted = false;

	PG_RETURN_POINTER(a);
}

/* the two sample sizes, then the keys */
#define RANK_SERIAL_HEADER	(2 * sizeof(int64))

PG_FUNCTION_INFO_V1(retrain_rank_serial);
Datum
retrain_rank_serial(PG_FUNCTION_ARGS)
{
	RankState  *state = (RankState *) PG_GETARG_POINTER(0);
	Size		rows = state->pos.n + state->neg.n;
	StringInfoData buf;

	retrain_begin_keys_send(fcinfo, &buf, RANK_SERIAL_HEADER, rows);
	pq_sendint64(&buf, (int64) state->pos.n);
	pq_sendint64(&buf, (int64) state->neg.n);
	key_array_send(&buf, &state->pos);
	key_array_send(&buf, &state->neg);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(retrain_rank_deserial);
Datum
retrain_rank_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);

	/*
	 * Deserialize into the current, short-lived context: the combine
	 * function copies the keys into its own state, and this copy, often
	 * hundreds of megabytes, is freed right after.
	 */
	MemoryContext ctx = CurrentMemoryContext;
	RankState  *state = rank_state_new(ctx);
	StringInfoData buf;
	int64		npos;
	int64		nneg;

	retrain_bytea_reader(&buf, bytes);

	npos = pq_getmsgint64(&buf);
	nneg = pq_getmsgint64(&buf);
	if (npos < 0 || nneg < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid serialized ranking state")));
	key_array_recv(ctx, &buf, &state->pos, (Size) npos);
	key_array_recv(ctx, &buf, &state->neg, (Size) nneg);
	pq_getmsgend(&buf);
	state->sorted = false;

	PG_RETURN_POINTER(state);
}

/*
 * The state of a final function, sorted; NULL where the statistics are
 * undefined: no rows, or one of the two samples empty.
 */
RankState *
rank_state_sorted(FunctionCallInfo fcinfo)
{
	RankState  *state = PG_ARGISNULL(0) ? NULL : (RankState *) PG_GETARG_POINTER(0);

	if (state == NULL || state->pos.n == 0 || state->neg.n == 0)
		return NULL;
	if (!state->sorted)
	{
		/* one scratch array for both sorts: fewer fresh pages to fault in */
		uint64	   *scratch = palloc_extended(Max(state->pos.n, state->neg.n) * sizeof(uint64),
											  MCXT_ALLOC_HUGE);

		radix_sort_uint64(state->pos.keys, scratch, state->pos.n);
		radix_sort_uint64(state->neg.keys, scratch, state->neg.n);
		pfree(scratch);
		state->sorted = true;
	}
	return state;
}

/*
 * ROC AUC as the Mann-Whitney U statistic with midranks: the share of
 * (positive, negative) pairs in which the positive scores higher, a tie
 * counting one half.  Twice U is an integer, summed exactly in 128 bits
 * (it can pass 2^64 for a billion rows), so the only rounding is the final
 * division.
 */
PG_FUNCTION_INFO_V1(retrain_auc_final);
Datum
retrain_auc_final(PG_FUNCTION_ARGS)
{
	RankState  *state = rank_state_sorted(fcinfo);
	const uint64 *pos;
	const uint64 *neg;
	Size		npos;
	Size		nneg;
	Size		i = 0;
	Size		j = 0;
	uint128		twice_u = 0;

	if (state == NULL)
		PG_RETURN_NULL();
	pos = state->pos.keys;
	neg = state->neg.keys;
	npos = state->pos.n;
	nneg = state->neg.n;

	while (i < npos)
	{
		uint64		v = pos[i];
		Size		pos_eq = 0;
		Size		neg_eq = 0;

		while (i < npos && pos[i] == v)
		{
			i++;
			pos_eq++;
		}
		while (j < nneg && neg[j] < v)
			j++;
		while (j + neg_eq < nneg && neg[j + neg_eq] == v)
			neg_eq++;
		/* each such positive beats j negatives and ties neg_eq */
		twice_u += (uint128) pos_eq * (2 * (uint128) j + neg_eq);
		j += neg_eq;
	}

	PG_RETURN_FLOAT8((double) twice_u / (2.0 * (double) npos * (double) nneg));
}

/*
 * Average precision as scikit-learn defines it: the sum over thresholds,
 * from the highest score down, of the precision at that threshold times the
 * recall it adds; tied scores form one threshold, and there is no
 * interpolation.
 */
PG_FUNCTION_INFO_V1(retrain_average_precision_final);
Datum
retrain_average_precision_final(PG_FUNCTION_ARGS)
{
	RankState  *state = rank_state_sorted(fcinfo);
	const uint64 *pos;
	const uint64 *neg;
	Size		i;
	Size		j;
	int64		tp = 0;
	int64		fp = 0;
	CompensatedSum sum = {0, 0};

	if (state == NULL)
		PG_RETURN_NULL();
	pos = state->pos.keys;
	neg = state->neg.keys;
	i = state->pos.n;
	j = state->neg.n;

	/* walk down from the highest score; i and j count what is left */
	while (i > 0)
	{
		uint64		v = pos[i - 1];
		int64		pos_eq = 0;

		/* negatives above every remaining positive: false positives only */
		while (j > 0 && neg[j - 1] > v)
		{
			j--;
			fp++;
		}
		while (i > 0 && pos[i - 1] == v)
		{
			i--;
			pos_eq++;
		}
		while (j > 0 && neg[j - 1] == v)
		{
			j--;
			fp++;
		}
		tp += pos_eq;
		csum_add(&sum, (double) pos_eq * ((double) tp / (double) (tp + fp)));
	}

	PG_RETURN_FLOAT8(csum_value(&sum) / (double) state->pos.n);
}
