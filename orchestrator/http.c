/* http.c — the dashboard / metrics / health endpoint. See http.h. */
#include "orchestrator/http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"

/* assets[]: {name, content type, data, length}, generated from
 * orchestrator/dashboard/ by orchestrator/dashboard/embed.sh. */
#include "dashboard_assets.inc"

#define MAX_REQUEST 8192
#define IO_TIMEOUT_S 5

struct loom_http {
    int fd, stop_fd, port;
    pthread_t thread;
    int started;
    loom_metrics_t *metrics;
    loom_store_pg_t *pg;
};

static int parse_listen(const char *s, char *host, size_t hn, char *port, size_t pn) {
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || !colon[1] || (size_t)(colon - s) >= hn || strlen(colon + 1) >= pn)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9') return -1;
    return atoi(port) <= 65535 ? 0 : -1;
}

/* ---- responses ---------------------------------------------------------- */

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            return; /* client went away or timed out: nothing to do */
        }
        p += w;
        n -= (size_t)w;
    }
}

static const char *reason_of(int code) {
    switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

static void respond(int fd, int code, const char *type, const char *body, size_t len, int head) {
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason_of(code), type, len);
    send_all(fd, hdr, (size_t)n);
    if (!head && len) send_all(fd, body, len);
}

static void respond_json_error(int fd, int code, const char *msg, int head) {
    loom_buf_t b = LOOM_BUF_INIT;
    loom_buf_puts(&b, "{\"error\":");
    loom_buf_json_str(&b, msg, strlen(msg));
    loom_buf_puts(&b, "}");
    respond(fd, code, "application/json", b.data, b.len, head);
    loom_buf_free(&b);
}

/* ---- routing ------------------------------------------------------------ */

/* Extracts ?run=<id> (ids are plain tokens; anything else is refused). */
static int query_run(const char *query, char *out, size_t n) {
    out[0] = 0;
    if (!query) return 0;
    for (const char *p = query; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, "run=", 4) != 0) continue;
        p += 4;
        size_t len = strcspn(p, "&");
        if (len == 0 || len >= n) return -1;
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == ':'))
                return -1;
        }
        memcpy(out, p, len);
        out[len] = 0;
        return 1;
    }
    return 0;
}

static void route(loom_http_t *h, int fd, const char *path, const char *query, int head) {
    if (strcmp(path, "/healthz") == 0) {
        char why[128];
        int ok = loom_metrics_healthy(h->metrics, why, sizeof why);
        loom_buf_t b = LOOM_BUF_INIT;
        loom_buf_printf(&b, "{\"status\":\"%s\"", ok ? "ok" : "degraded");
        if (!ok) {
            loom_buf_puts(&b, ",\"reason\":");
            loom_buf_json_str(&b, why, strlen(why));
        }
        loom_buf_puts(&b, "}\n");
        respond(fd, ok ? 200 : 503, "application/json", b.data, b.len, head);
        loom_buf_free(&b);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        loom_buf_t b = LOOM_BUF_INIT;
        if (loom_metrics_render(h->metrics, &b) == 0)
            respond(fd, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, head);
        else
            respond_json_error(fd, 500, "out of memory", head);
        loom_buf_free(&b);
        return;
    }
    if (strcmp(path, "/api/summary") == 0) {
        loom_buf_t b = LOOM_BUF_INIT;
        loom_metrics_summary_json(h->metrics, &b);
        respond(fd, 200, "application/json", b.data, b.len, head);
        loom_buf_free(&b);
        return;
    }
    if (strncmp(path, "/api/", 5) == 0) {
        if (!h->pg) {
            respond_json_error(fd, 503, "no database: start loomd with --db to see history", head);
            return;
        }
        char run[128];
        int has = query_run(query, run, sizeof run);
        if (has < 0) {
            respond_json_error(fd, 400, "bad run id", head);
            return;
        }
        loom_buf_t b = LOOM_BUF_INIT;
        loom_err_t err = {0};
        int rc = loom_store_pg_query_json(h->pg, path + 5, has ? run : NULL, &b, &err);
        if (rc == 0)
            respond(fd, 200, "application/json", b.data, b.len, head);
        else
            respond_json_error(fd, rc == LOOM_ENOTFOUND ? 404 : rc == LOOM_EINVAL ? 400 : 503,
                               err.msg, head);
        loom_buf_free(&b);
        return;
    }
    const char *name = strcmp(path, "/") == 0 ? "index.html"
                       : strncmp(path, "/static/", 8) == 0 ? path + 8 : NULL;
    for (size_t i = 0; name && i < sizeof assets / sizeof assets[0]; i++)
        if (strcmp(assets[i].name, name) == 0) {
            respond(fd, 200, assets[i].type, assets[i].data, assets[i].len, head);
            return;
        }
    respond_json_error(fd, 404, "not found", head);
}

