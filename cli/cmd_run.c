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

#include "cli/follow.h"
#include "cli/runview.h"
#include "common/buf.h"
#include "common/clock.h"

static const char usage_text[] =
    "usage: loom run FILE [--input NAME=VALUE]... [options]\n"
    "Runs a workflow on loomd and waits for it (FILE - reads it from standard input).\n\n"
    "  --input NAME=VALUE   a workflow input; VALUE is JSON when it parses as JSON,\n"
    "                       else a string; NAME=@PATH reads the string from a file\n"
    "  --inputs JSON        all inputs as one JSON object (@PATH: read from a file)\n"
    "  --sla-ms N           override the workflow's sla.latency_ms\n"
    "  --label KEY=VALUE    a label stored with the run (repeatable)\n"
    "  --idempotency-key K  a retry with the same key returns the first run, not a new one\n"
    "  --plan FILE.mlir     follow this partitioned module instead of planning the run:\n"
    "                       each op runs on the worker its device function names (as\n"
    "                       `loom status RUN --mlir` prints it, edited or not); loomd\n"
    "                       verifies it first and refuses it with MLIR's diagnostic\n"
    "  --stream, --no-stream  show LLM tokens as they are generated (default: when\n"
    "                       stderr is a terminal)\n"
    "  --allow-sla-miss     run even when loomd finds no placement on its workers that\n"
    "                       meets the SLA, or no worker for an op (the run is then\n"
    "                       refused without this flag, exit 4)\n"
    "  --timeout-ms N       stop waiting after N ms (the run continues; exit 3)\n"
    "  --no-wait            print the run id and return at once (follow it later with\n"
    "                       'loom watch RUN')\n"
    "  --quiet              no progress lines\n"
    "  --explain            with loomd --placement planner: print each plan's placements\n"
    "  --json               print the finished run (outputs, steps) as JSON\n"
    "  --endpoint URL       loomd's client endpoint (default $LOOM_ENDPOINT or\n"
    "                       tcp://127.0.0.1:7400); several loomd (failover):\n"
    "                       URL,URL,... (every command takes a list)\n\n"
    "exit status: 0 succeeded, 1 failed or cancelled (or bad input), 4 succeeded\n"
    "but missed its SLA or was refused because it cannot meet it, 3 Loom system error\n";

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
        if (loom_buf_read_file(&b, v + 1) != 0) {
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

int loom_cmd_run(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *file = NULL, *endpoint = NULL;
    int json_out = 0, no_wait = 0, quiet = 0, explain = 0, stream_tokens = -1, allow_miss = 0;
    const char *idempotency_key = NULL, *plan_file = NULL;
    json_t *labels = json_object(); /* KEY -> VALUE, the last given wins */
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
            explain = 1;
        else if (strcmp(a, "--stream") == 0)
            stream_tokens = 1;
        else if (strcmp(a, "--no-stream") == 0)
            stream_tokens = 0;
        else if (strcmp(a, "--idempotency-key") == 0 && v) {
            idempotency_key = v;
            i++;
        } else if (strcmp(a, "--plan") == 0 && v) {
            plan_file = v;
            i++;
        } else if (strcmp(a, "--label") == 0 && v) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || strncmp(v, "cwd=", 4) == 0) {
                fprintf(stderr, "loom run: --label wants KEY=VALUE (KEY not 'cwd'), got '%s'\n", v);
                goto out;
            }
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
            json_object_set_new(labels, key, json_string(eq + 1));
            i++;
        }
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
    loom_buf_t yaml = LOOM_BUF_INIT, plan = LOOM_BUF_INIT;
    if (loom_buf_read_file(&yaml, file) != 0 || (plan_file && loom_buf_read_file(&plan, plan_file) != 0)) {
        fprintf(stderr, "loom run: cannot read %s: %s\n", plan_file && yaml.len ? plan_file : file,
                strerror(errno));
        loom_buf_free(&yaml);
        loom_buf_free(&plan);
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
    rq.plan_mlir = plan.data ? plan.data : "";
    /* tools with relative paths run from where the user typed the command */
    char cwd[PATH_MAX];
    size_t n_labels = json_object_size(labels) + 2;
    Loom__V1__Metadata *label_mem = calloc(n_labels, sizeof *label_mem);
    Loom__V1__Metadata **label_ptrs = calloc(n_labels, sizeof *label_ptrs);
    if (!label_mem || !label_ptrs) {
        free(label_mem);
        free(label_ptrs);
        free(inputs_s);
        loom_buf_free(&yaml);
        loom_buf_free(&plan);
        loom_client_destroy(&c);
        rc = LOOM_EXIT_SYSTEM;
        goto out;
    }
    rq.labels = label_ptrs;
    if (getcwd(cwd, sizeof cwd)) {
        loom__v1__metadata__init(&label_mem[rq.n_labels]);
        label_mem[rq.n_labels].key = "cwd";
        label_mem[rq.n_labels].value = cwd;
        label_ptrs[rq.n_labels] = &label_mem[rq.n_labels];
        rq.n_labels++;
    }
    const char *lk;
    json_t *lv;
    json_object_foreach(labels, lk, lv) {
        loom__v1__metadata__init(&label_mem[rq.n_labels]);
        label_mem[rq.n_labels].key = (char *)lk;
        label_mem[rq.n_labels].value = (char *)json_string_value(lv);
        label_ptrs[rq.n_labels] = &label_mem[rq.n_labels];
        rq.n_labels++;
    }
    if (allow_miss) { /* admission: run even if no placement fits */
        loom__v1__metadata__init(&label_mem[rq.n_labels]);
        label_mem[rq.n_labels].key = "allow_sla_miss";
        label_mem[rq.n_labels].value = "true";
        label_ptrs[rq.n_labels] = &label_mem[rq.n_labels];
        rq.n_labels++;
    }
    rq.idempotency_key = (char *)(idempotency_key ? idempotency_key : "");
    Loom__V1__SubmitReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_submit(c, &rq, 10000, &rep, &err);
    free(label_mem);
    free(label_ptrs);
    free(inputs_s);
    loom_buf_free(&yaml);
    loom_buf_free(&plan);
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
    if (!quiet && !json_out)
        fprintf(stderr, "run %s submitted (%s)\n", run_id, file);
    loom_cli_follow_opts_t fo = {.json = json_out, .quiet = quiet, .explain = explain,
                                 .tokens = stream_tokens < 0 ? isatty(2) : stream_tokens,
                                 .timeout_ms = timeout_ms};
    rc = loom_cli_follow(c, "run", endpoint, run_id, &fo);
    loom_client_destroy(&c);
out:
    json_decref(labels);
    json_decref(inputs);
    return rc;
}
