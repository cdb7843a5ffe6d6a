/* cmd_logs.c — `loom logs RUN STEP [--follow] [--json]`: what one step
 * did: state, attempts, worker and device, times, cost, its output and
 * its error; with --follow, its streamed text (LLM tokens) and events live
 * until it ends. STEP also matches the step's granular tasks
 * (STEP/prefill, ...). An output that went by reference (loomd keeps only
 * {"$object": ...}, workers/common/outref.h) is fetched from the worker that
 * holds it, unless --refs. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"
#include "workers/common/outref.h"

static const char usage_text[] =
    "usage: loom logs RUN STEP [options]\n"
    "Shows one step of a run: state, attempts, worker, times, output and error.\n\n"
    "  --follow             stream the step's text (LLM tokens) and events until it ends\n"
    "  --json               the step record(s) as JSON\n"
    "  --refs               show outputs that went by reference as the reference\n"
    "                       loomd stores (default: fetch their bytes from the worker)\n"
    "  --endpoint URL       loomd's client endpoint (default $LOOM_ENDPOINT or\n"
    "                       tcp://127.0.0.1:7400)\n\n"
    "exit status: 0 shown, 1 unknown run or step, 3 Loom system error\n";

static int matches(const char *id, const char *step)
{
    size_t n = strlen(step);
    return id && strncmp(id, step, n) == 0 && (id[n] == 0 || id[n] == '/' || id[n] == '[');
}

/* Streams the step's events until it succeeds, fails or the run ends. */
static int follow_step(loom_client_t *c, const char *endpoint, const char *run, const char *step)
{
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = (char *)run;
    wr.include_progress = 1;
    loom_stream_t *s = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_watch(c, &wr, 0, &s, &err);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("logs", endpoint, st, &err);
    int mid_line = 0, done = 0;
    while (!done) {
        ProtobufCMessage *item = NULL;
        int k = loom_stream_next(s, 1000, &item, &err);
        if (k == LOOM_STREAM_END)
            break;
        if (k != LOOM_STREAM_ITEM)
            continue;
        const Loom__V1__RunEvent *ev = (const Loom__V1__RunEvent *)item;
        if (matches(ev->step_id, step)) {
            if (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS && ev->text &&
                *ev->text) {
                fputs(ev->text, stdout);
                fflush(stdout);
                mid_line = ev->text[strlen(ev->text) - 1] != '\n';
            } else if (ev->message && *ev->message) {
                fprintf(stderr, "%s[%s] %s\n", mid_line ? "\n" : "", ev->step_id, ev->message);
                mid_line = 0;
            }
            done = ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FINISHED ||
                   ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_SKIPPED ||
                   (ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FAILED &&
                    ev->step_state == LOOM__V1__STEP_STATE__STEP_FAILED);
        }
        loom_pb_free(item);
    }
    if (mid_line)
        fputc('\n', stdout);
    loom_stream_destroy(&s);
    return LOOM_EXIT_OK;
}

/* v with the step outputs it references fetched from their workers
 * (on failure: v as it is, and why on stderr). Takes v. */
static json_t *fetch_refs(json_t *v, const char *step)
{
    if (!loom_outref_has(v))
        return v;
    json_t *copy = json_deep_copy(v);
    loom_err_t err;
    loom_err_clear(&err);
    if (copy && loom_outref_resolve(&copy, NULL, NULL, NULL, &err) == 0) {
        json_decref(v);
        return copy;
    }
    char msg[1100];
    loom_err_format(&err, msg, sizeof msg);
    fprintf(stderr, "loom logs: cannot fetch the output of %s by reference (%s); showing the reference\n",
            step, copy ? msg : "out of memory");
    json_decref(copy);
    return v;
}

