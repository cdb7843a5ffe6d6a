/* runview.c — see runview.h. */
#include "cli/runview.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "protocol/keys.h"
#include "protocol/states.h"
#include "protocol/status.h"

const char *loom_cli_endpoint(const char *flag)
{
    if (flag && *flag)
        return flag;
    const char *env = getenv("LOOM_ENDPOINT");
    return env && *env ? env : LOOM_DEFAULT_ENDPOINT;
}

/* CURVE from the environment: $LOOM_SERVER_KEY (loomd's public key, Z85
 * or loomd.pub) and, for a loomd with a client allow-list, $LOOM_CLIENT_KEY
 * (this client's NAME.key). */
static int curve_from_env(loom_client_opts_t *o, char server[41], char pub[41], char sec[41],
                          loom_err_t *err)
{
    const char *sk = getenv("LOOM_SERVER_KEY"), *ck = getenv("LOOM_CLIENT_KEY");
    if (!sk || !*sk)
        return 0;
    int rc = loom_key_read_public(sk, server, err);
    if (!rc && ck && *ck)
        rc = loom_key_read_pair(ck, pub, sec, err);
    if (rc)
        return rc;
    o->server_public_key = server;
    if (ck && *ck) {
        o->client_public_key = pub;
        o->client_secret_key = sec;
    }
    return 0;
}

loom_client_t *loom_cli_connect(const char *cmd, const char *endpoint)
{
    loom_client_opts_t o = {.auth_token = getenv("LOOM_AUTH_TOKEN"), .client_name = "loom-cli/0.1"};
    loom_err_t err;
    loom_err_clear(&err);
    char server[41], pub[41], sec[41];
    loom_client_t *c = curve_from_env(&o, server, pub, sec, &err) == 0
                           ? loom_client_new(endpoint, &o, &err)
                           : NULL;
    if (!c) {
        char buf[1200];
        loom_err_format_long(&err, buf, sizeof buf);
        fprintf(stderr, "loom %s: %s\n", cmd, buf);
    }
    return c;
}

int loom_cli_json_errors;

/* {"error": {"command", "status", "code", "kind", "message", "detail", "hint", "endpoint"}} */
static int json_error(const char *cmd, const char *endpoint, int status, const loom_err_t *e,
                      const char *kind, int exit_code)
{
    json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:s}", "command", cmd, "status",
                          loom_status_name(status), "code", status, "kind", kind, "message", e->msg);
    if (e->detail[0])
        json_object_set_new(o, "detail", json_string(e->detail));
    if (e->hint[0])
        json_object_set_new(o, "hint", json_string(e->hint));
    if (e->file[0])
        json_object_set_new(o, "location", json_pack("{s:s,s:i,s:i}", "file", e->file, "line",
                                                     e->line, "column", e->col));
    if (strcmp(kind, "unavailable") == 0)
        json_object_set_new(o, "endpoint", json_string(endpoint));
    json_t *w = json_pack("{s:o}", "error", o);
    char *s = json_dumps(w, JSON_INDENT(2));
    printf("%s\n", s ? s : "{\"error\": {}}");
    free(s);
    json_decref(w);
    return exit_code;
}

