/* test_llm_units.c — GGUF reader robustness (truncation at every byte, bad
 * magic/version/types/offsets/shapes, random corruption), number formats,
 * the KV cache object, the sampler and the thread pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "llm/gguf.h"
#include "llm/llm_mem.h"
#include "llm/kvcache.h"
#include "workers/common/vindex.h"
#include "llm/cpu/llm_pool.h"
#include "llm/llm_sample.h"

/* ---- a tiny GGUF builder ---- */
static void put(loom_buf_t *b, const void *p, size_t n) { assert_int_equal(loom_buf_append(b, p, n), 0); }
static void u32(loom_buf_t *b, uint32_t v) { put(b, &v, 4); }
static void u64(loom_buf_t *b, uint64_t v) { put(b, &v, 8); }
static void str(loom_buf_t *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }

typedef struct spec {
    uint32_t magic, version, kv_type, t_type;
    uint64_t ne0, ne1, off2;
} spec_t;

static const spec_t GOOD = {0x46554747u, 3, 4 /* u32 */, 0 /* F32 */, 32, 2, 256};

/* Two tensors: "a" [ne0, ne1] of t_type at 0, "b" [32] F32 at off2. */
static void build(loom_buf_t *b, spec_t s) {
    loom_buf_reset(b);
    u32(b, s.magic); u32(b, s.version); u64(b, 2); u64(b, 3);
    str(b, "general.architecture"); u32(b, 8); str(b, "llama");
    str(b, "llama.block_count"); u32(b, s.kv_type); u32(b, 7);
    str(b, "tokenizer.ggml.tokens"); u32(b, 9); u32(b, 8); u64(b, 2); str(b, "<s>"); str(b, "hi");
    str(b, "a"); u32(b, 2); u64(b, s.ne0); u64(b, s.ne1); u32(b, s.t_type); u64(b, 0);
    str(b, "b"); u32(b, 1); u64(b, 32); u32(b, 0); u64(b, s.off2);
    while (b->len % 32) put(b, "", 1);
    float f[64 + 32];
    for (int i = 0; i < 96; i++) f[i] = (float)i;
    put(b, f, 64 * 4);
    while (b->len % 32) put(b, "", 1);
    size_t data0 = b->len - 256;
    while (b->len < data0 + 256) put(b, "", 1);
    put(b, f + 64, 32 * 4);
}

static void test_gguf_valid(void **st) {
    (void)st;
    loom_buf_t b = LOOM_BUF_INIT;
    build(&b, GOOD);
    loom_gguf_t *g;
    loom_err_t e = {0};
    assert_int_equal(loom_gguf_open_mem(b.data, b.len, "good.gguf", &g, &e), 0);
    uint32_t v;
    assert_int_equal(loom_gguf_get_u32(g, "llama.block_count", &v, &e), 0);
    assert_int_equal(v, 7);
    assert_int_equal(loom_gguf_get_u32(g, "missing", &v, &e), LOOM_ENOTFOUND);
    const char *s; size_t n;
    assert_int_equal(loom_gguf_get_str(g, "general.architecture", &s, &n, &e), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(s, "llama", 5);
    assert_int_equal(loom_gguf_get_u32(g, "general.architecture", &v, &e), LOOM_EINVAL);
    assert_int_equal(loom_gguf_arr_str(g, "tokenizer.ggml.tokens", 1, &s, &n), 0);
    assert_memory_equal(s, "hi", 2);
    const loom_gguf_tensor_t *t = loom_gguf_find_tensor(g, "a");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 32);
    assert_int_equal(t->ne[1], 2);
    assert_float_equal(((const float *)t->data)[63], 63.0f, 0);
    t = loom_gguf_find_tensor(g, "b");
    assert_float_equal(((const float *)t->data)[0], 64.0f, 0);
    loom_gguf_destroy(&g);
    loom_gguf_destroy(&g); /* twice is safe */
    loom_buf_free(&b);
}

