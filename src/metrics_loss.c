/*-------------------------------------------------------------------------
 *
 * metrics_loss.c
 *	  Mean-loss metrics: retrain.brier and retrain.log_loss over
 *	  (score, label), retrain.mae, retrain.rmse and retrain.r2 over
 *	  (predicted, actual).
 *
 * One state serves them all: a row count and a compensated sum of the
 * per-row loss.  log_loss also keeps products of pending likelihoods (see
 * retrain_log_loss_accum); r2 keeps compensated sums of the actual values'
 * deviations from a shift (the group's first actual value) and their range,
 * which tells a constant column exactly.
 *
 * mae, rmse and r2 take any finite values: their squares (and a difference
 * of two finite values) may overflow, and the squares of tiny values
 * underflow.  So while every value lies within 2^-400 .. 2^400 (or is 0)
 * the sums are plain; once one does not, the state moves to a scale 2^K,
 * K the binary exponent of the largest value seen, and holds every value
 * divided by 2^K (each then below 1 in magnitude): sums of n values stay
 * below 2n, and the final functions multiply the scale back in, raising
 * 22003 only when the answer itself is beyond float8.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "agg_state.h"
#include "util.h"

typedef struct LossState
{
	RetrainStateHeader hdr;		/* a retrain.agg_state of kind loss */
	int64		n;
	CompensatedSum loss;		/* sum of the per-row loss */
	double		prod;			/* log_loss: product of pending likelihoods */
	double		shortfall;		/* log_loss: 1 - product of pending near-1 ones */
	int64		near_pending;	/* log_loss: how many are in shortfall */
	double		shift;			/* r2: the first actual value */
	CompensatedSum dev;			/* r2: sum of (actual - shift) */
	CompensatedSum dev2;		/* r2: sum of (actual - shift)^2 */
	double		amin;			/* r2: smallest actual value */
	double		amax;			/* r2: largest actual value */
	double		maxabs;			/* mae, rmse, r2: largest |value| seen */
	int32		scale;			/* mae, rmse, r2: K, values held as v / 2^K */
	bool		squared;		/* the loss sums squares (rmse, r2) */
} LossState;

#define LOSS_STATE_FLOAT8S 12
/* its portable bytes: n, near_pending, scale, squared, the doubles */
#define LOSS_STATE_BYTES (8 + 8 + 4 + 1 + 8 * LOSS_STATE_FLOAT8S)

/* Values within which mae, rmse and r2 need no scale (see above). */
#define LOSS_PLAIN_MAX 0x1p400
#define LOSS_PLAIN_MIN 0x1p-400

/* The state of this call, created on the first row of the group. */
static inline LossState *
loss_state(FunctionCallInfo fcinfo)
{
	LossState *state;

	if (!PG_ARGISNULL(0))
		return retrain_state_running(fcinfo, RETRAIN_STATE_LOSS);
	state = retrain_state_new(fcinfo, sizeof(LossState), RETRAIN_STATE_LOSS);
	state->prod = 1.0;
	state->amin = get_float8_infinity();
	state->amax = -get_float8_infinity();
	return state;
}

/* Fold log_loss's pending products of likelihoods into a loss sum. */
static void
add_pending_log_loss(CompensatedSum *loss, const LossState *s)
{
	if (s->prod != 1.0)			/* each factor is < 1 */
		csum_add(loss, -log(s->prod));
	if (s->near_pending > 0)
		csum_add(loss, -log1p(-s->shortfall));
}

/* The loss sum with log_loss's pending products folded in; leaves s as is. */
static double
loss_state_value(const LossState *s)
{
	CompensatedSum loss = s->loss;

	add_pending_log_loss(&loss, s);
	return csum_value(&loss);
}

/* Rows with a NULL argument are skipped. */
#define RETURN_STATE_IF_ANY_NULL(nargs) \
	do { \
		int		_i; \
		for (_i = 1; _i <= (nargs); _i++) \
			if (PG_ARGISNULL(_i)) \
				RETURN_STATE_UNCHANGED(); \
	} while (0)

/* A probability score: NaN, infinities and anything outside [0, 1] fail. */
static inline double
probability_arg(FunctionCallInfo fcinfo, int argno)
{
	double		p = PG_GETARG_FLOAT8(argno);

	/* one test on the per-row path: NaN fails it too */
	if (likely(p >= 0.0 && p <= 1.0))
		return p;
	retrain_reject_nan(fcinfo, p, "score");
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: score %s is outside [0, 1]",
					retrain_func_name(fcinfo), float8out_internal(p)),
			 errdetail("This metric scores predicted probabilities of the positive class.")));
	pg_unreachable();
}

