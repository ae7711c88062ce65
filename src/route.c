/*-------------------------------------------------------------------------
 *
 * route.c
 *	  Sticky routing of traffic to model versions: retrain.bucket,
 *	  retrain.route and retrain.route_detail, and the per-backend cache of
 *	  retrain.deployments that keeps route() cheaper than reading the table.
 *
 * A unit (user, request, member) falls in bucket
 *
 *   murmur3_x86_32(utf8(model || ':' || unit_key), seed 0) mod 10000
 *
 * and gets the canary when bucket < canary_percent * 100.  The bucket does
 * not depend on the percentage, so a unit in the canary at 10% stays in it
 * at 50%, and any language with MurmurHash3 computes the same bucket.
 *
 * The cache maps a model to its deployment row.  Every change to
 * retrain.deployments fires a trigger (retrain._deployments_changed) that
 * queues a relcache invalidation of the table; at commit it reaches every
 * backend, whose callback empties its cache, so the next route() reads the
 * committed row.  A backend reads those messages when a transaction starts
 * or a lock is taken, and a cache hit takes none: so route() reads them
 * itself (a cheap check when there are none), and each statement of a READ
 * COMMITTED transaction routes as its snapshot reads the table.  Under
 * REPEATABLE READ or SERIALIZABLE a statement must see the transaction's
 * snapshot, which the cache cannot promise: route() reads the row then.
 * The same trigger sends NOTIFY retrain_deployments with the
 * model's name for applications that cache on their side.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "util.h"

#define ROUTE_BUCKETS 10000

/* MurmurHash3, x86 32-bit variant (Austin Appleby), on a byte string. */
static inline uint32
rotl32(uint32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static uint32
murmur3_x86_32(const unsigned char *data, int len, uint32 seed)
{
	const uint32 c1 = 0xcc9e2d51;
	const uint32 c2 = 0x1b873593;
	int			nblocks = len / 4;
	uint32		h = seed;
	uint32		k;
	int			i;
	const unsigned char *tail;

	for (i = 0; i < nblocks; i++)
	{
		/* blocks are read little-endian whatever the machine */
		k = (uint32) data[4 * i] | ((uint32) data[4 * i + 1] << 8) |
			((uint32) data[4 * i + 2] << 16) | ((uint32) data[4 * i + 3] << 24);
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
		h = rotl32(h, 13);
		h = h * 5 + 0xe6546b64;
	}

	tail = data + nblocks * 4;
	k = 0;
	switch (len & 3)
	{
		case 3:
			k ^= (uint32) tail[2] << 16;
			/* FALLTHROUGH */
		case 2:
			k ^= (uint32) tail[1] << 8;
			/* FALLTHROUGH */
		case 1:
			k ^= (uint32) tail[0];
			k *= c1;
			k = rotl32(k, 15);
			k *= c2;
			h ^= k;
	}

	h ^= (uint32) len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* The bucket of a unit: the hash of the UTF-8 bytes of model || ':' || unit. */
static int
unit_bucket(text *model, text *unit)
{
	int			mlen = VARSIZE_ANY_EXHDR(model);
	int			ulen = VARSIZE_ANY_EXHDR(unit);
	char	   *key = palloc(mlen + 1 + ulen + 1);
	unsigned char *utf8;
	int			len = mlen + 1 + ulen;
	int			bucket;

	memcpy(key, VARDATA_ANY(model), mlen);
	key[mlen] = ':';
	memcpy(key + mlen + 1, VARDATA_ANY(unit), ulen);
	key[len] = '\0';

	/* the contract is on UTF-8 bytes, whatever the database encoding */
	utf8 = (unsigned char *) pg_server_to_any(key, len, PG_UTF8);
	if ((char *) utf8 != key)
		len = strlen((char *) utf8);
	bucket = (int) (murmur3_x86_32(utf8, len, 0) % ROUTE_BUCKETS);
	if ((char *) utf8 != key)
		pfree(utf8);
	pfree(key);
	return bucket;
}

/* bucket(model text, unit_key text) → int */
PG_FUNCTION_INFO_V1(retrain_bucket);
Datum
retrain_bucket(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(unit_bucket(PG_GETARG_TEXT_PP(0), PG_GETARG_TEXT_PP(1)));
}

/*
 * The cached deployment of a model.  Versions are kept as C strings in the
 * cache's own context; a model without a deployment row is cached too, as
 * absent, so unknown models cost no query either.
 */
typedef struct Deployment
{
	char		model[NAMEDATALEN * 2]; /* hash key; longer names bypass the cache */
	bool		exists;
	char	   *production;
	char	   *canary;
	char	   *shadow;
	int32		canary_bp;		/* canary share in basis points, 0 to 10000 */
	char		mode;			/* a(uto), p(roduction), c(andidate), f(allback) */
	bool		has_until;
	TimestampTz until;
} Deployment;

static HTAB *deployment_cache = NULL;
static MemoryContext deployment_context = NULL;
static Oid	deployments_relid = InvalidOid;
static bool callback_registered = false;

static void
deployment_cache_reset(void)
{
	if (deployment_context != NULL)
		MemoryContextReset(deployment_context);
	deployment_cache = NULL;
	/* the table may have been dropped and created again */
	deployments_relid = InvalidOid;
}

static void
deployment_cache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == deployments_relid || !OidIsValid(deployments_relid))
		deployment_cache_reset();
}

