/*-------------------------------------------------------------------------
 *
 * rollup_latency.c
 *	  A latency distribution a rollup can keep: counts of values in
 *	  logarithmic buckets, from which a percentile comes out within 1% of
 *	  percentile_cont's over the same values.
 *
 * The rollout guard compares a canary's latency percentile with
 * production's.  percentile_cont needs every value in order, which a
 * rollup of a million predictions an hour cannot keep; counts per bucket
 * of width GAMMA (bucket k holds the positive values in
 * (GAMMA^(k-1), GAMMA^k]) can, and any value in bucket k is within
 * ALPHA = (GAMMA - 1) / (GAMMA + 1) of the bucket's representative
 * 2 GAMMA^k / (GAMMA + 1), relatively.  With GAMMA = 1.02, ALPHA = 1/101,
 * just under 1%, and the milliseconds a prediction takes, 0.01 ms to
 * 100 s, fill at most 815 buckets.
 *
 * percentile_cont(q) interpolates between the order statistics at ranks
 * floor(h) and ceil(h), h = q (n - 1).  Here each of them is replaced by
 * its bucket's representative and interpolated the same way; when both
 * have the same sign (latencies are never negative in
 * retrain.predictions) the result is within ALPHA of percentile_cont's,
 * relatively.  Negative values (a source may hold them) are bucketed by
 * their magnitude; zero, the infinities and NaN are counted apart and
 * come out exactly.
 *
 * _latency_state(float8) makes a serialized state over a group of rows,
 * _latency_union(bytea) merges serialized states and
 * _latency_percentile(bytea, float8) reads a percentile from one.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "util.h"

#define LATENCY_GAMMA 1.02
#define LATENCY_SERIAL_VERSION 1

/*
 * The buckets of one sign: counts[i] is bucket lo + i.  Dense, because
 * latencies crowd into a few hundred neighbouring buckets; the widest
 * range, every finite double, is about 73,600 buckets (600 kB).
 */
typedef struct SketchSide
{
	int32		lo;
	int32		len;
	int32		cap;
	int64	   *counts;
} SketchSide;

typedef struct LatencySketch
{
	int64		n;				/* non-NULL values */
	int64		zeros;
	int64		neg_inf;
	int64		pos_inf;
	int64		nans;
	SketchSide	pos;			/* values > 0, by bucket of the value */
	SketchSide	neg;			/* values < 0, by bucket of its magnitude */
} LatencySketch;

static inline double
log_gamma(void)
{
	static double lg = 0.0;

	if (lg == 0.0)
		lg = log(LATENCY_GAMMA);
	return lg;
}

/* The bucket of a finite value > 0. */
static inline int32
bucket_of(double magnitude)
{
	return (int32) ceil(log(magnitude) / log_gamma());
}

/*
 * The representative of bucket k, 2 GAMMA^k / (GAMMA + 1): the one value
 * within ALPHA of both ends.  The top bucket's would pass DBL_MAX, which no
 * value in it does.
 */
static double
representative(int32 k)
{
	double		v = exp((double) k * log_gamma()) * (2.0 / (LATENCY_GAMMA + 1.0));

	return Min(v, DBL_MAX);
}

/* Room in side for buckets lo .. hi (inclusive), keeping its counts. */
static void
side_cover(MemoryContext ctx, SketchSide *side, int32 lo, int32 hi)
{
	int32		new_lo;
	int32		new_len;
	int64	   *counts;

	if (side->len == 0)
	{
		new_lo = lo;
		new_len = hi - lo + 1;
	}
	else
	{
		if (lo >= side->lo && hi < side->lo + side->len)
			return;
		new_lo = Min(lo, side->lo);
		new_len = Max(hi, side->lo + side->len - 1) - new_lo + 1;
	}
	if (new_len > side->cap || new_lo != side->lo)
	{
		int32		cap = Max(new_len, Max(2 * side->cap, 64));

		counts = MemoryContextAllocZero(ctx, sizeof(int64) * cap);
		if (side->len > 0)
			memcpy(counts + (side->lo - new_lo), side->counts, sizeof(int64) * side->len);
		if (side->counts)
			pfree(side->counts);
		side->counts = counts;
		side->cap = cap;
	}
	side->lo = new_lo;
	side->len = new_len;
}

static inline void
side_add(MemoryContext ctx, SketchSide *side, int32 k, int64 count)
{
	if (unlikely(side->len == 0 || k < side->lo || k >= side->lo + side->len))
		side_cover(ctx, side, k, k);
	side->counts[k - side->lo] += count;
}

