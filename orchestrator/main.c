/* main.c — loomd: flags / config file, signals, then the server loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/config.h"
#include "common/log.h"
#include "common/notify.h"
#include "common/version.h"
#include "orchestrator/engine.h"
#include "orchestrator/http.h"
#include "orchestrator/lease_pg.h"
#include "orchestrator/metrics.h"
#include "orchestrator/server.h"
#include "orchestrator/store_pg.h"
#include "protocol/keys.h"

static volatile int stop, reload;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload = 1; /* re-read the key allow-lists */
    else
        stop = 1;
}

static const char usage_text[] =
    "usage: loomd [options]\n\n"
    "The Loom orchestrator: accepts workflow runs from clients, dispatches their\n"
    "tasks to registered workers, and tracks runs until they finish.\n\n"
    "options:\n"
    "  --client URL              client endpoint (default tcp://127.0.0.1:7400)\n"
    "  --workers URL             worker endpoint (default tcp://127.0.0.1:7401)\n"
    "  --config FILE             read options from FILE: lines 'key: value' with the\n"
    "                            long option names (client, workers, heartbeat-ms, ...);\n"
    "                            later options override earlier ones\n"
    "  --heartbeat-ms N          heartbeat interval asked of workers (default 1000)\n"
    "  --heartbeat-timeout-ms N  a silent worker is lost after this (default 3x interval)\n"
    "  --depth N                 tasks kept in flight per worker slot (default 16)\n"
    "  --placement-timeout-ms N  fail tasks no worker can run after this (default 30000)\n"
    "  --output-ref-bytes N|off  step outputs (or parts of them) larger than N bytes stay\n"
    "                            on the worker that made them and go to the steps that\n"
    "                            consume them by reference; loomd and its store keep the\n"
    "                            reference, size and digest (default 65536; outputs the\n"
    "                            run's outputs or a when/foreach/until use stay inline)\n"
    "  --prefix-placement on|off  send an LLM call to the worker whose engine holds the KV\n"
    "                            of its prompt's prefix when the planner prices that\n"
    "                            cheaper than recomputing it elsewhere (default on)\n"
    "  --object-retention-ms N|off  how long a finished run's objects (outputs by reference,\n"
    "                            KV caches) stay on their workers for `loom logs`; released\n"
    "                            for eviction as soon as their consumers finish, forgotten\n"
    "                            N ms after the run ended (default 3600000; off: until\n"
    "                            evicted for room)\n"
    "  --placement POLICY        planner (default): plan each run against the live workers\n"
    "                            (measured speed, price, calibrated by measured task times),\n"
    "                            refuse runs no placement fits, follow the plan, spread load;\n"
    "                            or least-loaded (no planning, no admission check of the SLA)\n"
    "  --inline-ops LIST         run these cheap ops in loomd itself instead of on a\n"
    "                            worker: noop, echo or noop,echo (default none: every\n"
    "                            task goes to a worker); a chain of them then moves\n"
    "                            without a worker round trip per step\n"
    "  --chain-depth N|off       worker-side chaining: when the plan puts a step and the\n"
    "                            one that waits only for it on the same worker, loomd\n"
    "                            sends up to N such successors ahead with it and the\n"
    "                            worker runs each right after its predecessor succeeds\n"
    "                            (default 32, larger values count as 1024; off: one\n"
    "                            worker round trip per step)\n"
    "  --max-runs N              finished runs kept in memory (default 1000)\n"
    "  --max-finished-bytes N    ... and at most this many bytes of them, oldest\n"
    "                            dropped first (evicted to the database with --db;\n"
    "                            default 134217728 = 128 MiB)\n"
    "  --max-active-runs N       refuse submissions beyond N running runs (default 10000)\n"
    "  --worker-send-queue N     messages queued for one worker beyond what the network\n"
    "                            holds; past it loomd keeps that worker's new tasks until\n"
    "                            it is heard from again (default 1000000)\n"
    "  --max-watchers N          refuse Watch streams of active runs beyond N open ones,\n"
    "                            all clients together (default 10000)\n"
    "  --auth-token TOKEN        clients must send this token (or $LOOM_AUTH_TOKEN)\n"
    "  --auth-secret FILE        clients must send tokens from `loom keygen --token`\n"
    "                            signed with a secret in FILE (one per line, two while\n"
    "                            rotating); default DIR/auth.secret with --keys DIR\n"
    "  --tenant-ops FILE         lines 'tenant: op, op': what each named tenant may run\n"
    "  --keys DIR                secure mode (docs/SECURITY.md): CURVE on both ports with\n"
    "                            DIR/loomd.key; workers must present a key from\n"
    "                            DIR/workers/*.pub, clients one from DIR/clients/*.pub\n"
    "                            when that folder exists (`loom keygen --dir DIR` makes\n"
    "                            them); SIGHUP or a change of the folder re-reads them\n"
    "  --ready-file FILE         write the bound endpoints there once serving\n"
    "  --db URL                  keep runs in PostgreSQL (postgresql://...; or $LOOM_DB):\n"
    "                            migrates the schema, resumes unfinished runs at start.\n"
    "                            Several loomd on one database: one leads (a lease in the\n"
    "                            database), the others stand by, answer UNAVAILABLE with\n"
    "                            the leader's endpoint and take over when it is gone\n"
    "  --advertise HOST          with --db: the host name other loomd hand to clients and\n"
    "                            workers for this one when it binds 0.0.0.0 (default:\n"
    "                            the host name)\n"
    "  --lease-poll-ms N         with --db: how often a standby tries to take the lead\n"
    "                            (default 200)\n"
    "  --lease-ttl-ms N          with --db: a leader that has not renewed its lease for\n"
    "                            this long (hung, stopped) is replaced (default 10000)\n"
    "  --db-queue N              writes buffered while the database is slow or down\n"
    "                            before new submissions are refused (default 65536)\n"
    "  --http HOST:PORT          serve the dashboard, /metrics, /healthz and the HTTP/JSON\n"
    "                            API (/v1/..., docs/HTTP_API.md) there; with tokens\n"
    "                            (--auth-secret, --keys) all but /healthz need\n"
    "                            'Authorization: Bearer <token>'\n"
    "  --http-open yes           serve them without tokens anyway\n"
    "  --log-level L             debug|info|warn|error (default info, or $LOOM_LOG_LEVEL)\n"
    "  --help                    this text\n"
    "  --version                 print the version\n";

