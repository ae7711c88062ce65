/*-------------------------------------------------------------------------
 *
 * drift_features.c
 *	  retrain._feature_histograms(features jsonb, names text[],
 *	  edges float8[], ends int[]) → jsonb: histogram_missing of every
 *	  numeric feature of a jsonb features column in one aggregate.
 *
 * The check cycle counts each baselined numeric feature of every
 * prediction.  Written as one histogram_missing(_as_float8(features->>f),
 * edges) per feature, each row's jsonb is detoasted, searched and turned
 * into text once per feature, and each feature is an aggregate call of its
 * own: ten features cost about 0.6 µs each a row, most of a fold's time.
 * Here the row's jsonb is read once and each feature is looked up in it;
 * a value goes through the same conversion as _as_float8(features->>f)
 * (a number or a decimal string; anything else, and NaN, is missing) and
 * the same binning as histogram_missing, so the counts are identical.
 *
 * The features are given as arrays: names, all their edges one after the
 * other, and where each feature's edges end (ends[i] is one past the last
 * edge of names[i]); constants, or a column that is the same within a group
 * (the cycle's fold of many models in one statement).  The result is the
 * jsonb object
 * {"name": [bucket counts..., missing], ...} that to_jsonb() of each
 * histogram_missing gives.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "libpq/pqformat.h"
#include "nodes/primnodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "drift.h"
#include "retrain.h"
#include "util.h"

typedef struct FeatureHists
{
	int32		n;				/* features */
	char	  **names;
	int32	   *name_lens;
	HistState **hists;			/* one per feature, edges and counts */
	bool		args_const;		/* names, edges and ends are constants */
	Datum		args[3];		/* the arguments last checked */
	char	   *arg_bytes[3];	/* and their contents, when not constants */
	int32		arg_lens[3];
} FeatureHists;

/* A state for n features, their names and histograms yet to be set. */
static FeatureHists *
feature_hists_alloc(MemoryContext ctx, int n)
{
	FeatureHists *fh = MemoryContextAllocZero(ctx, sizeof(FeatureHists));

	fh->n = n;
	fh->names = MemoryContextAlloc(ctx, sizeof(char *) * Max(n, 1));
	fh->name_lens = MemoryContextAlloc(ctx, sizeof(int32) * Max(n, 1));
	fh->hists = MemoryContextAlloc(ctx, sizeof(HistState *) * Max(n, 1));
	return fh;
}

/* Whether aggregate arguments 1 to 3 (names, edges, ends) are constants. */
static bool
spec_args_const(FunctionCallInfo fcinfo)
{
	Aggref	   *aggref = AggGetAggref(fcinfo);
	ListCell   *lc;
	int			i = 0;

	if (aggref == NULL)
		return false;
	foreach(lc, aggref->args)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);

		if (i >= 1 && !IsA(tle->expr, Const))
			return false;
		i++;
	}
	return true;
}

/*
 * The state for the features the arguments name, made in ctx: every
 * argument checked (one name per feature, distinct; edges that histogram()
 * would take; ends ascending up to the number of edges).
 */
static FeatureHists *
feature_hists_new(FunctionCallInfo fcinfo, MemoryContext ctx)
{
	ArrayType  *names_arr = PG_GETARG_ARRAYTYPE_P(2);
	ArrayType  *ends_arr = PG_GETARG_ARRAYTYPE_P(4);
	Datum	   *names;
	bool	   *nulls;
	int			n;
	int			nedges;
	const double *edges = retrain_float8_array_arg(fcinfo, 3, "edges", &nedges);
	Datum	   *ends;
	bool	   *ends_nulls;
	int			nends;
	FeatureHists *fh;
	int			start = 0;

	if (ARR_NDIM(names_arr) > 1 || ARR_NDIM(ends_arr) > 1 || array_contains_nulls(ends_arr))
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: names and ends must be one-dimensional arrays without NULL elements",
						retrain_func_name(fcinfo))));
	deconstruct_array(names_arr, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
	deconstruct_array(ends_arr, INT4OID, sizeof(int32), true, TYPALIGN_INT, &ends, &ends_nulls, &nends);
	if (nends != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s: %d names but %d ends", retrain_func_name(fcinfo), n, nends)));

	fh = feature_hists_alloc(ctx, n);
	for (int i = 0; i < n; i++)
	{
		int32		end = DatumGetInt32(ends[i]);
		int			k = end - start;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s: names must not contain NULL elements", retrain_func_name(fcinfo))));
		if (k < 0 || end > nedges)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: ends[%d] is %d, outside %d to %d",
							retrain_func_name(fcinfo), i + 1, end, start, nedges)));
		if (k + 1 > retrain_max_bins)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("%s: %d edges make more buckets than retrain.max_bins (%d)",
							retrain_func_name(fcinfo), k, retrain_max_bins),
					 errhint("A superuser may raise retrain.max_bins.")));
		retrain_check_edges(fcinfo, edges + start, k, "edges");
		fh->name_lens[i] = VARSIZE_ANY_EXHDR(DatumGetPointer(names[i]));
		fh->names[i] = MemoryContextAlloc(ctx, Max(fh->name_lens[i], 1));
		memcpy(fh->names[i], VARDATA_ANY(DatumGetPointer(names[i])), fh->name_lens[i]);
		for (int j = 0; j < i; j++)
			if (fh->name_lens[j] == fh->name_lens[i] &&
				memcmp(fh->names[j], fh->names[i], fh->name_lens[i]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: feature \"%s\" is named twice", retrain_func_name(fcinfo),
								text_to_cstring((text *) DatumGetPointer(names[i])))));
		fh->hists[i] = retrain_hist_state_new(ctx, k, 0);
		memcpy(fh->hists[i]->edges, edges + start, sizeof(double) * k);
		start = end;
	}
	if (start != nedges)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the ends stop at %d of %d edges", retrain_func_name(fcinfo), start, nedges)));
	fh->args_const = spec_args_const(fcinfo);
	for (int i = 0; i < 3; i++)
	{
		struct varlena *v = (struct varlena *) PG_GETARG_POINTER(i + 2);

		/* an expanded or toasted argument is compared the slow way */
		fh->arg_bytes[i] = NULL;
		if (fh->args_const || VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v))
			continue;
		fh->arg_lens[i] = VARSIZE_ANY_EXHDR(v);
		fh->arg_bytes[i] = MemoryContextAlloc(ctx, Max(fh->arg_lens[i], 1));
		memcpy(fh->arg_bytes[i], VARDATA_ANY(v), fh->arg_lens[i]);
	}
	return fh;
}

