/*-------------------------------------------------------------------------
 *
 * drift_category.c
 *	  Categorical drift: retrain.category_counts(value text) → jsonb and
 *	  retrain.psi(expected jsonb, actual jsonb, epsilon).
 *
 * The aggregate counts each distinct value in a hash table living in the
 * aggregate's memory context; its result is a jsonb object
 * {"category": count, ...}.  PSI over two such objects takes the union of
 * their categories, a category missing on one side counting 0.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "drift.h"
#include "util.h"

typedef struct CategoryKey
{
	const char *str;
	int			len;
} CategoryKey;

typedef struct CategoryEntry
{
	CategoryKey key;			/* must be first */
	int64		count;
} CategoryEntry;

typedef struct CategoryState
{
	MemoryContext ctx;
	HTAB	   *counts;
} CategoryState;

static uint32
category_hash(const void *key, Size keysize)
{
	const CategoryKey *k = (const CategoryKey *) key;

	return hash_bytes((const unsigned char *) k->str, k->len);
}

static int
category_match(const void *key1, const void *key2, Size keysize)
{
	const CategoryKey *a = (const CategoryKey *) key1;
	const CategoryKey *b = (const CategoryKey *) key2;

	if (a->len != b->len)
		return 1;
	return memcmp(a->str, b->str, a->len);
}

/* Entries keep their own copy of the string, in the table's context. */
static MemoryContext category_copy_context;

static void *
category_keycopy(void *dest, const void *src, Size keysize)
{
	CategoryKey *d = (CategoryKey *) dest;
	const CategoryKey *s = (const CategoryKey *) src;
	char	   *copy = MemoryContextAlloc(category_copy_context, Max(s->len, 1));

	memcpy(copy, s->str, s->len);
	d->str = copy;
	d->len = s->len;
	return dest;
}

static CategoryState *
category_state_new(MemoryContext ctx)
{
	CategoryState *state = MemoryContextAllocZero(ctx, sizeof(CategoryState));
	HASHCTL		ctl;

	ctl.keysize = sizeof(CategoryKey);
	ctl.entrysize = sizeof(CategoryEntry);
	ctl.hash = category_hash;
	ctl.match = category_match;
	ctl.keycopy = category_keycopy;
	ctl.hcxt = ctx;
	state->ctx = ctx;
	state->counts = hash_create("retrain category counts", 64, &ctl,
								HASH_ELEM | HASH_FUNCTION | HASH_COMPARE |
								HASH_KEYCOPY | HASH_CONTEXT);
	return state;
}

static void
category_add(CategoryState *state, const char *str, int len, int64 count)
{
	CategoryKey key = {str, len};
	CategoryEntry *entry;
	bool		found;

	category_copy_context = state->ctx;
	entry = hash_search(state->counts, &key, HASH_ENTER, &found);
	if (!found)
		entry->count = 0;
	entry->count += count;
}

/* _category_accum(state, value text): NULL values are skipped. */
PG_FUNCTION_INFO_V1(retrain_category_accum);
Datum
retrain_category_accum(PG_FUNCTION_ARGS)
{
	CategoryState *state = PG_ARGISNULL(0) ? NULL : (CategoryState *) PG_GETARG_POINTER(0);
	text	   *value;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	if (state == NULL)
		state = category_state_new(retrain_agg_context(fcinfo));
	value = PG_GETARG_TEXT_PP(1);
	category_add(state, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), 1);
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(retrain_category_combine);
Datum
retrain_category_combine(PG_FUNCTION_ARGS)
{
	CategoryState *a = PG_ARGISNULL(0) ? NULL : (CategoryState *) PG_GETARG_POINTER(0);
	CategoryState *b = PG_ARGISNULL(1) ? NULL : (CategoryState *) PG_GETARG_POINTER(1);
	HASH_SEQ_STATUS seq;
	CategoryEntry *entry;

	if (b == NULL)
		RETURN_STATE_UNCHANGED();
	if (a == NULL)
		a = category_state_new(retrain_agg_context(fcinfo));
	hash_seq_init(&seq, b->counts);
	while ((entry = hash_seq_search(&seq)) != NULL)
		category_add(a, entry->key.str, entry->key.len, entry->count);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(retrain_category_serial);
Datum
retrain_category_serial(PG_FUNCTION_ARGS)
{
	CategoryState *state = (CategoryState *) PG_GETARG_POINTER(0);
	HASH_SEQ_STATUS seq;
	CategoryEntry *entry;
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, hash_get_num_entries(state->counts));
	hash_seq_init(&seq, state->counts);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		pq_sendint32(&buf, entry->key.len);
		pq_sendbytes(&buf, entry->key.str, entry->key.len);
		pq_sendint64(&buf, entry->count);
	}
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(retrain_category_deserial);
Datum
retrain_category_deserial(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	CategoryState *state;
	int64		n;
	int64		i;

	retrain_bytea_reader(&buf, bytes);
	/* short-lived: the combine function adds the counts into its own state */
	state = category_state_new(CurrentMemoryContext);
	n = pq_getmsgint64(&buf);
	for (i = 0; i < n; i++)
	{
		int			len = pq_getmsgint(&buf, 4);
		const char *str = pq_getmsgbytes(&buf, len);

		category_add(state, str, len, pq_getmsgint64(&buf));
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(retrain_category_counts_final);
Datum
retrain_category_counts_final(PG_FUNCTION_ARGS)
{
	CategoryState *state = (CategoryState *) PG_GETARG_POINTER(0);
	JsonbParseState *parse = NULL;
	JsonbValue *result;
	HASH_SEQ_STATUS seq;
	CategoryEntry *entry;

	pushJsonbValue(&parse, WJB_BEGIN_OBJECT, NULL);
	hash_seq_init(&seq, state->counts);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		JsonbValue	k;
		JsonbValue	v;

		k.type = jbvString;
		k.val.string.val = (char *) entry->key.str;
		k.val.string.len = entry->key.len;
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(entry->count);
		pushJsonbValue(&parse, WJB_KEY, &k);
		pushJsonbValue(&parse, WJB_VALUE, &v);
	}
	result = pushJsonbValue(&parse, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}

/*
 * The categories and counts of a jsonb object, in its storage order (keys
 * sorted by length, then bytes), checked: an object whose values are finite
 * numbers >= 0, not all zero.
 */
typedef struct CategoryList
{
	int			n;
	JsonbValue *keys;
	double	   *counts;
	double		total;
} CategoryList;

/* Whether a numeric is 0 (a count of 1e-400 is not, though float8 says so). */
static bool
numeric_is_zero_value(Numeric n)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
											 NumericGetDatum(int64_to_numeric(0)))) == 0;
}