typedef struct {
    loom_server_opts_t o;
    const char *ready_file;
    const char *log_level;
    const char *db, *http; /* store engineer: PostgreSQL store, dashboard */
    const char *keys;      /* secure mode: loomd's key folder (protocol/keys.h) */
    const char *auth_secret; /* token secrets file */
    int http_open;           /* --http-open yes: no tokens on the HTTP side */
    long db_queue;
    int lease_poll_ms, lease_ttl_ms;
} cfg_t;

/* Option strings live until exit in one arena (config-file values are
 * read into a temporary line buffer). */
static loom_arena_t *strings;

static char *keep(const char *s)
{
    return loom_arena_strdup(strings, s);
}

/* --inline-ops: a comma-separated list of noop and echo ("none" or ""
 * for none). 0, or -1 with why[] filled. */
static int parse_inline_ops(const char *v, unsigned *out, char *why, size_t why_n)
{
    unsigned bits = 0;
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 4 && strncmp(p, "noop", 4) == 0)
            bits |= LOOM_INLINE_NOOP;
        else if (n == 4 && strncmp(p, "echo", 4) == 0)
            bits |= LOOM_INLINE_ECHO;
        else if (!(n == 4 && strncmp(p, "none", 4) == 0)) {
            snprintf(why, why_n, "expected noop, echo or noop,echo, got '%.*s'", (int)n, p);
            return -1;
        }
        p += n + (p[n] == ',');
    }
    *out = bits;
    return 0;
}

