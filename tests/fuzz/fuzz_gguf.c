/* fuzz_gguf.c — the GGUF reader and the tokenizer built from its metadata
 * on arbitrary bytes; the first byte optionally routes the rest to the KV
 * cache and vector index parsers (the other LLM files that cross machines).
 * Accepted GGUF files must have every tensor inside the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/gguf.h"
#include "llm/kvcache.h"
#include "llm/tokenizer.h"
#include "workers/common/vindex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    loom_err_t e = {0};
    if (size > 0 && data[0] == 'K') {
        loom_kvcache_t *k;
        if (loom_kvcache_parse(data + 1, size - 1, &k, &e) == 0) loom_kvcache_destroy(&k);
        return 0;
    }
    if (size > 0 && data[0] == 'V') {
        loom_vindex_t *v;
        if (loom_vindex_open_mem(data + 1, size - 1, "fuzz.index", &v, &e) == 0) {
            float q[8] = {1, 0, 0, 0, 0, 0, 0, 0};
            loom_vindex_hit_t h[4];
            if (loom_vindex_dim(v) <= 8) loom_vindex_search(v, q, loom_vindex_dim(v), 4, h, &e);
            loom_vindex_destroy(&v);
        }
        return 0;
    }
    /* exact-size copy so reads past the end are caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    loom_gguf_t *g;
    if (loom_gguf_open_mem(buf, size, "fuzz.gguf", &g, &e) == 0) {
        for (size_t i = 0; i < loom_gguf_n_tensors(g); i++) {
            const loom_gguf_tensor_t *t = loom_gguf_tensor(g, i);
            if ((const uint8_t *)t->data < buf || (const uint8_t *)t->data + t->nbytes > buf + size) abort();
        }
        loom_tokenizer_t *tok;
        if (loom_tokenizer_new(g, &tok, &e) == 0) {
            int32_t *ids;
            size_t n;
            static const char text[] = "Hello world <s> 42 \xc3\xbc";
            if (loom_tokenizer_encode(tok, text, sizeof text - 1, LOOM_TOK_ADD_SPECIAL | LOOM_TOK_PARSE_SPECIAL, &ids, &n, &e) == 0) {
                loom_buf_t out = LOOM_BUF_INIT;
                loom_tokenizer_decode(tok, ids, n, 1, &out);
                loom_buf_free(&out);
                free(ids);
            }
            loom_tokenizer_destroy(&tok);
        }
        loom_gguf_destroy(&g);
    }
    free(buf);
    return 0;
}
