/* test_kv_stream.c — layer-wise KV streaming (issue 15, item 2), between
 * real processes on loopback:
 *   - streamed objects (objstore.h): a forked producer publishes a stream's
 *     reference, writes half its segments and waits until this process has
 *     received them (so the fetch really overlaps the writing: without
 *     streaming it would wait forever), then finishes; over the network
 *     path and the same-host path. Then the failures: a stream the producer
 *     abandons (its task failed), a producer that dies mid-stream, a
 *     corrupted segment (its own XXH3-128 catches it), bad references;
 *   - the KV stream (llm_kvref.h): loom_llm_prefill_stream on the real CPU
 *     backend with a generated model, a prompt of two batches, fetched while
 *     it is written, equals loom_llm_prefill's cache exactly (f32) and its
 *     f16/q8_0 wire forms after layout translation; rows out of order are
 *     refused. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "llm/llm_engine.h"
#include "llm/llm_kvref.h"
#include "workers/common/objfetch.h"
#include "workers/common/objstore.h"

#define SEGS 12
#define SEG_BYTES (200u << 10) /* spans chunks of the fetch below */

static char dir[] = "/tmp/loom-kvstream-XXXXXX";
static loom_llm_model_t *model;
static loom_llm_pool_t *pool;

static int setup(void **state) {
    (void)state;
    if (!mkdtemp(dir)) return -1;
    setenv("LOOM_OBJECT_DIR", dir, 1);
    char path[256], cmd[512];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/llm/gen_gguf.py --arch llama --type Q8_0 --ctx 512 -o %s", path);
    loom_err_t e = {0};
    if (system(cmd) || loom_llm_model_load(path, &model, &e)) {
        fprintf(stderr, "setup: %s %s\n", cmd, e.msg);
        return -1;
    }
    return (pool = loom_llm_pool_new(0)) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    loom_llm_model_destroy(&model);
    loom_llm_pool_destroy(&pool);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) ? -1 : 0;
}

/* ---- streamed objects between processes ------------------------------------ */

/* Segment i's bytes: a pattern both processes can make. */
static void seg_bytes(uint8_t *p, size_t n, int i) {
    uint32_t x = 77u + (uint32_t)i;
    for (size_t k = 0; k < n; k++) {
        x = x * 1664525u + 1013904223u;
        p[k] = (uint8_t)(x >> 24);
    }
}

enum { FINISH, ABANDON, DIE };

typedef struct producer {
    pid_t pid;
    int go;               /* write end: "you may go on" */
    loom_objref_t ref;
} producer_t;

/* Forks a producer that opens a stream of SEGS segments, hands back its
 * reference, writes the first half, waits for a byte on `go`, then does
 * `end` (finish the rest / abandon the stream / die) and serves until
 * killed. */
static void start_producer(producer_t *p, int end) {
    int r[2], g[2];
    assert_int_equal(pipe(r), 0);
    assert_int_equal(pipe(g), 0);
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        close(r[0]);
        close(g[1]);
        loom_objstream_t *s;
        loom_objref_t ref;
        loom_err_t e = {0};
        if (loom_objstore_stream_open(SEGS * (uint64_t)(SEG_BYTES + LOOM_OBJSTREAM_FRAME), "streamer", "test/stream",
                                      NULL, &s, &ref, &e) ||
            write(r[1], &ref, sizeof ref) != (ssize_t)sizeof ref)
            _exit(1);
        uint8_t *buf = malloc(SEG_BYTES);
        for (int i = 0; i < SEGS; i++) {
            if (i == SEGS / 2) {
                char c;
                if (read(g[0], &c, 1) != 1) _exit(1);
                if (end == DIE) _exit(0); /* no cleanup: the file stays */
                if (end == ABANDON) {
                    loom_objstore_stream_close(s, 0, NULL);
                    s = NULL;
                    break;
                }
            }
            seg_bytes(buf, SEG_BYTES, i);
            loom_objstream_piece_t pc[2] = {{buf, 1000}, {buf + 1000, SEG_BYTES - 1000}};
            if (loom_objstore_stream_segment(s, pc, 2, &e)) _exit(2);
        }
        if (s && loom_objstore_stream_close(s, 1, &e)) _exit(3);
        free(buf);
        for (;;) pause();
    }
    close(r[1]);
    close(g[0]);
    p->go = g[1];
    assert_int_equal(read(r[0], &p->ref, sizeof p->ref), (ssize_t)sizeof p->ref);
    close(r[0]);
}

