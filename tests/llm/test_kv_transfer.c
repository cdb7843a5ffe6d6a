/* test_kv_transfer.c — worker-to-worker object transfer between real
 * processes on loopback: a forked producer stores objects in its object
 * store (shared-memory files + ZeroMQ server thread); this process fetches
 * them over the network path and the same-host path, checks the bytes, then
 * corrupts one chunk of a stored object (the checksum must catch it), asks
 * for an object the producer does not have, feeds the producer's socket
 * garbage (it must keep serving), and kills the producer mid-transfer (the
 * fetch must fail cleanly within its timeout), and drops an object while
 * its chunks are queued (they arrive intact; then it is unmapped). Also: references in JSON
 * (bad input), KV layout translation (f16 and q8_0 on the wire, f32 in
 * memory), and
 * step outputs by reference (outref.h: what goes, what comes back, bad
 * references), and CURVE on the object endpoint (admitted key, other key,
 * no CURVE). */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "common/buf.h"
#include "llm/kvcache.h"
#include "workers/common/objfetch.h"
#include "workers/common/objstore.h"
#include "workers/common/outref.h"

#define BIG (24u << 20)  /* enough chunks in flight to kill the producer midway */
#define SMALL (3u << 20)

static pid_t producer;
static loom_objref_t ref_big, ref_small, ref_bad;
static char dir[256];

/* Deterministic content both processes can make. */
static uint8_t *pattern(size_t n, uint32_t seed) {
    uint8_t *p = malloc(n);
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (uint8_t)(x >> 24);
    }
    return p;
}

/* The producer: stores three objects, writes their references to fd, then
 * serves until killed. */
