/* Unit tests for common/: arena, page_arena, err, log, map, buf, clock, sha. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/grow.h"
#include "common/log.h"
#include "common/map.h"
#include "common/page_arena.h"
#include "common/sha.h"
#include "common/utf8.h"

static void arena_allocates_aligned_and_frees(void **state)
{
    (void)state;
    loom_arena_t *a = loom_arena_new(256);
    assert_non_null(a);
    for (int i = 0; i < 1000; i++) {
        char *p = loom_arena_alloc(a, (size_t)(i % 37) + 1);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xab, (size_t)(i % 37) + 1);
    }
    char *big = loom_arena_alloc(a, 10000); /* larger than a block */
    assert_non_null(big);
    memset(big, 1, 10000);
    assert_string_equal(loom_arena_strdup(a, "hello"), "hello");
    assert_string_equal(loom_arena_strndup(a, "hello", 3), "hel");
    assert_string_equal(loom_arena_sprintf(a, "%s-%d", "x", 42), "x-42");
    int *z = loom_arena_calloc(a, 100, sizeof(int));
    for (int i = 0; i < 100; i++)
        assert_int_equal(z[i], 0);
    assert_null(loom_arena_calloc(a, SIZE_MAX / 2, 4)); /* overflow refused */
    assert_true(loom_arena_used(a) >= 10000);
    loom_arena_reset(a);
    assert_int_equal(loom_arena_used(a), 0);
    assert_non_null(loom_arena_alloc(a, 8));
    loom_arena_destroy(&a);
    assert_null(a);
    loom_arena_destroy(&a); /* safe twice */
}

/* Whether the page holding p is mapped (msync fails with ENOMEM when not). */
static int page_mapped(const void *p)
{
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    return msync((void *)((uintptr_t)p & ~(ps - 1)), ps, MS_ASYNC) == 0 || errno != ENOMEM;
}

static void page_arena_maps_counts_trims_and_unmaps(void **state)
{
    (void)state;
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    loom_page_arena_t *a = loom_page_arena_new(0);
    assert_non_null(a);
    assert_true(loom_page_arena_bytes(a) < 256); /* its header: a small malloc'd block */
    assert_int_equal(loom_page_arena_used(a), 0);
    char *c = loom_page_arena_alloc(a, 3, 1);
    double *d = loom_page_arena_alloc(a, sizeof *d, 8);
    void *q = loom_page_arena_alloc(a, 40, 16);
    assert_non_null(c);
    assert_int_equal((uintptr_t)d % 8, 0);
    assert_int_equal((uintptr_t)q % 16, 0);
    assert_null(loom_page_arena_alloc(a, 8, 3)); /* not a power of two */
    assert_null(loom_page_arena_alloc(a, 8, 32));
    assert_null(loom_page_arena_strdup(a, NULL));
    assert_string_equal(loom_page_arena_strdup(a, "hello"), "hello");
    /* Blocks grow (mapped from 64 KiB on); it costs at least what it handed out. */
    char *last = NULL;
    for (int i = 0; i < 20000; i++) {
        last = loom_page_arena_alloc(a, 24, 8);
        assert_non_null(last);
        memset(last, 'x', 24);
    }
    assert_true(loom_page_arena_used(a) >= 20000 * 24);
    assert_true(loom_page_arena_bytes(a) >= loom_page_arena_used(a));
    assert_true(loom_page_arena_bytes(a) < loom_page_arena_used(a) * 2 + (1 << 20));
    /* A big request gets a block of its size. */
    size_t before = loom_page_arena_bytes(a);
    char *big = loom_page_arena_alloc(a, 3 << 20, 16);
    assert_non_null(big);
    memset(big, 1, 3 << 20);
    assert_true(loom_page_arena_bytes(a) - before >= (size_t)3 << 20);
    assert_true(loom_page_arena_bytes(a) - before <= ((size_t)3 << 20) + ps);
    assert_true(page_mapped(last) && page_mapped(big));
    loom_page_arena_destroy(&a);
    assert_null(a);
    loom_page_arena_destroy(&a); /* safe twice */
    /* Destroying hands the pages back to the system. */
    assert_false(page_mapped(last));
    assert_false(page_mapped(big));

    /* Sized by an upper bound, then trimmed to what is used. */
    a = loom_page_arena_new(1 << 20);
    assert_true(loom_page_arena_bytes(a) >= 1 << 20);
    assert_non_null(loom_page_arena_alloc(a, 1000, 8));
    char *far = (char *)loom_page_arena_alloc(a, 1, 1) + (1 << 19); /* inside the first block */
    assert_true(page_mapped(far));
    loom_page_arena_trim(a);
    assert_int_equal(loom_page_arena_bytes(a), ps);
    assert_false(page_mapped(far));
    char *after = loom_page_arena_strdup(a, "still works"); /* in what is left of the page */
    assert_string_equal(after, "still works");
    assert_int_equal(loom_page_arena_bytes(a), ps);
    loom_page_arena_destroy(&a);
}

