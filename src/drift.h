/*-------------------------------------------------------------------------
 *
 * drift.h
 *	  Declarations shared by the drift statistics (drift_*.c).
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef RETRAIN_DRIFT_H
#define RETRAIN_DRIFT_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/palloc.h"

#include "agg_state.h"

/* The epsilon of the psi aggregate, which takes none as an argument. */
#define PSI_DEFAULT_EPSILON 0.0001

/*
 * PSI of two distributions of n buckets given with their totals (counts or
 * proportions); a proportion of 0 becomes epsilon.
 */
extern double retrain_psi_of(const double *expected, double expected_total,
							 const double *actual, double actual_total, int n,
							 double epsilon);

/* An epsilon argument: finite and > 0, else 22023. */
extern double retrain_epsilon_arg(FunctionCallInfo fcinfo, int argno);

/*
 * The state of histogram(value, edges) and psi(value, edges, expected): the
 * edges, one count per bucket, and for psi the expected distribution.  The
 * arrays arrive with every row; they are checked once and then only
 * compared by pointer, which is the same for every row of a constant.
 */
typedef struct HistState
{
	RetrainStateHeader hdr;		/* a retrain.agg_state of kind histogram */
	int32		nedges;
	int32		nexpected;		/* 0 for histogram, nedges + 1 for psi */

	/*
	 * The arrays follow the struct in the same allocation, so that the state
	 * is one varlena; PostgreSQL may copy it, so these are set again
	 * (retrain_hist_attach) wherever a state arrives as an argument.
	 */
	double	   *edges;
	double	   *expected;
	int64	   *counts;			/* nedges + 1 */
	int64		missing;		/* NULL or NaN values, for histogram_missing */
	bool		args_const;		/* edges and expected are constants */
	Datum		edges_arg;		/* the arguments last checked */
	Datum		expected_arg;
} HistState;

/* The size of a state with these bins, arrays included. */
static inline Size
retrain_hist_size(int nedges, int nexpected)
{
	return MAXALIGN(sizeof(HistState)) +
		sizeof(double) * (Size) (Max(nedges, 1) + Max(nexpected, 1) + nedges + 1);
}

/*
 * Point s's arrays at those of the state at base: its own (attach), or,
 * for a copy of a state's fixed part, the state's, which is then only read.
 */
static inline HistState *
retrain_hist_point(HistState *s, const void *base)
{
	char	   *p = (char *) base + MAXALIGN(sizeof(HistState));

	s->edges = (double *) p;
	s->expected = s->edges + Max(s->nedges, 1);
	s->counts = (int64 *) (s->expected + Max(s->nexpected, 1));
	return s;
}

#define retrain_hist_attach(s) retrain_hist_point((s), (s))

/* Buckets up to this many edges are found by counting, beyond by search. */
#define HIST_LINEAR_EDGES 32

static inline int
retrain_bucket_of(const HistState *state, double value)
{
	const double *edges = state->edges;
	int			n = state->nedges;

	if (n <= HIST_LINEAR_EDGES)
	{
		int			b = 0;
		int			i;

		/* no branch on the data: the compiler can vectorize this */
		for (i = 0; i < n; i++)
			b += edges[i] <= value;
		return b;
	}
	else
	{
		/* the number of edges <= value: an upper bound search */
		int			lo = 0;
		int			hi = n;

		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (edges[mid] <= value)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo;
	}
}

extern HistState *retrain_hist_state_new(MemoryContext ctx, int nedges, int nexpected);

/* A hist state's fields set on zeroed memory of retrain_hist_size(). */
extern HistState *retrain_hist_state_init(void *mem, int nedges, int nexpected);

/* Whether two states bin alike: the same edges and expected distribution. */
extern bool retrain_hist_same_bins(const HistState *a, const HistState *b);

/* A state with b's bins and no counts yet, in ctx. */
extern HistState *retrain_hist_copy_bins(MemoryContext ctx, const HistState *b);

/* b's counts added to a's (the same bins). */
extern void retrain_hist_add(HistState *a, const HistState *b);

/*
 * A state as bytes (bins, counts, missing), and back as a new state in the
 * current memory context, its size checked against the bytes left.
 */
extern void retrain_hist_send(StringInfo buf, const HistState *s);
extern HistState *retrain_hist_recv(StringInfo buf);

/*
 * A feature value given as text (from jsonb or a wide source's column) as a
 * float8: false when it is not a decimal number or is beyond float8's range
 * (see _as_float8).
 */
extern bool retrain_parse_float8(const char *s, int len, double *value);
extern bool retrain_numeric_float8(struct NumericData *num, double *value);

#endif							/* RETRAIN_DRIFT_H */
