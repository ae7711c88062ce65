/*-------------------------------------------------------------------------
 *
 * owner.c
 *	  Code a model's owner supplies, run as PostgreSQL runs untrusted code
 *	  in maintenance commands; who acts; the write lock; the check cycle's
 *	  time limit per model.
 *
 * A model's owner writes SQL that retrain runs on its behalf: eligibility
 * and rollback checks, and the relation set_source() points at.  retrain
 * runs it from sessions with more rights than the owner (the background
 * worker and the pg_cron job run as the bootstrap superuser), so it is run
 * the way REFRESH MATERIALIZED VIEW runs a view's query for the view's
 * owner (and CREATE INDEX an index expression, ANALYZE a statistics
 * function):
 *
 *	- as the owner, inside a security-restricted operation: SET ROLE, SET
 *	  SESSION AUTHORIZATION, temporary tables, deferred triggers (the
 *	  CVE-2020-25695 escape), LISTEN, cursors WITH HOLD and PREPARE are
 *	  refused by the server itself;
 *	- under a new GUC nest level with a fixed search_path (pg_catalog, the
 *	  schemas the owner names, pg_temp last), every setting made inside
 *	  rolled back afterwards;
 *	- in a subtransaction that is always rolled back: whatever the query
 *	  wrote, queued or locked for the transaction is gone, whether it
 *	  succeeded or failed;
 *	- as a read-only query (SPI read_only), whose one value is copied out
 *	  as text before the rollback.
 *
 * Session-level advisory locks survive a rollback; any the owner's code
 * took are released after it.  And while owner code runs, retrain's own
 * state changes refuse to run (_begin_change, _actor, _refuse_in_owner_code):
 * identity cannot be borrowed from the session that runs the check.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"

#include "retrain.h"

/* 'retrain' as a 64-bit advisory lock key: 0x7265747261696e */
#define RETRAIN_WRITE_LOCK_KEY INT64CONST(32199484592351598)

/* retrain.check_timeout, in milliseconds */
int			retrain_check_timeout = 60000;

/* How deep in owner code this backend is (0: not). */
static int	owner_code_depth = 0;

/* The check cycle's per-model time limit. */
static TimeoutId check_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t check_timed_out = false;

/*
 * True while code a model's owner supplied runs, here or in any
 * security-restricted operation of the server's own.
 */
static bool
in_owner_code(void)
{
	return owner_code_depth > 0 || InSecurityRestrictedOperation();
}

void
retrain_check_not_in_owner_code(const char *what)
{
	if (in_owner_code())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("retrain.%s: refused inside code supplied by a model's owner", what),
				 errdetail("Checks and source relations run with their owner's rights and may not change retrain's state.")));
}

/* _refuse_in_owner_code(fn text) → void: for functions that take no lock */
PG_FUNCTION_INFO_V1(retrain_refuse_in_owner_code);
Datum
retrain_refuse_in_owner_code(PG_FUNCTION_ARGS)
{
	retrain_check_not_in_owner_code(PG_ARGISNULL(0) ? "?" : text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/*
 * _begin_change() → void: the one write lock every state change takes
 * first, before any row lock (see docs/architecture.md); refused in owner
 * code.
 */
PG_FUNCTION_INFO_V1(retrain_begin_change);
Datum
retrain_begin_change(PG_FUNCTION_ARGS)
{
	retrain_check_not_in_owner_code("_begin_change");
	DirectFunctionCall1(pg_advisory_xact_lock_int8, Int64GetDatum(RETRAIN_WRITE_LOCK_KEY));
	PG_RETURN_VOID();
}

/*
 * _actor() → name: who makes a change, for the log and for every rule about
 * people: the session's user, the login (or the role a superuser took with
 * SET SESSION AUTHORIZATION).  SET ROLE to a group does not change it, so
 * a person who registered a version cannot sign it as the group.  Refused
 * in owner code: the session's user is not the owner's to act as.
 */
PG_FUNCTION_INFO_V1(retrain_actor);
Datum
retrain_actor(PG_FUNCTION_ARGS)
{
	retrain_check_not_in_owner_code("_actor");
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(GetSessionUserId(), false))));
}

/* _acting_role() → name: the role the session acts as (after SET ROLE). */
PG_FUNCTION_INFO_V1(retrain_acting_role);
Datum
retrain_acting_role(PG_FUNCTION_ARGS)
{
	retrain_check_not_in_owner_code("_acting_role");
	PG_RETURN_DATUM(DirectFunctionCall1(namein,
										CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false))));
}

/* The advisory locks this backend holds now. */
static List *
held_advisory_locks(void)
{
	LockData   *data = GetLockStatusData();
	List	   *held = NIL;
	int			i;

	for (i = 0; i < data->nelements; i++)
	{
		LockInstanceData *lock = &data->locks[i];

		if (lock->pid == MyProcPid && lock->holdMask != 0 &&
			lock->locktag.locktag_type == LOCKTAG_ADVISORY)
		{
			LockInstanceData *copy = palloc(sizeof(LockInstanceData));

			memcpy(copy, lock, sizeof(LockInstanceData));
			held = lappend(held, copy);
		}
	}
	return held;
}

/*
 * Release the session-level advisory locks taken since "before".  After the
 * owner code's subtransaction was rolled back, its transaction-level locks
 * are gone; what it holds beyond "before" is session-level, and would stay
 * with the session (the worker's, for instance) for good.
 */
