/* llm_kvref.c — publish / fetch KV caches through the object store. */
#include "llm/llm_kvref.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "workers/common/objstore.h"

int loom_llm_kv_publish(const loom_kvcache_t *kv, int dtype, const char *worker, const char *run, json_t **ref,
                        loom_err_t *e) {
    *ref = NULL;
    loom_buf_t bin = LOOM_BUF_INIT;
    int rc = loom_kvcache_serialize_as(kv, dtype, &bin, e);
    char media[64];
    snprintf(media, sizeof media, "%s/%s", LOOM_KV_LAYOUT, loom_kvcache_dtype_name(dtype));
    loom_objref_t r;
    if (!rc) rc = loom_objstore_put_run(bin.data, bin.len, worker, media, run, &r, e);
    loom_buf_free(&bin);
    if (rc) return rc;
    if (!(*ref = loom_objref_to_json(&r))) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    return 0;
}

int loom_llm_kv_fetch(const json_t *ref, const loom_objfetch_opts_t *opts, loom_kvcache_t **kv,
                      loom_objfetch_stats_t *stats, loom_err_t *e) {
    *kv = NULL;
    loom_objref_t r;
    int rc = loom_objref_from_json(ref, &r, e);
    if (rc) return rc;
    if (strncmp(r.media, LOOM_KV_LAYOUT "/", strlen(LOOM_KV_LAYOUT) + 1))
        return loom_err_set(e, LOOM_EINVAL, "object %.16s… is \"%s\", not a %s KV cache", r.id, r.media, LOOM_KV_LAYOUT);
    void *data;
    size_t n;
    if ((rc = loom_objfetch(&r, opts, &data, &n, stats, e))) return rc;
    rc = loom_kvcache_parse(data, n, kv, e);
    free(data);
    return rc;
}