/* _brier_accum(state, score, label): (score - label)^2 */
PG_FUNCTION_INFO_V1(retrain_brier_accum);
Datum
retrain_brier_accum(PG_FUNCTION_ARGS)
{
	LossState *state;
	double		p;
	double		d;

	RETURN_STATE_IF_ANY_NULL(2);
	p = probability_arg(fcinfo, 1);
	d = PG_GETARG_BOOL(2) ? 1.0 - p : p;

	state = loss_state(fcinfo);
	state->n++;
	csum_add(&state->loss, d * d);
	PG_RETURN_POINTER(state);
}

/*
 * _log_loss_accum(state, score, label): -ln(p) for a positive, -ln(1 - p)
 * for a negative, with p clipped to [1e-15, 1 - 1e-15] as scikit-learn
 * does, so that a confident mistake costs about 34.5 rather than infinity.
 *
 * A logarithm per row would cost more than the rest of the scan's extra
 * work together, so likelihoods are multiplied together and one logarithm
 * is taken per batch, in two kinds:
 *
 * - a likelihood f <= 0.999 joins a plain product.  Each product rounds by
 *   at most 2^-53 relative, i.e. 1.1e-16 in log space, against a loss of at
 *   least 0.001 for the row it adds: at worst 1.1e-13 of it, however long
 *   the batch, and rounding errors of both signs mostly cancel.  The batch
 *   ends only before the product could underflow: below 1e-290, a factor of
 *   at least 1e-15 still leaves a normal number.  The bound is set this
 *   close to 1 so that hardly any row leaves this path: a branch that does
 *   at random costs a misprediction.
 * - a likelihood near 1 carries a loss too small for that error, so these
 *   are kept as their shortfall g = 1 - f, which is exact here (g = p for a
 *   negative; 1 - p is exact for a positive with p > 1/2), and combined as
 *   1 - (1 - a)(1 - b) = a + g(1 - a), which never cancels; each step may
 *   round by a unit in the last place, so these batches end after
 *   LOG_LOSS_NEAR_BATCH rows, and their loss is -log1p(-shortfall), which
 *   keeps every digit of a tiny loss.
 *
 * The common case, a plain factor, stays in the transition function;
 * everything else is in log_loss_slow, so that the per-row path is short.
 */
#define LOG_LOSS_EPS 1e-15
#define LOG_LOSS_TINY 1e-290
#define LOG_LOSS_NEAR_BATCH 16
#define LOG_LOSS_NEAR_ONE 0.999

static pg_noinline void
log_loss_slow(LossState *state, double p, bool label, double f)
{
	if (f <= LOG_LOSS_NEAR_ONE)
	{
		/* the product is about to underflow: close the batch */
		csum_add(&state->loss, -log(state->prod));
		state->prod = f;
		return;
	}

	state->shortfall += (label ? 1.0 - p : p) * (1.0 - state->shortfall);
	if (++state->near_pending == LOG_LOSS_NEAR_BATCH)
	{
		csum_add(&state->loss, -log1p(-state->shortfall));
		state->shortfall = 0.0;
		state->near_pending = 0;
	}
}

PG_FUNCTION_INFO_V1(retrain_log_loss_accum);
Datum
retrain_log_loss_accum(PG_FUNCTION_ARGS)
{
	LossState *state;
	double		p;
	double		f;
	bool		label;

	RETURN_STATE_IF_ANY_NULL(2);
	p = probability_arg(fcinfo, 1);
	p = Min(Max(p, LOG_LOSS_EPS), 1.0 - LOG_LOSS_EPS);
	label = PG_GETARG_BOOL(2);
	/* a select, not a branch: labels are unpredictable */
	f = label ? p : 1.0 - p;

	state = loss_state(fcinfo);
	state->n++;
	if (likely(f <= LOG_LOSS_NEAR_ONE && state->prod >= LOG_LOSS_TINY))
		state->prod *= f;
	else
		log_loss_slow(state, p, label, f);
	PG_RETURN_POINTER(state);
}

/*
 * Move a state to scale 2^k (k above its scale): every sum is divided by
 * 2^(k - scale), or by its square for sums of squares.  Powers of two
 * divide exactly, but for parts that fall below the smallest double, too
 * small to count against the values that raised the scale.
 */
