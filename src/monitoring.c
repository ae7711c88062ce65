/*-------------------------------------------------------------------------
 *
 * monitoring.c
 *	  The hot path of the prediction log: what log_prediction() checks
 *	  before it inserts a row.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/float.h"

#include "retrain.h"

/*
 * _admit_prediction(model text, version text, predicted_at timestamptz,
 * latency_ms float8) → void: refused inside code a model's owner supplied,
 * without a model, version or time, and for a negative latency, with
 * messages of retrain's own (the table's constraints would put the whole
 * row in their DETAIL).
 */
PG_FUNCTION_INFO_V1(retrain_admit_prediction);
Datum
retrain_admit_prediction(PG_FUNCTION_ARGS)
{
	retrain_check_not_in_owner_code("log_prediction");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("retrain.log_prediction: model, version and predicted_at must not be NULL")));

	/*
	 * A figure the checks aggregate must be a number they can take: one NaN
	 * score would stop every check of the model (the table's constraints
	 * refuse it too, for INSERT and COPY, in their own words).
	 */
	if (!PG_ARGISNULL(3) && !isfinite(PG_GETARG_FLOAT8(3)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retrain.log_prediction: score must be a finite number, not %s",
						float8out_internal(PG_GETARG_FLOAT8(3))),
				 errhint("Log a failed prediction with score NULL and error => true.")));
	if (!PG_ARGISNULL(4) && !(PG_GETARG_FLOAT8(4) >= 0 && isfinite(PG_GETARG_FLOAT8(4))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retrain.log_prediction: latency_ms must be a finite number of at least 0, not %s",
						float8out_internal(PG_GETARG_FLOAT8(4)))));
	PG_RETURN_VOID();
}
