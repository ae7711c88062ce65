/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker: every retrain.naptime seconds it runs one cycle
 *	  in the database retrain.database: every running canary's guard, then
 *	  every model's checks, each model in a transaction of its own under
 *	  retrain.check_timeout.
 *
 * The worker holds no decision logic: everything it does is the SQL of the
 * governance layer, so a pg_cron job (retrain.schedule_checks) or a person
 * can run the same cycle, and run_checks() and the request queue keep them
 * from firing twice.  An error in a cycle is reported and rolled back; the
 * next cycle runs.  Where the extension is not installed the worker sleeps.
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
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "retrain.h"

/* GUCs */
static char *retrain_database = NULL;
static int	retrain_naptime = 60;
static bool retrain_worker_enabled = true;

/* What a cycle came to: the worker says why it sleeps once, not each time. */
typedef enum CycleOutcome
{
	CYCLE_RAN,
	CYCLE_NOT_INSTALLED,
	CYCLE_CITUS_WORKER
} CycleOutcome;

PGDLLEXPORT void retrain_worker_main(Datum main_arg);

void
retrain_define_worker_gucs(void)
{
	/*
	 * Reloadable rather than PGC_POSTMASTER: such a variable may not be
	 * defined by a library loaded after startup, and this one is defined in
	 * every session.  The worker restarts itself when it changes.
	 */
	DefineCustomStringVariable("retrain.database",
							   "Database in which the retrain background worker runs its checks.",
							   "The extension must be installed there; elsewhere the worker sleeps.",
							   &retrain_database,
							   "postgres",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("retrain.naptime",
							"Seconds between two cycles of the retrain background worker.",
							NULL,
							&retrain_naptime,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("retrain.worker_enabled",
							 "Whether the retrain background worker runs its cycles.",
							 "When off, the worker stays up but does nothing.",
							 &retrain_worker_enabled,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
}

void
retrain_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* after a crash the postmaster starts it again after this many seconds */
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "retrain");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "retrain_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "retrain worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "retrain worker");
	RegisterBackgroundWorker(&worker);
}

/*
 * Run one statement in a transaction of its own.  Returns false, having
 * reported the error and rolled back, if it failed.
 */
static bool
run_in_transaction(const char *what, const char *sql, int nargs, Oid *argtypes, Datum *values,
				   bool read_only, List **result)
{
	MemoryContext outer = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
	PG_TRY();
	{
		int			ret;
		uint64		i;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL, read_only, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "%s failed: %s", what, SPI_result_code_string(ret));
		/* the first column of every row, as text in the caller's context */
		for (i = 0; result != NULL && i < SPI_processed; i++)
		{
			char	   *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
			MemoryContext spi = MemoryContextSwitchTo(outer);

			*result = lappend(*result, pstrdup(value ? value : ""));
			MemoryContextSwitchTo(spi);
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		/* report, roll back, and go on with the next statement */
		MemoryContextSwitchTo(outer);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(outer);
	pgstat_report_stat(false);
	return ok;
}

/*
 * One model's part of the cycle in its own transaction, under
 * retrain.check_timeout (retrain._cycle_model).  A model that ran out of
 * time, or failed outside its own error handling, is logged in a
 * transaction of its own, and the cycle goes on.
 */
static void
cycle_model(const char *model, bool guard)
{
	Oid			argtypes[2] = {TEXTOID, BOOLOID};
	Datum		values[2] = {CStringGetTextDatum(model), BoolGetDatum(guard)};
	MemoryContext context = CurrentMemoryContext;
	char	   *message = NULL;
	char	   *sqlstate = NULL;
	char	   *what = psprintf("retrain: %s of model %s", guard ? "rollout guard" : "checks", model);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT retrain._cycle_model($1, pg_catalog.now(), $2)",
								  2, argtypes, values, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "%s failed", what);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(context);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		message = edata->message;
		sqlstate = pstrdup(unpack_sql_state(edata->sqlerrcode));
		ereport(LOG, (errmsg("%s: %s", what, message)));
	}
	PG_END_TRY();
	MemoryContextSwitchTo(context);

	if (message != NULL)
	{
		Oid			logtypes[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};
		Datum		logvalues[4] = {CStringGetTextDatum(model),
			CStringGetTextDatum(guard ? "guard_failed" : "check_failed"),
			CStringGetTextDatum(sqlstate),
		CStringGetTextDatum(message)};

		(void) run_in_transaction("retrain: logging a failed model",
								  "SELECT retrain._log($1, NULL, $2, "
								  "pg_catalog.jsonb_build_object('sqlstate', $3::text, 'message', $4::text))",
								  4, logtypes, logvalues, false, NULL);
	}
	pgstat_report_stat(false);
}

