/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Helpers shared by retrain's aggregates.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>

#include "access/htup_details.h"
#include "catalog/pg_aggregate.h"
#include "libpq/pqformat.h"
#include "nodes/execnodes.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "catalog/pg_type_d.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "util.h"

/*
 * The aggregate a support function runs for when it runs as a window
 * function: WindowAgg hands its support functions no Aggref, so look among
 * the node's window functions for the aggregate whose transition or final
 * function this is (when two share it, the first is named; their messages
 * are about the same inputs).
 */
static Oid
window_aggregate(FunctionCallInfo fcinfo)
{
	WindowAggState *winstate = (WindowAggState *) fcinfo->context;
	Oid			support = fcinfo->flinfo ? fcinfo->flinfo->fn_oid : InvalidOid;
	ListCell   *lc;

	if (!OidIsValid(support))
		return InvalidOid;
	foreach(lc, winstate->funcs)
	{
		WindowFuncExprState *wfs = (WindowFuncExprState *) lfirst(lc);
		Oid			agg = wfs->wfunc->winfnoid;
		HeapTuple	tup;
		bool		match = false;

		if (!wfs->wfunc->winagg)
			continue;
		tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(agg));
		if (!HeapTupleIsValid(tup))
			continue;
		match = ((Form_pg_aggregate) GETSTRUCT(tup))->aggtransfn == support ||
			((Form_pg_aggregate) GETSTRUCT(tup))->aggfinalfn == support;
		ReleaseSysCache(tup);
		if (match)
			return agg;
	}
	return InvalidOid;
}

/*
 * The aggregate an Aggref stands for.  Citus runs ours inside aggregates of
 * its own (worker_partial_agg on a shard, coord_combine_agg on the
 * coordinator), whose first argument names ours: an Aggref of another
 * schema than the support function's, with such an argument, is named by
 * it, so that a message names retrain.f1, not pg_catalog.worker_partial_agg.
 */
static Oid
aggref_aggregate(Aggref *aggref, Oid support)
{
	TargetEntry *first;
	Const	   *named;
	Oid			ours;

	if (!OidIsValid(support) || aggref->args == NIL ||
		get_func_namespace(aggref->aggfnoid) == get_func_namespace(support))
		return aggref->aggfnoid;
	first = linitial_node(TargetEntry, aggref->args);
	if (!IsA(first->expr, Const))
		return aggref->aggfnoid;
	named = (Const *) first->expr;
	if (named->constisnull || (named->consttype != REGPROCEDUREOID && named->consttype != OIDOID))
		return aggref->aggfnoid;
	ours = DatumGetObjectId(named->constvalue);
	if (get_func_namespace(ours) != get_func_namespace(support))
		return aggref->aggfnoid;
	return ours;
}

char *
retrain_func_name(FunctionCallInfo fcinfo)
{
	Oid			fn = InvalidOid;
	int			context = AggCheckCallContext(fcinfo, NULL);

	if (context == AGG_CONTEXT_AGGREGATE)
	{
		Aggref	   *aggref = AggGetAggref(fcinfo);

		if (aggref != NULL)
			fn = aggref_aggregate(aggref, fcinfo->flinfo ? fcinfo->flinfo->fn_oid : InvalidOid);
	}
	else if (context == AGG_CONTEXT_WINDOW && fcinfo->context != NULL &&
			 IsA(fcinfo->context, WindowAggState))
		fn = window_aggregate(fcinfo);
	if (!OidIsValid(fn) && fcinfo->flinfo != NULL)
		fn = fcinfo->flinfo->fn_oid;
	if (!OidIsValid(fn))
		return pstrdup("retrain");

	return quote_qualified_identifier(get_namespace_name(get_func_namespace(fn)),
									  get_func_name(fn));
}

MemoryContext
retrain_agg_context(FunctionCallInfo fcinfo)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s called in non-aggregate context",
						retrain_func_name(fcinfo))));
	return aggcontext;
}

void
retrain_report_nan(FunctionCallInfo fcinfo, const char *argname)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s is NaN", retrain_func_name(fcinfo), argname),
			 errhint("NaN has no place in an ordering or a mean; filter such rows out or replace the value.")));
}

void
retrain_report_nonfinite(FunctionCallInfo fcinfo, double value, const char *argname)
{
	if (isnan(value))
		retrain_report_nan(fcinfo, argname);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: %s is %s", retrain_func_name(fcinfo), argname,
					float8out_internal(value)),
			 errdetail("This metric is defined for finite values only.")));
}