static void stop_producer(producer_t *p) {
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    close(p->go);
}

/* The consumer's view: segments seen, and the go signal after the first
 * half (the producer writes nothing more before it). */
typedef struct seen {
    producer_t *p;
    int segs, bad;
} seen_t;

static int on_segment(void *ud, uint64_t i, const uint8_t *data, size_t n, loom_err_t *e) {
    (void)e;
    seen_t *s = ud;
    uint8_t *want = malloc(SEG_BYTES);
    seg_bytes(want, SEG_BYTES, (int)i);
    if (i != (uint64_t)s->segs || n != SEG_BYTES || memcmp(data, want, n)) s->bad++;
    free(want);
    if (++s->segs == SEGS / 2 && write(s->p->go, "g", 1) != 1) s->bad++;
    return 0;
}

static int fetch(producer_t *p, int same_host, seen_t *s, loom_objfetch_stats_t *st, loom_err_t *e) {
    loom_objfetch_opts_t o;
    loom_objfetch_opts_default(&o);
    o.same_host = same_host;
    o.timeout_ms = 1500;
    o.chunk = 128u << 10;
    o.window = 4;
    o.on_segment = on_segment;
    o.seg_ud = s;
    s->p = p;
    void *data = NULL;
    size_t n;
    int rc = loom_objfetch(&p->ref, &o, &data, &n, st, e);
    free(data);
    return rc;
}

static void test_stream_overlaps_writing(void **state) {
    (void)state;
    for (int same = 0; same <= 1; same++) {
        producer_t p;
        start_producer(&p, FINISH);
        assert_true(p.ref.stream);
        assert_string_equal(p.ref.checksum, "");
        assert_string_equal(p.ref.media, "test/stream");
        seen_t s = {0};
        loom_objfetch_stats_t st;
        loom_err_t e = {0};
        int rc = fetch(&p, same, &s, &st, &e);
        if (rc) fail_msg("fetch (%s) failed: %s", same ? "same host" : "network", e.msg);
        assert_int_equal(s.segs, SEGS);
        assert_int_equal(s.bad, 0);
        assert_string_equal(st.path, same ? "same-host" : "network");
        /* complete now: served whole from then on, also to a second consumer */
        seen_t again = {0};
        assert_int_equal(fetch(&p, 0, &again, NULL, &e), 0);
        assert_int_equal(again.segs, SEGS);
        stop_producer(&p);
    }
}

static void test_stream_abandoned_or_producer_dead(void **state) {
    (void)state;
    for (int end = ABANDON; end <= DIE; end++)
        for (int same = 0; same <= 1; same++) {
            producer_t p;
            start_producer(&p, end);
            seen_t s = {0};
            loom_err_t e = {0};
            int rc = fetch(&p, same, &s, NULL, &e);
            assert_int_equal(s.segs, SEGS / 2); /* what came before the failure was good */
            assert_int_equal(s.bad, 0);
            if (end == ABANDON) {
                assert_int_equal(rc, LOOM_ENOTFOUND);
                assert_non_null(strstr(e.msg, same ? "abandoned" : "no longer has"));
            } else if (same) {
                assert_int_equal(rc, LOOM_EUNAVAIL);
                assert_non_null(strstr(e.msg, "is gone"));
            } else {
                assert_true(rc == LOOM_ETIMEDOUT || rc == LOOM_EUNAVAIL);
                assert_non_null(strstr(e.msg, "producer gone?"));
            }
            stop_producer(&p);
        }
}

/* A byte of segment 3's payload flipped in the producer's file (it serves
 * from that file): its own checksum rejects it, on both paths. */
static void test_stream_corrupt_segment(void **state) {
    (void)state;
    producer_t p;
    start_producer(&p, FINISH);
    assert_int_equal(write(p.go, "g", 1), 1);
    loom_objfetch_opts_t o;
    loom_objfetch_opts_default(&o);
    void *d;
    size_t n;
    loom_err_t e = {0};
    assert_int_equal(loom_objfetch(&p.ref, &o, &d, &n, NULL, &e), 0); /* wait until it is complete */
    free(d);
    FILE *f = fopen(p.ref.path, "r+b");
    assert_non_null(f);
    long at = 3 * (long)(SEG_BYTES + LOOM_OBJSTREAM_FRAME) + 8 + 5000;
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
    for (int same = 0; same <= 1; same++) {
        loom_objfetch_opts_default(&o);
        o.same_host = same;
        e = (loom_err_t){0};
        assert_int_equal(loom_objfetch(&p.ref, &o, &d, &n, NULL, &e), LOOM_EPARSE);
        assert_non_null(strstr(e.msg, "checksum mismatch: segment 3"));
    }
    stop_producer(&p);
}

