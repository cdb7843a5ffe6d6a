/* test_http.c — loomd's HTTP endpoint (dashboard, /metrics, /healthz,
 * /api/... routes) over real loopback sockets against a real PostgreSQL holding the
 * known set of runs: routes and errors, garbage requests, health degraded
 * while the database is stopped, `promtool check metrics` on /metrics, and
 * headless Chromium rendering the dashboard (fleet, runs and SLA panels
 * must show the known numbers; screenshot saved under build/test-logs/). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "common/log.h"
#include "orchestrator/http.h"
#include "orchestrator/metrics.h"
#include "orchestrator/store_pg.h"
#include "tests/pg/known_runs.h"
#include "tests/pg/pgtest.h"

static loom_store_pg_t *pg;
static loom_metrics_t *metrics;
static loom_http_t *http;
static int port;

static void db_source(void *arg, loom_metrics_db_t *out) {
    loom_store_pg_stats_t st;
    loom_store_pg_get_stats(arg, &st);
    out->connected = st.connected;
    out->queued = st.queued;
    out->queue_max = st.queue_max;
    out->lag_ms = st.lag_ms;
    out->committed = st.committed;
    out->failed = st.failed;
    out->reconnects = st.reconnects;
}

/* Sends raw bytes, returns the whole response (caller frees) and the
 * status code in *code (0 when none). */
static char *raw(const char *req, size_t len, int *code) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (len) assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while ((r = recv(fd, buf + n, cap - n, 0)) > 0) {
        n += (size_t)r;
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
    }
    buf[n] = 0;
    close(fd);
    *code = 0;
    sscanf(buf, "HTTP/1.1 %d", code);
    return buf;
}

static char *get(const char *path, int *code) {
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    return raw(req, (size_t)n, code);
}

static const char *body(const char *resp) {
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

static void test_routes(void **st) {
    (void)st;
    int code;
    char *r = get("/healthz", &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body(r), "\"status\":\"ok\""));
    free(r);
    r = get("/", &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(r, "Content-Type: text/html"));
    assert_non_null(strstr(body(r), "id=\"nav-fleet\""));
    assert_null(strstr(body(r), "http://")); /* nothing external */
    free(r);
    r = get("/static/app.js", &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body(r), "function route()"));
    free(r);
    r = get("/api/sla", &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body(r), "\"workflow\":\"wf-b\",\"runs\":1,\"met\":1"));
    free(r);
    r = get("/api/run_steps?run=r1", &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body(r), "\"task_id\":\"answer\""));
    free(r);
    r = get("/api/run_steps", &code);
    assert_int_equal(code, 400);
    free(r);
    r = get("/api/run_steps?run=r1';drop", &code);
    assert_int_equal(code, 400);
    free(r);
    r = get("/api/runs_table", &code);
    assert_int_equal(code, 404);
    free(r);
    r = get("/static/../../etc/passwd", &code);
    assert_int_equal(code, 404);
    free(r);
    r = get("/api/summary", &code);
    assert_int_equal(code, 200);
    assert_non_null(strstr(body(r), "\"runs_submitted\":"));
    free(r);
    const char post[] = "POST /metrics HTTP/1.1\r\n\r\n";
    r = raw(post, sizeof post - 1, &code);
    assert_int_equal(code, 405);
    free(r);
    const char head[] = "HEAD /healthz HTTP/1.1\r\n\r\n";
    r = raw(head, sizeof head - 1, &code);
    assert_int_equal(code, 200);
    assert_string_equal(body(r), "");
    free(r);
}

static void test_garbage(void **st) {
    (void)st;
    int code;
    /* a request line without a target: libmicrohttpd closes the connection
     * without an answer; one with a bad target gets 400 */
    char *r = raw("\x01\x02garbage\r\n\r\n", 13, &code);
    assert_string_equal(r, "");
    free(r);
    r = raw("GET  HTTP/1.1\r\n\r\n", 17, &code);
    assert_int_equal(code, 400);
    free(r);
    r = raw("GET nopath HTTP/1.1\r\n\r\n", 23, &code);
    assert_int_equal(code, 400);
    free(r);
    r = raw("", 0, &code); /* connect and close */
    assert_int_equal(code, 0);
    free(r);
    char *big = malloc(20000);
    memset(big, 'a', 20000);
    memcpy(big, "GET /", 5);
    r = raw(big, 20000, &code); /* a request line beyond the connection's memory */
    assert_int_equal(code, 414);
    free(r);
    char *many = malloc(40000); /* headers beyond it */
    size_t n = (size_t)sprintf(many, "GET / HTTP/1.1\r\n");
    while (n < 30000) n += (size_t)sprintf(many + n, "X-Filler: %05zu\r\n", n);
    n += (size_t)sprintf(many + n, "\r\n");
    r = raw(many, n, &code);
    assert_int_equal(code, 431);
    free(r);
    free(many);
    srand(7);
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(rand() % 600) + 1;
        for (size_t j = 0; j < n; j++) big[j] = (char)(rand() % 256);
        if (i % 2) memcpy(big + n / 2, "\r\n\r\n", n / 2 + 4 <= n ? 4 : 0);
        r = raw(big, n, &code);
        free(r);
    }
    free(big);
    r = get("/healthz", &code); /* still serving */
    assert_int_equal(code, 200);
    free(r);
}

