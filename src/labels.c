/*-------------------------------------------------------------------------
 *
 * labels.c
 *	  retrain._labels_observed(model text, since timestamptz, at timestamptz)
 *	  → bigint: how many of a model's outcomes in retrain.outcomes were
 *	  observed after since and by at, counted from one range of each
 *	  partition's index on (model, observed_at).
 *
 * Every check counts the labels that arrived since the production version's
 * training (data growth, eligibility's min_new_labels): for a model with a
 * long history, the largest read of a check.  The right plan is always the
 * same, an index-only scan of one range of (model, observed_at), and the
 * planner did not always take it: on outcomes not yet vacuumed (the
 * visibility map unset) it took a bitmap scan of every outcome of the
 * model; on outcomes written in observed_at order, a scan of
 * outcomes_observed_at that filtered out every other model's labels; and
 * with the range written so that only the wanted index matched, an index
 * scan of (model, logged_at), since the planner estimates a row comparison
 * from its first column alone.  Each cost two to twenty times the index-only
 * scan, and which one a check got depended on the statistics and on when
 * autovacuum had last run.  So the scan is made here, as the executor's
 * index-only scan makes it: an entry on a page the visibility map says is
 * all visible counts at once, any other is counted only if the heap holds a
 * version of it visible to the statement's snapshot; under SERIALIZABLE the
 * pages counted from the index alone are predicate-locked as the executor
 * locks them.
 *
 * It answers NULL when it cannot answer as the query would: row-level
 * security on retrain.outcomes, or a partition without a valid index of
 * that shape (one attached by hand).  The caller then runs the query.  The caller's privileges
 * are checked as the executor checks them (SELECT on the table or on both
 * columns read).
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/predicate.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define OUTCOMES_NAMESPACE "retrain"
#define OUTCOMES_TABLE "outcomes"

/*
 * Whether the caller may read the columns model and observed_at of the
 * table, as the executor would decide: SELECT on the table, or on both
 * columns.
 */
static bool
may_read(Oid relid, AttrNumber model, AttrNumber observed)
{
	Oid			user = GetUserId();

	if (pg_class_aclcheck(relid, user, ACL_SELECT) == ACLCHECK_OK)
		return true;
	return pg_attribute_aclcheck(relid, model, user, ACL_SELECT) == ACLCHECK_OK &&
		pg_attribute_aclcheck(relid, observed, user, ACL_SELECT) == ACLCHECK_OK;
}

/*
 * A valid plain btree of the partition on (model, observed_at) first, with
 * neither expressions nor a predicate, opened; else NULL.  Found by its
 * shape, not its name: each partition has its own (partitions.sql).
 */
static Relation
open_range_index(Relation heap)
{
	Oid			relid = RelationGetRelid(heap);
	AttrNumber	model = get_attnum(relid, "model");
	AttrNumber	observed = get_attnum(relid, "observed_at");
	List	   *indexes;
	ListCell   *lc;
	Relation	found = NULL;

	if (model == InvalidAttrNumber || observed == InvalidAttrNumber)
		return NULL;
	indexes = RelationGetIndexList(heap);
	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);

		if (index->rd_rel->relam == BTREE_AM_OID &&
			index->rd_index->indisvalid &&
			index->rd_index->indnkeyatts >= 2 &&
			index->rd_index->indkey.values[0] == model &&
			index->rd_index->indkey.values[1] == observed &&
			heap_attisnull(index->rd_indextuple, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(index->rd_indextuple, Anum_pg_index_indpred, NULL))
		{
			found = index;
			break;
		}
		index_close(index, AccessShareLock);
	}
	list_free(indexes);
	return found;
}

/*
 * The count of the index's entries in the range the keys give that are
 * visible to the snapshot: the loop of the executor's index-only scan.
 */
static int64
count_visible(Relation heap, Relation index, ScanKeyData *keys, int nkeys)
{
	Snapshot	snapshot = GetActiveSnapshot();
	IndexScanDesc scan;
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	Buffer		vmbuffer = InvalidBuffer;
	ItemPointer tid;
	int64		n = 0;

#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(heap, index, snapshot, NULL, nkeys, 0);
#else
	scan = index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
	/* the entries alone, as an index-only scan reads them */
	scan->xs_want_itup = true;
	index_rescan(scan, keys, nkeys, NULL, 0);
	while ((tid = index_getnext_tid(scan, ForwardScanDirection)) != NULL)
	{
		BlockNumber block = ItemPointerGetBlockNumber(tid);

		CHECK_FOR_INTERRUPTS();
		if (!VM_ALL_VISIBLE(heap, block, &vmbuffer))
		{
			/* some version of the row must be visible to count it */
			if (!index_fetch_heap(scan, slot))
				continue;
			ExecClearTuple(slot);
			/* an MVCC snapshot sees at most one version of a HOT chain */
			if (scan->xs_heap_continue)
				elog(ERROR, "retrain._labels_observed: a non-MVCC snapshot");
		}
		else
			PredicateLockPage(heap, block, snapshot);
		n++;
	}
	if (BufferIsValid(vmbuffer))
		ReleaseBuffer(vmbuffer);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return n;
}