/*
 * Least-significant-digit radix sort, 11 bits a digit: six passes over the
 * keys, each a stable scatter into 2048 buckets, after one pass that counts
 * the digits of all six.  A pass whose digit is the same in every key is
 * skipped; for probabilities in [0, 1] the top digit usually is.  This is
 * several times faster than a comparison sort on millions of keys, which
 * keeps exact AUC close to the cost of a scan.
 */
#define RADIX_BITS		11
#define RADIX_BUCKETS	(1 << RADIX_BITS)
#define RADIX_MASK		(RADIX_BUCKETS - 1)
#define RADIX_PASSES	((64 + RADIX_BITS - 1) / RADIX_BITS)

void
radix_sort_uint64(uint64 *keys, uint64 *scratch, Size n)
{
	Size	   *counts;
	uint64	   *src;
	uint64	   *dst;
	Size		i;
	int			pass;

	if (n < 64)
	{
		/* insertion sort: the scratch array is not worth it */
		for (i = 1; i < n; i++)
		{
			uint64		key = keys[i];
			Size		j = i;

			while (j > 0 && keys[j - 1] > key)
			{
				keys[j] = keys[j - 1];
				j--;
			}
			keys[j] = key;
		}
		return;
	}

	counts = palloc0(sizeof(Size) * RADIX_PASSES * RADIX_BUCKETS);
	for (i = 0; i < n; i++)
	{
		uint64		key = keys[i];

		for (pass = 0; pass < RADIX_PASSES; pass++)
			counts[pass * RADIX_BUCKETS + ((key >> (pass * RADIX_BITS)) & RADIX_MASK)]++;
	}

	src = keys;
	dst = scratch;
	for (pass = 0; pass < RADIX_PASSES; pass++)
	{
		Size	   *offsets = counts + pass * RADIX_BUCKETS;
		int			shift = pass * RADIX_BITS;
		Size		total = 0;
		int			b;

		if (offsets[(src[0] >> shift) & RADIX_MASK] == n)
			continue;

		CHECK_FOR_INTERRUPTS();

		for (b = 0; b < RADIX_BUCKETS; b++)
		{
			Size		c = offsets[b];

			offsets[b] = total;
			total += c;
		}
		for (i = 0; i < n; i++)
		{
			uint64		key = src[i];

			dst[offsets[(key >> shift) & RADIX_MASK]++] = key;
		}
		{
			uint64	   *t = src;

			src = dst;
			dst = t;
		}
	}
	if (src != keys)
		memcpy(keys, src, n * sizeof(uint64));

	pfree(counts);
}

#define KEY_ARRAY_INITIAL_CAP 64

void
key_array_reserve(MemoryContext ctx, KeyArray *a, Size more)
{
	Size		need = a->n + more;
	Size		cap;

	if (need <= a->cap)
		return;
	cap = Max(a->cap, KEY_ARRAY_INITIAL_CAP);
	while (cap < need)
		cap *= 2;
	if (a->keys == NULL)
		a->keys = MemoryContextAllocExtended(ctx, cap * sizeof(uint64), MCXT_ALLOC_HUGE);
	else
		a->keys = repalloc_huge(a->keys, cap * sizeof(uint64));
	a->cap = cap;
}

void
key_array_append(MemoryContext ctx, KeyArray *into, const KeyArray *from)
{
	if (from->n == 0)
		return;
	key_array_reserve(ctx, into, from->n);
	memcpy(into->keys + into->n, from->keys, from->n * sizeof(uint64));
	into->n += from->n;
}

void
retrain_begin_keys_send(FunctionCallInfo fcinfo, StringInfo buf, Size header, Size nkeys)
{
	Size		size = header + nkeys * sizeof(uint64);

	if (!AllocSizeIsValid(size + VARHDRSZ))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s: a partial aggregate of %zu values is too large to pass between parallel processes",
						retrain_func_name(fcinfo), nkeys),
				 errdetail("A partial state is limited to 1 GB, about 134 million values per process."),
				 errhint("Allow more parallel workers, or run the query with max_parallel_workers_per_gather = 0.")));
	pq_begintypsend(buf);
	enlargeStringInfo(buf, size);
}

void
key_array_send(StringInfo buf, const KeyArray *a)
{
	char	   *out = buf->data + buf->len;
	Size		i;

	Assert((Size) (buf->maxlen - buf->len) > a->n * sizeof(uint64));
	/* the buffer offers no alignment for uint64: copy bytewise */
	for (i = 0; i < a->n; i++)
	{
		uint64		k = pg_hton64(a->keys[i]);

		memcpy(out + i * sizeof(uint64), &k, sizeof(k));
	}
	buf->len += a->n * sizeof(uint64);
}

