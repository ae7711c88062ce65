/*-------------------------------------------------------------------------
 *
 * metrics_confusion.c
 *	  The confusion-matrix family: retrain.confusion and the precision,
 *	  recall, f1 and accuracy aggregates, over (predicted, actual) booleans
 *	  or over (score, label, threshold); the same metrics (and fbeta) over a
 *	  retrain.confusion value, and the + operator that adds two matrices.
 *
 * Every aggregate of the family shares one state, four counters, so one
 * query asking for several of them scans and counts once.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "common/int.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "agg_state.h"
#include "util.h"

typedef struct Confusion
{
	int64		tp;
	int64		fp;
	int64		fn;
	int64		tn;
} Confusion;

#define CONFUSION_FIELDS 4

/*
 * The aggregate state: the same four counts, indexed by
 * 2 * predicted + actual.  Labels and predictions are coin flips to the
 * branch predictor, so counting through an index instead of an if-else
 * ladder saves a misprediction on most rows.
 */
#define CELL_TN 0
#define CELL_FN 1
#define CELL_FP 2
#define CELL_TP 3

typedef struct ConfusionState
{
	RetrainStateHeader hdr;		/* a retrain.agg_state of kind confusion */
	int64		cell[CONFUSION_FIELDS];
} ConfusionState;

static inline ConfusionState *
confusion_state(FunctionCallInfo fcinfo)
{
	if (!PG_ARGISNULL(0))
		return retrain_state_running(fcinfo, RETRAIN_STATE_CONFUSION);
	return retrain_state_new(fcinfo, sizeof(ConfusionState), RETRAIN_STATE_CONFUSION);
}

static inline void
confusion_count(ConfusionState *state, bool predicted, bool actual)
{
	state->cell[((int) predicted << 1) | (int) actual]++;
}

static inline Confusion
confusion_of_state(const ConfusionState *state)
{
	Confusion	c;

	c.tp = state->cell[CELL_TP];
	c.fp = state->cell[CELL_FP];
	c.fn = state->cell[CELL_FN];
	c.tn = state->cell[CELL_TN];
	return c;
}

/* _confusion_accum(state, predicted boolean, actual boolean) */
PG_FUNCTION_INFO_V1(retrain_confusion_accum);
Datum
retrain_confusion_accum(PG_FUNCTION_ARGS)
{
	ConfusionState *c;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		RETURN_STATE_UNCHANGED();
	c = confusion_state(fcinfo);
	confusion_count(c, PG_GETARG_BOOL(1), PG_GETARG_BOOL(2));
	PG_RETURN_POINTER(c);
}

/*
 * _confusion_score_accum(state, score float8, label boolean, threshold
 * float8): a score counts as a positive prediction when score >= threshold.
 * Infinite scores and thresholds are ordered like any other; NaN is not.
 */
PG_FUNCTION_INFO_V1(retrain_confusion_score_accum);
Datum
retrain_confusion_score_accum(PG_FUNCTION_ARGS)
{
	ConfusionState *c;
	double		score;
	double		threshold;

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		RETURN_STATE_UNCHANGED();
	score = PG_GETARG_FLOAT8(1);
	threshold = PG_GETARG_FLOAT8(3);
	retrain_reject_nan(fcinfo, score, "score");
	retrain_reject_nan(fcinfo, threshold, "threshold");

	c = confusion_state(fcinfo);
	confusion_count(c, score >= threshold, PG_GETARG_BOOL(2));
	PG_RETURN_POINTER(c);
}

PG_FUNCTION_INFO_V1(retrain_confusion_combine);
Datum
retrain_confusion_combine(PG_FUNCTION_ARGS)
{
	ConfusionState *a;
	const ConfusionState *b;
	int			i;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	b = retrain_state_arg(fcinfo, 1, RETRAIN_STATE_CONFUSION);
	a = confusion_state(fcinfo);
	for (i = 0; i < CONFUSION_FIELDS; i++)
		a->cell[i] += b->cell[i];
	PG_RETURN_POINTER(a);
}

/* The portable bytes of a state: the four counts, big-endian. */
void
retrain_confusion_send(StringInfo buf, const void *state)
{
	const ConfusionState *c = state;
	int			i;

	for (i = 0; i < CONFUSION_FIELDS; i++)
		pq_sendint64(buf, c->cell[i]);
}