/*
 * The count in one partition (or an unpartitioned table), or -1 when it has
 * no index to count from.
 */
static int64
count_partition(Oid relid, ScanKeyData *keys, int nkeys)
{
	Relation	heap = table_open(relid, AccessShareLock);
	Relation	index = open_range_index(heap);
	int64		n = -1;

	if (index != NULL)
	{
		ScanKeyData local[3];

		/* the keys name the index's columns, the same in every partition */
		memcpy(local, keys, sizeof(ScanKeyData) * nkeys);
		local[0].sk_collation = index->rd_indcollation[0];
		local[1].sk_collation = index->rd_indcollation[1];
		local[2].sk_collation = index->rd_indcollation[1];
		n = count_visible(heap, index, local, nkeys);
		index_close(index, AccessShareLock);
	}
	table_close(heap, AccessShareLock);
	return n;
}

/*
 * _labels_observed(model text, since timestamptz, at timestamptz) → bigint
 * (STRICT): the count of outcomes with that model and since < observed_at
 * <= at, or NULL when the query must answer instead.
 */
PG_FUNCTION_INFO_V1(retrain_labels_observed);
Datum
retrain_labels_observed(PG_FUNCTION_ARGS)
{
	text	   *model = PG_GETARG_TEXT_PP(0);
	TimestampTz since = PG_GETARG_TIMESTAMPTZ(1);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	Oid			relid;
	Relation	heap;
	AttrNumber	model_att;
	AttrNumber	observed_att;
	ScanKeyData keys[3];
	int64		n;

	relid = get_relname_relid(OUTCOMES_TABLE, get_namespace_oid(OUTCOMES_NAMESPACE, false));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("retrain._labels_observed: retrain.outcomes does not exist")));
	heap = table_open(relid, AccessShareLock);
	model_att = get_attnum(relid, "model");
	observed_att = get_attnum(relid, "observed_at");
	if (model_att == InvalidAttrNumber || observed_att == InvalidAttrNumber)
		elog(ERROR, "retrain._labels_observed: retrain.outcomes lacks model or observed_at");
	if (!may_read(relid, model_att, observed_att))
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, OUTCOMES_NAMESPACE "." OUTCOMES_TABLE);
	/* an empty range, once the caller may ask */
	if (since >= at)
	{
		table_close(heap, AccessShareLock);
		PG_RETURN_INT64(0);
	}
	/* row-level security: the query applies the policies, this scan cannot */
	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
	{
		table_close(heap, AccessShareLock);
		PG_RETURN_NULL();
	}

	/* model = $1 AND observed_at > $2 AND observed_at <= $3 */
	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   DEFAULT_COLLATION_OID, F_TEXTEQ, PointerGetDatum(model));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTGreaterStrategyNumber, InvalidOid,
						   InvalidOid, F_TIMESTAMPTZ_GT, TimestampTzGetDatum(since));
	ScanKeyEntryInitialize(&keys[2], 0, 2, BTLessEqualStrategyNumber, InvalidOid,
						   InvalidOid, F_TIMESTAMPTZ_LE, TimestampTzGetDatum(at));
	n = 0;
	if (heap->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		/* every partition, locked as the query would lock them */
		List	   *parts = find_all_inheritors(relid, AccessShareLock, NULL);
		ListCell   *lc;

		foreach(lc, parts)
		{
			Oid			part = lfirst_oid(lc);
			int64		k;

			if (get_rel_relkind(part) != RELKIND_RELATION)
				continue;
			k = count_partition(part, keys, 3);
			if (k < 0)
			{
				/* a partition without the index (attached by hand): ask the query */
				table_close(heap, AccessShareLock);
				PG_RETURN_NULL();
			}
			n += k;
		}
	}
	else if ((n = count_partition(relid, keys, 3)) < 0)
	{
		table_close(heap, AccessShareLock);
		PG_RETURN_NULL();
	}
	table_close(heap, AccessShareLock);
	PG_RETURN_INT64(n);
}
