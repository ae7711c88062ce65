/*-------------------------------------------------------------------------
 *
 * agg_state.c
 *	  retrain.agg_state: the input, output, send and receive functions of
 *	  the aggregates' transition type, and the checks every function taking
 *	  one makes (see agg_state.h).
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"

#include "agg_state.h"
#include "util.h"

typedef struct StateCodec
{
	const char *name;
	void		(*send) (StringInfo buf, const void *state);
	void	   *(*recv) (StringInfo buf);
} StateCodec;

/* Indexed by kind; the names are the text form's first field. */
static const StateCodec codecs[RETRAIN_STATE_KINDS + 1] = {
	{NULL, NULL, NULL},
	{"confusion", retrain_confusion_send, retrain_confusion_recv},
	{"loss", retrain_loss_send, retrain_loss_recv},
	{"histogram", retrain_hist_state_send, retrain_hist_state_recv},
};

static const char *
kind_name(uint8 kind)
{
	return kind >= 1 && kind <= RETRAIN_STATE_KINDS ? codecs[kind].name : "unknown";
}

void *
retrain_state_new(FunctionCallInfo fcinfo, Size size, uint8 kind)
{
	RetrainStateHeader *h;
	MemoryContext cxt = CurrentMemoryContext;

	/*
	 * The declared type of the transition value is known where PostgreSQL
	 * runs the aggregate (fn_expr); Citus's worker_partial_agg calls without
	 * one, and copies a new value as PostgreSQL does.
	 */
	if (get_fn_expr_argtype(fcinfo->flinfo, 0) == INTERNALOID)
		cxt = retrain_agg_context(fcinfo);
	else if (!retrain_in_aggregate(fcinfo))
		(void) retrain_agg_context(fcinfo);		/* the error */
	h = MemoryContextAllocZero(cxt, size);
	SET_VARSIZE(h, size);
	h->kind = kind;
	h->version = RETRAIN_STATE_VERSION;
	return h;
}

static pg_noreturn void
report_wrong_kind(FunctionCallInfo fcinfo, uint8 got, uint8 kind)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("%s: the transition state is a %s state, not a %s state",
					retrain_func_name(fcinfo), kind_name(got), kind_name(kind))));
	pg_unreachable();
}

void
retrain_state_refuse(FunctionCallInfo fcinfo, const void *state, uint8 kind)
{
	if (!retrain_in_aggregate(fcinfo))
		(void) retrain_agg_context(fcinfo);		/* the error */
	report_wrong_kind(fcinfo, ((const RetrainStateHeader *) state)->kind, kind);
}

const void *
retrain_state_arg(FunctionCallInfo fcinfo, int argno, uint8 kind)
{
	const RetrainStateHeader *h;

	h = (const RetrainStateHeader *) PG_DETOAST_DATUM(PG_GETARG_DATUM(argno));
	if (unlikely(h->kind != kind))
		report_wrong_kind(fcinfo, h->kind, kind);
	return h;
}

/* The codec of a state argument (detoasted), which a check made valid. */
static const StateCodec *
codec_of_arg(FunctionCallInfo fcinfo, const RetrainStateHeader **h)
{
	*h = (const RetrainStateHeader *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	if ((*h)->kind < 1 || (*h)->kind > RETRAIN_STATE_KINDS)
		elog(ERROR, "retrain.agg_state of unknown kind %d", (*h)->kind);
	return &codecs[(*h)->kind];
}

void
retrain_state_invalid(const char *kind, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid retrain.agg_state value of kind %s", kind),
			 errdetail_internal("%s", detail)));
	pg_unreachable();
}

/* The kind's state from its portable bytes, all of them read. */
static void *
state_from_bytes(uint8 kind, StringInfo buf)
{
	void	   *state = codecs[kind].recv(buf);

	if (buf->cursor != buf->len)
		retrain_state_invalid(codecs[kind].name, "It has bytes after the state.");
	return state;
}

/*
 * agg_state_in(cstring): "<kind>:<version>:<hex digits>", as agg_state_out
 * writes it.
 */
PG_FUNCTION_INFO_V1(retrain_agg_state_in);
Datum
retrain_agg_state_in(PG_FUNCTION_ARGS)
{
	char	   *text = PG_GETARG_CSTRING(0);
	char	   *colon = strchr(text, ':');
	char	   *hex;
	char	   *end;
	long		version;
	uint8		kind = 0;
	size_t		nhex;
	StringInfoData buf;

	for (int k = 1; colon != NULL && k <= RETRAIN_STATE_KINDS; k++)
		if (strlen(codecs[k].name) == (size_t) (colon - text) &&
			strncmp(text, codecs[k].name, colon - text) == 0)
			kind = k;
	if (kind == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type retrain.agg_state: \"%s\"", text),
				 errdetail("It must start with confusion:, loss: or histogram:.")));
	errno = 0;
	version = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != ':')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type retrain.agg_state: \"%s\"", text),
				 errdetail("It must be <kind>:<version>:<hexadecimal digits>.")));
	if (version != RETRAIN_STATE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("retrain.agg_state: version %ld of the %s state is not known to this build of retrain",
						version, codecs[kind].name),
				 errhint("Install the same version of retrain on every server that exchanges states.")));
	hex = end + 1;
	nhex = strlen(hex);
	if (nhex % 2 != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type retrain.agg_state: an odd number of hexadecimal digits")));
	initStringInfo(&buf);
	enlargeStringInfo(&buf, nhex / 2);
	buf.len = (int) hex_decode(hex, nhex, buf.data);
	PG_RETURN_POINTER(state_from_bytes(kind, &buf));
}

PG_FUNCTION_INFO_V1(retrain_agg_state_out);
Datum
retrain_agg_state_out(PG_FUNCTION_ARGS)
{
	const RetrainStateHeader *h;
	const StateCodec *codec = codec_of_arg(fcinfo, &h);
	StringInfoData bytes;
	StringInfoData text;

	initStringInfo(&bytes);
	codec->send(&bytes, h);
	initStringInfo(&text);
	appendStringInfo(&text, "%s:%d:", codec->name, RETRAIN_STATE_VERSION);
	enlargeStringInfo(&text, 2 * bytes.len);
	text.len += (int) hex_encode(bytes.data, bytes.len, text.data + text.len);
	text.data[text.len] = '\0';
	PG_RETURN_CSTRING(text.data);
}

/* Binary form: the kind, the version, then the same bytes as the text's. */
PG_FUNCTION_INFO_V1(retrain_agg_state_send);
Datum
retrain_agg_state_send(PG_FUNCTION_ARGS)
{
	const RetrainStateHeader *h;
	const StateCodec *codec = codec_of_arg(fcinfo, &h);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, h->kind);
	pq_sendbyte(&buf, RETRAIN_STATE_VERSION);
	codec->send(&buf, h);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(retrain_agg_state_recv);
Datum
retrain_agg_state_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			kind = pq_getmsgbyte(buf);
	int			version = pq_getmsgbyte(buf);

	if (kind < 1 || kind > RETRAIN_STATE_KINDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid retrain.agg_state value: unknown kind %d", kind)));
	if (version != RETRAIN_STATE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("retrain.agg_state: version %d of the %s state is not known to this build of retrain",
						version, codecs[kind].name)));
	PG_RETURN_POINTER(state_from_bytes((uint8) kind, buf));
}