/* Applies one option (a long option name without "--", or a config file
 * key); returns 0, or -1 with why[] filled. */
static int apply(void *ud, const char *k, const char *v, char *why, size_t why_n)
{
    cfg_t *c = ud;
    long n = 0;
    int numeric = strstr(k, "-ms") || strcmp(k, "depth") == 0 || strncmp(k, "max-", 4) == 0 ||
                  strcmp(k, "db-queue") == 0 ||
                  strcmp(k, "worker-send-queue") == 0;
    long max = strcmp(k, "max-finished-bytes") == 0 ? 1L << 40 : 100000000;
    if (strcmp(k, "output-ref-bytes") == 0 && strcmp(v, "off") == 0) {
        c->o.output_ref_bytes = -1;
        return 0;
    }
    if (strcmp(k, "chain-depth") == 0 && strcmp(v, "off") == 0) {
        c->o.chain_depth = -1;
        return 0;
    }
    if (strcmp(k, "prefix-placement") == 0) {
        if (strcmp(v, "on") && strcmp(v, "off")) {
            snprintf(why, why_n, "expected on or off, got '%s'", v);
            return -1;
        }
        c->o.prefix_placement_off = strcmp(v, "off") == 0;
        return 0;
    }
    if (strcmp(k, "object-retention-ms") == 0 && strcmp(v, "off") == 0) {
        c->o.object_retention_ms = -1;
        return 0;
    }
    numeric |= strcmp(k, "output-ref-bytes") == 0 || strcmp(k, "chain-depth") == 0;
    if (numeric && loom_config_positive(v, max, &n, why, why_n) != 0)
        return -1;
    if (strcmp(k, "client") == 0)
        c->o.client_endpoint = keep(v);
    else if (strcmp(k, "workers") == 0)
        c->o.worker_endpoint = keep(v);
    else if (strcmp(k, "heartbeat-ms") == 0)
        c->o.heartbeat_ms = (int)n;
    else if (strcmp(k, "heartbeat-timeout-ms") == 0)
        c->o.heartbeat_timeout_ms = (int)n;
    else if (strcmp(k, "depth") == 0)
        c->o.depth = (int)n;
    else if (strcmp(k, "placement") == 0)
        c->o.placement = keep(v);
    else if (strcmp(k, "inline-ops") == 0)
        return parse_inline_ops(v, &c->o.inline_ops, why, why_n);
    else if (strcmp(k, "placement-timeout-ms") == 0)
        c->o.placement_timeout_ms = n;
    else if (strcmp(k, "output-ref-bytes") == 0)
        c->o.output_ref_bytes = n;
    else if (strcmp(k, "chain-depth") == 0)
        c->o.chain_depth = (int)n > 1024 ? 1024 : (int)n;
    else if (strcmp(k, "object-retention-ms") == 0)
        c->o.object_retention_ms = n;
    else if (strcmp(k, "max-runs") == 0)
        c->o.max_finished_runs = (int)n;
    else if (strcmp(k, "max-finished-bytes") == 0)
        c->o.max_finished_bytes = (size_t)n;
    else if (strcmp(k, "max-active-runs") == 0)
        c->o.max_active_runs = (int)n;
    else if (strcmp(k, "worker-send-queue") == 0)
        c->o.worker_send_queue = (int)n;
    else if (strcmp(k, "max-watchers") == 0)
        c->o.max_watchers = (int)n;
    else if (strcmp(k, "auth-token") == 0)
        c->o.auth_token = keep(v);
    else if (strcmp(k, "keys") == 0)
        c->keys = keep(v);
    else if (strcmp(k, "tenant-ops") == 0)
        c->o.tenant_ops = keep(v);
    else if (strcmp(k, "http-open") == 0) {
        if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0) {
            snprintf(why, why_n, "expected yes or no, got '%s'", v);
            return -1;
        }
        c->http_open = strcmp(v, "yes") == 0;
    } else if (strcmp(k, "auth-secret") == 0)
        c->auth_secret = keep(v);
    else if (strcmp(k, "ready-file") == 0)
        c->ready_file = keep(v);
    else if (strcmp(k, "log-level") == 0)
        c->log_level = keep(v);
    else if (strcmp(k, "db") == 0)
        c->db = keep(v);
    else if (strcmp(k, "db-queue") == 0)
        c->db_queue = n;
    else if (strcmp(k, "lease-poll-ms") == 0)
        c->lease_poll_ms = (int)n;
    else if (strcmp(k, "lease-ttl-ms") == 0)
        c->lease_ttl_ms = (int)n;
    else if (strcmp(k, "advertise") == 0)
        c->o.advertise = keep(v);
    else if (strcmp(k, "http") == 0)
        c->http = keep(v);
    else {
        snprintf(why, why_n, "unknown option (see loomd --help)");
        return -1;
    }
    return 0;
}