void
key_array_recv(MemoryContext ctx, StringInfo buf, KeyArray *a, Size n)
{
	const char *in;
	Size		i;

	if (n > (Size) (buf->len - buf->cursor) / sizeof(uint64))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid serialized aggregate state")));
	key_array_reserve(ctx, a, n);
	in = buf->data + buf->cursor;
	for (i = 0; i < n; i++)
	{
		uint64		k;

		memcpy(&k, in + i * sizeof(uint64), sizeof(k));
		a->keys[i] = pg_ntoh64(k);
	}
	a->n = n;
	buf->cursor += n * sizeof(uint64);
}

void
retrain_send_float8s(StringInfo buf, const double *values, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		pq_sendfloat8(buf, values[i]);
}

void
retrain_recv_float8s(StringInfo buf, double *values, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		values[i] = pq_getmsgfloat8(buf);
}

/*
 * ARR_DATA_PTR mixes signed and unsigned operands, which -Wextra reports
 * inside PostgreSQL's header; keep the exception to this one use.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
static inline const double *
array_data_float8(ArrayType *array)
{
	return (const double *) ARR_DATA_PTR(array);
}
#pragma GCC diagnostic pop

const double *
retrain_float8_array_arg(FunctionCallInfo fcinfo, int argno, const char *argname, int *n)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(argno);

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: %s must be a one-dimensional array",
						retrain_func_name(fcinfo), argname)));
	if (array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: %s must not contain NULL elements",
						retrain_func_name(fcinfo), argname)));
	Assert(ARR_ELEMTYPE(array) == FLOAT8OID);
	*n = ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array));
	return array_data_float8(array);
}

double
retrain_check_distribution(FunctionCallInfo fcinfo, const double *v, int n, const char *argname)
{
	double		sum = 0;
	int			i;

	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s is empty", retrain_func_name(fcinfo), argname)));
	for (i = 0; i < n; i++)
	{
		if (isnan(v[i]) || isinf(v[i]) || v[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: %s[%d] is %s; counts and proportions must be finite and >= 0",
							retrain_func_name(fcinfo), argname, i + 1,
							float8out_internal(v[i]))));
		sum += v[i];
	}
	if (sum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s is all zeros", retrain_func_name(fcinfo), argname),
				 errdetail("A distribution needs at least one positive count or proportion.")));
	return sum;
}

/*
 * The shares of a distribution whose elements add up to total: each element
 * divided by the total, as long as the total is an ordinary number.  Finite
 * elements can add up beyond float8 (two of 1e308), or to a total whose
 * reciprocal is not finite; then each is divided by the largest first, so
 * that the sum stays within n and the shares come out right.
 */
const double *
retrain_shares(const double *v, int n, double total)
{
	double	   *shares = palloc(sizeof(double) * n);
	double		m = 0;
	double		scaled = 0;
	int			i;

	if (isfinite(total) && total >= DBL_MIN * 0x1p60)
	{
		for (i = 0; i < n; i++)
			shares[i] = v[i] / total;
		return shares;
	}
	for (i = 0; i < n; i++)
		m = Max(m, v[i]);
	for (i = 0; i < n; i++)
		scaled += v[i] / m;
	for (i = 0; i < n; i++)
		shares[i] = (v[i] / m) / scaled;
	return shares;
}

void
retrain_check_edges(FunctionCallInfo fcinfo, const double *edges, int n, const char *argname)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		if (isnan(edges[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: %s[%d] is NaN", retrain_func_name(fcinfo), argname, i + 1)));
		if (i > 0 && edges[i] == edges[i - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: %s must not repeat, but %s[%d] = %s repeats %s[%d]",
							retrain_func_name(fcinfo), argname, argname, i + 1,
							float8out_internal(edges[i]), argname, i)));
		if (i > 0 && edges[i] < edges[i - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: %s must be ascending, but %s[%d] = %s follows %s[%d] = %s",
							retrain_func_name(fcinfo), argname, argname, i + 1,
							float8out_internal(edges[i]), argname, i,
							float8out_internal(edges[i - 1]))));
	}
}

Datum
retrain_float8_array_datum(const double *v, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Float8GetDatum(v[i]);
	return PointerGetDatum(construct_array(elems, n, FLOAT8OID, sizeof(float8),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum
retrain_int8_array_datum(const int64 *v, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