static void
loss_rescale(LossState *s, int32 k)
{
	int			d = s->scale - k;
	int			lossd = s->squared ? 2 * d : d;

	s->loss.sum = ldexp(s->loss.sum, lossd);
	s->loss.comp = ldexp(s->loss.comp, lossd);
	s->shift = ldexp(s->shift, d);
	s->dev.sum = ldexp(s->dev.sum, d);
	s->dev.comp = ldexp(s->dev.comp, d);
	s->dev2.sum = ldexp(s->dev2.sum, 2 * d);
	s->dev2.comp = ldexp(s->dev2.comp, 2 * d);
	s->scale = k;
}

/* Whether a row may be added without a scale, as most rows are. */
static inline bool
loss_plain(const LossState *s, double m)
{
	return s->scale == 0 && m <= LOSS_PLAIN_MAX && (m >= LOSS_PLAIN_MIN || m == 0.0);
}

/*
 * The scaled values of a row: the state's scale raised, if need be, to
 * hold m (the row's largest |value|); *actual and *predicted divided by it.
 */
static void
loss_scale_row(LossState *s, double m, double *actual, double *predicted)
{
	int			k;

	s->maxabs = Max(s->maxabs, m);
	(void) frexp(s->maxabs, &k);
	if (s->n == 0 || k > s->scale)
	{
		if (s->n == 0)
			s->scale = k;
		else
			loss_rescale(s, k);
	}
	*actual = ldexp(*actual, -s->scale);
	*predicted = ldexp(*predicted, -s->scale);
}

/*
 * A (predicted, actual) row, both finite, as its residual actual -
 * predicted and its actual value, divided by the state's scale.
 */
static inline double
residual_args(FunctionCallInfo fcinfo, LossState *s, double *actual)
{
	double		predicted = PG_GETARG_FLOAT8(1);
	double		m;

	*actual = PG_GETARG_FLOAT8(2);
	retrain_reject_nonfinite(fcinfo, predicted, "predicted");
	retrain_reject_nonfinite(fcinfo, *actual, "actual");
	m = Max(fabs(predicted), fabs(*actual));
	if (unlikely(!loss_plain(s, m)))
		loss_scale_row(s, m, actual, &predicted);
	else
		s->maxabs = Max(s->maxabs, m);
	return *actual - predicted;
}

/*
 * The transition of mae and rmse: the sum of |e| or of e².  Always inlined
 * with a constant "squared", so each aggregate keeps its own branch-free
 * loop body.
 */
