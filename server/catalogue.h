/*
 * server/catalogue.h: the report catalogue (report_definitions + aggregate_windows) held in
 * memory by each HTTP worker (API.md §6). STUB: replaced by the report API work.
 */
#ifndef ANALYTICSD_CATALOGUE_H
#define ANALYTICSD_CATALOGUE_H

struct http_app;
typedef struct catalogue catalogue;

/* Creates the worker's catalogue and starts keeping it fresh on the app's loop. */
catalogue *catalogue_create(struct http_app *app);

#endif
