/* failover.c — endpoint lists and connection monitors (see failover.h). */
#include "protocol/failover.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

int loom_endpoints_parse(loom_endpoints_t *e, const char *csv, loom_err_t *err)
{
    memset(e, 0, sizeof *e);
    const char *p = csv ? csv : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == ' ')
            len--;
        if (!len)
            break;
        if (e->n == LOOM_FAILOVER_MAX) {
            loom_endpoints_free(e);
            return loom_err_set(err, LOOM_EINVAL, "more than %d loomd endpoints", LOOM_FAILOVER_MAX);
        }
        if (!memchr(p, ':', len) || !strstr(p, "://") || (size_t)(strstr(p, "://") - p) >= len) {
            loom_err_set(err, LOOM_EINVAL, "'%.*s' is not an endpoint", (int)len, p);
            loom_err_hint(err, "endpoints look like tcp://127.0.0.1:7400; several are separated by commas");
            loom_endpoints_free(e);
            return LOOM_EINVAL;
        }
        if (!(e->ep[e->n] = strndup(p, len))) {
            loom_endpoints_free(e);
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
        e->n++;
        p += strcspn(p, ",");
    }
    if (!e->n)
        return loom_err_set(err, LOOM_EINVAL, "no loomd endpoint given");
    return 0;
}

void loom_endpoints_free(loom_endpoints_t *e)
{
    for (int i = 0; i <= LOOM_FAILOVER_MAX; i++)
        free(e->ep[i]);
    memset(e, 0, sizeof *e);
}

const char *loom_endpoints_current(const loom_endpoints_t *e) { return e->ep[e->cur]; }

int loom_failover_leader(const char *detail, char *out, size_t n)
{
    const char *p = detail ? strstr(detail, "leader=") : NULL;
    if (!p)
        return 0;
    p += 7;
    size_t len = strcspn(p, " \t\n;,");
    if (!len || len >= n || !strstr(p, "://"))
        return 0;
    memcpy(out, p, len);
    out[len] = 0;
    return 1;
}

const char *loom_endpoints_advance(loom_endpoints_t *e, const char *detail)
{
    char lead[256];
    if (loom_failover_leader(detail, lead, sizeof lead) && strcmp(lead, e->ep[e->cur]) != 0) {
        for (int i = 0; i < e->n; i++)
            if (strcmp(e->ep[i], lead) == 0) {
                e->cur = i;
                return e->ep[i];
            }
        char *copy = strdup(lead); /* a leader outside the list: the spare slot */
        if (copy) {
            free(e->ep[LOOM_FAILOVER_MAX]);
            e->ep[LOOM_FAILOVER_MAX] = copy;
            e->cur = LOOM_FAILOVER_MAX;
            return copy;
        }
    }
    e->cur = e->cur >= e->n ? 0 : (e->cur + 1) % e->n;
    return e->ep[e->cur];
}

/* ---- connection monitor ------------------------------------------------- */

struct loom_conn_watch {
    void *sock, *pair;
};

loom_conn_watch_t *loom_conn_watch_new(void *zctx, void *sock)
{
    loom_conn_watch_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    char addr[64];
    snprintf(addr, sizeof addr, "inproc://loom-conn-watch-%p", (void *)w);
    if (zmq_socket_monitor(sock, addr, ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
                                               ZMQ_EVENT_CLOSED) != 0)
        goto fail;
    w->sock = sock;
    w->pair = zmq_socket(zctx, ZMQ_PAIR);
    int zero = 0;
    if (!w->pair || zmq_setsockopt(w->pair, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(w->pair, addr) != 0) {
        if (w->pair)
            zmq_close(w->pair);
        zmq_socket_monitor(sock, NULL, 0);
        goto fail;
    }
    return w;
fail:
    free(w);
    return NULL;
}

void loom_conn_watch_destroy(loom_conn_watch_t **pw)
{
    if (!pw || !*pw)
        return;
    zmq_socket_monitor((*pw)->sock, NULL, 0);
    zmq_close((*pw)->pair);
    free(*pw);
    *pw = NULL;
}

void *loom_conn_watch_socket(loom_conn_watch_t *w) { return w ? w->pair : NULL; }

/* The event names endpoint: the same string, or (a host name that the
 * event shows resolved) the same scheme and port. */
static int same_endpoint(const char *ev, size_t evlen, const char *ep)
{
    if (strlen(ep) == evlen && memcmp(ev, ep, evlen) == 0)
        return 1;
    const char *h = strstr(ep, "://");
    const char *port = strrchr(ep, ':');
    if (!h || !port || port < h + 3 || isdigit((unsigned char)h[3]) || h[3] == '[')
        return 0; /* an address literal must match exactly */
    size_t plen = strlen(port);
    return evlen > plen && memcmp(ev + evlen - plen, port, plen) == 0 &&
           (size_t)(h - ep) < evlen && memcmp(ev, ep, (size_t)(h - ep)) == 0;
}

int loom_conn_watch_lost(loom_conn_watch_t *w, const char *endpoint)
{
    if (!w)
        return 0;
    int lost = 0;
    for (int i = 0; i < 1000; i++) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, w->pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        zmq_msg_init(&addr);
        int more = zmq_msg_more(&ev);
        if (more && zmq_msg_recv(&addr, w->pair, ZMQ_DONTWAIT) >= 0 && zmq_msg_size(&ev) >= 6) {
            uint16_t id;
            memcpy(&id, zmq_msg_data(&ev), sizeof id);
            if ((id == ZMQ_EVENT_DISCONNECTED || id == ZMQ_EVENT_CONNECT_RETRIED ||
                 id == ZMQ_EVENT_CLOSED) &&
                same_endpoint(zmq_msg_data(&addr), zmq_msg_size(&addr), endpoint))
                lost = 1;
        }
        zmq_msg_close(&addr);
        zmq_msg_close(&ev);
    }
    return lost;
}