static pg_attribute_always_inline Datum
residual_accum(FunctionCallInfo fcinfo, bool squared)
{
	LossState *state;
	double		actual;
	double		e;

	RETURN_STATE_IF_ANY_NULL(2);
	state = loss_state(fcinfo);
	state->squared = squared;
	e = residual_args(fcinfo, state, &actual);
	state->n++;
	csum_add(&state->loss, squared ? e * e : fabs(e));
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(retrain_mae_accum);
Datum
retrain_mae_accum(PG_FUNCTION_ARGS)
{
	return residual_accum(fcinfo, false);
}

PG_FUNCTION_INFO_V1(retrain_rmse_accum);
Datum
retrain_rmse_accum(PG_FUNCTION_ARGS)
{
	return residual_accum(fcinfo, true);
}

PG_FUNCTION_INFO_V1(retrain_r2_accum);
Datum
retrain_r2_accum(PG_FUNCTION_ARGS)
{
	LossState *state;
	double		actual;
	double		e;
	double		d;

	RETURN_STATE_IF_ANY_NULL(2);
	state = loss_state(fcinfo);
	state->squared = true;
	e = residual_args(fcinfo, state, &actual);
	if (state->n == 0)
		state->shift = actual;
	state->n++;
	csum_add(&state->loss, e * e);

	/*
	 * Sums of deviations from a value of the data itself cancel little when
	 * the variance is taken from them, and cost no division a row.
	 */
	d = actual - state->shift;
	csum_add(&state->dev, d);
	csum_add(&state->dev2, d * d);
	/* the range in the original units, which no scale changes */
	actual = PG_GETARG_FLOAT8(2);
	if (actual < state->amin)
		state->amin = actual;
	if (actual > state->amax)
		state->amax = actual;
	PG_RETURN_POINTER(state);
}

PG_FUNCTION_INFO_V1(retrain_loss_combine);
Datum
retrain_loss_combine(PG_FUNCTION_ARGS)
{
	LossState *a;
	const LossState *b;
	LossState	b_rescaled;

	if (PG_ARGISNULL(1))
		RETURN_STATE_UNCHANGED();
	b = retrain_state_arg(fcinfo, 1, RETRAIN_STATE_LOSS);
	a = loss_state(fcinfo);
	if (b->n == 0)
		PG_RETURN_POINTER(a);

	/* one scale for both, the larger; b is not ours to change */
	a->squared = a->squared || b->squared;
	if (a->n == 0)
		a->scale = b->scale;
	else if (b->scale > a->scale)
		loss_rescale(a, b->scale);
	else if (a->scale > b->scale)
	{
		b_rescaled = *b;
		b_rescaled.squared = a->squared;
		loss_rescale(&b_rescaled, a->scale);
		b = &b_rescaled;
	}
	a->maxabs = Max(a->maxabs, b->maxabs);

	if (a->n == 0)
	{
		a->shift = b->shift;
		a->dev = b->dev;
		a->dev2 = b->dev2;
	}
	else
	{
		/*
		 * Re-express b's deviations from a's shift: with t = b.shift -
		 * a.shift, sum(x - a.shift) = sum(x - b.shift) + n t and
		 * sum((x - a.shift)^2) = sum((x - b.shift)^2) + 2 t sum(x -
		 * b.shift) + n t^2.
		 */
		double		t = b->shift - a->shift;
		double		bn = (double) b->n;
		double		bdev = csum_value(&b->dev);

		csum_merge(&a->dev, &b->dev);
		csum_add(&a->dev, bn * t);
		csum_merge(&a->dev2, &b->dev2);
		csum_add(&a->dev2, 2.0 * t * bdev);
		csum_add(&a->dev2, bn * t * t);
	}
	a->n += b->n;
	csum_merge(&a->loss, &b->loss);
	add_pending_log_loss(&a->loss, b);
	a->amin = Min(a->amin, b->amin);
	a->amax = Max(a->amax, b->amax);
	PG_RETURN_POINTER(a);
}

/* The portable bytes of a state: its fields, big-endian. */
void
retrain_loss_send(StringInfo buf, const void *state)
{
	const LossState *s = state;
	double		values[LOSS_STATE_FLOAT8S] = {
		s->loss.sum, s->loss.comp, s->prod, s->shortfall, s->shift, s->dev.sum,
		s->dev.comp, s->dev2.sum, s->dev2.comp, s->amin, s->amax, s->maxabs
	};

	pq_sendint64(buf, s->n);
	pq_sendint64(buf, s->near_pending);
	pq_sendint32(buf, s->scale);
	pq_sendbyte(buf, s->squared ? 1 : 0);
	retrain_send_float8s(buf, values, LOSS_STATE_FLOAT8S);
}

/*
 * A state from its portable bytes.  Every field is within what the
 * transition and combine functions can make, so that no final function
 * returns a number no data could give.
 */
void *
retrain_loss_recv(StringInfo buf)
{
	LossState  *s = palloc0(sizeof(LossState));
	double		values[LOSS_STATE_FLOAT8S];

	if (buf->len - buf->cursor != LOSS_STATE_BYTES)
		retrain_state_invalid("loss", psprintf("It has %d bytes, not %d.", buf->len - buf->cursor,
											   (int) LOSS_STATE_BYTES));
	SET_VARSIZE(s, sizeof(LossState));
	s->hdr.kind = RETRAIN_STATE_LOSS;
	s->hdr.version = RETRAIN_STATE_VERSION;
	s->n = pq_getmsgint64(buf);
	s->near_pending = pq_getmsgint64(buf);
	s->scale = (int32) pq_getmsgint(buf, 4);
	s->squared = pq_getmsgbyte(buf) != 0;
	retrain_recv_float8s(buf, values, LOSS_STATE_FLOAT8S);
	for (int i = 0; i < LOSS_STATE_FLOAT8S; i++)
		if (isnan(values[i]))
			retrain_state_invalid("loss", "A sum is NaN.");
	s->loss.sum = values[0];
	s->loss.comp = values[1];
	s->prod = values[2];
	s->shortfall = values[3];
	s->shift = values[4];
	s->dev.sum = values[5];
	s->dev.comp = values[6];
	s->dev2.sum = values[7];
	s->dev2.comp = values[8];
	s->amin = values[9];
	s->amax = values[10];
	s->maxabs = values[11];
	if (s->n < 0 || s->near_pending < 0 || s->near_pending >= LOG_LOSS_NEAR_BATCH ||
		s->near_pending > s->n)
		retrain_state_invalid("loss", "Its row counts are out of range.");
	if (!(s->prod > 0.0 && s->prod <= 1.0) || !(s->shortfall >= 0.0 && s->shortfall < 1.0))
		retrain_state_invalid("loss", "Its pending log-loss products are out of range.");
	if (s->scale < -1100 || s->scale > 1100 || s->maxabs < 0.0)
		retrain_state_invalid("loss", "Its scale is out of range.");
	return s;
}

PG_FUNCTION_INFO_V1(retrain_loss_serial);
Datum
retrain_loss_serial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	retrain_loss_send(&buf, PG_GETARG_POINTER(0));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(retrain_loss_deserial);
Datum
retrain_loss_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	void	   *s;

	retrain_bytea_reader(&buf, PG_GETARG_BYTEA_PP(0));
	/* a short-lived copy: the combine function adds it into its own state */
	s = retrain_loss_recv(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(s);
}

/*
 * A result of scaled sums times 2^k, or 22003 when it is beyond float8.
 * Unscaled (k = 0), a result is what it is: log_loss of a certain mistake
 * is infinite.
 */
static double
loss_unscale(FunctionCallInfo fcinfo, double v, int k)
{
	double		r;

	if (likely(k == 0))
		return v;
	r = ldexp(v, k);
	if (unlikely(isinf(r)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s: the result is beyond the range of float8", retrain_func_name(fcinfo)),
				 errdetail("It is about 2^%d.", (int) (log2(v) + k))));
	return r;
}

/* Final functions are strict: a group without rows gives NULL. */
PG_FUNCTION_INFO_V1(retrain_mean_loss_final);
Datum
retrain_mean_loss_final(PG_FUNCTION_ARGS)
{
	const LossState *s = retrain_state_arg(fcinfo, 0, RETRAIN_STATE_LOSS);

	if (s->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(loss_unscale(fcinfo, loss_state_value(s) / (double) s->n, s->scale));
}

PG_FUNCTION_INFO_V1(retrain_rmse_final);
Datum
retrain_rmse_final(PG_FUNCTION_ARGS)
{
	const LossState *s = retrain_state_arg(fcinfo, 0, RETRAIN_STATE_LOSS);

	if (s->n == 0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(loss_unscale(fcinfo, sqrt(csum_value(&s->loss) / (double) s->n), s->scale));
}

/*
 * R^2 = 1 - SS_res / SS_tot.  Undefined (NULL) when the actual values are
 * constant, which the range tells exactly; the sum of squares could be a
 * rounding residue instead of zero.
 */
PG_FUNCTION_INFO_V1(retrain_r2_final);
Datum
retrain_r2_final(PG_FUNCTION_ARGS)
{
	const LossState *s = retrain_state_arg(fcinfo, 0, RETRAIN_STATE_LOSS);
	double		dev;
	double		ss_tot;

	if (s->n == 0 || s->amin == s->amax)
		PG_RETURN_NULL();
	dev = csum_value(&s->dev);
	ss_tot = csum_value(&s->dev2) - dev * (dev / (double) s->n);
	if (ss_tot <= 0.0)
		PG_RETURN_NULL();
	/* both sums are of squares at the same scale: their ratio needs none */
	PG_RETURN_FLOAT8(1.0 - csum_value(&s->loss) / ss_tot);
}

/*
 * The entry points retrain 0.1.0's install script names for _loss_combine,
 * _loss_serial and _loss_deserial (CREATE EXTENSION retrain VERSION '0.1.0'
 * must still find them; the upgrade to 0.2.0 moves the functions to the
 * names above).  A released script is never edited, so every symbol one
 * names stays exported.
 */
PG_FUNCTION_INFO_V1(retrain_error_combine);
Datum
retrain_error_combine(PG_FUNCTION_ARGS)
{
	return retrain_loss_combine(fcinfo);
}

PG_FUNCTION_INFO_V1(retrain_error_serial);
Datum
retrain_error_serial(PG_FUNCTION_ARGS)
{
	return retrain_loss_serial(fcinfo);
}

PG_FUNCTION_INFO_V1(retrain_error_deserial);
Datum
retrain_error_deserial(PG_FUNCTION_ARGS)
{
	return retrain_loss_deserial(fcinfo);
}
