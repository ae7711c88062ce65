/*-------------------------------------------------------------------------
 *
 * drift_hist.c
 *	  Binned drift statistics: retrain.quantile_edges, retrain.histogram,
 *	  the population stability index (retrain.psi, as a function of two
 *	  distributions and as an aggregate over current values against a
 *	  stored baseline) and retrain.js_distance.
 *
 * Binning follows width_bucket(value, edges): a value falls in bucket i
 * (0-based) when exactly i edges are <= it, so there are one more buckets
 * than edges and infinite values land in the outer buckets.  NULL and NaN
 * values are skipped: drift reports count them as missing separately.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <float.h>
#include <math.h>

#include "libpq/pqformat.h"
#include "nodes/primnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "drift.h"
#include "retrain.h"
#include "util.h"


/*
 * PSI = sum over buckets of (a - e) ln(a / e), a and e the actual and
 * expected proportions, each count divided by its own total; a proportion
 * of 0 becomes epsilon (no renormalising), which keeps the sum finite when
 * a bucket is empty on one side.
 */
double
retrain_psi_of(const double *expected, double expected_total,
			   const double *actual, double actual_total, int n, double epsilon)
{
	CompensatedSum sum = {0, 0};
	const double *es = retrain_shares(expected, n, expected_total);
	const double *as = retrain_shares(actual, n, actual_total);
	int			i;

	for (i = 0; i < n; i++)
	{
		double		e = es[i];
		double		a = as[i];

		if (e == 0)
			e = epsilon;
		if (a == 0)
			a = epsilon;
		csum_add(&sum, (a - e) * log(a / e));
	}
	return csum_value(&sum);
}

double
retrain_epsilon_arg(FunctionCallInfo fcinfo, int argno)
{
	double		epsilon = PG_GETARG_FLOAT8(argno);

	if (!(epsilon > 0) || isinf(epsilon))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: epsilon must be a finite number > 0, not %s",
						retrain_func_name(fcinfo), float8out_internal(epsilon))));
	return epsilon;
}

/* PSI of two arrays of counts or proportions, each checked first. */
static double
psi_checked(FunctionCallInfo fcinfo, const double *expected, int ne, const double *actual, int na,
			const char *actual_name, double epsilon)
{
	double		etotal;
	double		atotal;

	if (ne != na)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: expected has %d elements but %s has %d",
						retrain_func_name(fcinfo), ne, actual_name, na)));
	etotal = retrain_check_distribution(fcinfo, expected, ne, "expected");
	atotal = retrain_check_distribution(fcinfo, actual, na, actual_name);
	return retrain_psi_of(expected, etotal, actual, atotal, ne, epsilon);
}

/* psi(expected float8[], actual float8[], epsilon float8 DEFAULT 0.0001) */
PG_FUNCTION_INFO_V1(retrain_psi_arrays);
Datum
retrain_psi_arrays(PG_FUNCTION_ARGS)
{
	int			ne;
	int			na;
	const double *expected = retrain_float8_array_arg(fcinfo, 0, "expected", &ne);
	const double *actual = retrain_float8_array_arg(fcinfo, 1, "actual", &na);

	PG_RETURN_FLOAT8(psi_checked(fcinfo, expected, ne, actual, na, "actual", retrain_epsilon_arg(fcinfo, 2)));
}

/* The numbers of a JSON array, as ->> and ::float8 read each. */
static double *
jsonb_numbers(FunctionCallInfo fcinfo, Jsonb *jb, const char *argname, int *n)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	double	   *values;
	int			i = 0;

	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must be a JSON array of numbers", retrain_func_name(fcinfo), argname)));
	values = palloc(sizeof(double) * Max(JB_ROOT_COUNT(jb), 1));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (v.type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: %s[%d] is not a number", retrain_func_name(fcinfo), argname, i + 1)));
		values[i++] = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric)));
	}
	*n = i;
	return values;
}

/*
 * _counts_psi(expected jsonb, counts jsonb) → float8: the drift trigger's
 * PSI of a numeric feature, from its baseline's expected distribution and
 * a window's counts (both JSON arrays; the counts end with the missing
 * values', which PSI leaves out), with psi()'s default epsilon; NULL when
 * the window counted no value.  What psi(float8[], float8[]) gives for the
 * arrays, without building them in SQL for every feature of every check.
 */
PG_FUNCTION_INFO_V1(retrain_counts_psi);
Datum
retrain_counts_psi(PG_FUNCTION_ARGS)
{
	int			ne;
	int			na;
	const double *expected = jsonb_numbers(fcinfo, PG_GETARG_JSONB_P(0), "expected", &ne);
	const double *actual = jsonb_numbers(fcinfo, PG_GETARG_JSONB_P(1), "counts", &na);
	double		counted = 0;

	na--;						/* the missing values */
	for (int i = 0; i < na; i++)
		counted += actual[i];
	if (na <= 0 || !(counted > 0))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(psi_checked(fcinfo, expected, ne, actual, na, "counts", PSI_DEFAULT_EPSILON));
}

