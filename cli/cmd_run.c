/* cmd_run.c — `loom run FILE --input k=v ... [--json]`: submits a workflow
 * to loomd, follows its events (one line per step change on stderr; live
 * on a terminal), then prints the outputs and the per-step timeline.
 * Exit: 0 succeeded, 1 failed/cancelled or bad input, 4 succeeded but
 * missed its SLA, 3 Loom itself failed (daemon down, internal error). */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/runview.h"
#include "common/buf.h"
#include "common/clock.h"

static const char usage_text[] =
    "usage: loom run FILE [--input NAME=VALUE]... [options]\n"
    "Runs a workflow on loomd and waits for it.\n\n"
    "  --input NAME=VALUE   a workflow input; VALUE is JSON when it parses as JSON,\n"
    "                       else a string; NAME=@PATH reads the string from a file\n"
    "  --inputs JSON        all inputs as one JSON object (@PATH: read from a file)\n"
    "  --sla-ms N           override the workflow's sla.latency_ms\n"
    "  --allow-sla-miss     run even when loomd finds no placement on its workers that\n"
    "                       meets the SLA, or no worker for an op (the run is then\n"
    "                       refused without this flag, exit 4)\n"
    "  --timeout-ms N       stop waiting after N ms (the run continues; exit 3)\n"
    "  --no-wait            print the run id and return at once\n"
    "  --quiet              no progress lines\n"
    "  --explain            with loomd --placement planner: print each plan's placements\n"
    "  --json               print the finished run (outputs, steps) as JSON\n"
    "  --endpoint URL       loomd's client endpoint (default $LOOM_ENDPOINT or\n"
    "                       tcp://127.0.0.1:7400)\n\n"
    "exit status: 0 succeeded, 1 failed or cancelled (or bad input), 4 succeeded\n"
    "but missed its SLA or was refused because it cannot meet it, 3 Loom system error\n";

static int read_file(const char *path, loom_buf_t *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if (loom_buf_append(b, tmp, n) != 0)
            break;
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    return bad ? -1 : 0;
}

static int add_input(json_t *inputs, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        fprintf(stderr, "loom run: --input wants NAME=VALUE, got '%s'\n", kv);
        return -1;
    }
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(eq - kv), kv);
    const char *v = eq + 1;
    json_t *val;
    if (v[0] == '@') {
        loom_buf_t b = LOOM_BUF_INIT;
        if (read_file(v + 1, &b) != 0) {
            fprintf(stderr, "loom run: --input %s: cannot read %s: %s\n", name, v + 1,
                    strerror(errno));
            loom_buf_free(&b);
            return -1;
        }
        val = json_stringn(b.data ? b.data : "", b.len);
        loom_buf_free(&b);
    } else {
        val = json_loads(v, JSON_DECODE_ANY, NULL);
        if (!val)
            val = json_string(v);
    }
    if (!val) {
        fprintf(stderr, "loom run: --input %s: value is not valid UTF-8\n", name);
        return -1;
    }
    json_object_set_new(inputs, name, val);
    return 0;
}

static int explain_plans; /* --explain: print the placements of PLANNED/REPLANNED events */

