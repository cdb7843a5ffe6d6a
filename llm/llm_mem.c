/* llm_mem.c — huge-page buffers faulted in up front (see llm_mem.h). */
#include "llm/llm_mem.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *loom_llm_mem_map(size_t bytes, loom_llm_mem_t *m) {
    m->map = NULL;
    m->len = 0;
    if (!bytes) bytes = 1;
    size_t len = (bytes + 2 * HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    size_t use = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
#ifdef MADV_HUGEPAGE
    madvise(a, use, MADV_HUGEPAGE); /* advice: without THP the pages stay small */
#endif
    /* fault every page in now (one fault per huge page): writing one byte
     * per 4 KiB works on every kernel (MADV_POPULATE_WRITE needs 5.14) */
    for (size_t off = 0; off < use; off += 4096) a[off] = 0;
    m->map = p;
    m->len = len;
    return a;
}

void *loom_llm_mem_read_file(int fd, size_t bytes, loom_llm_mem_t *m) {
    uint8_t *a = loom_llm_mem_map(bytes, m);
    if (!a) return NULL;
    for (size_t got = 0; got < bytes;) {
        size_t want = bytes - got > ((size_t)1 << 30) ? (size_t)1 << 30 : bytes - got;
        ssize_t n = pread(fd, a + got, want, (off_t)got);
        if (n <= 0) {
            int err = n < 0 ? errno : EIO; /* a file shorter than its size */
            loom_llm_mem_unmap(m);
            errno = err;
            return NULL;
        }
        got += (size_t)n;
    }
    return a;
}

void loom_llm_mem_unmap(loom_llm_mem_t *m) {
    if (m->map) munmap(m->map, m->len);
    m->map = NULL;
    m->len = 0;
}
