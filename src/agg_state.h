/*-------------------------------------------------------------------------
 *
 * agg_state.h
 *	  retrain.agg_state: the transition type of the aggregates whose state
 *	  has a fixed shape (the confusion family, the mean-loss metrics, the
 *	  histograms and psi).
 *
 * PostgreSQL runs an aggregate of any transition type in parallel, but
 * Citus pushes an aggregate down to its workers only when the state is a
 * real type with text input and output: it ships each shard's partial state
 * to the coordinator as text (worker_partial_agg, coord_combine_agg).  An
 * `internal` state never leaves the server.  So these states are varlenas:
 * each state struct starts with a RetrainStateHeader, and the same struct
 * serves as an `internal` state (the rollups' partial aggregates) and as a
 * retrain.agg_state datum.
 *
 * The running state is updated in place, as with `internal`: PostgreSQL
 * keeps a transition value the function returns unchanged, and copies it
 * into the aggregate's memory only when the pointer changes (the first row
 * of a group).
 *
 * The text form is portable and versioned: "<kind>:<version>:<hex>", the
 * hex digits of the state's big-endian bytes (those of the serialization
 * functions).  Every way a retrain.agg_state value is made from outside
 * (text or binary input) checks it completely, and every function taking
 * one checks its kind, so a crafted value can neither be read as another
 * kind nor describe more memory than it has.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef RETRAIN_AGG_STATE_H
#define RETRAIN_AGG_STATE_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"

#include "util.h"				/* pg_noreturn on every version */

typedef struct RetrainStateHeader
{
	int32		vl_len_;		/* varlena header (never short, never toasted) */
	uint8		kind;			/* RETRAIN_STATE_* */
	uint8		version;		/* of the layout: RETRAIN_STATE_VERSION */
	uint16		reserved;		/* zero */
} RetrainStateHeader;

#define RETRAIN_STATE_CONFUSION 1
#define RETRAIN_STATE_LOSS		2
#define RETRAIN_STATE_HIST		3
#define RETRAIN_STATE_KINDS		3

#define RETRAIN_STATE_VERSION	1

/*
 * A new zeroed state of the given size and kind, for a transition or
 * combine function.  An `internal` state must live in the aggregate's
 * memory; a retrain.agg_state is copied there by the caller (PostgreSQL or
 * Citus) when a function returns a new pointer, so it is made in the
 * call's memory, which saves keeping two copies of every group's state.
 */
extern void *retrain_state_new(FunctionCallInfo fcinfo, Size size, uint8 kind);

/*
 * The running state in argument 0 of a transition or combine function, not
 * NULL.  It is changed in place, so the function must be running as an
 * aggregate's (a direct call would change its argument); and it must be of
 * this kind (an aggregate of a user's could start from another kind's
 * INITCOND).  Both are tests of a byte and a pointer on the per-row path.
 */
extern pg_noreturn void retrain_state_refuse(FunctionCallInfo fcinfo, const void *state,
											 uint8 kind);

static inline bool
retrain_in_aggregate(FunctionCallInfo fcinfo)
{
	return fcinfo->context != NULL &&
		(IsA(fcinfo->context, AggState) || IsA(fcinfo->context, WindowAggState));
}

static inline void *
retrain_state_running(FunctionCallInfo fcinfo, uint8 kind)
{
	RetrainStateHeader *h = (RetrainStateHeader *) PG_GETARG_POINTER(0);

	if (unlikely(h->kind != kind || !retrain_in_aggregate(fcinfo)))
		retrain_state_refuse(fcinfo, h, kind);
	return h;
}

/*
 * A state argument that is only read (a combine function's second state, a
 * final function's): detoasted (a state read from a tuple may have a short
 * header) and checked to be of this kind.
 */
extern const void *retrain_state_arg(FunctionCallInfo fcinfo, int argno, uint8 kind);

/* Per-kind portable serialization, in the kind's own file. */
extern void retrain_confusion_send(StringInfo buf, const void *state);
extern void *retrain_confusion_recv(StringInfo buf);
extern void retrain_loss_send(StringInfo buf, const void *state);
extern void *retrain_loss_recv(StringInfo buf);
extern void retrain_hist_state_send(StringInfo buf, const void *state);
extern void *retrain_hist_state_recv(StringInfo buf);

/* The error for a serialized state that is not a valid one. */
extern pg_noreturn void retrain_state_invalid(const char *kind, const char *detail);

#endif							/* RETRAIN_AGG_STATE_H */
