/* server_internal.h — state shared by server.c (loop, worker protocol) and
 * client_api.c (client RPCs). Not a public interface. */
#ifndef LOOM_ORCHESTRATOR_SERVER_INTERNAL_H
#define LOOM_ORCHESTRATOR_SERVER_INTERNAL_H

#include "common/map.h"
#include "orchestrator/engine.h"
#include "orchestrator/registry.h"
#include "orchestrator/server.h"
#include "orchestrator/zap.h"
#include "protocol/rpc_server.h"

/* A client following a run (Watch). */
typedef struct watcher {
    struct watcher *next;
    char run_id[64];
    loom_origin_t origin;
    int include_progress;
    int run_only;             /* WatchRequest.run_only: no STEP_* events */
    int64_t deadline_ms;      /* the request's deadline (unix ms; 0 = none) */
} watcher_t;

/* A STEP_* event (what a WatchRequest.run_only watcher is not sent). */
static inline int loom_step_event_kind(int kind)
{
    return kind >= LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_STARTED &&
           kind <= LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_SKIPPED;
}

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
    loom_zap_t *zap;              /* CURVE mode: the ZAP handler; NULL in plain mode */
    loom_map_t *worker_keys;      /* CURVE mode: worker id -> the key that first registered it */
    loom_map_t *tenant_ops;       /* --tenant-ops: tenant -> "op, op, ..." it may run; NULL = all */
    int64_t started_ms;
    uint64_t took_lead_ms;    /* failover: loom_clock_ms() when this loomd took the lead */
    char epoch[16];           /* RegisterReply/HeartbeatReply.epoch */
} srv_t;

/* client_api.c: reads loomd --tenant-ops FILE into s->tenant_ops. */
int server_load_tenant_ops(srv_t *s, const char *path, loom_err_t *err);
/* client_api.c: handles one message from the client socket. */
void server_on_client_msg(srv_t *s, loom_msg_t *m);

#endif