/*
 * One cycle: what arrived folded into the rollups of the models that can be
 * folded together, every running canary's guard, then every model's checks, each
 * model in a transaction of its own, so that no transaction holds retrain's
 * write lock across models and a slow model stalls only itself; then the
 * log's head, anchored in the server log.  Says whether it ran, or why
 * not.
 */
static CycleOutcome
run_cycle(void)
{
	List	   *installed = NIL;
	List	   *citus_worker = NIL;
	List	   *plan = NIL;
	ListCell   *lc;

	if (!run_in_transaction("retrain: checking whether the extension is installed",
							"SELECT extname::text FROM pg_catalog.pg_extension WHERE extname = 'retrain'",
							0, NULL, NULL, true, &installed) || installed == NIL)
		return CYCLE_NOT_INSTALLED;

	/*
	 * Citus creates retrain on its workers too, where the registry stays
	 * empty and the log is the coordinator's: the cycle runs on the
	 * coordinator only.
	 */
	if (!run_in_transaction("retrain: checking whether this is a Citus worker",
							"SELECT retrain._on_citus_worker()::pg_catalog.text",
							0, NULL, NULL, true, &citus_worker))
		return CYCLE_RAN;
	if (citus_worker != NIL && strcmp(linitial(citus_worker), "true") == 0)
		return CYCLE_CITUS_WORKER;

	/* what arrived since the last cycle, folded for many models at once */
	(void) run_in_transaction("retrain: folding what arrived",
							  "SELECT retrain._fold_cycle(pg_catalog.now())",
							  0, NULL, NULL, false, NULL);

	/*
	 * The same plan as the procedure run_cycle(), in one snapshot; each entry
	 * is "1" (the guard) or "0" (the checks) followed by the model's name.
	 */
	if (!run_in_transaction("retrain: listing models",
							"SELECT p.guard::pg_catalog.int4::pg_catalog.text OPERATOR(pg_catalog.||) p.model "
							"FROM retrain._cycle_plan() WITH ORDINALITY p ORDER BY p.ordinality",
							0, NULL, NULL, true, &plan))
		return true;
	foreach(lc, plan)
	{
		const char *entry = lfirst(lc);

		cycle_model(entry + 1, entry[0] == '1');
	}
	/* the coming days' partitions of the prediction log, and retention */
	(void) run_in_transaction("retrain: maintaining the prediction log's partitions",
							  "SELECT pg_catalog.count(*) FROM retrain.maintain_partitions()",
							  0, NULL, NULL, false, NULL);
	(void) run_in_transaction("retrain: anchoring the log's head",
							  "SELECT (retrain._anchor_log()).head_id",
							  0, NULL, NULL, false, NULL);
	pgstat_report_activity(STATE_IDLE, NULL);
	return CYCLE_RAN;
}

void
retrain_worker_main(Datum main_arg)
{
	MemoryContext cycle_context;
	volatile CycleOutcome told = CYCLE_RAN;
	char	   *database;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(retrain_database, NULL, 0);
	database = pstrdup(retrain_database);
	pgstat_report_appname("retrain worker");
	ereport(LOG,
			(errmsg("retrain worker started in database \"%s\", every %d s",
					retrain_database, retrain_naptime)));

	cycle_context = AllocSetContextCreate(TopMemoryContext, "retrain worker cycle",
										  ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 retrain_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (strcmp(database, retrain_database) != 0)
			{
				/* a worker serves one database: the postmaster starts a new one */
				ereport(LOG,
						(errmsg("retrain worker: retrain.database changed from \"%s\" to \"%s\"; restarting",
								database, retrain_database)));
				proc_exit(1);
			}
		}
		if (!retrain_worker_enabled)
			continue;

		MemoryContextSwitchTo(cycle_context);
		{
			CycleOutcome outcome = run_cycle();

			/* said once, until the outcome changes */
			if (outcome != told && outcome == CYCLE_NOT_INSTALLED)
				ereport(LOG,
						(errmsg("retrain worker: the extension is not installed in database \"%s\"; sleeping",
								retrain_database)));
			else if (outcome != told && outcome == CYCLE_CITUS_WORKER)
				ereport(LOG,
						(errmsg("retrain worker: database \"%s\" is on a Citus worker node; the check cycle runs on the coordinator, sleeping",
								retrain_database)));
			told = outcome;
		}
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(cycle_context);
	}
}
