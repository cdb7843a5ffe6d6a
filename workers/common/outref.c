/* outref.c — step outputs by reference: offload large parts of an output to
 * the object store, resolve references in a task input. */
#include "workers/common/outref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/common/objstore.h"
#include "workers/common/secrets.h"

typedef struct {
    size_t over, moved;
    const char *worker, *run;
    loom_err_t *e;
    int rc;
} offload_t;

/* Stores *slot's compact JSON and replaces *slot by its reference. */
static size_t store(offload_t *o, json_t **slot) {
    char *text = json_dumps(*slot, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        o->rc = loom_err_set(o->e, LOOM_ENOMEM, "out of memory serialising an output");
        return 0;
    }
    size_t n = strlen(text);
    char *red = loom_secrets_count() ? loom_secrets_redact(text, n, &n) : NULL; /* as inline outputs are */
    if (red) {
        free(text);
        text = red;
    }
    loom_objref_t r;
    o->rc = loom_objstore_put_run(text, n, o->worker, LOOM_OUTREF_MEDIA, o->run, &r, o->e);
    free(text);
    json_t *ref = o->rc ? NULL : loom_objref_to_json(&r);
    if (!o->rc && !ref) o->rc = loom_err_set(o->e, LOOM_ENOMEM, "out of memory");
    if (o->rc) return 0;
    json_decref(*slot);
    *slot = ref;
    o->moved += n;
    return 400; /* about a reference's size */
}

/* The compact JSON size of v (strings without their escapes) after its
 * large children went to the store. */
static size_t walk(offload_t *o, json_t *v) {
    size_t n = 2;
    if (json_is_string(v)) return json_string_length(v) + 2;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, c) {
            size_t s = walk(o, c);
            if (!o->rc && s > o->over) {
                json_incref(c);
                s = store(o, &c);
                json_object_set_new(v, k, c);
            }
            if (o->rc) return 0;
            n += strlen(k) + 4 + s;
        }
        return n;
    }
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *c = json_array_get(v, i);
            size_t s = walk(o, c);
            if (!o->rc && s > o->over) {
                json_incref(c);
                s = store(o, &c);
                json_array_set_new(v, i, c);
            }
            if (o->rc) return 0;
            n += s + 1;
        }
        return n;
    }
    return 24; /* number, true, false, null */
}

int loom_outref_offload(json_t **v, size_t over, const char *worker, const char *run, size_t *moved, loom_err_t *e) {
    offload_t o = {.over = over < 1024 ? 1024 : over, .worker = worker, .run = run, .e = e};
    if (moved) *moved = 0;
    size_t s = walk(&o, *v);
    if (!o.rc && s > o.over) store(&o, v);
    if (moved) *moved = o.moved;
    return o.rc;
}

/* ---- resolving ------------------------------------------------------------ */

typedef struct {
    const loom_objfetch_opts_t *opts;
    size_t fetched;
    char *lost;             /* the id of the reference that failed (may be NULL) */
    loom_err_t *e;
} resolve_t;

static int is_output_ref(const json_t *v) {
    const char *m = json_string_value(json_object_get(json_object_get(v, "$object"), "media"));
    return m && !strcmp(m, LOOM_OUTREF_MEDIA);
}

static int resolve(resolve_t *r, json_t **slot);

/* Fetches the value *slot names into *slot. */
static int fetch(resolve_t *r, json_t **slot) {
    loom_objref_t ref;
    int rc = loom_objref_from_json(*slot, &ref, r->e);
    void *data = NULL;
    size_t n = 0;
    if (!rc) rc = loom_objfetch(&ref, r->opts, &data, &n, NULL, r->e);
    if (rc) {
        char why[sizeof r->e->msg];
        snprintf(why, sizeof why, "%s", r->e->msg);
        loom_err_set(r->e, rc, "cannot fetch an upstream output by reference from worker %s: %s",
                     ref.worker[0] ? ref.worker : "?", why);
        loom_err_hint(r->e, "the worker that holds it must stay up (or keep its object directory) until its consumers ran");
        if (r->lost) snprintf(r->lost, 65, "%s", ref.id);
        return rc;
    }
    json_error_t je;
    json_t *v = json_loadb(data, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    free(data);
    if (!v) {
        if (r->lost) snprintf(r->lost, 65, "%s", ref.id);
        return loom_err_set(r->e, LOOM_EPARSE, "object %.16s… of worker %s is not JSON: %s", ref.id, ref.worker, je.text);
    }
    r->fetched += n;
    json_decref(*slot);
    *slot = v;
    return resolve(r, slot); /* it may hold references itself */
}

static int resolve(resolve_t *r, json_t **slot) {
    json_t *v = *slot;
    if (json_is_object(v)) {
        if (is_output_ref(v)) return fetch(r, slot);
        if (loom_objref_is(v)) return 0; /* a KV cache or other op-specific object: the op's */
        const char *k;
        json_t *c;
        void *tmp;
        json_object_foreach_safe(v, tmp, k, c) {
            if (!json_is_object(c) && !json_is_array(c)) continue;
            json_incref(c);
            int rc = resolve(r, &c);
            json_object_set_new(v, k, c);
            if (rc) return rc;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            json_t *c = json_array_get(v, i);
            if (!json_is_object(c) && !json_is_array(c)) continue;
            json_incref(c);
            int rc = resolve(r, &c);
            json_array_set_new(v, i, c);
            if (rc) return rc;
        }
    }
    return 0;
}

int loom_outref_has(const json_t *v) {
    if (json_is_object(v)) {
        if (is_output_ref(v)) return 1;
        const char *k;
        const json_t *c;
        json_object_foreach((json_t *)v, k, c) if (loom_outref_has(c)) return 1;
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (loom_outref_has(json_array_get(v, i))) return 1;
    }
    return 0;
}

int loom_outref_resolve(json_t **v, const loom_objfetch_opts_t *opts, size_t *fetched, char lost[65], loom_err_t *e) {
    if (lost) lost[0] = 0;
    resolve_t r = {.opts = opts, .lost = lost, .e = e};
    int rc = resolve(&r, v);
    if (fetched) *fetched = r.fetched;
    return rc;
}