static void run_producer(int fd) {
    loom_objref_t r[3];
    loom_err_t e = {0};
    for (int i = 0; i < 3; i++) {
        size_t n = i == 0 ? BIG : SMALL;
        uint8_t *p = pattern(n, 7u + (uint32_t)i);
        if (loom_objstore_put(p, n, "producer", "test/bytes", &r[i], &e)) {
            fprintf(stderr, "producer: %s\n", e.msg);
            _exit(1);
        }
        free(p);
    }
    if (write(fd, r, sizeof r) != (ssize_t)sizeof r) _exit(1);
    close(fd);
    for (;;) pause();
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/loom-kvt.XXXXXX");
    if (!mkdtemp(dir)) return -1;
    setenv("LOOM_OBJECT_DIR", dir, 1);
    int p[2];
    if (pipe(p)) return -1;
    producer = fork();
    if (producer == 0) {
        close(p[0]);
        run_producer(p[1]);
    }
    close(p[1]);
    loom_objref_t r[3];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = read(p[0], (char *)r + got, sizeof r - got);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    close(p[0]);
    ref_big = r[0];
    ref_small = r[1];
    ref_bad = r[2];
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (producer > 0) {
        kill(producer, SIGKILL);
        waitpid(producer, NULL, 0);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void opts(loom_objfetch_opts_t *o, int same_host) {
    loom_objfetch_opts_default(o);
    o->same_host = same_host;
    o->timeout_ms = 3000;
    o->chunk = 256u << 10;
    o->window = 4;
}

static void expect_bytes(const loom_objref_t *r, int same_host, uint32_t seed, const char *path) {
    loom_objfetch_opts_t o;
    opts(&o, same_host);
    void *data;
    size_t n;
    loom_objfetch_stats_t st;
    loom_err_t e = {0};
    int rc = loom_objfetch(r, &o, &data, &n, &st, &e);
    if (rc) fail_msg("fetch failed: %s", e.msg);
    assert_int_equal(n, r->size);
    uint8_t *want = pattern(n, seed);
    assert_memory_equal(data, want, n);
    assert_string_equal(st.path, path);
    free(want);
    free(data);
}

static void test_network_and_same_host(void **state) {
    (void)state;
    assert_int_equal(ref_big.size, BIG);
    assert_string_equal(ref_big.worker, "producer");
    assert_string_equal(ref_big.media, "test/bytes");
    assert_string_equal(ref_big.host, loom_objstore_host_id());
    assert_true(strncmp(ref_big.endpoint, "tcp://127.0.0.1:", 16) == 0);
    expect_bytes(&ref_big, 0, 7, "network");
    expect_bytes(&ref_small, 0, 8, "network");
    expect_bytes(&ref_big, 1, 7, "same-host");
    /* Another host's reference (or a file that is not visible) goes over
     * the network even when the same-host path is allowed. */
    loom_objref_t other = ref_small;
    snprintf(other.host, sizeof other.host, "some-other-host");
    expect_bytes(&other, 1, 8, "network");
}

/* Flips one byte in the middle of the third chunk of the stored file: the
 * producer serves it from the same (shared) mapping, so the chunk arrives
 * corrupted and the checksum must reject it on both paths. */
static void test_corrupt_chunk(void **state) {
    (void)state;
    FILE *f = fopen(ref_bad.path, "r+b");
    assert_non_null(f);
    long at = (long)(2 * (256u << 10) + 1000);
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    for (int same = 0; same <= 1; same++) {
        loom_objfetch_opts_t o;
        opts(&o, same);
        void *data = (void *)1;
        size_t n = 1;
        loom_err_t e = {0};
        assert_int_equal(loom_objfetch(&ref_bad, &o, &data, &n, NULL, &e), LOOM_EPARSE);
        assert_null(data);
        assert_int_equal(n, 0);
        assert_non_null(strstr(e.msg, "checksum mismatch"));
    }
}

static void test_not_found(void **state) {
    (void)state;
    loom_objref_t r = ref_small;
    memset(r.id, 'a', 64);
    memcpy(strrchr(r.path, '/') + 1, r.id, 64);
    loom_objfetch_opts_t o;
    opts(&o, 1); /* the file does not exist either: goes to the network */
    void *data;
    size_t n;
    loom_err_t e = {0};
    assert_int_equal(loom_objfetch(&r, &o, &data, &n, NULL, &e), LOOM_ENOTFOUND);
    assert_non_null(strstr(e.msg, "no longer has object"));
}

/* Garbage on the producer's socket: wrong frame counts, junk protobuf, a
 * bad id, a range past the end. It must answer or drop, never die. */
static void test_garbage_to_producer(void **state) {
    (void)state;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, tmo = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    assert_int_equal(zmq_connect(s, ref_small.endpoint), 0);
    uint8_t junk[600];
    srand(3);
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(rand() % (int)sizeof junk);
        for (size_t k = 0; k < n; k++) junk[k] = (uint8_t)rand();
        zmq_send(s, junk, n, i % 3 == 0 ? ZMQ_SNDMORE : 0);
        if (i % 3 == 0) zmq_send(s, junk, n / 2, 0);
    }
    uint8_t big[4096];
    memset(big, 0x0a, sizeof big);
    zmq_send(s, big, sizeof big, 0); /* over the request size cap */
    zmq_close(s);
    zmq_ctx_term(ctx);
    expect_bytes(&ref_small, 0, 8, "network"); /* still serving */
}

static int kill_midway(void *ud, uint64_t got, uint64_t size) {
    (void)ud;
    if (producer > 0 && got >= size / 8) {
        kill(producer, SIGKILL);
        waitpid(producer, NULL, 0);
        producer = 0;
    }
    return 0;
}

static void test_producer_killed_midway(void **state) {
    (void)state;
    loom_objfetch_opts_t o;
    opts(&o, 0);
    o.timeout_ms = 1000;
    o.on_chunk = kill_midway;
    void *data;
    size_t n;
    loom_err_t e = {0};
    int rc = loom_objfetch(&ref_big, &o, &data, &n, NULL, &e);
    assert_int_equal(producer, 0); /* it was killed during the transfer */
    assert_true(rc == LOOM_ETIMEDOUT || rc == LOOM_EUNAVAIL);
    assert_non_null(strstr(e.msg, "producer gone?"));
    /* Nothing serves the endpoint now: a fresh fetch fails too. */
    assert_int_equal(loom_objfetch(&ref_small, &o, &data, &n, NULL, &e), LOOM_EUNAVAIL);
}

/* Drops the object after the first chunk has landed (ud: its id). */
static int drop_midway(void *ud, uint64_t got, uint64_t size) {
    (void)got;
    (void)size;
    loom_objstore_drop(ud);
    return 0;
}

/* 1 while this process maps a file whose name contains id. */
static int mapped(const char *id) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) found = strstr(line, id) != NULL;
    if (f) fclose(f);
    return found;
}