static void expect_error(spec_t s, const char *needle) {
    loom_buf_t b = LOOM_BUF_INIT;
    build(&b, s);
    loom_gguf_t *g = NULL;
    loom_err_t e = {0};
    int rc = loom_gguf_open_mem(b.data, b.len, "bad.gguf", &g, &e);
    if (rc != LOOM_EPARSE || !strstr(e.msg, needle)) fail_msg("want error containing \"%s\", got %d \"%s\"", needle, rc, e.msg);
    assert_null(g);
    assert_string_equal(e.file, "bad.gguf");
    loom_buf_free(&b);
}

static void test_gguf_bad(void **st) {
    (void)st;
    spec_t s;
    s = GOOD; s.magic = 0x12345678; expect_error(s, "bad magic");
    s = GOOD; s.version = 2; expect_error(s, "unsupported GGUF version");
    s = GOOD; s.kv_type = 77; expect_error(s, "unknown metadata value type");
    s = GOOD; s.t_type = 13; expect_error(s, "unknown or unsupported tensor type");
    s = GOOD; s.t_type = 8; s.ne0 = 33; expect_error(s, "not a multiple of the block size");
    s = GOOD; s.ne1 = 1ull << 20; expect_error(s, "outside the file");
    s = GOOD; s.ne1 = 1ull << 39; expect_error(s, "too many elements");
    s = GOOD; s.ne0 = 1ull << 62; s.ne1 = 1ull << 62; expect_error(s, "overflows");
    s = GOOD; s.ne0 = 0; expect_error(s, "zero");
    s = GOOD; s.off2 = 100; expect_error(s, "not aligned");
    s = GOOD; s.off2 = 224; expect_error(s, "overlaps");
    s = GOOD; s.off2 = 1ull << 60; expect_error(s, "outside the file");
}

static void test_gguf_truncated_everywhere(void **st) {
    (void)st;
    loom_buf_t b = LOOM_BUF_INIT;
    build(&b, GOOD);
    for (size_t n = 0; n < b.len; n++) {
        char *copy = malloc(n ? n : 1); /* exact-size copy so ASan sees overreads */
        memcpy(copy, b.data, n);
        loom_gguf_t *g = NULL;
        loom_err_t e = {0};
        int rc = loom_gguf_open_mem(copy, n, "cut.gguf", &g, &e);
        if (rc != LOOM_EPARSE || !e.msg[0]) fail_msg("truncated at %zu: rc %d msg \"%s\"", n, rc, e.msg);
        free(copy);
    }
    loom_buf_free(&b);
}

static void test_gguf_random_corruption(void **st) {
    (void)st;
    loom_buf_t b = LOOM_BUF_INIT;
    build(&b, GOOD);
    srand(1);
    int ok = 0, err = 0;
    for (int it = 0; it < 3000; it++) {
        char *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        for (int k = 0; k < 1 + it % 4; k++) copy[rand() % b.len] = (char)rand();
        loom_gguf_t *g = NULL;
        loom_err_t e = {0};
        int rc = loom_gguf_open_mem(copy, b.len, "flip.gguf", &g, &e);
        if (rc == 0) {
            ok++;
            for (size_t i = 0; i < loom_gguf_n_tensors(g); i++) { /* every tensor is inside the buffer */
                const loom_gguf_tensor_t *t = loom_gguf_tensor(g, i);
                assert_true((const char *)t->data >= copy && (const char *)t->data + t->nbytes <= copy + b.len);
            }
            loom_gguf_destroy(&g);
        } else {
            err++;
            assert_true(e.msg[0] != 0);
        }
        free(copy);
    }
    assert_true(ok > 0 && err > 0);
    loom_buf_free(&b);
}

