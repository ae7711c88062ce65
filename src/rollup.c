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
 * loss family's _*_merged(bytea).  _sum_features adds the feature counts of
 * a window's buckets (histograms and category counts, kept as jsonb).
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
 * _sum_features(jsonb[]): the feature counts of several rollup rows added,
 * feature by feature: a histogram ({"f": [n, ...]}) element by element,
 * category counts ({"f": {"a": n, ...}}) key by key.  A feature no row
 * counted (JSON null) stays out.  check() adds a window's buckets this
 * way, so it runs once per trigger and check: in C, with category lists
 * merged in jsonb's own key order rather than looked up.
 */
typedef struct FeatureSum
{
	JsonbValue	name;
	bool		is_array;
	int			n;
	int64	   *counts;
	JsonbValue *keys;			/* categories, in jsonb key order */
} FeatureSum;

/* jsonb's storage order of object keys: shorter first, then bytes */
static int
key_cmp(const JsonbValue *a, const JsonbValue *b)
{
	if (a->val.string.len != b->val.string.len)
		return a->val.string.len < b->val.string.len ? -1 : 1;
	return memcmp(a->val.string.val, b->val.string.val, a->val.string.len);
}

static int64
count_of(const JsonbValue *v, const JsonbValue *feature)
{
	if (v->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("retrain: the rollup counts of feature \"%.*s\" hold a value that is not a number",
						feature->val.string.len, feature->val.string.val)));
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

/* A row's counts of one feature added to its sum so far. */
static void
add_feature(FeatureSum *f, JsonbContainer *c)
{
	int64	   *counts;
	JsonbValue *keys;
	int			n = read_container(c, &f->name, &counts, &keys);
	int			i = 0,
				j = 0,
				k = 0;
	int64	   *merged;
	JsonbValue *merged_keys;

	if (f->is_array != JsonContainerIsArray(c) || (f->is_array && f->n != n))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("retrain: the rollup counts of feature \"%.*s\" differ in shape between buckets",
						f->name.val.string.len, f->name.val.string.val),
				 errhint("Rebuild the model's rollups with retrain.rebuild_rollups().")));
	if (f->is_array)
	{
		for (i = 0; i < n; i++)
			f->counts[i] += counts[i];
		return;
	}
	/* two sorted category lists merged */
	merged = palloc(sizeof(int64) * (f->n + n));
	merged_keys = palloc(sizeof(JsonbValue) * (f->n + n));
	while (i < f->n || j < n)
	{
		int			cmp = i == f->n ? 1 : j == n ? -1 : key_cmp(&f->keys[i], &keys[j]);

		merged_keys[k] = cmp <= 0 ? f->keys[i] : keys[j];
		merged[k++] = (cmp <= 0 ? f->counts[i] : 0) + (cmp >= 0 ? counts[j] : 0);
		i += cmp <= 0;
		j += cmp >= 0;
	}
	f->n = k;
	f->counts = merged;
	f->keys = merged_keys;
}

static JsonbValue *
push_count(JsonbParseState **parse, JsonbIteratorToken tok, int64 count)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(count);
	return pushJsonbValue(parse, tok, &v);
}

PG_FUNCTION_INFO_V1(retrain_sum_features);
Datum
retrain_sum_features(PG_FUNCTION_ARGS)
{
	ArrayType  *rows = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *nulls;
	int			nrows;
	FeatureSum *sums = NULL;
	int			nsums = 0;
	JsonbParseState *parse = NULL;
	JsonbValue *result;

	deconstruct_array(rows, JSONBOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nrows);
	sums = palloc(sizeof(FeatureSum) * 8);
	for (int r = 0; r < nrows; r++)
	{
		Jsonb	   *jb;
		JsonbIterator *it;
		JsonbValue	v;
		JsonbValue	name = {0};
		JsonbIteratorToken tok;

		if (nulls[r])
			continue;
		jb = DatumGetJsonbP(elems[r]);
		if (!JB_ROOT_IS_OBJECT(jb))
			continue;
		it = JsonbIteratorInit(&jb->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			int			f;

			if (tok == WJB_KEY)
				name = v;
			if (tok != WJB_VALUE || v.type != jbvBinary)
				continue;		/* a JSON null: no counts */
			for (f = 0; f < nsums && key_cmp(&sums[f].name, &name) != 0; f++)
				;
			if (f == nsums)
			{
				if (nsums > 0 && (nsums & (nsums - 1)) == 0 && nsums >= 8)
					sums = repalloc(sums, sizeof(FeatureSum) * nsums * 2);
				sums[f].name = name;
				sums[f].is_array = JsonContainerIsArray(v.val.binary.data);
				sums[f].n = read_container(v.val.binary.data, &name, &sums[f].counts, &sums[f].keys);
				nsums++;
			}
			else
				add_feature(&sums[f], v.val.binary.data);
		}
	}

	pushJsonbValue(&parse, WJB_BEGIN_OBJECT, NULL);
	for (int f = 0; f < nsums; f++)
	{
		pushJsonbValue(&parse, WJB_KEY, &sums[f].name);
		pushJsonbValue(&parse, sums[f].is_array ? WJB_BEGIN_ARRAY : WJB_BEGIN_OBJECT, NULL);
		for (int i = 0; i < sums[f].n; i++)
		{
			if (!sums[f].is_array)
				pushJsonbValue(&parse, WJB_KEY, &sums[f].keys[i]);
			push_count(&parse, sums[f].is_array ? WJB_ELEM : WJB_VALUE, sums[f].counts[i]);
		}
		pushJsonbValue(&parse, sums[f].is_array ? WJB_END_ARRAY : WJB_END_OBJECT, NULL);
	}
	result = pushJsonbValue(&parse, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