static int connect_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Reads until the buffer holds n complete responses to GET /healthz. */
static int read_responses(int fd, int n) {
    char buf[8192];
    size_t len = 0;
    int seen = 0;
    while (seen < n && len < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        seen = 0;
        for (const char *p = buf; (p = strstr(p, "{\"status\":\"ok\"}")); p++) seen++;
    }
    return seen;
}

/* Keep-alive: several requests on one connection, pipelined too; a client
 * that connects and says nothing does not hold up anyone else. */
static void test_keepalive_and_concurrency(void **st) {
    (void)st;
    int idle = connect_port(); /* the old server served one connection at a time */
    send(idle, "GET /heal", 9, MSG_NOSIGNAL);
    int fd = connect_port();
    const char one[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 3; i++) {
        assert_int_equal(send(fd, one, sizeof one - 1, MSG_NOSIGNAL), (ssize_t)(sizeof one - 1));
        assert_int_equal(read_responses(fd, 1), 1);
    }
    char two[256];
    int n = snprintf(two, sizeof two, "%s%s", one, one);
    assert_int_equal(send(fd, two, (size_t)n, MSG_NOSIGNAL), n);
    assert_int_equal(read_responses(fd, 2), 2);
    close(fd);
    /* the idle client finishes its request late and is answered */
    send(idle, "thz HTTP/1.1\r\n\r\n", 17, MSG_NOSIGNAL);
    assert_int_equal(read_responses(idle, 1), 1);
    close(idle);
}