/* A state from its portable bytes; counts are never negative. */
void *
retrain_confusion_recv(StringInfo buf)
{
	ConfusionState *c = palloc0(sizeof(ConfusionState));
	int			i;

	if (buf->len - buf->cursor != CONFUSION_FIELDS * sizeof(int64))
		retrain_state_invalid("confusion", psprintf("It has %d bytes, not %d.", buf->len - buf->cursor,
													(int) (CONFUSION_FIELDS * sizeof(int64))));
	SET_VARSIZE(c, sizeof(ConfusionState));
	c->hdr.kind = RETRAIN_STATE_CONFUSION;
	c->hdr.version = RETRAIN_STATE_VERSION;
	for (i = 0; i < CONFUSION_FIELDS; i++)
	{
		c->cell[i] = pq_getmsgint64(buf);
		if (c->cell[i] < 0)
			retrain_state_invalid("confusion", "A count is negative.");
	}
	return c;
}

PG_FUNCTION_INFO_V1(retrain_confusion_serial);
Datum
retrain_confusion_serial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	retrain_confusion_send(&buf, PG_GETARG_POINTER(0));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(retrain_confusion_deserial);
Datum
retrain_confusion_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	void	   *c;

	retrain_bytea_reader(&buf, PG_GETARG_BYTEA_PP(0));
	/* a short-lived copy: the combine function adds it into its own state */
	c = retrain_confusion_recv(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(c);
}

/*
 * The metrics.  Each returns false where it is undefined, which SQL sees as
 * NULL: precision with no positive prediction, recall with no actual
 * positive, F-beta when tp, fp and fn are all zero, accuracy with no rows.
 */
static bool
metric_precision(const Confusion *c, double *result)
{
	if (c->tp == 0 && c->fp == 0)
		return false;
	*result = (double) c->tp / ((double) c->tp + (double) c->fp);
	return true;
}

static bool
metric_recall(const Confusion *c, double *result)
{
	if (c->tp == 0 && c->fn == 0)
		return false;
	*result = (double) c->tp / ((double) c->tp + (double) c->fn);
	return true;
}

/*
 * Sums of counts are formed in double: exact below 2^53 rows, and never an
 * overflow for counts a user typed into a retrain.confusion value.
 */
static bool
metric_fbeta(const Confusion *c, double beta, double *result)
{
	double		b2 = beta * beta;

	if (c->tp == 0 && c->fp == 0 && c->fn == 0)
		return false;
	if (b2 <= 1e100)
		*result = (1.0 + b2) * (double) c->tp /
			((1.0 + b2) * (double) c->tp + b2 * (double) c->fn + (double) c->fp);
	else
	{
		/*
		 * A huge beta: (1 + b2) tp overflows, and inf / inf is NaN.  Divided
		 * through by b2, the same ratio tends to recall, as it should.
		 */
		double		ib2 = (1.0 / beta) / beta;

		*result = (1.0 + ib2) * (double) c->tp /
			((1.0 + ib2) * (double) c->tp + (double) c->fn + ib2 * (double) c->fp);
	}
	return true;
}

static bool
metric_f1(const Confusion *c, double *result)
{
	double		tp2 = 2.0 * (double) c->tp;

	if (c->tp == 0 && c->fp == 0 && c->fn == 0)
		return false;
	*result = tp2 / (tp2 + (double) c->fp + (double) c->fn);
	return true;
}

static bool
metric_accuracy(const Confusion *c, double *result)
{
	double		n = (double) c->tp + (double) c->fp + (double) c->fn + (double) c->tn;

	if (n == 0)
		return false;
	*result = ((double) c->tp + (double) c->tn) / n;
	return true;
}

typedef bool (*ConfusionMetric) (const Confusion *c, double *result);

static Datum
metric_datum(FunctionCallInfo fcinfo, ConfusionMetric metric, const Confusion *c)
{
	double		r = 0;

	if (!metric(c, &r))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(r);
}

static Datum
confusion_datum(FunctionCallInfo fcinfo, const Confusion *c)
{
	TupleDesc	tupdesc;
	Datum		values[CONFUSION_FIELDS];
	bool		nulls[CONFUSION_FIELDS] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	values[0] = Int64GetDatum(c->tp);
	values[1] = Int64GetDatum(c->fp);
	values[2] = Int64GetDatum(c->fn);
	values[3] = Int64GetDatum(c->tn);
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls));
}

/* Final functions: strict, so a group without rows gives NULL. */
PG_FUNCTION_INFO_V1(retrain_confusion_final);
Datum
retrain_confusion_final(PG_FUNCTION_ARGS)
{
	Confusion	c = confusion_of_state(retrain_state_arg(fcinfo, 0, RETRAIN_STATE_CONFUSION));

	PG_RETURN_DATUM(confusion_datum(fcinfo, &c));
}

/* A metric of the aggregate's counts: the final functions. */
static Datum
final_metric(FunctionCallInfo fcinfo, ConfusionMetric metric)
{
	Confusion	c = confusion_of_state(retrain_state_arg(fcinfo, 0, RETRAIN_STATE_CONFUSION));

	return metric_datum(fcinfo, metric, &c);
}