static void err_formats_location_field_detail_hint(void **state)
{
    (void)state;
    loom_err_t e;
    assert_int_equal(loom_err_set(&e, LOOM_EPARSE, "unknown step '%s'", "retreive"), LOOM_EPARSE);
    loom_err_at(&e, "support.yaml", 14, 9);
    loom_err_field(&e, "steps.answer.needs[%d]", 1);
    char buf[512];
    loom_err_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "support.yaml:14:9: steps.answer.needs[1]: unknown step 'retreive'");
    loom_err_detail(&e, "known steps: a, b");
    loom_err_hint(&e, "did you mean 'retrieve'?");
    loom_err_format_long(&e, buf, sizeof buf);
    assert_non_null(strstr(buf, "\n  detail: known steps: a, b\n  hint: did you mean"));
    /* Truncation reports the full length like snprintf. */
    char small[8];
    size_t need = loom_err_format(&e, small, sizeof small);
    assert_true(need > sizeof small);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(loom_err_set(NULL, LOOM_EIO, "x"), LOOM_EIO); /* NULL allowed */
    assert_string_equal(loom_err_name(LOOM_ETIMEDOUT), "ETIMEDOUT");
    loom_err_set(&e, LOOM_EINVAL, "plain");
    loom_err_format(&e, buf, sizeof buf);
    assert_string_equal(buf, "plain");
}

static void log_writes_key_value_lines_at_level(void **state)
{
    (void)state;
    char path[] = "/tmp/loom-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    loom_log_set_fd(fd);
    loom_log_set_level(LOOM_LOG_WARN);
    LOOM_INFO("test", "msg=\"hidden\"");
    LOOM_WARN("test", "msg=\"shown\" n=%d", 7);
    loom_log_set_fd(2);
    loom_log_set_level(LOOM_LOG_INFO);
    char buf[512] = {0};
    assert_true(pread(fd, buf, sizeof buf - 1, 0) > 0);
    close(fd);
    unlink(path);
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, "level=warn comp=test msg=\"shown\" n=7\n"));
    assert_int_equal(loom_log_parse_level("ERROR"), LOOM_LOG_ERROR);
    assert_int_equal(loom_log_parse_level("loud"), -1);
}

static int freed;
static void count_free(void *p) { (void)p; freed++; }