/* Counts divided by the largest, for counts beyond float8's range. */
static void
category_counts_rescale(CategoryList *list, Numeric *nums, Numeric max)
{
	int			i;

	list->total = 0;
	for (i = 0; i < list->n; i++)
	{
		Numeric		share = numeric_div_opt_error(nums[i], max, NULL);

		list->counts[i] = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
															 NumericGetDatum(share)));
		list->total += list->counts[i];
	}
}

static CategoryList
category_list(FunctionCallInfo fcinfo, Jsonb *jb, const char *argname)
{
	CategoryList list = {0, NULL, NULL, 0};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			cap;
	Numeric    *nums;
	Numeric		max = NULL;
	bool		any_positive = false;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s must be a jsonb object of category counts",
						retrain_func_name(fcinfo), argname)));
	cap = Max(JB_ROOT_COUNT(jb), 1);
	list.keys = palloc(sizeof(JsonbValue) * cap);
	list.counts = palloc(sizeof(double) * cap);
	nums = palloc(sizeof(Numeric) * cap);

	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			list.keys[list.n] = v;
		else if (tok == WJB_VALUE)
		{
			double		count;

			if (v.type != jbvNumeric || numeric_is_nan(v.val.numeric) ||
				numeric_is_inf(v.val.numeric))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: %s[\"%.*s\"] is not a finite number",
								retrain_func_name(fcinfo), argname,
								list.keys[list.n].val.string.len,
								list.keys[list.n].val.string.val)));
			count = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
													   NumericGetDatum(v.val.numeric)));
			if (count < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("%s: %s[\"%.*s\"] is negative (%s)",
								retrain_func_name(fcinfo), argname,
								list.keys[list.n].val.string.len,
								list.keys[list.n].val.string.val,
								float8out_internal(count))));
			nums[list.n] = v.val.numeric;
			if (max == NULL || DatumGetInt32(DirectFunctionCall2(numeric_cmp,
																NumericGetDatum(v.val.numeric),
																NumericGetDatum(max))) > 0)
				max = v.val.numeric;
			any_positive = any_positive || count != 0 || !numeric_is_zero_value(v.val.numeric);
			list.counts[list.n++] = count;
			list.total += count;
		}
	}
	/*
	 * jsonb's numbers go beyond float8 both ways (a count of 1e400, or of
	 * 1e-400): then every count is divided by the largest first, in numeric,
	 * which keeps the shares.
	 */
	if (any_positive && !(isfinite(list.total) && list.total >= 1e-300))
		category_counts_rescale(&list, nums, max);
	if (list.total <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %s has no positive count", retrain_func_name(fcinfo), argname),
				 errdetail("A distribution needs at least one positive count or proportion.")));
	return list;
}

/* jsonb's order of keys: shorter first, then bytewise. */
static int
category_cmp(const JsonbValue *a, const JsonbValue *b)
{
	if (a->val.string.len != b->val.string.len)
		return a->val.string.len < b->val.string.len ? -1 : 1;
	return memcmp(a->val.string.val, b->val.string.val, a->val.string.len);
}

/* psi(expected jsonb, actual jsonb, epsilon float8 DEFAULT 0.0001) */
PG_FUNCTION_INFO_V1(retrain_psi_jsonb);
Datum
retrain_psi_jsonb(PG_FUNCTION_ARGS)
{
	CategoryList e = category_list(fcinfo, PG_GETARG_JSONB_P(0), "expected");
	CategoryList a = category_list(fcinfo, PG_GETARG_JSONB_P(1), "actual");
	double		epsilon = retrain_epsilon_arg(fcinfo, 2);
	double	   *ev = palloc(sizeof(double) * (e.n + a.n));
	double	   *av = palloc(sizeof(double) * (e.n + a.n));
	int			i = 0;
	int			j = 0;
	int			n = 0;

	/* a merge over the union of categories, both lists being sorted */
	while (i < e.n || j < a.n)
	{
		int			c = (i >= e.n) ? 1 : (j >= a.n) ? -1 : category_cmp(&e.keys[i], &a.keys[j]);

		ev[n] = (c <= 0) ? e.counts[i++] : 0;
		av[n] = (c >= 0) ? a.counts[j++] : 0;
		n++;
	}
	PG_RETURN_FLOAT8(retrain_psi_of(ev, e.total, av, a.total, n, epsilon));
}