PG_FUNCTION_INFO_V1(retrain_precision_final);
Datum
retrain_precision_final(PG_FUNCTION_ARGS)
{
	return final_metric(fcinfo, metric_precision);
}

PG_FUNCTION_INFO_V1(retrain_recall_final);
Datum
retrain_recall_final(PG_FUNCTION_ARGS)
{
	return final_metric(fcinfo, metric_recall);
}

PG_FUNCTION_INFO_V1(retrain_f1_final);
Datum
retrain_f1_final(PG_FUNCTION_ARGS)
{
	return final_metric(fcinfo, metric_f1);
}

PG_FUNCTION_INFO_V1(retrain_accuracy_final);
Datum
retrain_accuracy_final(PG_FUNCTION_ARGS)
{
	return final_metric(fcinfo, metric_accuracy);
}

/*
 * Read a retrain.confusion argument.  A NULL field makes the metric NULL
 * (returns false), as NULL does in SQL arithmetic; a negative count is no
 * confusion matrix at all.
 */
static bool
confusion_from_arg(FunctionCallInfo fcinfo, int argno, Confusion *c)
{
	static const char *const names[CONFUSION_FIELDS] = {"tp", "fp", "fn", "tn"};
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(argno);
	int64		counts[CONFUSION_FIELDS];
	int			i;

	for (i = 0; i < CONFUSION_FIELDS; i++)
	{
		bool		isnull;
		Datum		d = GetAttributeByNum(row, i + 1, &isnull);

		if (isnull)
			return false;
		counts[i] = DatumGetInt64(d);
		if (counts[i] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: confusion count %s is negative (" INT64_FORMAT ")",
							retrain_func_name(fcinfo), names[i], counts[i])));
	}
	c->tp = counts[0];
	c->fp = counts[1];
	c->fn = counts[2];
	c->tn = counts[3];
	return true;
}

/* A metric of a retrain.confusion value. */
static Datum
composite_metric(FunctionCallInfo fcinfo, ConfusionMetric metric)
{
	Confusion	c;

	if (!confusion_from_arg(fcinfo, 0, &c))
		PG_RETURN_NULL();
	return metric_datum(fcinfo, metric, &c);
}

PG_FUNCTION_INFO_V1(retrain_confusion_precision);
Datum
retrain_confusion_precision(PG_FUNCTION_ARGS)
{
	return composite_metric(fcinfo, metric_precision);
}

PG_FUNCTION_INFO_V1(retrain_confusion_recall);
Datum
retrain_confusion_recall(PG_FUNCTION_ARGS)
{
	return composite_metric(fcinfo, metric_recall);
}

PG_FUNCTION_INFO_V1(retrain_confusion_f1);
Datum
retrain_confusion_f1(PG_FUNCTION_ARGS)
{
	return composite_metric(fcinfo, metric_f1);
}

PG_FUNCTION_INFO_V1(retrain_confusion_accuracy);
Datum
retrain_confusion_accuracy(PG_FUNCTION_ARGS)
{
	return composite_metric(fcinfo, metric_accuracy);
}

/* fbeta(c, beta): beta weighs recall beta times as much as precision. */
PG_FUNCTION_INFO_V1(retrain_confusion_fbeta);
Datum
retrain_confusion_fbeta(PG_FUNCTION_ARGS)
{
	Confusion	c;
	double		beta = PG_GETARG_FLOAT8(1);
	double		r = 0;

	if (isnan(beta) || isinf(beta) || beta < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: beta must be a finite number >= 0, not %s",
						retrain_func_name(fcinfo), float8out_internal(beta))));
	if (!confusion_from_arg(fcinfo, 0, &c) || !metric_fbeta(&c, beta, &r))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(r);
}

/* c1 + c2: the matrix of the union of two disjoint sets of rows. */
PG_FUNCTION_INFO_V1(retrain_confusion_add);
Datum
retrain_confusion_add(PG_FUNCTION_ARGS)
{
	Confusion	a;
	Confusion	b;
	Confusion	sum;

	if (!confusion_from_arg(fcinfo, 0, &a) || !confusion_from_arg(fcinfo, 1, &b))
		PG_RETURN_NULL();
	if (pg_add_s64_overflow(a.tp, b.tp, &sum.tp) ||
		pg_add_s64_overflow(a.fp, b.fp, &sum.fp) ||
		pg_add_s64_overflow(a.fn, b.fn, &sum.fn) ||
		pg_add_s64_overflow(a.tn, b.tn, &sum.tn))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s: confusion counts out of range", retrain_func_name(fcinfo))));
	PG_RETURN_DATUM(confusion_datum(fcinfo, &sum));
}