static char *
copy_text_datum(MemoryContext cxt, Datum d, bool isnull)
{
	if (isnull)
		return NULL;
	return MemoryContextStrdup(cxt, TextDatumGetCString(d));
}

/*
 * Read a model's deployment row with SPI (as the caller).  Its versions are
 * copied into cxt: the cache's context for a cached entry, the caller's for
 * one that is not cached (the cache's context lives as long as the session,
 * and a copy there per call would never be freed).
 */
static void
deployment_load(const char *model, Deployment *d, MemoryContext cxt)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	int			ret;

	values[0] = CStringGetTextDatum(model);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute_with_args("SELECT production_version, canary_version, shadow_version, "
								"(canary_percent * 100)::int4, mode, mode_until "
								"FROM retrain.deployments WHERE model = $1",
								1, argtypes, values, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading retrain.deployments failed: %s", SPI_result_code_string(ret));

	d->exists = SPI_processed > 0;
	d->production = d->canary = d->shadow = NULL;
	d->canary_bp = 0;
	d->mode = 'a';
	d->has_until = false;
	if (d->exists)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		v;

		v = SPI_getbinval(tup, desc, 1, &isnull);
		d->production = copy_text_datum(cxt, v, isnull);
		v = SPI_getbinval(tup, desc, 2, &isnull);
		d->canary = copy_text_datum(cxt, v, isnull);
		v = SPI_getbinval(tup, desc, 3, &isnull);
		d->shadow = copy_text_datum(cxt, v, isnull);
		v = SPI_getbinval(tup, desc, 4, &isnull);
		d->canary_bp = isnull ? 0 : DatumGetInt32(v);
		v = SPI_getbinval(tup, desc, 5, &isnull);
		if (!isnull)
		{
			char	   *mode = TextDatumGetCString(v);

			d->mode = mode[0];
		}
		v = SPI_getbinval(tup, desc, 6, &isnull);
		d->has_until = !isnull;
		if (!isnull)
			d->until = DatumGetTimestampTz(v);
	}
	SPI_finish();
}