/*
 * Whether computed arguments (a column of a join: the cycle folds many
 * models in one statement, each with its own features) hold the bytes they
 * held when the state was made: then they describe the same features, and
 * the row need not rebuild them to compare.
 */
static bool
same_arg_bytes(FunctionCallInfo fcinfo, const FeatureHists *fh)
{
	for (int i = 0; i < 3; i++)
	{
		struct varlena *v = (struct varlena *) PG_GETARG_POINTER(i + 2);

		if (fh->arg_bytes[i] == NULL || VARATT_IS_EXTERNAL(v) || VARATT_IS_COMPRESSED(v) ||
			(int32) VARSIZE_ANY_EXHDR(v) != fh->arg_lens[i] ||
			memcmp(VARDATA_ANY(v), fh->arg_bytes[i], fh->arg_lens[i]) != 0)
			return false;
	}
	return true;
}

static void
not_the_same(FunctionCallInfo fcinfo)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: names, edges and ends must be the same for every row of a group",
					retrain_func_name(fcinfo))));
}

/* Whether two states count the same features with the same bins. */
static bool
feature_hists_same(const FeatureHists *a, const FeatureHists *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (a->name_lens[i] != b->name_lens[i] ||
			memcmp(a->names[i], b->names[i], a->name_lens[i]) != 0 ||
			!retrain_hist_same_bins(a->hists[i], b->hists[i]))
			return false;
	return true;
}

/*
 * A feature's value as _as_float8(features->>name) gives it: a number, or a
 * string holding a decimal number; false for anything else (missing).
 */
static bool
feature_value(JsonbValue *v, double *value)
{
	if (v->type == jbvNumeric)
		return retrain_numeric_float8(v->val.numeric, value);
	if (v->type == jbvString)
		return retrain_parse_float8(v->val.string.val, v->val.string.len, value);
	/* null is missing; true, false, objects and arrays are not numbers */
	return false;
}

/* _feature_hists_accum(state, features jsonb, names text[], edges float8[], ends int[]) */
PG_FUNCTION_INFO_V1(retrain_feature_hists_accum);
Datum
retrain_feature_hists_accum(PG_FUNCTION_ARGS)
{
	FeatureHists *fh = PG_ARGISNULL(0) ? NULL : (FeatureHists *) PG_GETARG_POINTER(0);
	Jsonb	   *jb = NULL;

	/* no features to count: the row cannot count, as histogram's NULL edges */
	if (PG_ARGISNULL(2) || PG_ARGISNULL(3) || PG_ARGISNULL(4))
		RETURN_STATE_UNCHANGED();
	if (fh == NULL)
		fh = feature_hists_new(fcinfo, retrain_agg_context(fcinfo));
	else if (fh->args_const ? (PG_GETARG_DATUM(2) != fh->args[0] || PG_GETARG_DATUM(3) != fh->args[1] ||
								PG_GETARG_DATUM(4) != fh->args[2])
			 : !same_arg_bytes(fcinfo, fh))
	{
		/*
		 * computed arguments: they must describe the same features (the
		 * copy made to compare lives as long as this row)
		 */
		if (!feature_hists_same(feature_hists_new(fcinfo, CurrentMemoryContext), fh))
			not_the_same(fcinfo);
	}
	fh->args[0] = PG_GETARG_DATUM(2);
	fh->args[1] = PG_GETARG_DATUM(3);
	fh->args[2] = PG_GETARG_DATUM(4);

	/* features->>name is NULL for every name unless features is an object */
	if (!PG_ARGISNULL(1))
	{
		jb = PG_GETARG_JSONB_P(1);
		if (!JB_ROOT_IS_OBJECT(jb))
			jb = NULL;
	}
	for (int i = 0; i < fh->n; i++)
	{
		HistState  *h = fh->hists[i];
		JsonbValue	vbuf;
		JsonbValue *v = NULL;
		double		value;

		if (jb != NULL)
			v = getKeyJsonValueFromContainer(&jb->root, fh->names[i], fh->name_lens[i], &vbuf);
		if (v == NULL || !feature_value(v, &value) || isnan(value))
			h->missing++;
		else
			h->counts[retrain_bucket_of(h, value)]++;
	}
	PG_RETURN_POINTER(fh);
}