int loom_cli_rpc_error(const char *cmd, const char *endpoint, int status, const loom_err_t *err)
{
    /* The server's message may already carry "STATUS: " and the location;
     * print each once. */
    loom_err_t e = *err;
    const char *name = loom_status_name(status);
    size_t nl = strlen(name);
    if (strncmp(e.msg, name, nl) == 0 && e.msg[nl] == ':' && e.msg[nl + 1] == ' ')
        memmove(e.msg, e.msg + nl + 2, strlen(e.msg + nl + 2) + 1);
    if ((e.file[0] && strstr(e.msg, e.file)) || (e.field[0] && strstr(e.msg, e.field))) {
        e.file[0] = 0;
        e.line = e.col = 0;
        e.field[0] = 0;
    }
    if (loom_cli_json_errors) {
        switch (status) {
        case LOOM_STATUS_INVALID_ARGUMENT: case LOOM_STATUS_NOT_FOUND:
        case LOOM_STATUS_ALREADY_EXISTS: case LOOM_STATUS_FAILED_PRECONDITION:
        case LOOM_STATUS_OUT_OF_RANGE: case LOOM_STATUS_PERMISSION_DENIED:
        case LOOM_STATUS_UNAUTHENTICATED:
            return json_error(cmd, endpoint, status, &e, "request", LOOM_EXIT_FAIL);
        case LOOM_STATUS_DEADLINE_EXCEEDED: case LOOM_STATUS_UNAVAILABLE:
            return json_error(cmd, endpoint, status, &e, "unavailable", LOOM_EXIT_SYSTEM);
        default:
            return json_error(cmd, endpoint, status, &e, "system", LOOM_EXIT_SYSTEM);
        }
    }
    char buf[1600];
    loom_err_format_long(&e, buf, sizeof buf);
    switch (status) {
    case LOOM_STATUS_INVALID_ARGUMENT:
    case LOOM_STATUS_NOT_FOUND:
    case LOOM_STATUS_ALREADY_EXISTS:
    case LOOM_STATUS_FAILED_PRECONDITION:
    case LOOM_STATUS_OUT_OF_RANGE:
    case LOOM_STATUS_PERMISSION_DENIED:
    case LOOM_STATUS_UNAUTHENTICATED:
        fprintf(stderr, "loom %s: error in your request (%s): %s\n", cmd, loom_status_name(status),
                buf);
        return LOOM_EXIT_FAIL;
    case LOOM_STATUS_DEADLINE_EXCEEDED:
    case LOOM_STATUS_UNAVAILABLE:
        fprintf(stderr, "loom %s: loomd at %s did not answer (%s): %s\n", cmd, endpoint,
                loom_status_name(status), buf);
        fprintf(stderr, "  hint: is loomd running? set --endpoint or LOOM_ENDPOINT\n");
        return LOOM_EXIT_SYSTEM;
    default:
        fprintf(stderr, "loom %s: Loom system error (%s): %s\n", cmd, loom_status_name(status), buf);
        return LOOM_EXIT_SYSTEM;
    }
}

int loom_cli_parse_run_args(const char *cmd, int argc, char **argv, const char *opt, int one_run,
                            const char *usage, loom_cli_run_args_t *out)
{
    out->run = NULL;
    out->json = 0;
    const char *endpoint = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            out->json = 1;
        else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else if (opt && strcmp(argv[i], opt) == 0 && i + 1 < argc)
            out->opt_val = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "loom %s: unknown option '%s'\n", cmd, argv[i]);
            return LOOM_EXIT_USAGE;
        } else if (!out->run)
            out->run = argv[i];
        else if (one_run) {
            fprintf(stderr, "loom %s: one run at a time\n", cmd);
            return LOOM_EXIT_USAGE;
        }
    }
    if (!out->run) {
        fprintf(stderr, "%s\n", usage);
        return LOOM_EXIT_USAGE;
    }
    out->endpoint = loom_cli_endpoint(endpoint);
    return LOOM_EXIT_OK;
}

const char *loom_cli_run_state(int s)
{
    return loom_run_state_word(s);
}

const char *loom_cli_step_state(int s)
{
    return loom_step_state_word(s);
}

const char *loom_cli_device(int k)
{
    return k == 1 ? "cpu" : k == 2 ? "gpu" : k == 3 ? "npu" : "";
}

/* A JSON text field as a value (falls back to the string). */
static json_t *jtext(const char *s)
{
    if (!s || !*s)
        return json_null();
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
}