static const Deployment *
deployment_lookup(text *model_text)
{
	char	   *model = text_to_cstring(model_text);
	Deployment *d;
	bool		found;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(deployment_cache_callback, (Datum) 0);
		callback_registered = true;
	}
	/* first: the callback may empty the cache and forget the table's OID */
	AcceptInvalidationMessages();
	if (!OidIsValid(deployments_relid))
	{
		Oid			nsp = get_namespace_oid("retrain", false);

		deployments_relid = get_relname_relid("deployments", nsp);
		if (!OidIsValid(deployments_relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("retrain.deployments does not exist")));
	}
	if (deployment_cache == NULL)
	{
		HASHCTL		ctl;

		if (deployment_context == NULL)
			deployment_context = AllocSetContextCreate(TopMemoryContext,
													   "retrain route cache",
													   ALLOCSET_SMALL_SIZES);
		ctl.keysize = sizeof(((Deployment *) NULL)->model);
		ctl.entrysize = sizeof(Deployment);
		ctl.hcxt = deployment_context;
		deployment_cache = hash_create("retrain deployments", 64, &ctl,
									   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}

	if (strlen(model) >= sizeof(((Deployment *) NULL)->model) || IsolationUsesXactSnapshot())
	{
		/*
		 * Too long a name to cache, or a transaction snapshot the cache may
		 * be newer or older than: read it every time, into this call's memory
		 */
		d = palloc(sizeof(Deployment));
		deployment_load(model, d, CurrentMemoryContext);
		return d;
	}
	d = hash_search(deployment_cache, model, HASH_ENTER, &found);
	if (!found)
	{
		PG_TRY();
		{
			deployment_load(model, d, deployment_context);
		}
		PG_CATCH();
		{
			hash_search(deployment_cache, model, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return d;
}

typedef struct RouteDecision
{
	const char *version;
	const char *arm;
	int			bucket;
} RouteDecision;

static RouteDecision
route_decide(const Deployment *d, int bucket)
{
	RouteDecision r = {NULL, NULL, bucket};
	bool		forced = d->mode != 'a' &&
		(!d->has_until || GetCurrentTransactionStartTimestamp() < d->until);

	if (!d->exists)
		return r;
	if (forced)
	{
		switch (d->mode)
		{
			case 'f':
				r.arm = "fallback";
				return r;
			case 'c':
				r.arm = "forced";
				r.version = d->canary ? d->canary : d->production;
				return r;
			default:
				r.arm = "forced";
				r.version = d->production;
				return r;
		}
	}
	/*
	 * Integers: canary_percent has two decimals, so basis points are exact,
	 * and a bucket is one basis point.  (In float8, 0.07 * 100 is
	 * 7.000000000000001, and bucket 7 went to the canary.)
	 */
	if (d->canary != NULL && bucket < d->canary_bp * (ROUTE_BUCKETS / 10000))
	{
		r.arm = "canary";
		r.version = d->canary;
	}
	else
	{
		r.arm = d->production ? "production" : NULL;
		r.version = d->production;
	}
	return r;
}

/*
 * A model that is not registered is a mistake (a typo would otherwise serve
 * the fallback without a word); NULL is kept for a registered model with
 * nothing to serve.
 */
static void
route_check_exists(text *model, const Deployment *d, const char *fn)
{
	if (!d->exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("retrain.%s: unknown model \"%s\"", fn, text_to_cstring(model))));
}

/* route(model text, unit_key text) → text: NULL means "use no model" */
PG_FUNCTION_INFO_V1(retrain_route);
Datum
retrain_route(PG_FUNCTION_ARGS)
{
	text	   *model = PG_GETARG_TEXT_PP(0);
	const Deployment *d = deployment_lookup(model);
	RouteDecision r;

	route_check_exists(model, d, "route");
	r = route_decide(d, unit_bucket(model, PG_GETARG_TEXT_PP(1)));

	if (r.version == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(r.version));
}

/*
 * route_detail(model, unit_key) → (version, arm, shadow_version, bucket):
 * arm is production, canary, forced or fallback (NULL when the model has no
 * deployment).
 */
PG_FUNCTION_INFO_V1(retrain_route_detail);
Datum
retrain_route_detail(PG_FUNCTION_ARGS)
{
	text	   *model = PG_GETARG_TEXT_PP(0);
	const Deployment *d = deployment_lookup(model);
	int			bucket;
	RouteDecision r;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	route_check_exists(model, d, "route_detail");
	bucket = unit_bucket(model, PG_GETARG_TEXT_PP(1));
	r = route_decide(d, bucket);

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = r.version ? CStringGetTextDatum(r.version) : (Datum) 0;
	nulls[0] = r.version == NULL;
	values[1] = r.arm ? CStringGetTextDatum(r.arm) : (Datum) 0;
	nulls[1] = r.arm == NULL;
	values[2] = (d->exists && d->shadow) ? CStringGetTextDatum(d->shadow) : (Datum) 0;
	nulls[2] = !(d->exists && d->shadow);
	values[3] = Int32GetDatum(bucket);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * _deployments_changed(): AFTER trigger on retrain.deployments.  Queues the
 * cache invalidation (delivered to every backend at commit, dropped on
 * abort) and the notification (likewise transactional).
 */
PG_FUNCTION_INFO_V1(retrain_deployments_changed);
Datum
retrain_deployments_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tuple;
	bool		isnull;
	Datum		model;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "retrain._deployments_changed must be a row trigger");

	CacheInvalidateRelcacheByRelid(RelationGetRelid(trigdata->tg_relation));

	tuple = TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? trigdata->tg_trigtuple
		: (trigdata->tg_newtuple ? trigdata->tg_newtuple : trigdata->tg_trigtuple);
	model = heap_getattr(tuple, 1, RelationGetDescr(trigdata->tg_relation), &isnull);
	Async_Notify("retrain_deployments", isnull ? "" : TextDatumGetCString(model));

	return PointerGetDatum(NULL);
}