PG_FUNCTION_INFO_V1(retrain_feature_hists_combine);
Datum
retrain_feature_hists_combine(PG_FUNCTION_ARGS)
{
	FeatureHists *a = PG_ARGISNULL(0) ? NULL : (FeatureHists *) PG_GETARG_POINTER(0);
	FeatureHists *b = PG_ARGISNULL(1) ? NULL : (FeatureHists *) PG_GETARG_POINTER(1);

	if (b == NULL)
		RETURN_STATE_UNCHANGED();
	if (a == NULL)
	{
		/* b may be short-lived: copy it */
		MemoryContext ctx = retrain_agg_context(fcinfo);

		a = feature_hists_alloc(ctx, b->n);
		for (int i = 0; i < b->n; i++)
		{
			a->name_lens[i] = b->name_lens[i];
			a->names[i] = MemoryContextAlloc(ctx, Max(b->name_lens[i], 1));
			memcpy(a->names[i], b->names[i], b->name_lens[i]);
			a->hists[i] = retrain_hist_copy_bins(ctx, b->hists[i]);
		}
	}
	else if (!feature_hists_same(a, b))
		not_the_same(fcinfo);
	for (int i = 0; i < a->n; i++)
		retrain_hist_add(a->hists[i], b->hists[i]);
	PG_RETURN_POINTER(a);
}

/*
 * Serialized: the number of features, then per feature its name (length
 * and bytes) and its histogram as histogram()'s serial function writes it.
 */
PG_FUNCTION_INFO_V1(retrain_feature_hists_serial);
Datum
retrain_feature_hists_serial(PG_FUNCTION_ARGS)
{
	FeatureHists *fh = (FeatureHists *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, fh->n);
	for (int i = 0; i < fh->n; i++)
	{
		pq_sendint32(&buf, fh->name_lens[i]);
		pq_sendbytes(&buf, fh->names[i], fh->name_lens[i]);
		retrain_hist_send(&buf, fh->hists[i]);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

static void
bad_serialized(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid serialized feature histograms state")));
}

PG_FUNCTION_INFO_V1(retrain_feature_hists_deserial);
Datum
retrain_feature_hists_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	FeatureHists *fh;
	int			n;

	retrain_bytea_reader(&buf, bytes);
	n = pq_getmsgint(&buf, 4);
	/* each feature takes at least 28 bytes */
	if (n < 0 || n > buf.len / 28)
		bad_serialized();
	/* a short-lived copy: the combine function adds it into its own state */
	fh = feature_hists_alloc(CurrentMemoryContext, n);
	for (int i = 0; i < n; i++)
	{
		int			len = pq_getmsgint(&buf, 4);

		if (len < 0 || len > buf.len - buf.cursor)
			bad_serialized();
		fh->name_lens[i] = len;
		fh->names[i] = palloc(Max(len, 1));
		pq_copymsgbytes(&buf, fh->names[i], len);
		fh->hists[i] = retrain_hist_recv(&buf);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(fh);
}

static void
push_count(JsonbParseState **parse, int64 count)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(count);
	pushJsonbValue(parse, WJB_ELEM, &v);
}

/* {"name": [bucket counts..., missing], ...} */
PG_FUNCTION_INFO_V1(retrain_feature_hists_final);
Datum
retrain_feature_hists_final(PG_FUNCTION_ARGS)
{
	FeatureHists *fh = (FeatureHists *) PG_GETARG_POINTER(0);
	JsonbParseState *parse = NULL;
	JsonbValue *result;

	pushJsonbValue(&parse, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < fh->n; i++)
	{
		HistState  *h = fh->hists[i];
		JsonbValue	key;

		key.type = jbvString;
		key.val.string.val = fh->names[i];
		key.val.string.len = fh->name_lens[i];
		pushJsonbValue(&parse, WJB_KEY, &key);
		pushJsonbValue(&parse, WJB_BEGIN_ARRAY, NULL);
		for (int j = 0; j <= h->nedges; j++)
			push_count(&parse, h->counts[j]);
		push_count(&parse, h->missing);
		pushJsonbValue(&parse, WJB_END_ARRAY, NULL);
	}
	result = pushJsonbValue(&parse, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
