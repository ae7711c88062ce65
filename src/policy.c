/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  _merge_policy(defaults, policy): a model's policy document with the
 *	  defaults merged under it.
 *
 * The check cycle asks for a model's effective policy several times a
 * model; merged in SQL it cost a quarter of a millisecond a time, a tenth
 * of the cycle's fixed cost per model.  The rules (docs/policy.md):
 *
 * - a section both documents hold as objects: the default's keys under
 *   the policy's (jsonb's || operator);
 * - "triggers": only the triggers the policy names, each with that
 *   trigger's defaults under its settings; a trigger given as an array
 *   (several schedules) gets them under each element;
 * - any other section: the policy's if it sets one (JSON null included),
 *   else the default.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* The value of key in an object, or NULL (also when doc is no object). */
static JsonbValue *
member(Jsonb *doc, const char *key, JsonbValue *out)
{
	if (doc == NULL || !JB_ROOT_IS_OBJECT(doc))
		return NULL;
	return getKeyJsonValueFromContainer(&doc->root, key, strlen(key), out);
}

/* A JsonbValue as a Jsonb datum of its own. */
static Jsonb *
as_jsonb(JsonbValue *v)
{
	return v ? JsonbValueToJsonb(v) : NULL;
}

static bool
is_object(Jsonb *j)
{
	return j != NULL && JB_ROOT_IS_OBJECT(j);
}

/* a || b, as the SQL operator computes it */
static Jsonb *
concat(Jsonb *a, Jsonb *b)
{
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(a), JsonbPGetDatum(b)));
}

static Jsonb *
empty_object(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
}

/* Push a key and a whole jsonb document as its value. */
static void
push_member(JsonbParseState **state, JsonbValue *key, Jsonb *value)
{
	JsonbValue	v;

	pushJsonbValue(state, WJB_KEY, key);
	if (JB_ROOT_IS_SCALAR(value))
	{
		/* a scalar is stored as a one-element array; push the element */
		JsonbExtractScalar(&value->root, &v);
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &value->root;
		v.val.binary.len = VARSIZE(value) - VARHDRSZ;
	}
	pushJsonbValue(state, WJB_VALUE, &v);
}

/*
 * The triggers section: each trigger the policy names, with its defaults
 * under it (under each element of an array).
 */
static Jsonb *
merge_triggers(Jsonb *defaults, Jsonb *triggers)
{
	JsonbParseState *state = NULL;
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	v;
	JsonbIteratorToken tok;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	if (is_object(triggers))
	{
		it = JsonbIteratorInit(&triggers->root);
		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			JsonbValue	dv;
			char	   *name;
			Jsonb	   *under;
			Jsonb	   *value;

			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			name = pnstrdup(k.val.string.val, k.val.string.len);
			under = as_jsonb(member(defaults, name, &dv));
			if (under == NULL)
				under = empty_object();
			value = as_jsonb(&v);
			if (JB_ROOT_IS_ARRAY(value) && !JB_ROOT_IS_SCALAR(value))
			{
				JsonbParseState *arr = NULL;
				JsonbIterator *ai = JsonbIteratorInit(&value->root);
				JsonbValue	e;

				pushJsonbValue(&arr, WJB_BEGIN_ARRAY, NULL);
				while ((tok = JsonbIteratorNext(&ai, &e, true)) != WJB_DONE)
				{
					Jsonb	   *merged;

					if (tok != WJB_ELEM)
						continue;
					merged = concat(under, as_jsonb(&e));
					e.type = jbvBinary;
					e.val.binary.data = &merged->root;
					e.val.binary.len = VARSIZE(merged) - VARHDRSZ;
					pushJsonbValue(&arr, WJB_ELEM, &e);
				}
				value = JsonbValueToJsonb(pushJsonbValue(&arr, WJB_END_ARRAY, NULL));
			}
			else
				value = concat(under, value);
			push_member(&state, &k, value);
		}
	}
	return JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
}

/* One section of the merged document. */
static Jsonb *
merge_section(Jsonb *defaults, Jsonb *policy, const char *key)
{
	JsonbValue	dv;
	JsonbValue	pv;
	Jsonb	   *d = as_jsonb(member(defaults, key, &dv));
	Jsonb	   *p = as_jsonb(member(policy, key, &pv));

	if (strcmp(key, "triggers") == 0)
	{
		JsonbValue	tv;

		return merge_triggers(as_jsonb(member(defaults, "triggers", &tv)), p);
	}
	if (is_object(d) && is_object(p))
		return concat(d, p);
	return p ? p : d;
}

/* Add every key of doc not yet in the result, with its merged section. */
static void
push_sections(JsonbParseState **state, Jsonb *doc, Jsonb *defaults, Jsonb *policy, Jsonb *skip)
{
	JsonbIterator *it;
	JsonbValue	k;
	JsonbValue	ignored;
	JsonbIteratorToken tok;

	if (!is_object(doc))
		return;
	it = JsonbIteratorInit(&doc->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(k.val.string.val, k.val.string.len);
		if (member(skip, key, &ignored) == NULL)
			push_member(state, &k, merge_section(defaults, policy, key));
	}
}

PG_FUNCTION_INFO_V1(retrain_merge_policy);
Datum
retrain_merge_policy(PG_FUNCTION_ARGS)
{
	Jsonb	   *defaults = PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0);
	Jsonb	   *policy = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	JsonbParseState *state = NULL;
	JsonbValue *result;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	push_sections(&state, defaults, defaults, policy, NULL);
	push_sections(&state, policy, defaults, policy, defaults);
	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	/* no section at all: NULL, as an aggregate over no keys */
	if (result->val.object.nPairs == 0)
		PG_RETURN_NULL();
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
