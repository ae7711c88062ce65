/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker: every retrain.naptime seconds it runs one cycle
 *	  of retrain.run_checks() and retrain.guard_rollouts() in the database
 *	  retrain.database, each cycle in its own transaction.
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
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "retrain.h"

/* GUCs */
static char *retrain_database = NULL;
static int	retrain_naptime = 60;
static bool retrain_worker_enabled = true;

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

/* Run one cycle in its own transaction; false if the extension is not installed. */
static bool
run_cycle(void)
{
	bool		installed;
	int			ret;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());

	pgstat_report_activity(STATE_RUNNING, "retrain: checking whether the extension is installed");
	ret = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'retrain'", true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading pg_extension failed: %s", SPI_result_code_string(ret));
	installed = SPI_processed > 0;

	if (installed)
	{
		pgstat_report_activity(STATE_RUNNING, "SELECT retrain.run_checks()");
		ret = SPI_execute("SELECT retrain.run_checks()", false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "retrain.run_checks() failed: %s", SPI_result_code_string(ret));
		pgstat_report_activity(STATE_RUNNING, "SELECT retrain.guard_rollouts()");
		ret = SPI_execute("SELECT count(*) FROM retrain.guard_rollouts()", false, 0);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "retrain.guard_rollouts() failed: %s", SPI_result_code_string(ret));
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return installed;
}

void
retrain_worker_main(Datum main_arg)
{
	MemoryContext cycle_context;
	volatile bool told_not_installed = false;
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
		PG_TRY();
		{
			bool		installed = run_cycle();

			if (!installed && !told_not_installed)
				ereport(LOG,
						(errmsg("retrain worker: the extension is not installed in database \"%s\"; sleeping",
								retrain_database)));
			told_not_installed = !installed;
		}
		PG_CATCH();
		{
			/* report, roll back, and try again at the next cycle */
			MemoryContextSwitchTo(cycle_context);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			pgstat_report_activity(STATE_IDLE, NULL);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(cycle_context);
	}
}