static void test_metrics_promtool(void **st) {
    (void)st;
    loom_metrics_run_submitted(metrics);
    loom_metrics_run_submitted(metrics);
    loom_metrics_run_finished(metrics, "succeeded");
    loom_metrics_sla_missed(metrics);
    loom_metrics_task_dispatched(metrics, 0.0003);
    loom_metrics_task_dispatched(metrics, 2.0);
    loom_metrics_task_finished(metrics, "succeeded");
    loom_metrics_set_workers(metrics, "gpu", 3);
    loom_metrics_set_queue_depth(metrics, 5);
    int code;
    char *r = get("/metrics", &code);
    assert_int_equal(code, 200);
    const char *b = body(r);
    assert_non_null(strstr(b, "loom_runs_submitted_total 2\n"));
    assert_non_null(strstr(b, "loom_runs_finished_total{state=\"succeeded\"} 1\n"));
    assert_non_null(strstr(b, "loom_sla_misses_total 1\n"));
    assert_non_null(strstr(b, "loom_dispatch_latency_seconds_bucket{le=\"0.0005\"} 1\n"));
    assert_non_null(strstr(b, "loom_dispatch_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(b, "loom_dispatch_latency_seconds_count 2\n"));
    assert_non_null(strstr(b, "loom_workers{device_class=\"gpu\"} 3\n"));
    assert_non_null(strstr(b, "loom_task_queue_depth 5\n"));
    assert_non_null(strstr(b, "loom_db_up 1\n"));
    assert_non_null(strstr(b, "loom_db_lag_seconds "));
    mkdir("build", 0755);
    mkdir("build/test-logs", 0755);
    FILE *f = fopen("build/test-logs/pg_http.metrics.txt", "w");
    fputs(b, f);
    fclose(f);
    free(r);
    if (system("command -v promtool >/dev/null") != 0) {
        printf("skip: promtool not installed\n");
        return;
    }
    int rc = system("promtool check metrics < build/test-logs/pg_http.metrics.txt");
    assert_int_equal(rc, 0);
}

static int wait_health(int want_code, int ms) {
    for (int i = 0; i < ms / 100; i++) {
        int code;
        free(get("/healthz", &code));
        if (code == want_code) return 1;
        usleep(100000);
    }
    return 0;
}

static void test_health_degraded_while_db_down(void **st) {
    (void)st;
    if (getenv("LOOM_TEST_DB")) {
        skip();
        return;
    }
    pgtest_stop_server();
    assert_true(wait_health(503, 5000));
    int code;
    char *r = get("/healthz", &code);
    assert_non_null(strstr(body(r), "\"status\":\"degraded\""));
    assert_non_null(strstr(body(r), "database unreachable"));
    free(r);
    r = get("/metrics", &code);
    assert_non_null(strstr(body(r), "loom_db_up 0\n"));
    assert_non_null(strstr(body(r), "loom_up 0\n"));
    free(r);
    r = get("/api/fleet", &code); /* the view query fails cleanly */
    assert_int_equal(code, 503);
    free(r);
    pgtest_start_server();
    assert_true(wait_health(200, 15000));
    r = get("/api/fleet", &code); /* the reader reconnects */
    assert_int_equal(code, 200);
    free(r);
}

/* Runs chromium on a dashboard page; returns its stdout (caller frees). */
static char *chromium(const char *mode_args, const char *page) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "d=$(mktemp -d) && timeout 60 chromium --headless --no-sandbox --disable-gpu "
             "--disable-background-networking --disable-component-update --disable-sync "
             "--no-first-run --disable-dev-shm-usage --user-data-dir=$d "
             "--virtual-time-budget=8000 %s 'http://127.0.0.1:%d/%s' 2>/dev/null; rm -rf $d",
             mode_args, port, page);
    FILE *f = popen(cmd, "r");
    size_t cap = 1 << 16, n = 0;
    char *out = malloc(cap + 1);
    size_t r;
    while ((r = fread(out + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) out = realloc(out, (cap *= 2) + 1);
    }
    out[n] = 0;
    pclose(f);
    return out;
}

/* The dashboard's history page, the one that reads the views (the live
 * pages read /v1, which needs a loomd: tests/pg/test_dashboard_loomd.sh). */
static void test_dashboard_chromium(void **st) {
    (void)st;
    if (system("command -v chromium >/dev/null") != 0) {
        printf("skip: chromium not installed\n");
        skip();
        return;
    }
    char *dom = chromium("--dump-dom", "#/history");
    FILE *f = fopen("build/test-logs/pg_http.dashboard.html", "w");
    if (f) {
        fputs(dom, f);
        fclose(f);
    }
    assert_non_null(strstr(dom, "data-page=\"history\""));
    assert_non_null(strstr(dom, "data-loaded=\"yes\""));
    /* SLA: wf-a 2 runs, 1 met, 1 missed, 50%; wf-b 100% */
    const char *a = strstr(dom, "<tr data-key=\"wf-a\">");
    assert_non_null(a);
    assert_non_null(strstr(a, "wf-a</a></td><td class=\"num\">2</td><td class=\"num\">1</td>"
                              "<td class=\"num\">1</td><td class=\"num\">50%</td>"));
    const char *b = strstr(dom, "<tr data-key=\"wf-b\">");
    assert_non_null(b);
    assert_non_null(strstr(b, "<td class=\"num\">100%</td>"));
    assert_non_null(strstr(dom, "id=\"cost\""));
    assert_non_null(strstr(dom, "id=\"model-error\""));
    free(dom);
    char *shot = chromium("--window-size=1400,1800 --screenshot=build/test-logs/pg_http.dashboard.png",
                          "#/history");
    free(shot);
    struct stat sb;
    assert_int_equal(stat("build/test-logs/pg_http.dashboard.png", &sb), 0);
    assert_true(sb.st_size > 10000);
}

int main(void) {
    loom_log_set_level(LOOM_LOG_ERROR);
    const char *url = pgtest_start();
    loom_err_t err = {0};
    pg = loom_store_pg_new(&(loom_store_pg_opts_t){.url = url}, &err);
    if (!pg) {
        fprintf(stderr, "store: %s %s\n", err.msg, err.detail);
        return 1;
    }
    load_known_runs(pg);
    metrics = loom_metrics_new();
    loom_metrics_set_db_source(metrics, db_source, pg);
    http = loom_http_new(&(loom_http_opts_t){.listen = "127.0.0.1:0", .metrics = metrics, .pg = pg},
                         &err);
    if (!http) {
        fprintf(stderr, "http: %s\n", err.msg);
        return 1;
    }
    port = loom_http_port(http);
    /* bad addresses are refused with a clear error */
    loom_err_t e2 = {0};
    assert_null(loom_http_new(&(loom_http_opts_t){.listen = "nonsense", .metrics = metrics}, &e2));
    if (!strstr(e2.msg, "bad --http address")) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_keepalive_and_concurrency),
        cmocka_unit_test(test_metrics_promtool),
        cmocka_unit_test(test_dashboard_chromium),
        cmocka_unit_test(test_health_degraded_while_db_down),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    loom_http_destroy(&http);
    loom_store_pg_destroy(&pg, 1000);
    loom_metrics_destroy(&metrics);
    return rc;
}