static void test_stream_ref_json(void **state) {
    (void)state;
    loom_objref_t r = {.size = 100, .stream = 1};
    memset(r.id, 'b', 64);
    snprintf(r.endpoint, sizeof r.endpoint, "tcp://127.0.0.1:1");
    json_t *j = loom_objref_to_json(&r);
    assert_true(json_is_true(json_object_get(json_object_get(j, "$object"), "stream")));
    assert_null(json_object_get(json_object_get(j, "$object"), "checksum"));
    loom_objref_t back;
    loom_err_t e = {0};
    assert_int_equal(loom_objref_from_json(j, &back, &e), 0);
    assert_true(back.stream);
    json_object_set_new(json_object_get(j, "$object"), "checksum", json_string("0123456789abcdef0123456789abcdef"));
    assert_int_equal(loom_objref_from_json(j, &back, &e), LOOM_EINVAL);
    assert_non_null(strstr(e.msg, "a stream has no"));
    json_object_del(json_object_get(j, "$object"), "checksum");
    json_object_set_new(json_object_get(j, "$object"), "stream", json_string("yes"));
    assert_int_equal(loom_objref_from_json(j, &back, &e), LOOM_EINVAL);
    assert_string_equal(e.field, "$object.stream");
    json_decref(j);
    /* a stream object that is not a KV stream is refused by the KV fetch */
    loom_objref_t kr = r;
    snprintf(kr.media, sizeof kr.media, "test/stream");
    j = loom_objref_to_json(&kr);
    loom_kvcache_t *kv = NULL;
    assert_int_equal(loom_llm_kv_fetch(j, NULL, &kv, NULL, &e), LOOM_EINVAL);
    assert_non_null(strstr(e.msg, "not a loom-kv-stream-v1"));
    json_decref(j);
}

/* ---- the KV stream of a real prefill ------------------------------------------ */

#define PROMPT 300 /* two batches of LOOM_LLM_CPU_BATCH */

static void prompt_ids(int32_t *ids) {
    for (int i = 0; i < PROMPT; i++) ids[i] = (int32_t)((i * 37 + 11) % model->n_vocab);
}

/* The producer thread's side of a streamed prefill runs in this process;
 * the consumer fetches after it (the overlap itself is shown above and in
 * the integration test): the bytes are what count here. */
static void streamed_prefill(int dtype, int same_host, loom_kvcache_t **got) {
    int32_t ids[PROMPT];
    prompt_ids(ids);
    loom_llm_cpu_t *cpu;
    loom_err_t e = {0};
    assert_int_equal(loom_llm_cpu_new(model, pool, PROMPT + 1, &cpu, &e), 0);
    loom_llm_backend_t b;
    loom_llm_backend_cpu(cpu, &b);
    loom_llm_kv_stream_t *s;
    loom_llm_kv_sink_t sink;
    json_t *ref;
    assert_int_equal(loom_llm_kv_stream_open(model, ids, PROMPT, dtype, LOOM_LLM_CPU_BATCH, "me", NULL, &s, &sink, &ref, &e), 0);
    double secs;
    if (loom_llm_prefill_stream(model, &b, ids, PROMPT, LOOM_LLM_CPU_BATCH, &sink, &secs, &e)) fail_msg("%s", e.msg);
    assert_int_equal(loom_llm_kv_stream_close(s, 1, &e), 0);
    loom_llm_cpu_destroy(&cpu);
    loom_objfetch_opts_t o;
    loom_objfetch_opts_default(&o);
    o.same_host = same_host;
    loom_objfetch_stats_t st;
    if (loom_llm_kv_fetch(ref, &o, got, &st, &e)) fail_msg("kv fetch: %s", e.msg);
    assert_string_equal(st.path, same_host ? "same-host" : "network");
    json_decref(ref);
}