/* The object server sends chunks straight from the object's mapping: an
 * object dropped while its chunks are queued in ZeroMQ stays mapped (and
 * the chunks intact) until they are out, then is unmapped. This process is
 * its own producer here (its store, fetched over its own endpoint). */
static void test_drop_while_sending(void **state) {
    (void)state;
    uint8_t *want = pattern(BIG, 11);
    loom_objref_t r;
    loom_err_t e = {0};
    assert_int_equal(loom_objstore_put(want, BIG, "self", "test/bytes", &r, &e), 0);
    assert_true(mapped(r.id));
    loom_objfetch_opts_t o;
    opts(&o, 0);
    o.window = 16; /* 4 MiB queued when the drop lands */
    o.on_chunk = drop_midway;
    o.ud = r.id;
    uint8_t *got = calloc(1, BIG);
    loom_objfetch_stats_t st = {0};
    int rc = loom_objfetch_into(&r, &o, got, &st, &e);
    assert_int_equal(rc, LOOM_ENOTFOUND); /* the requests after the drop */
    assert_non_null(strstr(e.msg, "no longer has object"));
    /* the chunks already queued arrived whole (their bytes in place) */
    size_t landed = (size_t)st.chunks * o.chunk;
    assert_true(landed >= o.chunk && landed < BIG);
    assert_memory_equal(got, want, landed);
    for (int i = 0; i < 500 && mapped(r.id); i++) usleep(10000); /* ZeroMQ lets go of the last chunk */
    assert_false(mapped(r.id));
    free(got);
    free(want);
}

static void test_ref_json(void **state) {
    (void)state;
    json_t *j = loom_objref_to_json(&ref_small);
    loom_objref_t r;
    loom_err_t e = {0};
    assert_true(loom_objref_is(j));
    assert_int_equal(loom_objref_from_json(j, &r, &e), 0);
    assert_memory_equal(&r, &ref_small, sizeof r);
    json_decref(j);
    const char *bad[] = {
        "{}", "{\"$object\": 1}", "{\"$object\": {}}",
        "{\"$object\": {\"id\": \"xyz\", \"size\": 1, \"endpoint\": \"tcp://a:1\"}}",
        "{\"$object\": {\"id\": \"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF" "\", \"size\": 1, \"endpoint\": \"tcp://a:1\"}}",
        "{\"$object\": {\"id\": \"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "\", \"size\": -1, \"endpoint\": \"tcp://a:1\"}}",
        "{\"$object\": {\"id\": \"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "\", \"size\": 1}}",
        "{\"$object\": {\"id\": \"" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" "\", \"size\": 1, \"endpoint\": 5}}",
    };
    /* the same-host path reads only object files under the object root */
    char p[600];
    assert_true(loom_objstore_path_ok(ref_small.path));
    assert_false(loom_objstore_path_ok("/etc/passwd"));
    snprintf(p, sizeof p, "%s/1/../../etc/passwd", dir);
    assert_false(loom_objstore_path_ok(p));
    snprintf(p, sizeof p, "%s/x/%s", dir, ref_small.id);
    assert_false(loom_objstore_path_ok(p));
    snprintf(p, sizeof p, "%s-evil/1/%s", dir, ref_small.id);
    assert_false(loom_objstore_path_ok(p));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        assert_int_equal(loom_objref_from_json(b, &r, &e), LOOM_EINVAL);
        json_decref(b);
    }
}

/* Layout translation: a cache published as f16 is widened to f32 on
 * receipt; tokens and logits are exact, K/V within f16 rounding. */