static void map_put_get_del_grow_iterate(void **state)
{
    (void)state;
    freed = 0;
    loom_map_t *m = loom_map_new(count_free);
    char key[32];
    static int vals[5000];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        vals[i] = i;
        assert_int_equal(loom_map_put(m, key, &vals[i]), 0);
    }
    assert_int_equal(loom_map_len(m), 5000);
    for (int i = 0; i < 5000; i += 2) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(loom_map_del(m, key), 0);
    }
    assert_int_equal(freed, 2500);
    assert_int_equal(loom_map_del(m, "k0"), LOOM_ENOTFOUND);
    assert_int_equal(loom_map_len(m), 2500);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        int *v = loom_map_get(m, key);
        if (i % 2)
            assert_int_equal(*v, i);
        else
            assert_null(v);
    }
    /* Churn through tombstones: delete and reinsert many times. */
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 100; i++) {
            snprintf(key, sizeof key, "churn%d", i);
            assert_int_equal(loom_map_put(m, key, &vals[i]), 0);
            assert_int_equal(loom_map_del(m, key), 0);
        }
    size_t it = 0, n = 0;
    const char *k;
    void *v;
    while (loom_map_next(m, &it, &k, &v)) {
        assert_int_equal(atoi(k + 1), *(int *)v);
        n++;
    }
    assert_int_equal(n, 2500);
    assert_int_equal(loom_map_put(m, "k1", &vals[7]), 0); /* replace frees old */
    assert_int_equal(*(int *)loom_map_get(m, "k1"), 7);
    assert_true(loom_map_has(m, "k1"));
    int before = freed;
    loom_map_destroy(&m);
    assert_int_equal(freed - before, 2500);
    assert_null(m);
}

