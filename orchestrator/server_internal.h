/* server_internal.h — state shared by server.c (loop, worker protocol) and
 * rpc_client.c (client RPCs). Not a public interface. */
#ifndef LOOM_ORCHESTRATOR_SERVER_INTERNAL_H
#define LOOM_ORCHESTRATOR_SERVER_INTERNAL_H

#include "orchestrator/engine.h"
#include "orchestrator/registry.h"
#include "orchestrator/server.h"
#include "protocol/rpc_server.h"

/* A client following a run (Watch). */
typedef struct watcher {
    struct watcher *next;
    char run_id[64];
    loom_origin_t origin;
    int include_progress;
    int64_t deadline_ms;      /* the request's deadline (unix ms; 0 = none) */
} watcher_t;

typedef struct srv {
    loom_server_opts_t opts;
    void *zctx;
    loom_rpc_server_t *csrv, *wsrv;
    loom_store_t *store, *own_store;
    loom_registry_t *reg;
    loom_engine_t *eng;
    watcher_t *watchers;
    size_t n_watchers;
    uint64_t next_worker;
    int64_t started_ms;
    char epoch[16];           /* RegisterReply/HeartbeatReply.epoch */
} srv_t;

/* rpc_client.c: handles one message from the client socket. */
void server_on_client_msg(srv_t *s, loom_msg_t *m);

#endif
