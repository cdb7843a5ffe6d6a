/* failover.h — following the leader among several loomd (deploy/README.md,
 * "High availability"), for the client library and the workers.
 *
 * A peer is given a comma-separated list of loomd endpoints and talks to
 * one of them at a time. It moves on when
 *   - the loomd answers UNAVAILABLE from a standby: the reply's error detail
 *     names the leader as "leader=URL" (go there), or says there is none
 *     yet (try the next endpoint after a pause);
 *   - the connection to it is lost or refused (a ZeroMQ socket monitor
 *     reports it at once: a killed loomd's socket closes), or it stays
 *     silent (the caller's timeouts).
 * The list is tried in order, wrapping around; a leader named by a standby
 * that is not in the list is tried too (it is what that loomd advertises). */
#ifndef LOOM_PROTOCOL_FAILOVER_H
#define LOOM_PROTOCOL_FAILOVER_H

#include <stddef.h>

#include "common/err.h"

#define LOOM_FAILOVER_MAX 16 /* endpoints in a list */

typedef struct loom_endpoints {
    char *ep[LOOM_FAILOVER_MAX + 1]; /* the list, then one slot for a leader outside it */
    int n;                           /* entries of the list */
    int cur;                         /* index of the endpoint in use (may be n: the extra) */
} loom_endpoints_t;

/* Parses "tcp://a:7400,tcp://b:7400" (spaces around commas allowed). At
 * least one endpoint; LOOM_EINVAL naming the bad entry otherwise. */
int loom_endpoints_parse(loom_endpoints_t *e, const char *csv, loom_err_t *err);
void loom_endpoints_free(loom_endpoints_t *e);
/* The endpoint in use. Borrowed. */
const char *loom_endpoints_current(const loom_endpoints_t *e);
/* Moves to the leader a standby named in its error detail ("leader=URL")
 * when there is one and it is not the endpoint in use, else to the next
 * endpoint of the list. Returns the new current endpoint. */
const char *loom_endpoints_advance(loom_endpoints_t *e, const char *detail);
/* The URL in a standby's detail "leader=URL", copied to out; 0 when there
 * is none. */
int loom_failover_leader(const char *detail, char *out, size_t n);

/* A ZeroMQ socket monitor telling when the connection to the endpoint in
 * use is lost or refused. */
typedef struct loom_conn_watch loom_conn_watch_t;
/* Monitors sock (a DEALER) through an inproc PAIR in zctx. NULL on failure
 * (callers then rely on their timeouts). */
loom_conn_watch_t *loom_conn_watch_new(void *zctx, void *sock);
void loom_conn_watch_destroy(loom_conn_watch_t **pw);
/* The PAIR socket, for zmq_poll (readable when events wait). */
void *loom_conn_watch_socket(loom_conn_watch_t *w);
/* Reads the waiting events; 1 when one says the connection to endpoint
 * was closed or a connect to it was refused, 0 otherwise. */
int loom_conn_watch_lost(loom_conn_watch_t *w, const char *endpoint);

#endif