static void buf_appends_formats_escapes_and_honours_limit(void **state)
{
    (void)state;
    loom_buf_t b = LOOM_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(loom_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
    assert_int_equal(b.data[b.len], '\0');
    loom_buf_reset(&b);
    assert_int_equal(loom_buf_json_str(&b, "a\"b\\c\n\x01", 7), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    size_t len;
    char *s = loom_buf_detach(&b, &len);
    assert_int_equal(len, strlen(s));
    free(s);
    assert_null(b.data);

    loom_buf_t lim;
    loom_buf_init(&lim, 10);
    assert_int_equal(loom_buf_puts(&lim, "0123456789"), 0);
    assert_int_equal(loom_buf_putc(&lim, 'x'), LOOM_ETOOBIG);
    assert_int_equal(lim.len, 10);
    assert_int_equal(loom_buf_reserve(&lim, SIZE_MAX), LOOM_ETOOBIG);
    loom_buf_free(&lim);
}

static void buf_reads_whole_files(void **state)
{
    (void)state;
    char path[] = "/tmp/loom-buf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char big[100000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(write(fd, big, sizeof big), (ssize_t)sizeof big);
    close(fd);
    loom_buf_t b = LOOM_BUF_INIT;
    assert_int_equal(loom_buf_read_file(&b, path), 0);
    assert_int_equal(b.len, sizeof big);
    assert_memory_equal(b.data, big, sizeof big);
    assert_int_equal(b.data[b.len], '\0');
    loom_buf_free(&b);
    loom_buf_init(&b, 1000); /* past the limit: EFBIG, nothing beyond it */
    assert_int_equal(loom_buf_read_file(&b, path), -1);
    assert_int_equal(errno, EFBIG);
    assert_true(b.len <= 1000);
    loom_buf_free(&b);
    unlink(path);
    assert_int_equal(loom_buf_read_file(&b, path), -1);
    assert_int_equal(errno, ENOENT);
    fd = open(path, O_CREAT | O_WRONLY, 0600); /* empty: "" */
    close(fd);
    assert_int_equal(loom_buf_read_file(&b, path), 0);
    assert_non_null(b.data);
    assert_int_equal(b.len, 0);
    loom_buf_free(&b);
    unlink(path);
}

static void grow_doubles_and_keeps_elements(void **state)
{
    (void)state;
    struct rec {
        int a;
        double b;
    } *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(LOOM_GROW(v, cap, n + 1), 0);
        assert_true(cap >= n + 1);
        v[n++] = (struct rec){i, i * 0.5};
    }
    assert_int_equal(cap, 1024); /* 8, 16, ... doubled */
    for (int i = 0; i < 1000; i++)
        assert_true(v[i].a == i && v[i].b == i * 0.5);
    assert_int_equal(LOOM_GROW(v, cap, 10), 0); /* enough room: nothing moves */
    assert_int_equal(cap, 1024);
    struct rec *before = v;
    assert_int_equal(LOOM_GROW(v, cap, SIZE_MAX / 2), -1); /* overflow: untouched */
    assert_ptr_equal(v, before);
    assert_int_equal(cap, 1024);
    free(v);
}

static void clock_is_monotonic_and_sleeps(void **state)
{
    (void)state;
    uint64_t a = loom_clock_ns();
    loom_sleep_ms(5);
    uint64_t b = loom_clock_ns();
    assert_true(b - a >= 5000000u);
    assert_true(loom_clock_ms() >= loom_clock_us() / 1000 - 1);
    assert_true(loom_wall_ms() > 1700000000000LL);
}

static void sha256_and_hmac_match_known_vectors(void **state)
{
    (void)state;
    char hex[LOOM_SHA256_HEX_LEN];
    /* FIPS 180-2 "abc" */
    loom_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    loom_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* Incremental equals one-shot. */
    loom_sha256_t *c = loom_sha256_new();
    loom_sha256_update(c, "a", 1);
    loom_sha256_update(c, "bc", 2);
    uint8_t d1[32], d2[32];
    loom_sha256_final(c, d1);
    loom_sha256_destroy(&c);
    assert_null(c);
    loom_sha256("abc", 3, d2);
    assert_true(loom_digest_equal(d1, d2, 32));
    /* RFC 4231 test case 2 */
    uint8_t mac[32];
    const char *data = "what do ya want for nothing?";
    loom_hmac_sha256("Jefe", 4, data, strlen(data), mac);
    loom_hex(mac, 32, hex);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    uint8_t back[32];
    assert_int_equal(loom_unhex(hex, back, 32), 0);
    assert_true(loom_digest_equal(back, mac, 32));
    assert_int_equal(loom_unhex("zz", back, 1), LOOM_EINVAL);
    uint8_t r1[16] = {0}, r2[16] = {0};
    assert_int_equal(loom_random_bytes(r1, 16), 0);
    assert_int_equal(loom_random_bytes(r2, 16), 0);
    assert_false(loom_digest_equal(r1, r2, 16));
}

/* Text leaving Loom in protobuf strings must be valid UTF-8. */
static void utf8_is_validated_and_repaired(void **state)
{
    (void)state;
    const char *ok = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_true(loom_utf8_valid(ok, strlen(ok)));
    assert_false(loom_utf8_valid("\xff", 1));
    assert_false(loom_utf8_valid("\xc0\xaf", 2));          /* overlong '/' */
    assert_false(loom_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
    assert_false(loom_utf8_valid("\xf4\x90\x80\x80", 4));  /* > U+10FFFF */
    assert_false(loom_utf8_valid("\xc3", 1));              /* cut off */
    char *r = loom_utf8_repair("a\xffz", 3, NULL);
    assert_string_equal(r, "a\xef\xbf\xbdz");
    free(r);
    size_t tail = 0;
    r = loom_utf8_repair("ok \xe2\x82", 5, &tail); /* a euro sign cut after 2 bytes */
    assert_string_equal(r, "ok ");
    assert_int_equal(tail, 2);
    free(r);
    r = loom_utf8_repair("\xe2\x82", 2, NULL); /* no tail wanted: replaced */
    assert_true(loom_utf8_valid(r, strlen(r)));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_allocates_aligned_and_frees),
        cmocka_unit_test(page_arena_maps_counts_trims_and_unmaps),
        cmocka_unit_test(err_formats_location_field_detail_hint),
        cmocka_unit_test(log_writes_key_value_lines_at_level),
        cmocka_unit_test(map_put_get_del_grow_iterate),
        cmocka_unit_test(buf_appends_formats_escapes_and_honours_limit),
        cmocka_unit_test(buf_reads_whole_files),
        cmocka_unit_test(grow_doubles_and_keeps_elements),
        cmocka_unit_test(clock_is_monotonic_and_sleeps),
        cmocka_unit_test(sha256_and_hmac_match_known_vectors),
        cmocka_unit_test(utf8_is_validated_and_repaired),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