static void
sketch_add(MemoryContext ctx, LatencySketch *s, double v)
{
	s->n++;
	if (v > 0.0 && v <= DBL_MAX)
		side_add(ctx, &s->pos, bucket_of(v), 1);
	else if (v < 0.0 && v >= -DBL_MAX)
		side_add(ctx, &s->neg, bucket_of(-v), 1);
	else if (v == 0.0)
		s->zeros++;
	else if (isnan(v))
		s->nans++;
	else if (v > 0.0)
		s->pos_inf++;
	else
		s->neg_inf++;
}

static void
sketch_merge(MemoryContext ctx, LatencySketch *into, const LatencySketch *from)
{
	const SketchSide *fs[2] = {&from->pos, &from->neg};
	SketchSide *is[2] = {&into->pos, &into->neg};

	into->n += from->n;
	into->zeros += from->zeros;
	into->neg_inf += from->neg_inf;
	into->pos_inf += from->pos_inf;
	into->nans += from->nans;
	for (int s = 0; s < 2; s++)
	{
		if (fs[s]->len == 0)
			continue;
		side_cover(ctx, is[s], fs[s]->lo, fs[s]->lo + fs[s]->len - 1);
		for (int32 i = 0; i < fs[s]->len; i++)
			is[s]->counts[fs[s]->lo - is[s]->lo + i] += fs[s]->counts[i];
	}
}

static LatencySketch *
sketch_state(FunctionCallInfo fcinfo)
{
	if (!PG_ARGISNULL(0))
		return (LatencySketch *) PG_GETARG_POINTER(0);
	return MemoryContextAllocZero(retrain_agg_context(fcinfo), sizeof(LatencySketch));
}

/*
 * Serialized: a version byte, the five counts, then per side (positive,
 * negative) the number of non-empty buckets and each as (k, count), k
 * ascending.  Only the buckets that hold values: a rollup row stays small.
 */
static bytea *
sketch_send(const LatencySketch *s)
{
	const SketchSide *sides[2] = {&s->pos, &s->neg};
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, LATENCY_SERIAL_VERSION);
	pq_sendint64(&buf, s->n);
	pq_sendint64(&buf, s->zeros);
	pq_sendint64(&buf, s->neg_inf);
	pq_sendint64(&buf, s->pos_inf);
	pq_sendint64(&buf, s->nans);
	for (int i = 0; i < 2; i++)
	{
		int32		used = 0;

		for (int32 j = 0; j < sides[i]->len; j++)
			used += sides[i]->counts[j] != 0;
		pq_sendint32(&buf, used);
		for (int32 j = 0; j < sides[i]->len; j++)
		{
			if (sides[i]->counts[j] == 0)
				continue;
			pq_sendint32(&buf, sides[i]->lo + j);
			pq_sendint64(&buf, sides[i]->counts[j]);
		}
	}
	return pq_endtypsend(&buf);
}

static void
report_bad_state(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("retrain: not a serialized latency state: %s", why),
			 errhint("Rebuild the model's rollups with retrain.rebuild_rollups().")));
}

/*
 * A serialized state added into s (its buckets allocated in ctx), checked
 * as it is read: a state that is not one is refused, never turned into a
 * percentile.
 */
static void
sketch_recv(MemoryContext ctx, bytea *bytes, LatencySketch *s)
{
	SketchSide *sides[2] = {&s->pos, &s->neg};
	StringInfoData buf;
	int64		head[5];
	int64		total = 0;

	retrain_bytea_reader(&buf, bytes);
	if (buf.len < 1 + 5 * 8 + 2 * 4)
		report_bad_state("too short");
	if (pq_getmsgbyte(&buf) != LATENCY_SERIAL_VERSION)
		report_bad_state("unknown version");
	for (int i = 0; i < 5; i++)
	{
		head[i] = pq_getmsgint64(&buf);
		if (head[i] < 0)
			report_bad_state("a negative count");
		if (i > 0)
			total += head[i];
	}
	s->n += head[0];
	s->zeros += head[1];
	s->neg_inf += head[2];
	s->pos_inf += head[3];
	s->nans += head[4];
	for (int i = 0; i < 2; i++)
	{
		int32		used;
		int32		prev = PG_INT32_MIN;

		if (buf.len - buf.cursor < 4)
			report_bad_state("too short");
		used = pq_getmsgint(&buf, 4);
		if (used < 0 || used > (buf.len - buf.cursor) / 12)
			report_bad_state("more buckets than bytes");
		for (int32 j = 0; j < used; j++)
		{
			int32		k = pq_getmsgint(&buf, 4);
			int64		count = pq_getmsgint64(&buf);

			if ((j > 0 && k <= prev) || count <= 0 || k < -40000 || k > 40000)
				report_bad_state("buckets out of order or out of range");
			prev = k;
			side_add(ctx, sides[i], k, count);
			total += count;
		}
	}
	if (buf.cursor != buf.len)
		report_bad_state("bytes left over");
	if (total != head[0])
		report_bad_state("its counts do not add up");
}

