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
 * loss family's _*_merged(bytea).  _features_union and _sum_features add
 * the feature counts of buckets (histograms and category counts, kept as
 * jsonb).
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type_d.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

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

/*
 * Feature counts of rollup rows added, feature by feature: a histogram
 * ({"f": [n, ...]}) element by element, category counts ({"f": {"a": n,
 * ...}}) key by key.  A feature no row counted (JSON null) stays out.
 * check() adds a window's buckets this way, once per trigger and check:
 * the aggregate _features_union(jsonb) does it row by row, so that no
 * array of the window's documents is built; _sum_features(jsonb[]) adds a
 * few (a bucket and what a fold adds to it).  Category lists are merged in
 * jsonb's own key order rather than looked up.
 */
typedef struct FeatureSum
{
	JsonbValue	name;			/* string in the sums' context */
	bool		is_array;
	int			n;
	int64	   *counts;
	JsonbValue *keys;			/* categories (strings in the sums' context),
								 * in jsonb key order */
} FeatureSum;

typedef struct FeatureSums
{
	MemoryContext cxt;			/* where the sums and their strings live */
	int			n;
	int			cap;
	FeatureSum *sums;
} FeatureSums;

/* jsonb's storage order of object keys: shorter first, then bytes */
static int
key_cmp(const JsonbValue *a, const JsonbValue *b)
{
	if (a->val.string.len != b->val.string.len)
		return a->val.string.len < b->val.string.len ? -1 : 1;
	return memcmp(a->val.string.val, b->val.string.val, a->val.string.len);
}

/* A string value copied into cxt (a row's document does not outlive it). */
static JsonbValue
copy_string(const JsonbValue *v, MemoryContext cxt)
{
	JsonbValue	c = *v;

	c.val.string.val = MemoryContextAlloc(cxt, Max(v->val.string.len, 1));
	memcpy(c.val.string.val, v->val.string.val, v->val.string.len);
	return c;
}

static int64
count_of(const JsonbValue *v, const JsonbValue *feature)
{
	bool		too_big = false;
	int32		small;

	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("retrain: the rollup counts of feature \"%.*s\" hold a value that is not a number",
						feature->val.string.len, feature->val.string.val)));
	/* counts are mostly small: no function call for them */
	small = numeric_int4_opt_error(v->val.numeric, &too_big);
	if (!too_big)
		return small;
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric)));
}

/* The elements of one feature's container: counts, and keys for objects. */
static int
read_container(JsonbContainer *c, const JsonbValue *feature, int64 **counts, JsonbValue **keys)
{
	JsonbIterator *it = JsonbIteratorInit(c);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			cap = Max(JsonContainerSize(c), 1);
	int			n = 0;

	*counts = palloc(sizeof(int64) * cap);
	*keys = JsonContainerIsObject(c) ? palloc(sizeof(JsonbValue) * cap) : NULL;
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			(*keys)[n] = v;
		else if (tok == WJB_ELEM || tok == WJB_VALUE)
			(*counts)[n++] = count_of(&v, feature);
	}
	return n;
}

static FeatureSums *
sums_create(MemoryContext cxt)
{
	FeatureSums *s = MemoryContextAllocZero(cxt, sizeof(FeatureSums));

	s->cxt = cxt;
	s->cap = 16;
	s->sums = MemoryContextAlloc(cxt, sizeof(FeatureSum) * s->cap);
	return s;
}

/*
 * n counts of one feature (with their keys, for categories; strings that
 * need not outlive the call) added to the sums.
 */