json_t *loom_cli_run_json(const Loom__V1__Run *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_string(r->run_id));
    json_object_set_new(o, "workflow", json_string(r->workflow_name));
    json_object_set_new(o, "state", json_string(loom_cli_run_state(r->state)));
    json_object_set_new(o, "submitted_ms", json_integer(r->submitted_unix_ms));
    json_object_set_new(o, "finished_ms", json_integer(r->finished_unix_ms));
    json_object_set_new(o, "elapsed_ms", json_real(r->elapsed_ms));
    json_object_set_new(o, "sla_ms", json_real(r->sla_latency_ms));
    json_object_set_new(o, "sla_met", json_boolean(r->sla_met));
    json_object_set_new(o, "sla", json_string(r->sla ? r->sla : ""));
    if (r->cost_usd > 0)
        json_object_set_new(o, "cost_usd", json_real(r->cost_usd));
    if (r->n_labels) {
        json_t *l = json_object();
        for (size_t i = 0; i < r->n_labels; i++)
            json_object_set_new(l, r->labels[i]->key, json_string(r->labels[i]->value));
        json_object_set_new(o, "labels", l);
    }
    if (r->inputs_json && *r->inputs_json)
        json_object_set_new(o, "inputs", jtext(r->inputs_json));
    if (r->outputs_json && *r->outputs_json)
        json_object_set_new(o, "outputs", jtext(r->outputs_json));
    if (r->error)
        json_object_set_new(o, "error", json_string(r->error->message));
    if (r->n_steps) {
        json_t *steps = json_array();
        for (size_t i = 0; i < r->n_steps; i++) {
            const Loom__V1__StepStatus *s = r->steps[i];
            json_t *j = json_object();
            json_object_set_new(j, "step", json_string(s->step_id));
            json_object_set_new(j, "op", json_string(s->op));
            json_object_set_new(j, "state", json_string(loom_cli_step_state(s->state)));
            json_object_set_new(j, "attempt", json_integer(s->attempt));
            json_object_set_new(j, "worker", json_string(s->worker_id));
            json_object_set_new(j, "device", json_string(loom_cli_device(s->device_kind)));
            json_object_set_new(j, "started_ms", json_integer(s->started_unix_ms));
            json_object_set_new(j, "finished_ms", json_integer(s->finished_unix_ms));
            json_object_set_new(j, "elapsed_ms", json_real(s->elapsed_ms));
            if (s->output_json && *s->output_json && !s->output_truncated)
                json_object_set_new(j, "output", jtext(s->output_json));
            if (s->output_truncated)
                json_object_set_new(j, "output_truncated", json_true());
            if (s->error)
                json_object_set_new(j, "error", json_string(s->error->message));
            if (s->reason && *s->reason)
                json_object_set_new(j, "reason", json_string(s->reason));
            json_array_append_new(steps, j);
        }
        json_object_set_new(o, "steps", steps);
    }
    return o;
}

void loom_cli_print_run(FILE *f, const Loom__V1__Run *r, int steps)
{
    fprintf(f, "run %s  workflow %s  %s  %.0f ms", r->run_id, r->workflow_name,
            loom_cli_run_state(r->state), r->elapsed_ms);
    if (r->sla_latency_ms > 0)
        fprintf(f, "  sla %.0f ms%s%s", r->sla_latency_ms, r->sla && r->sla[0] ? " " : "",
                r->sla ? r->sla : "");
    fprintf(f, "\n");
    if (r->error)
        fprintf(f, "  error: %s\n", r->error->message);
    if (!steps || !r->n_steps)
        return;
    int64_t t0 = r->submitted_unix_ms;
    fprintf(f, "  %-28s %-14s %-10s %8s %8s  %-4s %s\n", "step", "op", "state", "start", "ms",
            "dev", "worker");
    size_t shown = r->n_steps > 40 ? 30 : r->n_steps;
    for (size_t i = 0; i < r->n_steps; i++) {
        if (i == shown) {
            fprintf(f, "  ... %zu more steps (loom status %s --json shows all)\n", r->n_steps - shown,
                    r->run_id);
            break;
        }
        const Loom__V1__StepStatus *s = r->steps[i];
        char start[32] = "-";
        if (s->started_unix_ms)
            snprintf(start, sizeof start, "+%lld", (long long)(s->started_unix_ms - t0));
        fprintf(f, "  %-28s %-14s %-10s %8s %8.0f  %-4s %s%s%s\n", s->step_id, s->op,
                loom_cli_step_state(s->state), start, s->elapsed_ms,
                loom_cli_device(s->device_kind), s->worker_id,
                s->attempt > 1 ? "  attempt " : "", s->attempt > 1 ? "" : "");
        if (s->attempt > 1)
            fprintf(f, "  %-28s (attempt %u)\n", "", s->attempt);
        if (s->error)
            fprintf(f, "  %-28s error: %s\n", "", s->error->message);
    }
}