/* Reads one request head and answers it. */
static void serve(loom_http_t *h, int fd) {
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char req[MAX_REQUEST + 1];
    size_t len = 0;
    while (len < MAX_REQUEST) {
        ssize_t r = recv(fd, req + len, MAX_REQUEST - len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return; /* closed or timed out before a full head */
        len += (size_t)r;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[len] = 0;
    if (!strstr(req, "\r\n\r\n") && !strstr(req, "\n\n")) {
        respond_json_error(fd, 413, "request head too large", 0);
        return;
    }
    char method[8], target[1024], version[16];
    if (sscanf(req, "%7s %1023s %15s", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0 || target[0] != '/') {
        respond_json_error(fd, 400, "malformed request line", 0);
        return;
    }
    int head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond_json_error(fd, 405, "only GET and HEAD", 0);
        return;
    }
    char *query = strchr(target, '?');
    if (query) *query++ = 0;
    route(h, fd, target, query, head);
}

static void *http_main(void *arg) {
    loom_http_t *h = arg;
    for (;;) {
        struct pollfd p[2] = {{h->fd, POLLIN, 0}, {h->stop_fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            LOOM_ERROR("http", "msg=\"poll failed\" error=\"%s\"", strerror(errno));
            break;
        }
        if (p[1].revents) break;
        if (!(p[0].revents & POLLIN)) continue;
        int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue; /* EAGAIN, ECONNABORTED, EMFILE: try again later */
        serve(h, c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

loom_http_t *loom_http_new(const loom_http_opts_t *o, loom_err_t *err) {
    char host[256], port[16];
    if (!o || !o->metrics) {
        loom_err_set(err, LOOM_EINVAL, "http: metrics are required");
        return NULL;
    }
    if (parse_listen(o->listen, host, sizeof host, port, sizeof port) != 0) {
        loom_err_set(err, LOOM_EINVAL, "bad --http address '%s'", o->listen ? o->listen : "");
        loom_err_hint(err, "use HOST:PORT, e.g. 127.0.0.1:7480");
        return NULL;
    }
    loom_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    h->fd = h->stop_fd = -1;
    h->metrics = o->metrics;
    h->pg = o->pg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        loom_err_set(err, LOOM_EINVAL, "cannot resolve --http host '%s': %s", host,
                     gai_strerror(gai));
        goto fail;
    }
    h->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (h->fd < 0 || setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(h->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(h->fd, 64) < 0) {
        loom_err_set(err, LOOM_EIO, "cannot listen on %s: %s", o->listen, strerror(errno));
        freeaddrinfo(ai);
        goto fail;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(h->fd, (struct sockaddr *)&ss, &sl);
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    h->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (h->stop_fd < 0 || pthread_create(&h->thread, NULL, http_main, h) != 0) {
        loom_err_set(err, LOOM_EIO, "cannot start the HTTP thread");
        goto fail;
    }
    h->started = 1;
    LOOM_INFO("http", "msg=\"dashboard listening\" url=http://%s:%d/", host, h->port);
    return h;
fail:
    loom_http_destroy(&h);
    return NULL;
}

int loom_http_port(const loom_http_t *h) { return h->port; }

void loom_http_destroy(loom_http_t **ph) {
    if (!ph || !*ph) return;
    loom_http_t *h = *ph;
    if (h->started) {
        uint64_t one = 1;
        ssize_t w = write(h->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(h->thread, NULL);
    }
    if (h->fd >= 0) close(h->fd);
    if (h->stop_fd >= 0) close(h->stop_fd);
    free(h);
    *ph = NULL;
}
