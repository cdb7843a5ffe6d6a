/* states.c — the vocabulary of states. See states.h. */
#include "protocol/states.h"

#include <ctype.h>
#include <pthread.h>
#include <string.h>

#include "loom/v1/rpc.pb-c.h"

#define MAX_VALUES 16
#define MAX_WORD 24

typedef struct {
    const ProtobufCEnumDescriptor *d;
    char words[MAX_VALUES][MAX_WORD]; /* by enum value */
} vocab_t;

static vocab_t runs = {.d = &loom__v1__run_state__descriptor};
static vocab_t steps = {.d = &loom__v1__step_state__descriptor};
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* RUN_SUCCEEDED -> succeeded: the name after its first '_', lower case. */
static void derive(vocab_t *v)
{
    for (unsigned i = 0; i < v->d->n_values; i++) {
        const ProtobufCEnumValue *e = &v->d->values[i];
        if (e->value < 0 || e->value >= MAX_VALUES)
            continue;
        const char *p = strchr(e->name, '_');
        p = p ? p + 1 : e->name;
        char *w = v->words[e->value];
        size_t n = 0;
        for (; p[n] && n + 1 < MAX_WORD; n++)
            w[n] = (char)tolower((unsigned char)p[n]);
        w[n] = 0;
    }
}

static void init(void)
{
    derive(&runs);
    derive(&steps);
}

static const char *word(vocab_t *v, int value)
{
    pthread_once(&once, init);
    if (value <= 0 || value >= MAX_VALUES || !v->words[value][0])
        return "unknown";
    return v->words[value];
}

const char *loom_run_state_word(int s) { return word(&runs, s); }
const char *loom_step_state_word(int s) { return word(&steps, s); }

int loom_run_state_from_word(const char *w)
{
    pthread_once(&once, init);
    if (!w)
        return 0;
    for (int i = 1; i < MAX_VALUES; i++)
        if (runs.words[i][0] && strcasecmp(w, runs.words[i]) == 0)
            return i;
    const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value_by_name(runs.d, w);
    return e ? e->value : 0;
}

loom_sla_verdict_t loom_sla_verdict(int run_state, double sla_ms, double elapsed_ms)
{
    if (sla_ms <= 0)
        return LOOM_SLA_NONE;
    switch (run_state) {
    case LOOM__V1__RUN_STATE__RUN_SUCCEEDED:
        return elapsed_ms <= sla_ms ? LOOM_SLA_MET : LOOM_SLA_MISSED;
    case LOOM__V1__RUN_STATE__RUN_FAILED:
    case LOOM__V1__RUN_STATE__RUN_CANCELLED:
        return LOOM_SLA_MISSED;
    default: /* queued or running: missed only once past it */
        return elapsed_ms > sla_ms ? LOOM_SLA_MISSED : LOOM_SLA_NONE;
    }
}

const char *loom_sla_word(loom_sla_verdict_t v)
{
    return v == LOOM_SLA_MET ? "met" : v == LOOM_SLA_MISSED ? "missed" : "";
}