/*
 * js_distance(expected float8[], actual float8[], base float8 DEFAULT NULL):
 * the Jensen-Shannon distance, the square root of the divergence, as
 * scipy.spatial.distance.jensenshannon computes it: natural logarithms
 * unless a base is given.
 */
PG_FUNCTION_INFO_V1(retrain_js_distance);
Datum
retrain_js_distance(PG_FUNCTION_ARGS)
{
	int			np;
	int			nq;
	const double *p;
	const double *q;
	double		ptotal;
	double		qtotal;
	CompensatedSum sum = {0, 0};
	double		js;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	p = retrain_float8_array_arg(fcinfo, 0, "expected", &np);
	q = retrain_float8_array_arg(fcinfo, 1, "actual", &nq);
	if (np != nq)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: expected has %d elements but actual has %d",
						retrain_func_name(fcinfo), np, nq)));
	ptotal = retrain_check_distribution(fcinfo, p, np, "expected");
	qtotal = retrain_check_distribution(fcinfo, q, nq, "actual");
	p = retrain_shares(p, np, ptotal);
	q = retrain_shares(q, nq, qtotal);

	for (i = 0; i < np; i++)
	{
		double		pi = p[i];
		double		qi = q[i];
		double		m = (pi + qi) / 2.0;

		/* x ln(x / m), 0 for x = 0: scipy.special.rel_entr */
		if (pi > 0)
			csum_add(&sum, pi * log(pi / m));
		if (qi > 0)
			csum_add(&sum, qi * log(qi / m));
	}
	js = csum_value(&sum);
	if (!PG_ARGISNULL(2))
	{
		double		base = PG_GETARG_FLOAT8(2);

		if (!(base > 0) || base == 1 || isinf(base))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: base must be a finite number > 0 other than 1, not %s",
							retrain_func_name(fcinfo), float8out_internal(base))));
		js /= log(base);
	}
	/* rounding can leave a tiny negative divergence for equal inputs */
	PG_RETURN_FLOAT8(sqrt(Max(js, 0.0) / 2.0));
}

HistState *
retrain_hist_state_init(void *mem, int nedges, int nexpected)
{
	HistState  *state = mem;

	SET_VARSIZE(state, retrain_hist_size(nedges, nexpected));
	state->hdr.kind = RETRAIN_STATE_HIST;
	state->hdr.version = RETRAIN_STATE_VERSION;
	state->nedges = nedges;
	state->nexpected = nexpected;
	return retrain_hist_attach(state);
}

HistState *
retrain_hist_state_new(MemoryContext ctx, int nedges, int nexpected)
{
	return retrain_hist_state_init(MemoryContextAllocZero(ctx, retrain_hist_size(nedges, nexpected)),
								   nedges, nexpected);
}

/* A new state for an aggregate's transition or combine function. */
static HistState *
hist_state_for(FunctionCallInfo fcinfo, int nedges, int nexpected)
{
	Size		size = retrain_hist_size(nedges, nexpected);

	return retrain_hist_state_init(retrain_state_new(fcinfo, size, RETRAIN_STATE_HIST),
								   nedges, nexpected);
}

/*
 * Whether the aggregate's arguments from the edges on are constants in the
 * query.  Then the datum of every row is the same pointer, and comparing
 * pointers is enough; otherwise the contents must be compared, since a
 * computed array may reuse the same memory with other contents.
 */
static bool
hist_args_const(FunctionCallInfo fcinfo, bool with_expected)
{
	Aggref	   *aggref = AggGetAggref(fcinfo);
	ListCell   *lc;
	int			i = 0;

	if (aggref == NULL)
		return false;
	foreach(lc, aggref->args)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		/* aggregate argument 0 is the value */
		if (i >= 1 && (i < 2 || with_expected) && !IsA(tle->expr, Const))
			return false;
		i++;
	}
	return true;
}

/*
 * Take the edges (and expected distribution) of this row: check and copy
 * them into a new state on the first row; afterwards insist they are the
 * same as before.
 */
