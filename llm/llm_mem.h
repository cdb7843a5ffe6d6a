/* llm_mem.h — the engine's large buffers (a model's weights, a KV cache)
 * in transparent huge pages where the kernel allows them
 * (MADV_HUGEPAGE), faulted in when they are made, so decode touches no
 * fresh page and walks 512 times fewer page-table entries per byte of
 * weights. */
#ifndef LOOM_LLM_MEM_H
#define LOOM_LLM_MEM_H

#include <stddef.h>

typedef struct loom_llm_mem {
    void *map; /* the mapping (NULL: none) */
    size_t len;
} loom_llm_mem_t;

/* bytes of zeroed memory, 2 MiB-aligned and faulted in; NULL (errno set)
 * when the mapping fails. */
void *loom_llm_mem_map(size_t bytes, loom_llm_mem_t *m);
/* Reads bytes of the open file fd (from offset 0) into a new buffer as
 * loom_llm_mem_map makes them; NULL with errno set on failure. */
void *loom_llm_mem_read_file(int fd, size_t bytes, loom_llm_mem_t *m);
void loom_llm_mem_unmap(loom_llm_mem_t *m);

#endif