static void test_gguf_open_errors(void **st) {
    (void)st;
    loom_gguf_t *g;
    loom_err_t e = {0};
    assert_int_equal(loom_gguf_open("/nonexistent/model.gguf", &g, &e), LOOM_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent/model.gguf"));
    assert_int_not_equal(loom_gguf_open("/", &g, &e), 0);
}

/* The same file opened mapped, resident in huge pages, and resident but
 * mapped (LOOM_LLM_MMAP=1): the same tensors and metadata each way. */
static void test_gguf_resident(void **st) {
    (void)st;
    loom_buf_t b = LOOM_BUF_INIT;
    build(&b, GOOD);
    char path[] = "/tmp/loom-gguf-resident-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
    for (int way = 0; way < 3; way++) {
        if (way == 2) setenv("LOOM_LLM_MMAP", "1", 1);
        loom_gguf_t *g = NULL;
        loom_err_t e = {0};
        assert_int_equal(way ? loom_gguf_open_resident(path, &g, &e) : loom_gguf_open(path, &g, &e), 0);
        uint32_t v;
        assert_int_equal(loom_gguf_get_u32(g, "llama.block_count", &v, &e), 0);
        assert_int_equal(v, 7);
        const loom_gguf_tensor_t *t = loom_gguf_find_tensor(g, "a");
        assert_non_null(t);
        if (way == 1) assert_int_equal((uintptr_t)loom_gguf_find_tensor(g, "a")->data % 32, 0);
        assert_float_equal(((const float *)t->data)[63], 63.0f, 0);
        assert_float_equal(((const float *)loom_gguf_find_tensor(g, "b")->data)[0], 64.0f, 0);
        loom_gguf_destroy(&g);
    }
    unsetenv("LOOM_LLM_MMAP");
    /* a file shorter than asked for is an error, not a buffer of zeros */
    loom_llm_mem_t m;
    assert_null(loom_llm_mem_read_file(fd, b.len + 4096, &m));
    assert_null(m.map);
    close(fd);
    unlink(path);
    loom_buf_free(&b);
}

/* Huge-page buffers: 2 MiB-aligned, zeroed, writable to the last byte. */
static void test_mem_map(void **st) {
    (void)st;
    loom_llm_mem_t m;
    size_t n = ((size_t)3 << 20) + 5;
    uint8_t *p = loom_llm_mem_map(n, &m);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % ((size_t)2 << 20), 0);
    for (size_t i = 0; i < n; i += 4093) assert_int_equal(p[i], 0);
    p[n - 1] = 7;
    loom_llm_mem_unmap(&m);
    assert_null(m.map);
    loom_llm_mem_unmap(&m); /* twice is safe */
}

static void test_fp16(void **st) {
    (void)st;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads */
        float f = loom_fp16_to_fp32((uint16_t)h);
        assert_int_equal(loom_fp32_to_fp16(f), h);
    }
    assert_float_equal(loom_fp16_to_fp32(loom_fp32_to_fp16(0.1f)), 0.0999755859375f, 0);
    assert_float_equal(loom_bf16_to_fp32(0x3f80), 1.0f, 0);
}

static void test_kvcache(void **st) {
    (void)st;
    uint8_t h[32] = {1, 2, 3};
    loom_kvcache_t *k, *k2;
    loom_err_t e = {0};
    assert_int_equal(loom_kvcache_new(h, 2, 2, 4, 3, 10, &k, &e), 0);
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 3 * 8; i++) { loom_kvcache_k(k, l)[i] = (float)(l * 100 + i); loom_kvcache_v(k, l)[i] = -(float)i; }
    loom_kvcache_tokens(k)[2] = 9;
    loom_kvcache_logits(k)[4] = 1.5f;
    loom_buf_t b = LOOM_BUF_INIT;
    assert_int_equal(loom_kvcache_serialize(k, &b, &e), 0);
    assert_int_equal(loom_kvcache_parse(b.data, b.len, &k2, &e), 0);
    assert_int_equal(loom_kvcache_n_tokens(k2), 3);
    assert_memory_equal(loom_kvcache_k(k2, 1), loom_kvcache_k(k, 1), 3 * 8 * 4);
    assert_int_equal(loom_kvcache_tokens(k2)[2], 9);
    assert_float_equal(loom_kvcache_logits(k2)[4], 1.5f, 0);
    assert_int_equal(loom_kvcache_check(k2, h, 2, 2, 4, 10, &e), 0);
    uint8_t other[32] = {0};
    assert_int_equal(loom_kvcache_check(k2, other, 2, 2, 4, 10, &e), LOOM_EINVAL);
    assert_non_null(strstr(e.msg, "different model"));
    loom_kvcache_destroy(&k2);
    for (size_t n = 0; n < b.len; n += 7) /* truncated */
        assert_int_equal(loom_kvcache_parse(b.data, n, &k2, &e), LOOM_EPARSE);
    for (size_t i = 0; i < b.len; i += 5) { /* any flipped byte is caught */
        b.data[i] ^= 0x40;
        assert_int_not_equal(loom_kvcache_parse(b.data, b.len, &k2, &e), 0);
        b.data[i] ^= 0x40;
    }
    b.data[8] = 9;
    assert_int_equal(loom_kvcache_parse(b.data, b.len, &k2, &e), LOOM_EPARSE);
    assert_non_null(strstr(e.msg, "version"));
    loom_buf_free(&b);
    loom_kvcache_destroy(&k);
}