static HistState *
hist_state_for_row(FunctionCallInfo fcinfo, HistState *state, bool with_expected)
{
	int			nedges;
	int			nexpected = 0;
	const double *edges;
	const double *expected = NULL;

	if (state != NULL && state->args_const && PG_GETARG_DATUM(2) == state->edges_arg &&
		(!with_expected || PG_GETARG_DATUM(3) == state->expected_arg))
		return state;

	edges = retrain_float8_array_arg(fcinfo, 2, "edges", &nedges);
	if (with_expected)
		expected = retrain_float8_array_arg(fcinfo, 3, "expected", &nexpected);

	if (state == NULL)
	{
		/* the counts take 8 bytes a bucket for the whole group */
		if (nedges + 1 > retrain_max_bins)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("%s: %d edges make more buckets than retrain.max_bins (%d)",
							retrain_func_name(fcinfo), nedges, retrain_max_bins),
					 errhint("A superuser may raise retrain.max_bins.")));
		retrain_check_edges(fcinfo, edges, nedges, "edges");
		if (with_expected)
		{
			if (nexpected != nedges + 1)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: %d edges make %d buckets, but expected has %d elements",
								retrain_func_name(fcinfo), nedges, nedges + 1, nexpected)));
			retrain_check_distribution(fcinfo, expected, nexpected, "expected");
		}
		state = hist_state_for(fcinfo, nedges, nexpected);
		state->args_const = hist_args_const(fcinfo, with_expected);
		memcpy(state->edges, edges, sizeof(double) * nedges);
		if (with_expected)
			memcpy(state->expected, expected, sizeof(double) * nexpected);
	}
	else if (nedges != state->nedges || nexpected != state->nexpected ||
			 memcmp(edges, state->edges, sizeof(double) * nedges) != 0 ||
			 (with_expected && memcmp(expected, state->expected, sizeof(double) * nexpected) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must be the same for every row of a group",
						retrain_func_name(fcinfo),
						with_expected ? "edges and expected" : "edges")));

	state->edges_arg = PG_GETARG_DATUM(2);
	if (with_expected)
		state->expected_arg = PG_GETARG_DATUM(3);
	return state;
}

static Datum
hist_accum(FunctionCallInfo fcinfo, bool with_expected, bool count_missing)
{
	HistState  *state = NULL;
	double		value;
	bool		missing;

	if (!PG_ARGISNULL(0))
		state = retrain_hist_attach(retrain_state_running(fcinfo, RETRAIN_STATE_HIST));
	/* a NULL array is no binning at all: the row cannot count */
	if (PG_ARGISNULL(2) || (with_expected && PG_ARGISNULL(3)))
		goto skip;
	missing = PG_ARGISNULL(1) || isnan(PG_GETARG_FLOAT8(1));
	if (missing && !count_missing)
		goto skip;

	state = hist_state_for_row(fcinfo, state, with_expected);
	if (missing)
		state->missing++;
	else
	{
		value = PG_GETARG_FLOAT8(1);
		state->counts[retrain_bucket_of(state, value)]++;
	}
	PG_RETURN_POINTER(state);

skip:
	RETURN_STATE_UNCHANGED();
}

/* _histogram_accum(state, value float8, edges float8[]) */
PG_FUNCTION_INFO_V1(retrain_histogram_accum);
Datum
retrain_histogram_accum(PG_FUNCTION_ARGS)
{
	return hist_accum(fcinfo, false, false);
}

/* _histogram_missing_accum(state, value float8, edges float8[]) */
PG_FUNCTION_INFO_V1(retrain_histogram_missing_accum);
Datum
retrain_histogram_missing_accum(PG_FUNCTION_ARGS)
{
	return hist_accum(fcinfo, false, true);
}

/* _psi_accum(state, value float8, edges float8[], expected float8[]) */
PG_FUNCTION_INFO_V1(retrain_psi_accum);
Datum
retrain_psi_accum(PG_FUNCTION_ARGS)
{
	return hist_accum(fcinfo, true, false);
}

bool
retrain_hist_same_bins(const HistState *a, const HistState *b)
{
	return a->nedges == b->nedges && a->nexpected == b->nexpected &&
		memcmp(a->edges, b->edges, sizeof(double) * a->nedges) == 0 &&
		memcmp(a->expected, b->expected, sizeof(double) * a->nexpected) == 0;
}

HistState *
retrain_hist_copy_bins(MemoryContext ctx, const HistState *b)
{
	HistState  *a = retrain_hist_state_new(ctx, b->nedges, b->nexpected);

	memcpy(a->edges, b->edges, sizeof(double) * b->nedges);
	memcpy(a->expected, b->expected, sizeof(double) * b->nexpected);
	return a;
}

void
retrain_hist_add(HistState *a, const HistState *b)
{
	for (int i = 0; i <= a->nedges; i++)
		a->counts[i] += b->counts[i];
	a->missing += b->missing;
}

void
retrain_hist_send(StringInfo buf, const HistState *s)
{
	pq_sendint32(buf, s->nedges);
	pq_sendint32(buf, s->nexpected);
	retrain_send_float8s(buf, s->edges, s->nedges);
	retrain_send_float8s(buf, s->expected, s->nexpected);
	for (int i = 0; i <= s->nedges; i++)
		pq_sendint64(buf, s->counts[i]);
	pq_sendint64(buf, s->missing);
}