static void whole_prefill(loom_kvcache_t **kv) {
    int32_t ids[PROMPT];
    prompt_ids(ids);
    loom_llm_cpu_t *cpu;
    loom_err_t e = {0};
    assert_int_equal(loom_llm_cpu_new(model, pool, PROMPT + 1, &cpu, &e), 0);
    loom_llm_backend_t b;
    loom_llm_backend_cpu(cpu, &b);
    double secs;
    assert_int_equal(loom_llm_prefill(model, &b, ids, PROMPT, kv, &secs, &e), 0);
    loom_llm_cpu_destroy(&cpu);
}

/* want as the consumer sees it after a trip in dtype (the whole-object
 * path's serialise + parse). */
static loom_kvcache_t *through(const loom_kvcache_t *want, int dtype) {
    loom_buf_t b = LOOM_BUF_INIT;
    loom_kvcache_t *k = NULL;
    loom_err_t e = {0};
    assert_int_equal(loom_kvcache_serialize_as(want, dtype, &b, &e), 0);
    assert_int_equal(loom_kvcache_parse(b.data, b.len, &k, &e), 0);
    loom_buf_free(&b);
    return k;
}

static void expect_same(loom_kvcache_t *a, loom_kvcache_t *b) {
    int L = loom_kvcache_n_layers(a), T = loom_kvcache_n_tokens(a);
    size_t w = (size_t)loom_kvcache_n_kv_heads(a) * loom_kvcache_head_dim(a);
    assert_int_equal(T, loom_kvcache_n_tokens(b));
    assert_memory_equal(loom_kvcache_hash(a), loom_kvcache_hash(b), 32);
    assert_memory_equal(loom_kvcache_tokens(a), loom_kvcache_tokens(b), (size_t)T * 4);
    assert_memory_equal(loom_kvcache_logits(a), loom_kvcache_logits(b), (size_t)loom_kvcache_n_vocab(a) * 4);
    for (int l = 0; l < L; l++) {
        assert_memory_equal(loom_kvcache_k(a, l), loom_kvcache_k(b, l), (size_t)T * w * 4);
        assert_memory_equal(loom_kvcache_v(a, l), loom_kvcache_v(b, l), (size_t)T * w * 4);
    }
}

static void test_kv_stream_equals_prefill(void **state) {
    (void)state;
    loom_kvcache_t *want;
    whole_prefill(&want);
    int dts[3] = {LOOM_KV_F32, LOOM_KV_F16, LOOM_KV_Q8_0};
    for (int i = 0; i < 3; i++)
        for (int same = 0; same <= 1; same++) {
            loom_kvcache_t *got, *w = through(want, dts[i]);
            streamed_prefill(dts[i], same, &got);
            expect_same(w, got);
            loom_kvcache_destroy(&got);
            loom_kvcache_destroy(&w);
        }
    loom_kvcache_destroy(&want);
}

static void test_kv_sink_order(void **state) {
    (void)state;
    int32_t ids[PROMPT];
    prompt_ids(ids);
    loom_llm_kv_stream_t *s;
    loom_llm_kv_sink_t sink;
    json_t *ref;
    loom_err_t e = {0};
    assert_int_equal(loom_llm_kv_stream_open(model, ids, PROMPT, LOOM_KV_F32, LOOM_LLM_CPU_BATCH, "me", NULL, &s, &sink, &ref, &e), 0);
    size_t w = (size_t)model->n_kv_heads * model->head_dim;
    float *rows = calloc(LOOM_LLM_CPU_BATCH * w, sizeof *rows);
    assert_int_equal(sink.rows(sink.ud, 1, 0, LOOM_LLM_CPU_BATCH, rows, rows, &e), LOOM_EINVAL); /* layer 0 first */
    assert_int_equal(sink.logits(sink.ud, rows, &e), LOOM_EINVAL);                               /* too early */
    assert_int_equal(loom_llm_kv_stream_close(s, 1, &e), LOOM_EINVAL);                           /* unfinished */
    free(rows);
    /* the abandoned stream is gone: its reference finds nothing */
    loom_kvcache_t *kv = NULL;
    loom_objfetch_opts_t o;
    loom_objfetch_opts_default(&o);
    o.same_host = 0;
    assert_int_equal(loom_llm_kv_fetch(ref, &o, &kv, NULL, &e), LOOM_ENOTFOUND);
    json_decref(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_ref_json),
        cmocka_unit_test(test_stream_overlaps_writing),
        cmocka_unit_test(test_stream_abandoned_or_producer_dead),
        cmocka_unit_test(test_stream_corrupt_segment),
        cmocka_unit_test(test_kv_stream_equals_prefill),
        cmocka_unit_test(test_kv_sink_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