static void test_sampler(void **st) {
    (void)st;
    float l[6] = {0.1f, 2.0f, 1.9f, -1.0f, 0.0f, 1.0f};
    loom_llm_sampling_t g = {0};
    loom_llm_sampler_t *s = loom_llm_sampler_new(&g, 6);
    assert_int_equal(loom_llm_sample(s, l), 1);
    loom_llm_sampler_destroy(&s);
    loom_llm_sampling_t p = {.temperature = 1.0f, .top_k = 1, .seed = 3};
    s = loom_llm_sampler_new(&p, 6);
    assert_int_equal(loom_llm_sample(s, l), 1);
    loom_llm_sampler_destroy(&s);
    p = (loom_llm_sampling_t){.temperature = 1.0f, .top_p = 0.01f, .seed = 3};
    s = loom_llm_sampler_new(&p, 6);
    assert_int_equal(loom_llm_sample(s, l), 1);
    loom_llm_sampler_destroy(&s);
    /* same seed, same draws; top_k=2 only ever picks 1 or 2 */
    p = (loom_llm_sampling_t){.temperature = 1.0f, .top_k = 2, .seed = 42};
    loom_llm_sampler_t *a = loom_llm_sampler_new(&p, 6), *b = loom_llm_sampler_new(&p, 6);
    int seen[6] = {0};
    for (int i = 0; i < 200; i++) {
        int32_t x = loom_llm_sample(a, l);
        assert_int_equal(x, loom_llm_sample(b, l));
        seen[x]++;
    }
    assert_true(seen[1] > 0 && seen[2] > 0 && seen[1] + seen[2] == 200);
    loom_llm_sampler_destroy(&a);
    loom_llm_sampler_destroy(&b);
}

static void test_vindex(void **st) {
    (void)st;
    char path[] = "/tmp/loom-vindex-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    float vec[3 * 4] = {1, 0, 0, 0, 0, 2, 0, 0, 1, 1, 0, 0};
    const char *pl[3] = {"{\"id\":\"a\"}", "{\"id\":\"b\"}", "{\"id\":\"c\"}"};
    size_t lens[3] = {10, 10, 10};
    uint8_t h[32] = {7};
    loom_err_t e = {0};
    assert_int_equal(loom_vindex_write(path, 4, 3, vec, pl, lens, h, &e), 0);
    loom_vindex_t *v;
    assert_int_equal(loom_vindex_open(path, &v, &e), 0);
    assert_int_equal(loom_vindex_count(v), 3);
    float q[4] = {0, 3, 0, 0};
    loom_vindex_hit_t hits[2];
    assert_int_equal(loom_vindex_search(v, q, 4, 2, hits, &e), 2);
    assert_int_equal(hits[0].id, 1);
    assert_float_equal(hits[0].score, 1.0f, 1e-6);
    assert_int_equal(hits[1].id, 2);
    assert_float_equal(hits[1].score, 0.70710678f, 1e-6);
    size_t len;
    assert_memory_equal(loom_vindex_payload(v, 2, &len), "{\"id\":\"c\"}", 10);
    assert_int_equal(loom_vindex_search(v, q, 3, 2, hits, &e), LOOM_EINVAL);
    /* corrupt copies: every truncation and byte flip is a clear error */
    FILE *f = fopen(path, "rb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    loom_vindex_t *w;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(loom_vindex_open_mem(buf, k, "cut.index", &w, &e), LOOM_EPARSE);
        buf[k] ^= 1;
        assert_int_not_equal(loom_vindex_open_mem(buf, n, "flip.index", &w, &e), 0);
        assert_true(e.msg[0] != 0);
        buf[k] ^= 1;
    }
    assert_int_equal(loom_vindex_open_mem(buf, n, "ok.index", &w, &e), 0);
    loom_vindex_destroy(&w);
    loom_vindex_destroy(&v);
    unlink(path);
    assert_int_equal(loom_vindex_open("/nonexistent.index", &v, &e), LOOM_ENOTFOUND);
}