HistState *
retrain_hist_recv(StringInfo buf)
{
	HistState  *s;
	int			nedges = pq_getmsgint(buf, 4);
	int			nexpected = pq_getmsgint(buf, 4);

	/* the bytes must be there before anything is allocated for them */
	if (nedges < 0 || nexpected < 0 || nexpected > nedges + 1 ||
		(int64) buf->len - buf->cursor < 8 * ((int64) nedges * 2 + nexpected + 2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid serialized histogram state"),
				 errdetail("%d edges and %d expected shares do not fit in its %d bytes.",
						   nedges, nexpected, buf->len - buf->cursor)));
	s = retrain_hist_state_new(CurrentMemoryContext, nedges, nexpected);
	retrain_recv_float8s(buf, s->edges, nedges);
	retrain_recv_float8s(buf, s->expected, nexpected);
	for (int i = 0; i <= nedges; i++)
		s->counts[i] = pq_getmsgint64(buf);
	s->missing = pq_getmsgint64(buf);
	return s;
}

/*
 * A state that is only read (a combine's second, a final function's): a
 * copy of its fixed part pointing at its arrays, so that nothing is written
 * into the argument, whose memory may be a tuple's.
 */
static HistState *
hist_arg(FunctionCallInfo fcinfo, int argno)
{
	const HistState *s = retrain_state_arg(fcinfo, argno, RETRAIN_STATE_HIST);
	HistState  *view = palloc(sizeof(HistState));

	*view = *s;
	return retrain_hist_point(view, s);
}

/* The portable bytes of a retrain.agg_state of kind histogram. */
void
retrain_hist_state_send(StringInfo buf, const void *state)
{
	HistState	view = *(const HistState *) state;

	retrain_hist_send(buf, retrain_hist_point(&view, state));
}

/*
 * A retrain.agg_state of kind histogram from its portable bytes: the bins
 * as the transition function accepts them, no negative count.
 */
void *
retrain_hist_state_recv(StringInfo buf)
{
	HistState  *s = retrain_hist_recv(buf);
	double		total = 0;

	for (int i = 0; i < s->nedges; i++)
		if (isnan(s->edges[i]) || (i > 0 && !(s->edges[i] > s->edges[i - 1])))
			retrain_state_invalid("histogram", "Its edges are not ascending numbers.");
	if (s->nexpected != 0 && s->nexpected != s->nedges + 1)
		retrain_state_invalid("histogram", "Its expected distribution has the wrong length.");
	for (int i = 0; i < s->nexpected; i++)
	{
		if (!(s->expected[i] >= 0 && isfinite(s->expected[i])))
			retrain_state_invalid("histogram", "Its expected distribution has a negative or non-finite share.");
		total += s->expected[i];
	}
	if (s->nexpected != 0 && !(total > 0))
		retrain_state_invalid("histogram", "Its expected distribution is all zeros.");
	for (int i = 0; i <= s->nedges; i++)
		if (s->counts[i] < 0)
			retrain_state_invalid("histogram", "A count is negative.");
	if (s->missing < 0)
		retrain_state_invalid("histogram", "A count is negative.");
	return s;
}

PG_FUNCTION_INFO_V1(retrain_hist_combine);
Datum
retrain_hist_combine(PG_FUNCTION_ARGS)
{
	HistState  *a;
	HistState  *b;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	b = hist_arg(fcinfo, 1);
	if (PG_ARGISNULL(0))
	{
		/* b may be short-lived: copy its bins */
		a = hist_state_for(fcinfo, b->nedges, b->nexpected);
		memcpy(a->edges, b->edges, sizeof(double) * b->nedges);
		memcpy(a->expected, b->expected, sizeof(double) * b->nexpected);
	}
	else
	{
		a = retrain_hist_attach(retrain_state_running(fcinfo, RETRAIN_STATE_HIST));
		if (!retrain_hist_same_bins(a, b))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: edges and expected must be the same for every row of a group",
							retrain_func_name(fcinfo))));
	}
	retrain_hist_add(a, b);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(retrain_hist_serial);