/* Secure mode: the server key pair and the allow-list folders (keys.h). */
static int load_keys(cfg_t *c, loom_err_t *err)
{
    char path[4096], pub[41], sec[41];
    snprintf(path, sizeof path, "%s/loomd.key", c->keys);
    int rc = loom_key_read_pair(path, pub, sec, err);
    if (rc) {
        loom_err_hint(err, "`loom keygen --dir %s` creates loomd's keys", c->keys);
        return rc;
    }
    c->o.curve_secret_key = keep(sec);
    snprintf(path, sizeof path, "%s/auth.secret", c->keys);
    if (!c->auth_secret && access(path, F_OK) == 0)
        c->auth_secret = keep(path);
    snprintf(path, sizeof path, "%s/workers", c->keys);
    c->o.workers_keys_dir = keep(path);
    snprintf(path, sizeof path, "%s/clients", c->keys);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        c->o.clients_keys_dir = keep(path);
    return 0;
}

/* Where on_ready reports the bound endpoints. */
typedef struct {
    const char *ready_file;
    loom_http_t *http; /* its gateway calls the client endpoint */
} ready_t;

static void on_ready(void *ud, const char *cep, const char *wep)
{
    ready_t *r = ud;
    loom_notify("READY=1\nSTATUS=serving clients on %s, workers on %s", cep, wep);
    loom_http_set_rpc_endpoint(r->http, cep);
    const char *path = r->ready_file;
    if (!path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "client=%s\nworkers=%s\n", cep, wep);
    fclose(f);
    rename(tmp, path);
}