static void
sums_add(FeatureSums *s, const JsonbValue *name, bool is_array, int n, const int64 *counts,
		 const JsonbValue *keys, int sign)
{
	FeatureSum *f;
	int			i = 0,
				j = 0,
				k = 0;
	int64	   *merged;
	JsonbValue *merged_keys;

	for (f = s->sums; f < s->sums + s->n && key_cmp(&f->name, name) != 0; f++)
		;
	if (f == s->sums + s->n)
	{
		if (s->n == s->cap)
		{
			s->cap *= 2;
			s->sums = repalloc(s->sums, sizeof(FeatureSum) * s->cap);
			f = s->sums + s->n;
		}
		f->name = copy_string(name, s->cxt);
		f->is_array = is_array;
		f->n = 0;
		f->counts = NULL;
		f->keys = NULL;
		if (is_array)
		{
			f->n = n;
			f->counts = MemoryContextAllocZero(s->cxt, sizeof(int64) * Max(n, 1));
		}
		s->n++;
	}
	if (f->is_array != is_array || (is_array && f->n != n))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("retrain: the rollup counts of feature \"%.*s\" differ in shape between buckets",
						f->name.val.string.len, f->name.val.string.val),
				 errhint("Rebuild the model's rollups with retrain.rebuild_rollups().")));
	if (is_array)
	{
		for (i = 0; i < n; i++)
			f->counts[i] += sign * counts[i];
		return;
	}
	/* two sorted category lists merged; a new key's string is copied */
	merged = MemoryContextAlloc(s->cxt, sizeof(int64) * Max(f->n + n, 1));
	merged_keys = MemoryContextAlloc(s->cxt, sizeof(JsonbValue) * Max(f->n + n, 1));
	while (i < f->n || j < n)
	{
		int			cmp = i == f->n ? 1 : j == n ? -1 : key_cmp(&f->keys[i], &keys[j]);

		merged_keys[k] = cmp <= 0 ? f->keys[i] : copy_string(&keys[j], s->cxt);
		merged[k++] = (cmp <= 0 ? f->counts[i] : 0) + (cmp >= 0 ? sign * counts[j] : 0);
		i += cmp <= 0;
		j += cmp >= 0;
	}
	if (f->counts)
		pfree(f->counts);
	if (f->keys)
		pfree(f->keys);
	f->n = k;
	f->counts = merged;
	f->keys = merged_keys;
}

/* A rollup row's feature counts added to the sums (not an object: none). */
static void
sums_add_jsonb(FeatureSums *s, Jsonb *jb, int sign)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbValue	name = {0};
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(jb))
		return;
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int64	   *counts;
		JsonbValue *keys;
		int			n;

		if (tok == WJB_KEY)
			name = v;
		if (tok != WJB_VALUE || v.type != jbvBinary)
			continue;			/* a JSON null: no counts */
		n = read_container(v.val.binary.data, &name, &counts, &keys);
		sums_add(s, &name, JsonContainerIsArray(v.val.binary.data), n, counts, keys, sign);
		pfree(counts);
		if (keys)
			pfree(keys);
	}
}

/* One sums' counts added to another's. */
static void
sums_add_sums(FeatureSums *s, const FeatureSums *other)
{
	for (int f = 0; f < other->n; f++)
		sums_add(s, &other->sums[f].name, other->sums[f].is_array, other->sums[f].n, other->sums[f].counts,
				 other->sums[f].keys, 1);
}

static JsonbValue *
push_count(JsonbParseState **parse, JsonbIteratorToken tok, int64 count)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(count);
	return pushJsonbValue(parse, tok, &v);
}

/*
 * The sums as a rollup row's document.  A difference (drop_zeros) leaves
 * out what the rows between did not count: categories counted 0 times, and
 * features counted nowhere (every document that has a feature counts some
 * rows for it: a bucket's rows, missing values included, or its categories
 * seen).
 */