static void test_kv_f16_translation(void **state) {
    (void)state;
    uint8_t h[32] = {1};
    loom_kvcache_t *k, *back;
    loom_err_t e = {0};
    assert_int_equal(loom_kvcache_new(h, 3, 2, 8, 5, 11, &k, &e), 0);
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < 5 * 16; i++) {
            loom_kvcache_k(k, l)[i] = sinf((float)(l * 100 + i)) * 3.0f;
            loom_kvcache_v(k, l)[i] = cosf((float)(l * 100 + i)) * 0.01f;
        }
    for (int i = 0; i < 5; i++) loom_kvcache_tokens(k)[i] = i + 2;
    for (int i = 0; i < 11; i++) loom_kvcache_logits(k)[i] = 0.1f * (float)i + 1e-7f;
    loom_buf_t b32 = LOOM_BUF_INIT, b16 = LOOM_BUF_INIT;
    assert_int_equal(loom_kvcache_serialize(k, &b32, &e), 0);
    assert_int_equal(loom_kvcache_serialize_as(k, LOOM_KV_F16, &b16, &e), 0);
    assert_int_equal(b32.len - b16.len, 3 * 2 * 5 * 16 * 2); /* K/V halved */
    assert_int_equal(loom_kvcache_parse(b16.data, b16.len, &back, &e), 0);
    assert_memory_equal(loom_kvcache_tokens(back), loom_kvcache_tokens(k), 5 * 4);
    assert_memory_equal(loom_kvcache_logits(back), loom_kvcache_logits(k), 11 * 4);
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < 5 * 16; i++) {
            float a = loom_kvcache_k(k, l)[i], c = loom_kvcache_k(back, l)[i];
            assert_true(fabsf(a - c) <= fabsf(a) * 1e-3f + 1e-6f);
            a = loom_kvcache_v(k, l)[i], c = loom_kvcache_v(back, l)[i];
            assert_true(fabsf(a - c) <= fabsf(a) * 1e-3f + 1e-6f);
        }
    /* An unknown dtype in the header is refused. */
    b16.data[12] = 9;
    loom_kvcache_t *x = NULL;
    assert_int_equal(loom_kvcache_parse(b16.data, b16.len, &x, &e), LOOM_EPARSE);
    assert_int_equal(loom_kvcache_serialize_as(k, 7, &b32, &e), LOOM_EINVAL);
    /* Q8_0 needs rows of whole 32-value blocks: this shape (2 x 8) has not */
    loom_buf_t q = LOOM_BUF_INIT;
    assert_int_equal(loom_kvcache_serialize_as(k, LOOM_KV_Q8_0, &q, &e), LOOM_EINVAL);
    loom_buf_free(&b32);
    loom_buf_free(&b16);
    loom_kvcache_destroy(&k);
    loom_kvcache_destroy(&back);
}

/* Layout translation, Q8_0 on the wire (ggml's blocks: an f16 scale and 32
 * int8): 34 bytes per 32 values, each value within about half a step of its
 * block's scale; tokens and logits exact; a truncated object is refused. */
static void test_kv_q8_translation(void **state) {
    (void)state;
    uint8_t h[32] = {2};
    loom_kvcache_t *k, *back;
    loom_err_t e = {0};
    const int L = 2, H = 2, D = 32, T = 7, V = 13, W = H * D;
    assert_int_equal(loom_kvcache_new(h, L, H, D, T, V, &k, &e), 0);
    for (int l = 0; l < L; l++)
        for (int i = 0; i < T * W; i++) {
            loom_kvcache_k(k, l)[i] = sinf((float)(l * 1000 + i) * 0.37f) * 4.0f;
            loom_kvcache_v(k, l)[i] = i % 32 == 5 ? 0.0f : cosf((float)i) * 0.02f;
        }
    for (int i = 0; i < T; i++) loom_kvcache_tokens(k)[i] = i + 1;
    for (int i = 0; i < V; i++) loom_kvcache_logits(k)[i] = -0.5f * (float)i;
    loom_buf_t b32 = LOOM_BUF_INIT, bq = LOOM_BUF_INIT;
    assert_int_equal(loom_kvcache_serialize(k, &b32, &e), 0);
    assert_int_equal(loom_kvcache_serialize_as(k, LOOM_KV_Q8_0, &bq, &e), 0);
    size_t n = (size_t)L * 2 * T * W;
    assert_int_equal(b32.len - bq.len, n * 4 - n / 32 * 34);
    assert_int_equal(loom_kvcache_parse(bq.data, bq.len, &back, &e), 0);
    assert_memory_equal(loom_kvcache_tokens(back), loom_kvcache_tokens(k), (size_t)T * 4);
    assert_memory_equal(loom_kvcache_logits(back), loom_kvcache_logits(k), (size_t)V * 4);
    for (int l = 0; l < L; l++)
        for (int side = 0; side < 2; side++) {
            const float *a = side ? loom_kvcache_v(k, l) : loom_kvcache_k(k, l);
            const float *c = side ? loom_kvcache_v(back, l) : loom_kvcache_k(back, l);
            for (int b = 0; b < T * W / 32; b++) {
                float amax = 0;
                for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(a[b * 32 + i]));
                for (int i = 0; i < 32; i++) assert_true(fabsf(a[b * 32 + i] - c[b * 32 + i]) <= amax / 127.0f * 0.6f + 1e-6f); /* half a step, and the scale rounded to f16 */
            }
        }
    assert_int_equal(loom_kvcache_dtype_from_name("q8_0"), LOOM_KV_Q8_0);
    assert_string_equal(loom_kvcache_dtype_name(LOOM_KV_Q8_0), "q8_0");
    loom_kvcache_t *x = NULL;
    assert_int_equal(loom_kvcache_parse(bq.data, bq.len - 40, &x, &e), LOOM_EPARSE);
    loom_buf_free(&b32);
    loom_buf_free(&bq);
    loom_kvcache_destroy(&k);
    loom_kvcache_destroy(&back);
}