/* The representative of the value at 0-based rank r, in float8 order. */
static double
value_at(const LatencySketch *s, int64 r)
{
	if (r < s->neg_inf)
		return -get_float8_infinity();
	r -= s->neg_inf;
	/* negatives ascend as their magnitude's bucket descends */
	for (int32 i = s->neg.len - 1; i >= 0; i--)
	{
		if (r < s->neg.counts[i])
			return -representative(s->neg.lo + i);
		r -= s->neg.counts[i];
	}
	if (r < s->zeros)
		return 0.0;
	r -= s->zeros;
	for (int32 i = 0; i < s->pos.len; i++)
	{
		if (r < s->pos.counts[i])
			return representative(s->pos.lo + i);
		r -= s->pos.counts[i];
	}
	if (r < s->pos_inf)
		return get_float8_infinity();
	return get_float8_nan();
}

PG_FUNCTION_INFO_V1(retrain_latency_accum);
Datum
retrain_latency_accum(PG_FUNCTION_ARGS)
{
	LatencySketch *s;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	s = sketch_state(fcinfo);
	sketch_add(retrain_agg_context(fcinfo), s, PG_GETARG_FLOAT8(1));
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(retrain_latency_combine);
Datum
retrain_latency_combine(PG_FUNCTION_ARGS)
{
	LatencySketch *s;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	s = sketch_state(fcinfo);
	sketch_merge(retrain_agg_context(fcinfo), s, (LatencySketch *) PG_GETARG_POINTER(1));
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(retrain_latency_serial);
Datum
retrain_latency_serial(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(sketch_send((LatencySketch *) PG_GETARG_POINTER(0)));
}

PG_FUNCTION_INFO_V1(retrain_latency_deserial);
Datum
retrain_latency_deserial(PG_FUNCTION_ARGS)
{
	/* a short-lived copy: the combine function adds it into its own state */
	LatencySketch *s = palloc0(sizeof(LatencySketch));

	sketch_recv(CurrentMemoryContext, PG_GETARG_BYTEA_PP(0), s);
	PG_RETURN_POINTER(s);
}

/* _latency_union's transition: a serialized state added into the state. */
PG_FUNCTION_INFO_V1(retrain_latency_merge);
Datum
retrain_latency_merge(PG_FUNCTION_ARGS)
{
	MemoryContext ctx;
	LatencySketch *s;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	ctx = retrain_agg_context(fcinfo);
	s = sketch_state(fcinfo);
	sketch_recv(ctx, PG_GETARG_BYTEA_PP(1), s);
	PG_RETURN_POINTER(s);
}

/*
 * _latency_percentile(state, fraction): percentile_cont(fraction) of the
 * values the state counts, each order statistic replaced by its bucket's
 * representative and interpolated as percentile_cont interpolates.
 */
PG_FUNCTION_INFO_V1(retrain_latency_percentile);
Datum
retrain_latency_percentile(PG_FUNCTION_ARGS)
{
	double		q = PG_GETARG_FLOAT8(1);
	LatencySketch s;
	double		h;
	double		first;
	double		second;
	int64		lo;
	int64		hi;

	if (isnan(q) || q < 0.0 || q > 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s: percentile %s is not between 0 and 1",
						retrain_func_name(fcinfo), float8out_internal(q))));
	memset(&s, 0, sizeof(s));
	sketch_recv(CurrentMemoryContext, PG_GETARG_BYTEA_PP(0), &s);
	if (s.n == 0)
		PG_RETURN_NULL();
	h = q * (double) (s.n - 1);
	lo = (int64) floor(h);
	hi = (int64) ceil(h);
	first = value_at(&s, lo);
	if (hi == lo)
		PG_RETURN_FLOAT8(first);
	second = value_at(&s, hi);
	PG_RETURN_FLOAT8(first + (h - (double) lo) * (second - first));
}
