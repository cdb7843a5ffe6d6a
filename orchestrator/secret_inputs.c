/* secret_inputs.c — keeping secret inputs out of what loomd writes (see secret_inputs.h). */
#include "orchestrator/secret_inputs.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

char **loom_redact_collect(const loom_workflow_t *wf, const json_t *inputs, size_t *n)
{
    *n = 0;
    char **v = NULL;
    for (size_t i = 0; i < wf->n_inputs; i++) {
        const json_t *val = json_object_get(inputs, wf->inputs[i].name);
        if (!wf->inputs[i].secret || !val || json_is_null(val))
            continue;
        /* the value as text, and as it reads inside JSON text when that
         * differs (quotes, backslashes, control characters escaped) */
        char *forms[2] = {json_is_string(val) ? strdup(json_string_value(val))
                                              : json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY),
                          NULL};
        if (json_is_string(val)) {
            char *q = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
            size_t ql = q ? strlen(q) : 0;
            if (ql >= 2 && forms[0] && strncmp(q + 1, forms[0], ql - 2) != 0) {
                memmove(q, q + 1, ql - 2);
                q[ql - 2] = '\0';
                forms[1] = q;
            } else {
                free(q);
            }
        }
        for (int f = 0; f < 2 && forms[f]; f++) {
            char **nv = realloc(v, (*n + 1) * sizeof *nv);
            if (!nv) {
                free(forms[f]);
                continue;
            }
            v = nv;
            v[(*n)++] = forms[f];
        }
    }
    return v;
}

void loom_redact_free(char **secrets, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(secrets[i]);
    free(secrets);
}

char *loom_redact_inputs_json(const loom_workflow_t *wf, const json_t *inputs)
{
    json_t *copy = json_copy((json_t *)inputs);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < wf->n_inputs; i++)
        if (wf->inputs[i].secret && json_object_get(copy, wf->inputs[i].name))
            json_object_set_new(copy, wf->inputs[i].name, json_string(LOOM_REDACTED));
    char *s = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    return s;
}
