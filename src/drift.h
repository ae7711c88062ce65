/*-------------------------------------------------------------------------
 *
 * drift.h
 *	  Declarations shared by the drift statistics (drift_*.c).
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef RETRAIN_DRIFT_H
#define RETRAIN_DRIFT_H

#include "fmgr.h"

/* The epsilon of the psi aggregate, which takes none as an argument. */
#define PSI_DEFAULT_EPSILON 0.0001

/*
 * PSI of two distributions of n buckets given with their totals (counts or
 * proportions); a proportion of 0 becomes epsilon.
 */
extern double retrain_psi_of(const double *expected, double expected_total,
							 const double *actual, double actual_total, int n,
							 double epsilon);

/* An epsilon argument: finite and > 0, else 22023. */
extern double retrain_epsilon_arg(FunctionCallInfo fcinfo, int argno);

#endif							/* RETRAIN_DRIFT_H */
