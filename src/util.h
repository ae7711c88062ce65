/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Helpers shared by retrain's aggregates: naming the SQL function in
 *	  errors, the aggregate memory context, compensated sums, sortable keys
 *	  for float8 values and a radix sort over them.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef RETRAIN_UTIL_H
#define RETRAIN_UTIL_H

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#if PG_VERSION_NUM >= 160000
/* PostgreSQL 16 moved VARDATA_ANY() and its kin out of postgres.h. */
#include "varatt.h"
#endif

/*
 * PostgreSQL 18 marks a function that never returns with pg_noreturn before
 * its declaration, and no longer has pg_attribute_noreturn(); GCC and clang
 * accept the older attribute in the same place.
 */
#ifndef pg_noreturn
#define pg_noreturn pg_attribute_noreturn()
#endif

/*
 * The qualified name of the SQL function being run ("retrain.auc"), for
 * error messages.  Inside an aggregate's support function this is the
 * aggregate, not the support function.  Costs catalog lookups: call it only
 * on the way to an error.
 */
extern char *retrain_func_name(FunctionCallInfo fcinfo);

/*
 * Aggregate support functions pass their state on unchanged when there is
 * nothing to add to it: a row the transition function skips, or an empty
 * second state in a combine function.  The state may still be NULL (no row
 * yet), which must stay NULL.
 */
#define RETURN_STATE_UNCHANGED() \
	do { \
		if (PG_ARGISNULL(0)) \
			PG_RETURN_NULL(); \
		PG_RETURN_DATUM(PG_GETARG_DATUM(0)); \
	} while (0)

/* The aggregate's long-lived memory context; an error outside aggregates. */
extern MemoryContext retrain_agg_context(FunctionCallInfo fcinfo);

/* Raise 22023 for a NaN or a non-finite argument, naming it and the function. */
pg_noreturn extern void retrain_report_nan(FunctionCallInfo fcinfo, const char *argname);
pg_noreturn extern void retrain_report_nonfinite(FunctionCallInfo fcinfo, double value,
												 const char *argname);

/*
 * The checks run on every row of a scan, so they are inline and the
 * reporting is out of line.
 */
static inline void
retrain_reject_nan(FunctionCallInfo fcinfo, double value, const char *argname)
{
	if (unlikely(isnan(value)))
		retrain_report_nan(fcinfo, argname);
}

static inline void
retrain_reject_nonfinite(FunctionCallInfo fcinfo, double value, const char *argname)
{
	if (unlikely(!isfinite(value)))
		retrain_report_nonfinite(fcinfo, value, argname);
}

/*
 * Neumaier's compensated sum.  Metrics are means over millions of rows; a
 * plain running sum loses about log10(n) digits, which would break the
 * promise that results agree with scikit-learn to 1e-12.  The compensation
 * also makes the result independent, to the last bits, of how a parallel
 * plan split the rows.
 */
typedef struct CompensatedSum
{
	double		sum;
	double		comp;
} CompensatedSum;

static inline void
csum_add(CompensatedSum *s, double x)
{
	double		t = s->sum + x;

	if (fabs(s->sum) >= fabs(x))
		s->comp += (s->sum - t) + x;
	else
		s->comp += (x - t) + s->sum;
	s->sum = t;
}

static inline void
csum_merge(CompensatedSum *into, const CompensatedSum *from)
{
	csum_add(into, from->sum);
	csum_add(into, from->comp);
}

static inline double
csum_value(const CompensatedSum *s)
{
	return s->sum + s->comp;
}

/*
 * A 64-bit key whose unsigned order is the numeric order of a non-NaN
 * float8, with -0 and +0 equal: flip every bit of negatives, only the sign
 * bit of the rest.  Sorting keys instead of doubles lets a radix sort do the
 * work and makes ties exact integer comparisons.
 */