int main(int argc, char **argv)
{
    cfg_t c = {0};
    strings = loom_arena_new(0);
    if (!strings)
        return 3;
    const char *tok = getenv("LOOM_AUTH_TOKEN");
    if (tok && *tok)
        c.o.auth_token = tok;
    c.log_level = getenv("LOOM_LOG_LEVEL");
    const char *db_env = getenv("LOOM_DB");
    if (db_env && *db_env)
        c.db = db_env;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            fputs(LOOM_VERSION_LINE("loomd"), stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "loomd: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            /* name an unknown option as such, not as one missing its value */
            cfg_t probe = c;
            char why[512] = "";
            int known = strcmp(a, "--config") == 0 || apply(&probe, a + 2, "1", why, sizeof why) == 0 ||
                        strncmp(why, "unknown option", 14) != 0;
            fprintf(stderr, "loomd: %s '%s' (see --help)\n",
                    known ? "missing value for" : "unknown option", a);
            return 2;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--config") == 0) {
            if (loom_config_load(v, apply, &c) != 0)
                return 2;
            continue;
        }
        char why[512];
        if (apply(&c, a + 2, v, why, sizeof why) != 0) {
            fprintf(stderr, "loomd: %s: %s\n", a, why);
            return 2;
        }
    }
    if (c.log_level) {
        int l = loom_log_parse_level(c.log_level);
        if (l < 0) {
            fprintf(stderr, "loomd: unknown log level '%s' (debug|info|warn|error|off)\n",
                    c.log_level);
            return 2;
        }
        loom_log_set_level((loom_log_level_t)l);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    c.o.reload = &reload;
    ready_t ready = {.ready_file = c.ready_file};
    c.o.on_ready = on_ready;
    c.o.ud = &ready;
    loom_err_t err;
    loom_err_clear(&err);
    /* Optional PostgreSQL store and HTTP endpoint (store engineer). */
    loom_store_t *pg_store = NULL;
    loom_store_pg_t *pg = NULL;
    loom_metrics_t *metrics = loom_metrics_new();
    loom_http_t *http = NULL;
    loom_lease_t *lease = NULL;
    int rc = 0;
    if (c.keys && load_keys(&c, &err) != 0)
        goto fail;
    static loom_auth_keyring_t ring;
    if (c.auth_secret) {
        if (loom_auth_keyring_load(&ring, c.auth_secret, &err) != 0)
            goto fail;
        c.o.auth_keyring = &ring;
    }
    if (c.db) {
        pg_store = loom_store_pg_open(&(loom_store_pg_opts_t){.url = c.db,
                                                              .queue_max = (size_t)c.db_queue,
                                                              .max_finished_bytes = c.o.max_finished_bytes,
                                                              .max_finished_runs = c.o.max_finished_runs},
                                      &pg, &err);
        if (!pg_store)
            goto fail;
        c.o.store = pg_store;
        loom_metrics_set_db_source(metrics, loom_store_pg_metrics_db, pg);
        lease = loom_lease_new(&(loom_lease_opts_t){.url = c.db, .store = pg,
                                                    .poll_ms = c.lease_poll_ms,
                                                    .ttl_ms = c.lease_ttl_ms},
                               &err);
        if (!lease)
            goto fail;
        c.o.lease = lease;
    }
    c.o.metrics = metrics;
    if (c.http) {
        loom_http_opts_t ho = {.listen = c.http, .metrics = metrics, .pg = pg,
                               .auth = {.keyring = c.o.auth_keyring, .static_token = c.o.auth_token,
                                        .open = c.http_open},
                               .curve_secret_key = c.o.curve_secret_key};
        if (c.http_open && (c.o.auth_keyring || c.o.auth_token))
            LOOM_WARN("loomd", "msg=\"--http-open: the dashboard, /api and /metrics answer without a token\"");
        http = loom_http_new(&ho, &err);
        if (!http)
            goto fail;
        ready.http = http;
    }
    rc = loom_server_run(&c.o, &stop, &err);
    loom_notify("STOPPING=1");
    /* deposed: another loomd leads; exit 75 (EX_TEMPFAIL) so the supervisor
     * restarts this one, as a standby */
    int deposed = lease && loom_lease_role(lease, NULL) == LOOM_LEASE_DEPOSED;
    loom_http_destroy(&http);
    loom_lease_destroy(&lease); /* closes its session: the lock is released */
    loom_store_destroy(&pg_store);
    loom_metrics_destroy(&metrics);
    loom_arena_destroy(&strings);
    if (rc != 0) {
        char buf[1500];
        loom_err_format_long(&err, buf, sizeof buf);
        fprintf(stderr, "loomd: %s\n", buf);
        return deposed ? 75 : 3;
    }
    return 0;
fail:
    loom_http_destroy(&http);
    loom_lease_destroy(&lease);
    loom_store_destroy(&pg_store);
    loom_metrics_destroy(&metrics);
    loom_arena_destroy(&strings);
    {
        char buf[1500];
        loom_err_format_long(&err, buf, sizeof buf);
        fprintf(stderr, "loomd: %s\n", buf);
    }
    return 3;
}