static Jsonb *
sums_to_jsonb(FeatureSums *s, bool drop_zeros)
{
	JsonbParseState *parse = NULL;
	JsonbValue *result;

	pushJsonbValue(&parse, WJB_BEGIN_OBJECT, NULL);
	for (int f = 0; f < s->n; f++)
	{
		FeatureSum *sum = &s->sums[f];
		bool		counted = false;

		for (int i = 0; i < sum->n; i++)
			counted |= sum->counts[i] != 0;
		if (drop_zeros && !counted)
			continue;
		pushJsonbValue(&parse, WJB_KEY, &sum->name);
		pushJsonbValue(&parse, sum->is_array ? WJB_BEGIN_ARRAY : WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < sum->n; i++)
		{
			if (drop_zeros && !sum->is_array && sum->counts[i] == 0)
				continue;
			if (!sum->is_array)
				pushJsonbValue(&parse, WJB_KEY, &sum->keys[i]);
			push_count(&parse, sum->is_array ? WJB_ELEM : WJB_VALUE, sum->counts[i]);
		}
		pushJsonbValue(&parse, sum->is_array ? WJB_END_ARRAY : WJB_END_OBJECT, NULL);
	}
	result = pushJsonbValue(&parse, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(result);
}

PG_FUNCTION_INFO_V1(retrain_sum_features);
Datum
retrain_sum_features(PG_FUNCTION_ARGS)
{
	ArrayType  *rows = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			nrows;
	FeatureSums *s = sums_create(CurrentMemoryContext);

	deconstruct_array(rows, JSONBOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nrows);
	for (int r = 0; r < nrows; r++)
		if (!nulls[r])
			sums_add_jsonb(s, DatumGetJsonbP(elems[r]), 1);
	PG_RETURN_JSONB_P(sums_to_jsonb(s, false));
}

/*
 * The aggregate _features_union(jsonb): the state is the sums so far, in
 * the aggregate's context; each row's document is read and let go.
 */
PG_FUNCTION_INFO_V1(retrain_features_accum);
Datum
retrain_features_accum(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = retrain_agg_context(fcinfo);
	FeatureSums *s;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	s = PG_ARGISNULL(0) ? sums_create(cxt) : (FeatureSums *) PG_GETARG_POINTER(0);
	sums_add_jsonb(s, PG_GETARG_JSONB_P(1), 1);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(retrain_features_combine);
Datum
retrain_features_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = retrain_agg_context(fcinfo);
	FeatureSums *s;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	/* the second state may live elsewhere (deserialized): copied in */
	s = PG_ARGISNULL(0) ? sums_create(cxt) : (FeatureSums *) PG_GETARG_POINTER(0);
	sums_add_sums(s, (FeatureSums *) PG_GETARG_POINTER(1));
	PG_RETURN_POINTER(s);
}

/* Serialized as the jsonb document the final function makes, as bytes. */
PG_FUNCTION_INFO_V1(retrain_features_serial);
Datum
retrain_features_serial(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P((bytea *) sums_to_jsonb((FeatureSums *) PG_GETARG_POINTER(0), false));
}

PG_FUNCTION_INFO_V1(retrain_features_deserial);
Datum
retrain_features_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_P(0);
	FeatureSums *s = sums_create(CurrentMemoryContext);

	sums_add_jsonb(s, (Jsonb *) bytes, 1);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(retrain_features_final);
Datum
retrain_features_final(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(sums_to_jsonb((FeatureSums *) PG_GETARG_POINTER(0), false));
}

/*
 * _features_diff(a, b): the counts of a less those of b, where b counts a
 * part of what a counts: a rollup row keeps the counts of the rows before
 * it (features_before), so a window's counts are the difference of two
 * rows' rather than the sum of all of its buckets'.  A count that would go
 * below zero means b is not such a part: an error, never a wrong figure.
 */
PG_FUNCTION_INFO_V1(retrain_features_diff);
Datum
retrain_features_diff(PG_FUNCTION_ARGS)
{
	FeatureSums *s = sums_create(CurrentMemoryContext);

	sums_add_jsonb(s, PG_GETARG_JSONB_P(0), 1);
	sums_add_jsonb(s, PG_GETARG_JSONB_P(1), -1);
	for (int f = 0; f < s->n; f++)
		for (int i = 0; i < s->sums[f].n; i++)
			if (s->sums[f].counts[i] < 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("retrain: the rollup counts of feature \"%.*s\" to subtract exceed those they are subtracted from",
								s->sums[f].name.val.string.len, s->sums[f].name.val.string.val),
						 errhint("Rebuild the model's rollups with retrain.rebuild_rollups().")));
	PG_RETURN_JSONB_P(sums_to_jsonb(s, true));
}