static void
release_new_session_locks(List *before)
{
	List	   *after = held_advisory_locks();
	ListCell   *a;

	foreach(a, after)
	{
		LockInstanceData *lock = lfirst(a);
		LOCKMASK	had = 0;
		ListCell   *b;
		LOCKMODE	mode;

		foreach(b, before)
		{
			LockInstanceData *old = lfirst(b);

			if (memcmp(&old->locktag, &lock->locktag, sizeof(LOCKTAG)) == 0)
				had |= old->holdMask;
		}
		for (mode = 1; mode <= MaxLockMode; mode++)
			if ((lock->holdMask & LOCKBIT_ON(mode)) && !(had & LOCKBIT_ON(mode)))
				LockRelease(&lock->locktag, mode, true);
	}
}

/* Run the query as the owner and return its first value as text (or NULL). */
static char *
run_restricted(Oid owner, Oid rettype, const char *search_path, const char *query,
			   MemoryContext result_context)
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
	int			ret;
	char	   *result = NULL;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute(query, true, 1);
	if (ret < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	if (SPI_tuptable == NULL || SPI_tuptable->tupdesc->natts != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the query must return one column of type %s", format_type_be(rettype))));
	if (SPI_gettypeid(SPI_tuptable->tupdesc, 1) != rettype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the query returns %s, not %s",
						format_type_be(SPI_gettypeid(SPI_tuptable->tupdesc, 1)),
						format_type_be(rettype))));
	if (SPI_processed > 0)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (value != NULL)
			result = MemoryContextStrdup(result_context, value);
	}
	SPI_finish();

	AtEOXact_GUC(false, save_nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

/*
 * _as_owner(owner name, returns regtype, search_path text, query text) →
 * text: the query's one value, computed with the owner's rights and no
 * more, and nothing it did left behind.  Its errors come back as they were
 * raised (the caller reports them).
 */
PG_FUNCTION_INFO_V1(retrain_as_owner);
Datum
retrain_as_owner(PG_FUNCTION_ARGS)
{
	char	   *owner_name;
	Oid			owner;
	Oid			rettype;
	char	   *search_path;
	char	   *query;
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	List	   *locks_before;
	char	   *volatile result = NULL;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("retrain._as_owner: no argument may be NULL")));
	owner_name = NameStr(*PG_GETARG_NAME(0));
	rettype = PG_GETARG_OID(1);
	search_path = text_to_cstring(PG_GETARG_TEXT_PP(2));
	query = text_to_cstring(PG_GETARG_TEXT_PP(3));

	owner = get_role_oid(owner_name, true);
	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the model's owner \"%s\" is not a role", owner_name)));
	if (in_owner_code())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("retrain: code supplied by a model's owner may not run other owner code")));

	locks_before = held_advisory_locks();
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(caller_context);
	owner_code_depth++;
	PG_TRY();
	{
		result = run_restricted(owner, rettype, search_path, query, caller_context);
		owner_code_depth--;
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		owner_code_depth--;
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		/* the rollback restores the user, the security context and the settings */
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
		release_new_session_locks(locks_before);
		ReThrowError(edata);
	}
	PG_END_TRY();
	release_new_session_locks(locks_before);

	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* The check cycle's time limit: cancel the model's statement. */
static void
check_timeout_handler(void)
{
	check_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * _cycle_model(model text, at timestamptz, guard boolean) → void: one
 * model's part of the check cycle (its checks, or its canary's guard) under
 * retrain.check_timeout.  A model that takes longer is stopped with
 * SQLSTATE 57014 and a message that names it; _timed_out() tells that error
 * from a cancel asked for by a person.
 */
PG_FUNCTION_INFO_V1(retrain_cycle_model);
Datum
retrain_cycle_model(PG_FUNCTION_ARGS)
{
	text	   *model = PG_GETARG_TEXT_PP(0);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(1);
	bool		guard = PG_GETARG_BOOL(2);
	Oid			argtypes[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2] = {PointerGetDatum(model), TimestampTzGetDatum(at)};
	MemoryContext context = CurrentMemoryContext;
	int			ret;

	if (check_timeout_id == MAX_TIMEOUTS)
		check_timeout_id = RegisterTimeout(USER_TIMEOUT, check_timeout_handler);
	check_timed_out = false;
	if (retrain_check_timeout > 0)
		enable_timeout_after(check_timeout_id, retrain_check_timeout);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute_with_args(guard ? "SELECT retrain._guard_model($1, $2)"
									: "SELECT retrain._check_model($1, $2)",
									2, argtypes, values, NULL, false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "the cycle of a model failed: %s", SPI_result_code_string(ret));
		SPI_finish();
	}
	PG_CATCH();
	{
		disable_timeout(check_timeout_id, false);
		if (check_timed_out)
		{
			MemoryContextSwitchTo(context);
			FlushErrorState();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("retrain: the %s of model \"%s\" took longer than retrain.check_timeout (%d ms)",
							guard ? "rollout guard" : "checks", text_to_cstring(model),
							retrain_check_timeout)));
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	disable_timeout(check_timeout_id, false);
	if (check_timed_out)
	{
		/*
		 * The time ran out just as the model finished: the cancel asked for
		 * is ours and has nothing left to stop.
		 */
		check_timed_out = false;
		QueryCancelPending = false;
	}
	PG_RETURN_VOID();
}

/* _timed_out() → boolean: whether the last _cycle_model ran out of time. */
PG_FUNCTION_INFO_V1(retrain_timed_out);
Datum
retrain_timed_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(check_timed_out);
}