static void progress_line(const Loom__V1__RunEvent *ev, int tty)
{
    const char *step = ev->step_id && *ev->step_id ? ev->step_id : "";
    char line[1024];
    switch (ev->kind) {
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_STARTED:
        snprintf(line, sizeof line, "  ▸ %-24s started on %s%s%s", step,
                 ev->worker_id && *ev->worker_id ? ev->worker_id : "-",
                 ev->message && *ev->message ? "  " : "", ev->message ? ev->message : "");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FINISHED:
        snprintf(line, sizeof line, "  ✓ %-24s %.0f ms%s%s", step, ev->step_ms,
                 ev->message && *ev->message ? "  " : "", ev->message ? ev->message : "");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_SKIPPED:
        snprintf(line, sizeof line, "  - %-24s skipped (when: false)", step);
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_FAILED:
        snprintf(line, sizeof line, "  ✗ %-24s %s", step,
                 ev->error && ev->error->message ? ev->error->message : "failed");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_RETRIED:
        snprintf(line, sizeof line, "  ↻ %-24s %s", step, ev->message ? ev->message : "retry");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_STEP_PROGRESS:
        if (ev->text && *ev->text)
            return; /* token streams are not shown line by line */
        snprintf(line, sizeof line, "  · %-24s %s", step, ev->message ? ev->message : "");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_WORKER_LOST:
        snprintf(line, sizeof line, "  ! %-24s %s", step, ev->message ? ev->message : "worker lost");
        break;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_PLANNED:
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_REPLANNED:
        snprintf(line, sizeof line, "  %s %s", ev->kind == LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_PLANNED ? "◆ planned:" : "◆ re-planned:",
                 ev->message ? ev->message : "");
        fprintf(stderr, "%s\n", line);
        for (size_t i = 0; explain_plans && ev->plan && i < ev->plan->n_placements; i++) {
            const Loom__V1__Placement *x = ev->plan->placements[i];
            fprintf(stderr, "      %-26s %-14s on %-16s start %8.1f ms  %8.2f ms  $%.4g%s\n", x->step_id, x->op,
                    x->worker_id && *x->worker_id ? x->worker_id : x->device_model, x->predicted_start_ms,
                    x->predicted_ms, x->predicted_cost_usd, x->on_critical_path ? "  critical" : "");
        }
        return;
    case LOOM__V1__RUN_EVENT_KIND__RUN_EVENT_SLA_MISSED:
        snprintf(line, sizeof line, "  ! SLA missed: %s", ev->message ? ev->message : "");
        break;
    default:
        return;
    }
    fprintf(stderr, "%s%s\n", line, tty ? "" : "");
}