Datum
retrain_hist_serial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	retrain_hist_send(&buf, (HistState *) PG_GETARG_POINTER(0));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(retrain_hist_deserial);
Datum
retrain_hist_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	HistState  *s;

	retrain_bytea_reader(&buf, PG_GETARG_BYTEA_PP(0));
	/* a short-lived copy: the combine function adds it into its own state */
	s = retrain_hist_recv(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(retrain_histogram_final);
Datum
retrain_histogram_final(PG_FUNCTION_ARGS)
{
	HistState  *s = hist_arg(fcinfo, 0);

	PG_RETURN_DATUM(retrain_int8_array_datum(s->counts, s->nedges + 1));
}

/* The bucket counts followed by the count of missing values. */
PG_FUNCTION_INFO_V1(retrain_histogram_missing_final);
Datum
retrain_histogram_missing_final(PG_FUNCTION_ARGS)
{
	HistState  *s = hist_arg(fcinfo, 0);
	int64	   *counts = palloc(sizeof(int64) * (s->nedges + 2));

	memcpy(counts, s->counts, sizeof(int64) * (s->nedges + 1));
	counts[s->nedges + 1] = s->missing;
	PG_RETURN_DATUM(retrain_int8_array_datum(counts, s->nedges + 2));
}

PG_FUNCTION_INFO_V1(retrain_psi_final);
Datum
retrain_psi_final(PG_FUNCTION_ARGS)
{
	HistState  *s = hist_arg(fcinfo, 0);
	int			nb = s->nedges + 1;
	double	   *actual = palloc(sizeof(double) * nb);
	double		atotal = 0;
	double		etotal = 0;
	int			i;

	for (i = 0; i < nb; i++)
	{
		actual[i] = (double) s->counts[i];
		atotal += actual[i];
		etotal += s->expected[i];
	}
	PG_RETURN_FLOAT8(retrain_psi_of(s->expected, etotal, actual, atotal, nb, PSI_DEFAULT_EPSILON));
}

/*
 * quantile_edges(value float8, bins int): every value is kept (as a sort
 * key, 8 bytes a row) until the final function sorts them and interpolates
 * the bins - 1 interior quantiles k / bins linearly, as percentile_cont does.
 */
typedef struct QuantileState
{
	MemoryContext ctx;
	KeyArray	keys;
	int32		bins;
	bool		sorted;
} QuantileState;

static QuantileState *
quantile_state_new(MemoryContext ctx, int32 bins)
{
	QuantileState *state = MemoryContextAllocZero(ctx, sizeof(QuantileState));

	state->ctx = ctx;
	state->bins = bins;
	state->sorted = true;
	return state;
}

PG_FUNCTION_INFO_V1(retrain_quantile_accum);
Datum
retrain_quantile_accum(PG_FUNCTION_ARGS)
{
	QuantileState *state = PG_ARGISNULL(0) ? NULL : (QuantileState *) PG_GETARG_POINTER(0);
	double		value;
	int32		bins;

	if (PG_ARGISNULL(1) || (PG_NARGS() > 2 && PG_ARGISNULL(2)) || isnan(PG_GETARG_FLOAT8(1)))
		RETURN_STATE_UNCHANGED();
	value = PG_GETARG_FLOAT8(1);
	/* quantile_edges(value) has no bins argument: deciles */
	bins = PG_NARGS() > 2 ? PG_GETARG_INT32(2) : 10;

	if (unlikely(state == NULL || bins != state->bins))
	{
		if (bins < 2 || bins > retrain_max_bins)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: bins must be between 2 and %d, not %d",
							retrain_func_name(fcinfo), retrain_max_bins, bins),
					 errhint("retrain.max_bins bounds it; a superuser may raise it.")));
		if (state != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: bins must be the same for every row of a group",
							retrain_func_name(fcinfo))));
		state = quantile_state_new(retrain_agg_context(fcinfo), bins);
	}
	key_array_push(state->ctx, &state->keys, float8_sort_key(value));
	state->sorted = false;
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(retrain_quantile_combine);
Datum
retrain_quantile_combine(PG_FUNCTION_ARGS)
{
	QuantileState *a = PG_ARGISNULL(0) ? NULL : (QuantileState *) PG_GETARG_POINTER(0);
	QuantileState *b = PG_ARGISNULL(1) ? NULL : (QuantileState *) PG_GETARG_POINTER(1);

	if (b == NULL)
		RETURN_STATE_UNCHANGED();
	if (a == NULL)
		a = quantile_state_new(retrain_agg_context(fcinfo), b->bins);
	else if (a->bins != b->bins)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: bins must be the same for every row of a group",
						retrain_func_name(fcinfo))));
	key_array_append(a->ctx, &a->keys, &b->keys);
	a->sorted = false;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(retrain_quantile_serial);