static inline uint64
float8_sort_key(double value)
{
	uint64		bits;

	if (value == 0.0)
		value = 0.0;			/* fold -0 into +0 */
	memcpy(&bits, &value, sizeof(bits));
	return (bits & UINT64CONST(0x8000000000000000)) ? ~bits
		: bits | UINT64CONST(0x8000000000000000);
}

/*
 * The inverse of float8_sort_key (giving +0 for either zero).
 */
static inline double
float8_from_sort_key(uint64 key)
{
	uint64		bits = (key & UINT64CONST(0x8000000000000000)) ?
		key & ~UINT64CONST(0x8000000000000000) : ~key;
	double		value;

	memcpy(&value, &bits, sizeof(value));
	return value;
}

/*
 * A growable array of sort keys: the state of the aggregates that keep every
 * value.  A huge allocation, so one group may hold far more than 1 GB; it
 * starts small, so many small groups stay cheap, and doubles.
 */
typedef struct KeyArray
{
	uint64	   *keys;
	Size		n;
	Size		cap;
} KeyArray;

extern void key_array_reserve(MemoryContext ctx, KeyArray *a, Size more);
extern void key_array_append(MemoryContext ctx, KeyArray *into, const KeyArray *from);

static inline void
key_array_push(MemoryContext ctx, KeyArray *a, uint64 key)
{
	if (unlikely(a->n == a->cap))
		key_array_reserve(ctx, a, 1);
	a->keys[a->n++] = key;
}

/*
 * Begin the serialized form of a partial state that holds every value:
 * header bytes plus 8 bytes a value, in one bytea.  A bytea cannot exceed
 * 1 GB (about 134 million values per parallel process): say so plainly
 * rather than fail inside the allocator.
 */
extern void retrain_begin_keys_send(FunctionCallInfo fcinfo, StringInfo buf,
									Size header, Size nkeys);

/*
 * Write the keys in network byte order (the caller has made room), and read
 * n of them back into an empty array.
 */
extern void key_array_send(StringInfo buf, const KeyArray *a);
extern void key_array_recv(MemoryContext ctx, StringInfo buf, KeyArray *a, Size n);

/*
 * Sort n keys ascending.  scratch must hold n keys; the caller allocates it
 * so that several sorts can share one.
 */
extern void radix_sort_uint64(uint64 *keys, uint64 *scratch, Size n);

/*
 * Point a StringInfo at a bytea's contents to read them with pq_getmsg*(),
 * without copying: a serialized state may be hundreds of megabytes.
 */
static inline void
retrain_bytea_reader(StringInfo buf, bytea *bytes)
{
	buf->data = VARDATA_ANY(bytes);
	buf->len = VARSIZE_ANY_EXHDR(bytes);
	buf->maxlen = buf->len;
	buf->cursor = 0;
}

/*
 * A float8[] argument as a C array: one dimension (or empty), no NULL
 * element (22004 otherwise, naming the function and argument).  Points into
 * the detoasted array; *n gets the length.
 */
extern const double *retrain_float8_array_arg(FunctionCallInfo fcinfo, int argno,
											  const char *argname, int *n);

/*
 * Check a distribution given as counts or proportions: every element finite
 * and >= 0, not all zero.  Returns the sum.
 */
extern double retrain_check_distribution(FunctionCallInfo fcinfo, const double *v, int n,
										 const char *argname);

/* The shares of counts adding up to total, also where the total overflows. */
extern const double *retrain_shares(const double *v, int n, double total);

/* Check bin edges: no NaN, strictly ascending. */
extern void retrain_check_edges(FunctionCallInfo fcinfo, const double *edges, int n,
								const char *argname);

/* A float8[] or int8[] result. */
extern Datum retrain_float8_array_datum(const double *v, int n);
extern Datum retrain_int8_array_datum(const int64 *v, int n);

/* Serialization of fixed-size states, in network byte order. */
extern void retrain_send_float8s(StringInfo buf, const double *values, int n);
extern void retrain_recv_float8s(StringInfo buf, double *values, int n);

#endif							/* RETRAIN_UTIL_H */
