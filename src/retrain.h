/*-------------------------------------------------------------------------
 *
 * retrain.h
 *	  Declarations shared by the retrain extension's C files.
 *
 * Copyright (c) 2026, The retrain developers
 *
 *-------------------------------------------------------------------------
 */
#ifndef RETRAIN_H
#define RETRAIN_H

#ifndef RETRAIN_VERSION
#error "RETRAIN_VERSION must be defined by the build (see Makefile)"
#endif

/* worker.c: the background worker and its settings */
extern void retrain_define_worker_gucs(void);
extern void retrain_register_worker(void);

/* owner.c: refuse a state change inside code a model's owner supplied */
extern void retrain_check_not_in_owner_code(const char *what);

/* settings defined in retrain.c */
extern int	retrain_check_timeout;	/* owner.c: ms a model's checks may take */
extern int	retrain_max_bins;	/* drift_hist.c: bins a histogram may have */

#endif							/* RETRAIN_H */