Datum
retrain_quantile_serial(PG_FUNCTION_ARGS)
{
	QuantileState *state = (QuantileState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	retrain_begin_keys_send(fcinfo, &buf, sizeof(int32) + sizeof(int64), state->keys.n);
	pq_sendint32(&buf, state->bins);
	pq_sendint64(&buf, (int64) state->keys.n);
	key_array_send(&buf, &state->keys);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(retrain_quantile_deserial);
Datum
retrain_quantile_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	QuantileState *state;
	int32		bins;
	int64		n;

	retrain_bytea_reader(&buf, bytes);
	bins = pq_getmsgint(&buf, 4);
	n = pq_getmsgint64(&buf);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid serialized quantile state")));
	/* short-lived: the combine function copies the keys */
	state = quantile_state_new(CurrentMemoryContext, bins);
	key_array_recv(state->ctx, &buf, &state->keys, (Size) n);
	pq_getmsgend(&buf);
	state->sorted = false;
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(retrain_quantile_edges_final);
Datum
retrain_quantile_edges_final(PG_FUNCTION_ARGS)
{
	QuantileState *state = (QuantileState *) PG_GETARG_POINTER(0);
	const uint64 *keys;
	Size		n = state->keys.n;
	double	   *edges;
	int			nedges = 0;
	int			k;

	if (n == 0)
		PG_RETURN_NULL();
	if (!state->sorted)
	{
		uint64	   *scratch = palloc_extended(n * sizeof(uint64), MCXT_ALLOC_HUGE);

		radix_sort_uint64(state->keys.keys, scratch, n);
		pfree(scratch);
		state->sorted = true;
	}
	keys = state->keys.keys;

	edges = palloc(sizeof(double) * state->bins);
	for (k = 1; k < state->bins; k++)
	{
		/* percentile_cont: first + (second - first) * proportion */
		double		pos = ((double) k / state->bins) * (double) (n - 1);
		Size		lo = (Size) floor(pos);
		Size		hi = (Size) ceil(pos);
		double		first = float8_from_sort_key(keys[lo]);
		double		second = float8_from_sort_key(keys[hi]);
		double		edge = (lo == hi || first == second) ? first
			: first + (second - first) * (pos - (double) lo);

		/*
		 * Two finite values can be more than float8 apart (-1e308 and
		 * 1e308): interpolate between their halves, which are not.
		 */
		if (isinf(edge) && isfinite(first) && isfinite(second))
			edge = 2.0 * (first / 2 + (second / 2 - first / 2) * (pos - (double) lo));

		if (isnan(edge))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: the %d/%d quantile falls between %s and %s",
							retrain_func_name(fcinfo), k, state->bins,
							float8out_internal(first), float8out_internal(second)),
					 errhint("Leave infinite values out of the values the edges are taken from.")));
		/* ascending by construction; equal neighbours make one edge */
		if (nedges == 0 || edge > edges[nedges - 1])
			edges[nedges++] = edge;
	}
	PG_RETURN_DATUM(retrain_float8_array_datum(edges, nedges));
}

/*
 * Powers of ten that a double holds exactly (10^22 is the last: 5^22 still
 * fits in 53 bits).
 */
static const double exact_tens[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/*
 * What decimal_syntax() learns of a number on the way: its significant
 * digits as an integer (while they fit), and the power of ten they are
 * scaled by.  Zeros after the first significant digit wait in pending until
 * a digit other than zero follows: trailing zeros (numeric's output writes
 * 1.5e25 as 15 followed by 24 zeros) only scale the digits.
 */
typedef struct Decimal
{
	uint64		digits;
	int			significant;	/* in digits; more than 19: too many */
	int			pending;		/* zeros read and not yet in digits */
	int			scale;			/* the value is digits * 10^scale */
	bool		negative;
	bool		special;		/* NaN or Infinity: strtod()'s to read */
} Decimal;

static pg_attribute_always_inline void
decimal_digit(Decimal *d, char c, bool fraction)
{
	if (c == '0')
	{
		/*
		 * a leading zero after the point moves the digits one place down; a
		 * zero after a significant digit waits, and if it is before the
		 * point scales the digits one place up meanwhile
		 */
		if (d->significant == 0 ? fraction : !fraction)
			d->scale += fraction ? -1 : 1;
		if (d->significant > 0)
			d->pending++;
		return;
	}
	/* the zeros were digits after all: as many places less of scaling */
	if (d->significant + d->pending + 1 > 19)
	{
		/* 19 digits never overflow 64 bits; more are strtod()'s to read */
		d->significant = 20;
		return;
	}
	for (; d->pending > 0; d->pending--)
	{
		d->digits *= 10;
		d->significant++;
		d->scale--;
	}
	d->digits = d->digits * 10 + (c - '0');
	d->significant++;
	if (fraction)
		d->scale--;
}

/* isdigit() in every locale, without its table */
#define DECIMAL_DIGIT(c) ((c) >= '0' && (c) <= '9')

/*
 * Whether s is a decimal number _as_float8 accepts: optional blanks and
 * sign, digits with an optional point (or a point and digits), an optional
 * exponent of at most three digits, or NaN, Inf, Infinity in any case.
 */
static bool
decimal_syntax(const char *s, int len, Decimal *d)
{
	int			i = 0;
	int			digits = 0;

	memset(d, 0, sizeof(Decimal));
	while (i < len && isspace((unsigned char) s[i]))
		i++;
	while (len > i && isspace((unsigned char) s[len - 1]))
		len--;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		d->negative = s[i++] == '-';
	if ((len - i == 3 && pg_strncasecmp(s + i, "nan", 3) == 0) ||
		(len - i == 3 && pg_strncasecmp(s + i, "inf", 3) == 0) ||
		(len - i == 8 && pg_strncasecmp(s + i, "infinity", 8) == 0))
	{
		d->special = true;
		return true;
	}
	for (; i < len && DECIMAL_DIGIT(s[i]); i++, digits++)
		decimal_digit(d, s[i], false);
	if (i < len && s[i] == '.')
		for (i++; i < len && DECIMAL_DIGIT(s[i]); i++, digits++)
			decimal_digit(d, s[i], true);
	if (digits == 0)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		int			exp_digits = 0;
		int			exponent = 0;
		bool		exp_negative = false;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			exp_negative = s[i++] == '-';
		/* more than three digits are refused below: never accumulated */
		for (; i < len && DECIMAL_DIGIT(s[i]); i++, exp_digits++)
			if (exp_digits < 3)
				exponent = exponent * 10 + (s[i] - '0');
		if (exp_digits < 1 || exp_digits > 3)
			return false;
		d->scale += exp_negative ? -exponent : exponent;
	}
	return i == len;
}

