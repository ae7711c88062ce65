/*-------------------------------------------------------------------------
 *
 * rank.h
 *	  The two-sample state shared by the aggregates that rank every value:
 *	  auc and average_precision (positives and negatives), ks_2samp
 *	  (reference and current values).  One transition function per
 *	  aggregate; combine, serialization and sorting are shared (see
 *	  metrics_rank.c).
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef RETRAIN_RANK_H
#define RETRAIN_RANK_H

#include "fmgr.h"

#include "util.h"

typedef struct RankState
{
	MemoryContext ctx;			/* where the arrays live and grow */
	KeyArray	pos;			/* first sample: label true, or reference */
	KeyArray	neg;			/* second sample: label false, or current */
	bool		sorted;			/* both arrays ascending */
} RankState;

/* Add a value's key to the first (true) or second (false) sample. */
extern RankState *rank_state_add(FunctionCallInfo fcinfo, RankState *state,
								 double value, bool first);

/* The final function's state, sorted; NULL if a sample is empty. */
extern RankState *rank_state_sorted(FunctionCallInfo fcinfo);

#endif							/* RETRAIN_RANK_H */