/* CURVE on the object endpoint: a producer with a key pair and a folder of
 * admitted peer keys serves an admitted consumer, and nothing to a consumer
 * with another key or without CURVE. */
static void test_curve(void **state) {
    (void)state;
    char ppub[41], psec[41], apub[41], asec[41], spub[41], ssec[41], peers[300], f[400];
    assert_int_equal(zmq_curve_keypair(ppub, psec), 0);
    assert_int_equal(zmq_curve_keypair(apub, asec), 0);
    assert_int_equal(zmq_curve_keypair(spub, ssec), 0);
    snprintf(peers, sizeof peers, "%s/peers", dir);
    assert_int_equal(mkdir(peers, 0700), 0);
    snprintf(f, sizeof f, "%s/consumer.pub", peers);
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", apub);
    fclose(fp);
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        loom_objref_t r;
        loom_err_t e = {0};
        uint8_t *d = pattern(SMALL, 11);
        if (loom_objstore_set_curve(ppub, psec, peers, &e) || loom_objstore_put(d, SMALL, "secure", "test/bytes", &r, &e))
            _exit(1);
        if (write(p[1], &r, sizeof r) != (ssize_t)sizeof r) _exit(1);
        for (;;) pause();
    }
    close(p[1]);
    loom_objref_t r;
    assert_int_equal(read(p[0], &r, sizeof r), (ssize_t)sizeof r);
    close(p[0]);
    assert_string_equal(r.key, ppub);
    json_t *j = loom_objref_to_json(&r); /* the key travels in the reference */
    loom_objref_t back;
    loom_err_t e = {0};
    assert_int_equal(loom_objref_from_json(j, &back, &e), 0);
    assert_string_equal(back.key, ppub);
    json_decref(j);
    loom_objfetch_opts_t o;
    opts(&o, 0);
    o.timeout_ms = 1500;
    o.curve_public = apub, o.curve_secret = asec;
    void *data = NULL;
    size_t n = 0;
    assert_int_equal(loom_objfetch(&r, &o, &data, &n, NULL, &e), 0);
    uint8_t *want = pattern(SMALL, 11);
    assert_int_equal(n, SMALL);
    assert_memory_equal(data, want, SMALL);
    free(data);
    free(want);
    o.curve_public = spub, o.curve_secret = ssec; /* a key the producer does not admit */
    assert_int_not_equal(loom_objfetch(&r, &o, &data, &n, NULL, &e), 0);
    assert_null(data);
    loom_objref_t plain = r; /* no CURVE at all */
    plain.key[0] = 0;
    assert_int_not_equal(loom_objfetch(&plain, &o, &data, &n, NULL, &e), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Step outputs by reference: large parts go to this process's object store,
 * small fields stay; resolving (same-host and network path) gives back the
 * same value; bad references fail cleanly. */
static void test_output_by_reference(void **state) {
    (void)state;
    char *big = malloc(5001), *deep = malloc(3001);
    memset(big, 'b', 5000), big[5000] = 0;
    memset(deep, 'd', 3000), deep[3000] = 0;
    json_t *list = json_array();
    for (int i = 0; i < 300; i++) json_array_append_new(list, json_pack("{s:i, s:s}", "i", i, "t", "item"));
    json_t *kv = loom_objref_to_json(&ref_small); /* a non-output reference: left alone */
    json_object_set_new(json_object_get(kv, "$object"), "media", json_string("loom-kv-v1/f32"));
    json_t *orig = json_pack("{s:i, s:s, s:s, s:o, s:{s:s, s:b}, s:o}", "small", 1, "name", "x", "big", big, "list",
                             list, "nested", "deep", deep, "k", 1, "kv", kv);
    json_t *v = json_deep_copy(orig);
    loom_err_t e = {0};
    size_t moved = 0;
    assert_int_equal(loom_outref_offload(&v, 2048, "me", NULL, &moved, &e), 0);
    assert_true(moved > 5000 + 3000 + 300 * 20);
    assert_int_equal(json_integer_value(json_object_get(v, "small")), 1);
    assert_true(json_is_true(json_object_get(json_object_get(v, "nested"), "k")));
    assert_true(loom_objref_is(json_object_get(v, "big")));
    assert_true(loom_objref_is(json_object_get(v, "list")));
    assert_true(loom_objref_is(json_object_get(json_object_get(v, "nested"), "deep")));
    assert_true(json_equal(json_object_get(v, "kv"), kv));
    char *text = json_dumps(v, JSON_COMPACT);
    assert_true(strlen(text) < 2500);
    free(text);
    assert_true(loom_outref_has(v));
    for (int same_host = 1; same_host >= 0; same_host--) {
        loom_objfetch_opts_t o;
        opts(&o, same_host);
        json_t *back = json_deep_copy(v);
        size_t got = 0;
        assert_int_equal(loom_outref_resolve(&back, &o, &got, NULL, &e), 0);
        assert_true(json_equal(back, orig));
        assert_int_equal(got, moved);
        assert_false(loom_outref_has(back));
        json_decref(back);
    }
    /* the whole value can go (a large root) */
    json_t *root = json_string(big), *r2 = json_incref(root);
    assert_int_equal(loom_outref_offload(&r2, 1024, NULL, NULL, NULL, &e), 0);
    assert_true(loom_objref_is(r2));
    assert_int_equal(loom_outref_resolve(&r2, NULL, NULL, NULL, &e), 0);
    assert_true(json_equal(r2, root));
    json_decref(r2);
    json_decref(root);
    /* bad references: a malformed one, one the producer does not have, and
     * bytes that are not JSON */
    json_t *bad = json_loads("{\"a\": [{\"$object\": {\"media\": \"application/json\", \"id\": \"zz\"}}]}", 0, NULL);
    assert_int_equal(loom_outref_resolve(&bad, NULL, NULL, NULL, &e), LOOM_EINVAL);
    json_decref(bad);
    loom_objref_t gone = ref_small;
    memset(gone.id, 'a', 64);
    gone.path[0] = 0; /* asked of this process's server (the producer is dead by now) */
    snprintf(gone.endpoint, sizeof gone.endpoint, "%s", loom_objstore_endpoint());
    snprintf(gone.media, sizeof gone.media, "%s", LOOM_OUTREF_MEDIA);
    json_t *g = loom_objref_to_json(&gone);
    loom_objfetch_opts_t o;
    opts(&o, 0);
    char lost[65];
    assert_int_equal(loom_outref_resolve(&g, &o, NULL, lost, &e), LOOM_ENOTFOUND);
    assert_non_null(strstr(e.msg, "by reference from worker producer"));
    assert_string_equal(lost, gone.id); /* what loomd re-runs the producer of */
    json_decref(g);
    loom_objref_t nj;
    assert_int_equal(loom_objstore_put("not json", 8, "me", LOOM_OUTREF_MEDIA, &nj, &e), 0);
    json_t *n = loom_objref_to_json(&nj);
    assert_int_equal(loom_outref_resolve(&n, NULL, NULL, NULL, &e), LOOM_EPARSE);
    json_decref(n);
    json_decref(v);
    json_decref(orig);
    free(big);
    free(deep);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_json),        cmocka_unit_test(test_kv_f16_translation),
        cmocka_unit_test(test_kv_q8_translation),
        cmocka_unit_test(test_network_and_same_host), cmocka_unit_test(test_corrupt_chunk),
        cmocka_unit_test(test_not_found),       cmocka_unit_test(test_garbage_to_producer),
        cmocka_unit_test(test_producer_killed_midway), cmocka_unit_test(test_curve),
        cmocka_unit_test(test_drop_while_sending),
        cmocka_unit_test(test_output_by_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
