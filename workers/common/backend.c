/* backend.c — the op registry (see backend.h). A small array: workers
 * register a handful of ops and look them up once per task batch. */
#include "workers/common/backend.h"
#include "common/grow.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    loom_op_fn fn;
    void *ud;
    int flags;
} op_t;

struct loom_ops {
    op_t *v;
    size_t n, cap;
    loom_ops_models_fn models; /* NULL: the worker loads no models */
    loom_ops_prefixes_fn prefixes; /* NULL: no prefix cache */
};

void loom_ops_set_prefixes_fn(loom_ops_t *ops, loom_ops_prefixes_fn fn)
{
    if (ops)
        ops->prefixes = fn;
}

loom_ops_prefixes_fn loom_ops_get_prefixes_fn(const loom_ops_t *ops)
{
    return ops ? ops->prefixes : NULL;
}

size_t loom_ops_prefixes(const loom_ops_t *ops, uint64_t *keys, uint32_t *tokens, size_t max)
{
    return ops && ops->prefixes ? ops->prefixes(keys, tokens, max) : 0;
}

void loom_ops_set_models_fn(loom_ops_t *ops, loom_ops_models_fn fn)
{
    if (ops)
        ops->models = fn;
}

loom_ops_models_fn loom_ops_get_models_fn(const loom_ops_t *ops)
{
    return ops ? ops->models : NULL;
}

void loom_ops_models(const loom_ops_t *ops, char *out, size_t n)
{
    if (!out || !n)
        return;
    out[0] = 0;
    if (ops && ops->models)
        ops->models(out, n);
}

loom_ops_t *loom_ops_new(void)
{
    return calloc(1, sizeof(loom_ops_t));
}

void loom_ops_destroy(loom_ops_t **pops)
{
    if (!pops || !*pops)
        return;
    for (size_t i = 0; i < (*pops)->n; i++)
        free((*pops)->v[i].name);
    free((*pops)->v);
    free(*pops);
    *pops = NULL;
}

static int valid_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

int loom_ops_add(loom_ops_t *ops, const char *name, loom_op_fn fn, void *ud, int flags)
{
    if (!ops || !fn || !valid_name(name))
        return LOOM_EINVAL;
    for (size_t i = 0; i < ops->n; i++)
        if (strcmp(ops->v[i].name, name) == 0) {
            ops->v[i].fn = fn;
            ops->v[i].ud = ud;
            ops->v[i].flags = flags;
            return 0;
        }
    if (LOOM_GROW(ops->v, ops->cap, ops->n + 1) != 0)
            return LOOM_ENOMEM;
    char *c = strdup(name);
    if (!c)
        return LOOM_ENOMEM;
    ops->v[ops->n++] = (op_t){c, fn, ud, flags};
    return 0;
}

int loom_ops_find(const loom_ops_t *ops, const char *name, loom_op_fn *fn, void **ud, int *flags)
{
    for (size_t i = 0; ops && name && i < ops->n; i++)
        if (strcmp(ops->v[i].name, name) == 0) {
            if (fn)
                *fn = ops->v[i].fn;
            if (ud)
                *ud = ops->v[i].ud;
            if (flags)
                *flags = ops->v[i].flags;
            return 0;
        }
    return LOOM_ENOTFOUND;
}

size_t loom_ops_count(const loom_ops_t *ops)
{
    return ops ? ops->n : 0;
}

const char *loom_ops_name(const loom_ops_t *ops, size_t i)
{
    return ops && i < ops->n ? ops->v[i].name : NULL;
}
