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

#endif							/* RETRAIN_H */