/*
 * The value of a number of at most 15 significant digits (below 2^53) with
 * a power of ten between -22 and 22, without strtod(): both are exact
 * doubles, so one multiplication or division rounds once, to the nearest,
 * as strtod() does (Clinger's fast path).  It runs for every feature of
 * every prediction folded, where strtod()'s arbitrary precision was most of
 * the cost.  Where intermediate results may be kept wider than a double
 * (FLT_EVAL_METHOD other than 0), strtod() reads every number.
 */
static bool
decimal_fast_value(const Decimal *d, double *value)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
	double		v;

	if (d->special || d->significant > 15 || d->scale < -22 || d->scale > 22)
		return false;
	v = (double) d->digits;
	v = d->scale < 0 ? v / exact_tens[-d->scale] : v * exact_tens[d->scale];
	*value = d->negative ? -v : v;
	return true;
#else
	return false;
#endif
}

#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0 && defined(LDBL_MANT_DIG) && LDBL_MANT_DIG == 64 && \
	(defined(__x86_64__) || defined(__i386__))

/* Powers of ten that x87's 64-bit significand holds exactly (5^27 < 2^64). */
static const long double exact_tens_wide[] = {
	1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L, 1e7L, 1e8L, 1e9L, 1e10L,
	1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
	1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L
};

/*
 * The value of a number of 16 to 19 significant digits, as float8's output
 * writes most values (17 digits), where x87's long double has a 64-bit
 * significand: the digits and the power of ten (up to 27) are exact there,
 * so their quotient or product q is the exact value rounded once to 64
 * bits, within half a unit of its last bit.  Rounding q to a double gives
 * the exact value rounded to the nearest double unless a midpoint between
 * two doubles lies within that half unit: then the 11 bits a double drops
 * are 0x400 or next to it, and strtod() decides.  All of this holds while
 * the x87 unit rounds to 64 bits, its default; code loaded into the backend
 * could lower its precision control, and strtod() then reads the number.
 * Values here are far from a double's smallest and largest: at least
 * 10^-27, at most 10^46.
 */
static bool
decimal_wide_value(const Decimal *d, double *value)
{
	/* volatile: added as the unit is set now, not when compiled */
	volatile long double one = 1.0L;
	long double q;
	uint64		significand;

	if (d->special || d->significant > 19 || d->scale < -27 || d->scale > 27)
		return false;
	/* the unit rounds to 64 bits (1 + 2^-63 is not 1) */
	if (one + LDBL_EPSILON == one)
		return false;
	q = (long double) d->digits;
	q = d->scale < 0 ? q / exact_tens_wide[-d->scale] : q * exact_tens_wide[d->scale];
	/* x87's format keeps the 64 bits of the significand first, explicitly */
	memcpy(&significand, &q, sizeof(significand));
	if ((significand & 0x7FF) >= 0x3FF && (significand & 0x7FF) <= 0x401)
		return false;
	*value = d->negative ? -(double) q : (double) q;
	return true;
}

#else

static bool
decimal_wide_value(const Decimal *d, double *value)
{
	return false;
}

#endif

/*
 * _as_float8(text): a feature value read from jsonb or a wide source as
 * float8, false when it is not a decimal number (decimal_syntax), so that a
 * string in a numeric feature counts as missing instead of failing the
 * check.  Hexadecimal forms, which strtod() would take, are not numbers
 * here; neither is a value beyond float8's range (false, not an error).  It
 * runs once per feature and prediction in every drift figure, so it is C
 * rather than a regular expression.
 */
