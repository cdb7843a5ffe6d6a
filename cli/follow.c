/* follow.c — see follow.h. */
#include "cli/follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/runview.h"
#include "common/clock.h"

/* The step whose tokens are being streamed on the current line ("" = none). */
typedef struct {
    char step[128];
    int explain;
} follow_t;

static void end_token_line(follow_t *f)
{
    if (f->step[0]) {
        fputc('\n', stderr);
        f->step[0] = 0;
    }
}

/* LLM tokens of a STEP_PROGRESS event, appended to the step's line. */
static void tokens(follow_t *f, const Loom__V1__RunEvent *ev)
{
    const char *step = ev->step_id ? ev->step_id : "";
    if (strcmp(f->step, step) != 0) {
        end_token_line(f);
        snprintf(f->step, sizeof f->step, "%s", step);
        fprintf(stderr, "  » %-24s ", step);
    }
    for (const char *p = ev->text; *p; p++) /* keep the stream on one indented line */
        fputc(*p == '\n' ? ' ' : *p, stderr);
    fflush(stderr);
}

static void progress_line(follow_t *f, const Loom__V1__RunEvent *ev)
{
    const char *step = ev->step_id && *ev->step_id ? ev->step_id : "";
    const char *msg = ev->message ? ev->message : "";
    char line[1024];
    switch (ev->kind) {
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS:
        if (ev->text && *ev->text) {
            tokens(f, ev);
            return;
        }
        snprintf(line, sizeof line, "  · %-24s %s", step, msg);
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_STARTED:
        snprintf(line, sizeof line, "  ▸ %-24s started on %s%s%s", step,
                 ev->worker_id && *ev->worker_id ? ev->worker_id : "-", *msg ? "  " : "", msg);
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FINISHED:
        snprintf(line, sizeof line, "  ✓ %-24s %.0f ms%s%s", step, ev->step_ms, *msg ? "  " : "",
                 msg);
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_SKIPPED:
        snprintf(line, sizeof line, "  - %-24s skipped (when: false)", step);
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FAILED:
        snprintf(line, sizeof line, "  ✗ %-24s %s", step,
                 ev->error && ev->error->message ? ev->error->message : "failed");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_RETRIED:
        snprintf(line, sizeof line, "  ↻ %-24s %s", step, *msg ? msg : "retry");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_WORKER_LOST:
        snprintf(line, sizeof line, "  ! %-24s %s", step, *msg ? msg : "worker lost");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_PLANNED:
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_REPLANNED:
        end_token_line(f);
        fprintf(stderr, "  %s %s\n",
                ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_PLANNED ? "◆ planned:"
                                                                        : "◆ re-planned:",
                msg);
        for (size_t i = 0; f->explain && ev->plan && i < ev->plan->n_placements; i++) {
            const Loom__V1__Placement *x = ev->plan->placements[i];
            fprintf(stderr, "      %-26s %-14s on %-16s start %8.1f ms  %8.2f ms  $%.4g%s\n",
                    x->step_id, x->op, x->worker_id && *x->worker_id ? x->worker_id : x->device_model,
                    x->predicted_start_ms, x->predicted_ms, x->predicted_cost_usd,
                    x->on_critical_path ? "  critical" : "");
        }
        return;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_SLA_AT_RISK:
        snprintf(line, sizeof line, "  ! SLA at risk: %s", msg);
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_SLA_MISSED:
        snprintf(line, sizeof line, "  ! SLA missed: %s", msg);
        break;
    default:
        return;
    }
    end_token_line(f);
    fprintf(stderr, "%s\n", line);
}

int loom_cli_follow(loom_client_t *c, const char *cmd, const char *endpoint, const char *run_id,
                    const loom_cli_follow_opts_t *o)
{
    follow_t f = {.explain = o->explain};
    int show = !o->quiet && !o->json;
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = (char *)run_id;
    wr.include_progress = show && o->tokens;
    loom_stream_t *stream = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    uint64_t until = o->timeout_ms > 0 ? loom_clock_ms() + (uint64_t)o->timeout_ms : 0;
    int st = loom_client_watch(c, &wr, o->timeout_ms > 0 ? o->timeout_ms : 0, &stream, &err);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error(cmd, endpoint, st, &err);
    for (int rewatch = 0;;) {
        ProtobufCMessage *item = NULL;
        int k = loom_stream_next(stream, 1000, &item, &err);
        if (k == LOOM_STREAM_END) {
            /* loomd went (failover: the client moves to the next leader):
             * the run goes on; watch it again from the last event seen */
            if (loom_stream_status(stream) != LOOM_STATUS_UNAVAILABLE || ++rewatch > 60 ||
                (until && loom_clock_ms() + 500 >= until))
                break;
            loom_stream_destroy(&stream);
            loom_sleep_ms(rewatch < 5 ? 100 : 500);
            int64_t left = until ? (int64_t)(until - loom_clock_ms()) : 0;
            if (loom_client_watch(c, &wr, left, &stream, &err) != LOOM_STATUS_OK)
                return loom_cli_rpc_error(cmd, endpoint, LOOM_STATUS_UNAVAILABLE, &err);
            continue;
        }
        if (k != LOOM_STREAM_ITEM)
            continue;
        const Loom__V1__RunEvent *ev = (const Loom__V1__RunEvent *)item;
        if (ev->seq > wr.after_seq && ev->kind != LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS)
            wr.after_seq = ev->seq; /* progress events are not replayed */
        if (show)
            progress_line(&f, ev);
        loom_pb_free(item);
    }
    end_token_line(&f);
    st = loom_stream_status(stream);
    if (st != LOOM_STATUS_OK) {
        loom_err_t serr;
        loom_err_set(&serr, LOOM_EIO, "%s", loom_stream_message(stream));
        int rc = loom_cli_rpc_error(cmd, endpoint, st, &serr);
        if (st == LOOM_STATUS_DEADLINE_EXCEEDED && !o->json)
            fprintf(stderr, "  run %s continues; follow it with 'loom watch %s'\n", run_id, run_id);
        loom_stream_destroy(&stream);
        return rc;
    }
    loom_stream_destroy(&stream);
    Loom__V1__GetRequest gr = LOOM__V1__GET_REQUEST__INIT;
    gr.run_id = (char *)run_id;
    Loom__V1__GetReply *g = NULL;
    st = loom_client_get(c, &gr, 10000, &g, &err);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error(cmd, endpoint, st, &err);
    const Loom__V1__Run *r = g->run;
    if (o->json) {
        json_t *j = loom_cli_run_json(r);
        char *s = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        if (r->outputs_json && *r->outputs_json) {
            json_t *out = json_loads(r->outputs_json, 0, NULL);
            char *s = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
            printf("%s\n", s ? s : r->outputs_json);
            free(s);
            json_decref(out);
        }
        loom_cli_print_run(stderr, r, 1);
    }
    int rc;
    if (r->state == LOOM__V1__RUN_STATE__RUN_SUCCEEDED)
        rc = r->sla_latency_ms <= 0 || r->sla_met ? LOOM_EXIT_OK : LOOM_EXIT_SLA;
    else
        rc = LOOM_EXIT_FAIL;
    loom_pb_free(g);
    return rc;
}
