/*-------------------------------------------------------------------------
 *
 * drift_ks.c
 *	  The two-sample Kolmogorov-Smirnov statistic: retrain.ks_2samp.
 *
 * It keeps both samples as sort keys in the ranking state of auc (see
 * rank.h): the reference values in one array, the current ones in the
 * other; combine, serialization and sorting are shared.  NULL and NaN
 * values are skipped, as everywhere in drift.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "rank.h"
#include "util.h"

/* _ks_accum(state, value float8, is_reference boolean) */
PG_FUNCTION_INFO_V1(retrain_ks_accum);
Datum
retrain_ks_accum(PG_FUNCTION_ARGS)
{
	RankState  *state = PG_ARGISNULL(0) ? NULL : (RankState *) PG_GETARG_POINTER(0);

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || isnan(PG_GETARG_FLOAT8(1)))
		RETURN_STATE_UNCHANGED();
	PG_RETURN_POINTER(rank_state_add(fcinfo, state, PG_GETARG_FLOAT8(1), PG_GETARG_BOOL(2)));
}

/*
 * D = max over x of |F_ref(x) - F_cur(x)|, the empirical distribution
 * functions evaluated after each distinct value.  With i reference and j
 * current values at or below x, the difference is |i n2 - j n1| / (n1 n2):
 * the maximum is found exactly in integers, then divided once.
 */
PG_FUNCTION_INFO_V1(retrain_ks_2samp_final);
Datum
retrain_ks_2samp_final(PG_FUNCTION_ARGS)
{
	RankState  *state = rank_state_sorted(fcinfo);
	const uint64 *ref;
	const uint64 *cur;
	Size		n1;
	Size		n2;
	Size		i = 0;
	Size		j = 0;
	uint128		best = 0;

	if (state == NULL)
		PG_RETURN_NULL();
	ref = state->pos.keys;
	cur = state->neg.keys;
	n1 = state->pos.n;
	n2 = state->neg.n;

	while (i < n1 || j < n2)
	{
		uint64		v;
		uint128		a;
		uint128		b;

		/* the next distinct value of either sample */
		if (j >= n2 || (i < n1 && ref[i] <= cur[j]))
			v = ref[i];
		else
			v = cur[j];
		while (i < n1 && ref[i] == v)
			i++;
		while (j < n2 && cur[j] == v)
			j++;
		a = (uint128) i * n2;
		b = (uint128) j * n1;
		if (a > b && a - b > best)
			best = a - b;
		else if (b > a && b - a > best)
			best = b - a;
	}
	PG_RETURN_FLOAT8((double) best / ((double) n1 * (double) n2));
}