bool
retrain_parse_float8(const char *s, int len, double *value)
{
	Decimal		d;
	char		buf[64];
	char	   *copy;
	char	   *end;
	double		v;

	if (!decimal_syntax(s, len, &d))
		return false;
	if (decimal_fast_value(&d, value) || decimal_wide_value(&d, value))
		return true;
	/* strtod() wants a terminated string; most values fit the buffer */
	copy = len < (int) sizeof(buf) ? buf : palloc(len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	errno = 0;
	v = strtod(copy, &end);
	if (copy != buf)
		pfree(copy);
	/* beyond float8's range: no number (an underflow keeps strtod's value) */
	if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
		return false;
	*value = v;
	return true;
}

/*
 * A numeric's stored form, as PostgreSQL writes it since 9.1 and as
 * pg_upgrade carries it from release to release unchanged (its header is
 * private to numeric.c, so the layout is restated here): after the varlena
 * header, a 16-bit word whose top two bits say short (10), special (11:
 * NaN, Infinity) or long (00 positive, 01 negative) form, then, in the long
 * form only, a 16-bit weight; then base-10000 digits of 16 bits, the first
 * weighted 10000^weight.  The short form keeps the sign in bit 13 and a
 * 7-bit weight in bits 0-6 (bit 6 its sign).
 */
#define NUMERIC_WORD_FORM	0xC000
#define NUMERIC_WORD_SHORT	0x8000
#define NUMERIC_WORD_SPECIAL 0xC000
#define NUMERIC_WORD_NEG	0x4000
#define NUMERIC_SHORT_NEG	0x2000
#define NUMERIC_SHORT_WEIGHT_NEG 0x0040
#define NUMERIC_SHORT_WEIGHT 0x003F

/* decimal digits of a base-10000 digit other than 0 */
static inline int
nbase_digit_width(int g)
{
	return g >= 1000 ? 4 : g >= 100 ? 3 : g >= 10 ? 2 : 1;
}

/*
 * A numeric's value as a Decimal, read from its base-10000 digits, without
 * writing it out as text: false (nothing read) for NaN and Infinity and for
 * more than 19 significant digits.  The digits of a feature in a jsonb
 * column are numerics; numeric_out() and reading its text back cost two
 * thirds of each feature's time in the cycle's fold.
 */
static bool
numeric_decimal(struct NumericData *num, Decimal *d)
{
	const char *data = VARDATA_ANY(num);
	int			size = VARSIZE_ANY_EXHDR(num);
	uint16		word;
	int			weight;
	int16		digits[8];
	int			ndigits;
	int			first;
	int			last;
	int			trailing = 0;
	int			g;
	static const int tens[] = {1, 10, 100, 1000, 10000};

	if (size < (int) sizeof(uint16))
		return false;
	memcpy(&word, data, sizeof(word));
	memset(d, 0, sizeof(Decimal));
	if ((word & NUMERIC_WORD_FORM) == NUMERIC_WORD_SPECIAL)
		return false;
	if ((word & NUMERIC_WORD_FORM) == NUMERIC_WORD_SHORT)
	{
		d->negative = (word & NUMERIC_SHORT_NEG) != 0;
		weight = (word & NUMERIC_SHORT_WEIGHT_NEG) ? (int) (word & NUMERIC_SHORT_WEIGHT) - 64
			: (int) (word & NUMERIC_SHORT_WEIGHT);
		data += sizeof(uint16);
		size -= sizeof(uint16);
	}
	else
	{
		int16		w;

		if (size < (int) (2 * sizeof(uint16)))
			return false;
		d->negative = (word & NUMERIC_WORD_NEG) != 0;
		memcpy(&w, data + sizeof(uint16), sizeof(w));
		weight = w;
		data += 2 * sizeof(uint16);
		size -= 2 * sizeof(uint16);
	}
	/*
	 * More than 8 digits are more than 19 significant ones as numeric
	 * stores them (without zeros at either end), and are left to the text
	 * (which reads them correctly, as any other).  Copied: a packed
	 * varlena's digits need not be aligned.
	 */
	ndigits = size / (int) sizeof(int16);
	if (ndigits > (int) lengthof(digits))
		return false;
	memcpy(digits, data, ndigits * sizeof(int16));
	for (first = 0; first < ndigits && digits[first] == 0; first++)
		;
	for (last = ndigits - 1; last >= first && digits[last] == 0; last--)
		;
	if (first > last)
	{
		/* zero (a numeric zero has no sign) */
		d->negative = false;
		return true;
	}
	for (g = digits[last]; g % 10 == 0; g /= 10)
		trailing++;
	d->significant = nbase_digit_width(digits[first]) + 4 * (last - first) - trailing;
	if (d->significant > 19)
		return false;
	/* the digits with the last one's trailing zeros left out: below 10^19 */
	d->digits = first == last ? (uint64) g : (uint64) digits[first];
	for (int i = first + 1; i <= last; i++)
		d->digits = i < last ? d->digits * 10000 + digits[i]
			: d->digits * tens[4 - trailing] + g;
	d->scale = 4 * (weight - last) + trailing;
	return true;
}

/*
 * A numeric as retrain_parse_float8() reads the text numeric_out() writes
 * of it: the same double, every bit (both are the exact value correctly
 * rounded), false for a value beyond float8's range; NaN for NaN.
 */
bool
retrain_numeric_float8(struct NumericData *num, double *value)
{
	Decimal		d;
	char	   *s;

	if (numeric_decimal(num, &d) && (decimal_fast_value(&d, value) || decimal_wide_value(&d, value)))
		return true;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum((Numeric) num)));
	return retrain_parse_float8(s, strlen(s), value);
}

PG_FUNCTION_INFO_V1(retrain_as_float8);
Datum
retrain_as_float8(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	double		v;

	if (!retrain_parse_float8(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &v))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(v);
}