static void add_task(void *ctx, int i) { __atomic_fetch_add((long *)ctx, i, __ATOMIC_RELAXED); }

static void test_pool(void **st) {
    (void)st;
    loom_llm_pool_t *p = loom_llm_pool_new(3);
    assert_non_null(p);
    for (int r = 0; r < 200; r++) {
        long sum = 0;
        loom_llm_pool_run(p, 1000, add_task, &sum);
        assert_int_equal(sum, 999 * 1000 / 2);
    }
    loom_llm_pool_destroy(&p);
    assert_null(p);
}

/* Many short runs, alternating two tasks and contexts, on more threads than
 * this machine has cores: a late worker must never run an item of a run
 * with the parameters of another, nor the caller return before every item
 * is done. */
typedef struct pool_ctx { long sum; int tag; } pool_ctx_t;
static void tag_task(void *ctx, int i) {
    pool_ctx_t *c = ctx;
    __atomic_fetch_add(&c->sum, (long)c->tag * 1000 + i, __ATOMIC_RELAXED);
}
static void neg_task(void *ctx, int i) { __atomic_fetch_sub(&((pool_ctx_t *)ctx)->sum, i + 1, __ATOMIC_RELAXED); }

static void test_pool_many_runs(void **st) {
    (void)st;
    loom_llm_pool_t *p = loom_llm_pool_new(4);
    assert_non_null(p);
    for (int r = 0; r < 20000; r++) {
        int n = 1 + r % 5;
        pool_ctx_t c = {0, r};
        if (r & 1) {
            loom_llm_pool_run(p, n, neg_task, &c);
            assert_int_equal(c.sum, -(long)n * (n + 1) / 2);
        } else {
            loom_llm_pool_run(p, n, tag_task, &c);
            assert_int_equal(c.sum, (long)r * 1000 * n + (long)n * (n - 1) / 2);
        }
    }
    loom_llm_pool_destroy(&p);
}

/* A worker that holds an item far longer than the caller's own items (as
 * one preempted by another process does): the caller stops spinning,
 * sleeps, and is woken by the last item; it never returns early. */
typedef struct slow_ctx { long sum; pthread_t caller; } slow_ctx_t;
static void slow_task(void *ctx, int i) {
    slow_ctx_t *c = ctx;
    /* the item's work, not synchronisation: 20 us on the caller's thread
     * (time enough for the worker to claim items), 1 ms on a worker's */
    struct timespec d = {0, pthread_equal(pthread_self(), c->caller) ? 20 * 1000 : 1000 * 1000};
    nanosleep(&d, NULL);
    __atomic_fetch_add(&c->sum, i + 1, __ATOMIC_RELAXED);
}

static void test_pool_held_item(void **st) {
    (void)st;
    loom_llm_pool_t *p = loom_llm_pool_new(2);
    assert_non_null(p);
    for (int r = 0; r < 100; r++) {
        int n = 4 + r % 5;
        slow_ctx_t c = {0, pthread_self()};
        loom_llm_pool_run(p, n, slow_task, &c);
        assert_int_equal(__atomic_load_n(&c.sum, __ATOMIC_RELAXED), (long)n * (n + 1) / 2);
    }
    loom_llm_pool_destroy(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_valid),          cmocka_unit_test(test_gguf_bad),
        cmocka_unit_test(test_gguf_truncated_everywhere), cmocka_unit_test(test_gguf_random_corruption),
        cmocka_unit_test(test_gguf_open_errors),    cmocka_unit_test(test_fp16),
        cmocka_unit_test(test_gguf_resident),       cmocka_unit_test(test_mem_map),
        cmocka_unit_test(test_kvcache),             cmocka_unit_test(test_sampler),
        cmocka_unit_test(test_pool),                cmocka_unit_test(test_pool_many_runs),
        cmocka_unit_test(test_pool_held_item),
        cmocka_unit_test(test_vindex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