int loom_cmd_run(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *file = NULL, *endpoint = NULL;
    int json_out = 0, no_wait = 0, quiet = 0, allow_miss = 0;
    double sla_ms = 0;
    long timeout_ms = 0;
    json_t *inputs = json_object();
    int rc = LOOM_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0)
            json_out = 1;
        else if (strcmp(a, "--no-wait") == 0)
            no_wait = 1;
        else if (strcmp(a, "--quiet") == 0)
            quiet = 1;
        else if (strcmp(a, "--allow-sla-miss") == 0)
            allow_miss = 1;
        else if (strcmp(a, "--explain") == 0)
            explain_plans = 1;
        else if ((strcmp(a, "--input") == 0 || strcmp(a, "-i") == 0) && v) {
            if (add_input(inputs, v) != 0)
                goto out;
            i++;
        } else if (strcmp(a, "--inputs") == 0 && v) {
            json_t *all = v[0] == '@' ? json_load_file(v + 1, 0, NULL) : json_loads(v, 0, NULL);
            if (!json_is_object(all)) {
                fprintf(stderr, "loom run: --inputs must be a JSON object\n");
                json_decref(all);
                goto out;
            }
            json_object_update(inputs, all);
            json_decref(all);
            i++;
        } else if (strcmp(a, "--sla-ms") == 0 && v) {
            if (loom_cli_parse_sla_ms("run", "--sla-ms", v, &sla_ms) < 0)
                goto out;
            i++;
        } else if (strcmp(a, "--timeout-ms") == 0 && v) {
            timeout_ms = atol(v);
            i++;
        } else if (strcmp(a, "--endpoint") == 0 && v) {
            endpoint = v;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "loom run: unknown option '%s' (see loom run --help)\n", a);
            goto out;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "loom run: one workflow file at a time ('%s' is extra)\n", a);
            goto out;
        }
    }
    if (!file) {
        fprintf(stderr, "loom run: which workflow? usage: loom run FILE [--input NAME=VALUE]...\n");
        goto out;
    }
    loom_buf_t yaml = LOOM_BUF_INIT;
    if (read_file(file, &yaml) != 0) {
        fprintf(stderr, "loom run: cannot read %s: %s\n", file, strerror(errno));
        loom_buf_free(&yaml);
        rc = LOOM_EXIT_FAIL;
        goto out;
    }
    endpoint = loom_cli_endpoint(endpoint);
    loom_client_t *c = loom_cli_connect("run", endpoint);
    if (!c) {
        loom_buf_free(&yaml);
        rc = LOOM_EXIT_SYSTEM;
        goto out;
    }
    char abs[PATH_MAX];
    const char *name = realpath(file, abs) ? abs : file;
    char *inputs_s = json_dumps(inputs, JSON_COMPACT);
    Loom__V1__SubmitRequest rq = LOOM__V1__SUBMIT_REQUEST__INIT;
    rq.workflow_yaml = yaml.data ? yaml.data : "";
    rq.workflow_name = (char *)name;
    rq.inputs_json = inputs_s;
    rq.sla_latency_ms = sla_ms;
    /* tools with relative paths run from where the user typed the command */
    char cwd[PATH_MAX];
    Loom__V1__Metadata label = LOOM__V1__METADATA__INIT, allow = LOOM__V1__METADATA__INIT, *labels[2];
    rq.labels = labels;
    if (getcwd(cwd, sizeof cwd)) {
        label.key = "cwd";
        label.value = cwd;
        labels[rq.n_labels++] = &label;
    }
    if (allow_miss) { /* admission: run even if no placement fits */
        allow.key = "allow_sla_miss";
        allow.value = "true";
        labels[rq.n_labels++] = &allow;
    }
    Loom__V1__SubmitReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_submit(c, &rq, 10000, &rep, &err);
    free(inputs_s);
    loom_buf_free(&yaml);
    if (st != LOOM_STATUS_OK) {
        rc = loom_cli_rpc_error("run", endpoint, st, &err);
        if (err.code == LOOM_EINFEASIBLE || st == LOOM_STATUS_FAILED_PRECONDITION)
            rc = LOOM_EXIT_SLA; /* refused at admission: no placement fits */
        loom_client_destroy(&c);
        goto out;
    }
    char run_id[64];
    snprintf(run_id, sizeof run_id, "%s", rep->run_id);
    loom_pb_free(rep);
    if (no_wait) {
        printf("%s\n", run_id);
        loom_client_destroy(&c);
        rc = LOOM_EXIT_OK;
        goto out;
    }
    int tty = isatty(2);
    if (!quiet && !json_out)
        fprintf(stderr, "run %s submitted (%s)\n", run_id, file);
    Loom__V1__WatchRequest wr = LOOM__V1__WATCH_REQUEST__INIT;
    wr.run_id = run_id;
    loom_stream_t *stream = NULL;
    st = loom_client_watch(c, &wr, timeout_ms > 0 ? timeout_ms : 0, &stream, &err);
    if (st != LOOM_STATUS_OK) {
        rc = loom_cli_rpc_error("run", endpoint, st, &err);
        loom_client_destroy(&c);
        goto out;
    }
    for (;;) {
        ProtobufCMessage *item = NULL;
        int k = loom_stream_next(stream, 1000, &item, &err);
        if (k == LOOM_STREAM_END)
            break;
        if (k != LOOM_STREAM_ITEM)
            continue;
        if (!quiet && !json_out)
            progress_line((const Loom__V1__RunEvent *)item, tty);
        loom_pb_free(item);
    }
    st = loom_stream_status(stream);
    if (st != LOOM_STATUS_OK) {
        loom_err_t serr;
        loom_err_set(&serr, LOOM_EIO, "%s", loom_stream_message(stream));
        rc = loom_cli_rpc_error("run", endpoint, st, &serr);
        if (st == LOOM_STATUS_DEADLINE_EXCEEDED)
            fprintf(stderr, "  run %s continues; follow it with 'loom status %s'\n", run_id,
                    run_id);
        loom_stream_destroy(&stream);
        loom_client_destroy(&c);
        goto out;
    }
    loom_stream_destroy(&stream);
    Loom__V1__GetRequest gr = LOOM__V1__GET_REQUEST__INIT;
    gr.run_id = run_id;
    Loom__V1__GetReply *g = NULL;
    st = loom_client_get(c, &gr, 10000, &g, &err);
    loom_client_destroy(&c);
    if (st != LOOM_STATUS_OK) {
        rc = loom_cli_rpc_error("run", endpoint, st, &err);
        goto out;
    }
    const Loom__V1__Run *r = g->run;
    if (json_out) {
        json_t *j = loom_cli_run_json(r);
        char *s = json_dumps(j, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(j);
    } else {
        if (r->outputs_json && *r->outputs_json) {
            json_t *o = json_loads(r->outputs_json, 0, NULL);
            char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
            printf("%s\n", s ? s : r->outputs_json);
            free(s);
            json_decref(o);
        }
        loom_cli_print_run(stderr, r, 1);
    }
    if (r->state == LOOM__V1__RUN_STATE__RUN_SUCCEEDED)
        rc = r->sla_met ? LOOM_EXIT_OK : LOOM_EXIT_SLA;
    else
        rc = LOOM_EXIT_FAIL;
    loom_pb_free(g);
out:
    json_decref(inputs);
    return rc;
}