static void print_step(const Loom__V1__StepStatus *s, int64_t t0, int refs)
{
    printf("step %s  op %s  %s  attempt %u\n", s->step_id, s->op, loom_cli_step_state(s->state),
           s->attempt);
    if (s->worker_id && *s->worker_id)
        printf("  worker   %s (%s)\n", s->worker_id, loom_cli_device(s->device_kind));
    if (s->started_unix_ms)
        printf("  started  +%lld ms   finished %s%lld ms   took %.0f ms\n",
               (long long)(s->started_unix_ms - t0), s->finished_unix_ms ? "+" : "-",
               (long long)(s->finished_unix_ms ? s->finished_unix_ms - t0 : 0), s->elapsed_ms);
    if (s->cost_usd > 0)
        printf("  cost     $%.6f\n", s->cost_usd);
    if (s->error) {
        printf("  error    %s\n", s->error->message);
        if (s->error->detail && *s->error->detail)
            printf("  detail   %s\n", s->error->detail);
        if (s->error->hint && *s->error->hint)
            printf("  hint     %s\n", s->error->hint);
    }
    if (s->output_json && *s->output_json) {
        json_t *o = json_loads(s->output_json, JSON_DECODE_ANY, NULL);
        if (!refs)
            o = fetch_refs(o, s->step_id);
        char *txt = o ? json_dumps(o, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
        printf("  output%s\n%s\n", s->output_truncated ? " (truncated)" : "",
               txt ? txt : s->output_json);
        free(txt);
        json_decref(o);
    }
}

int loom_cmd_logs(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *run = NULL, *step = NULL, *endpoint = NULL;
    int json_out = 0, follow = 0, refs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0)
            json_out = 1;
        else if (strcmp(a, "--refs") == 0)
            refs = 1;
        else if (strcmp(a, "--follow") == 0 || strcmp(a, "-f") == 0)
            follow = 1;
        else if (strcmp(a, "--endpoint") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else if (a[0] == '-') {
            fprintf(stderr, "loom logs: unknown option '%s' (see loom logs --help)\n", a);
            return LOOM_EXIT_USAGE;
        } else if (!run)
            run = a;
        else if (!step)
            step = a;
        else {
            fprintf(stderr, "loom logs: one run and one step ('%s' is extra)\n", a);
            return LOOM_EXIT_USAGE;
        }
    }
    if (!run || !step) {
        fprintf(stderr, "usage: loom logs RUN STEP [--follow] [--json]\n");
        return LOOM_EXIT_USAGE;
    }
    endpoint = loom_cli_endpoint(endpoint);
    loom_client_t *c = loom_cli_connect("logs", endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    int rc = follow ? follow_step(c, endpoint, run, step) : LOOM_EXIT_OK;
    Loom__V1__GetRequest gr = LOOM__V1__GET_REQUEST__INIT;
    gr.run_id = (char *)run;
    Loom__V1__GetReply *g = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = rc == LOOM_EXIT_OK ? loom_client_get(c, &gr, 10000, &g, &err) : LOOM_STATUS_OK;
    loom_client_destroy(&c);
    if (rc != LOOM_EXIT_OK)
        return rc;
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("logs", endpoint, st, &err);
    const Loom__V1__Run *r = g->run;
    json_t *all = json_out ? loom_cli_run_json(r) : NULL, *picked = json_array();
    size_t found = 0;
    for (size_t i = 0; i < r->n_steps; i++) {
        if (!matches(r->steps[i]->step_id, step))
            continue;
        found++;
        if (json_out) {
            json_t *rec = json_array_get(json_object_get(all, "steps"), i), *o = json_object_get(rec, "output");
            if (o && !refs)
                json_object_set_new(rec, "output", fetch_refs(json_incref(o), r->steps[i]->step_id));
            json_array_append(picked, rec);
        } else
            print_step(r->steps[i], r->submitted_unix_ms, refs);
    }
    if (!found) {
        fprintf(stderr, "loom logs: run %s has no step '%s' (steps:", run, step);
        for (size_t i = 0; i < r->n_steps && i < 20; i++)
            fprintf(stderr, " %s", r->steps[i]->step_id);
        fprintf(stderr, ")\n");
        rc = LOOM_EXIT_FAIL;
    } else if (json_out) {
        char *s = json_dumps(found == 1 ? json_array_get(picked, 0) : picked, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    }
    json_decref(picked);
    json_decref(all);
    loom_pb_free(g);
    return rc;
}
