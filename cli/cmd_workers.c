/* cmd_workers.c — `loom workers [--all] [--json]`: the registered workers
 * and their measured profiles. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/runview.h"

static const char usage_text[] =
    "usage: loom workers [--all] [--json] [--endpoint URL]\n"
    "Lists the workers registered with loomd (--all: lost ones too).\n";

static const char *wstate(int s)
{
    return s == 1 ? "ready" : s == 2 ? "draining" : s == 3 ? "lost" : "unknown";
}

int loom_cmd_workers(int argc, char **argv)
{
    if (loom_cli_wants_help(argc, argv, usage_text))
        return LOOM_EXIT_OK;
    const char *endpoint = NULL;
    int json_out = 0;
    Loom__V1__ListWorkersRequest rq = LOOM__V1__LIST_WORKERS_REQUEST__INIT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json_out = 1;
        else if (strcmp(argv[i], "--all") == 0)
            rq.include_lost = 1;
        else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc)
            endpoint = argv[++i];
        else {
            fprintf(stderr, "loom workers: unknown argument '%s' (see --help)\n", argv[i]);
            return LOOM_EXIT_USAGE;
        }
    }
    endpoint = loom_cli_endpoint(endpoint);
    loom_client_t *c = loom_cli_connect("workers", endpoint);
    if (!c)
        return LOOM_EXIT_SYSTEM;
    Loom__V1__ListWorkersReply *rep = NULL;
    loom_err_t err;
    loom_err_clear(&err);
    int st = loom_client_list_workers(c, &rq, 10000, &rep, &err);
    loom_client_destroy(&c);
    if (st != LOOM_STATUS_OK)
        return loom_cli_rpc_error("workers", endpoint, st, &err);
    if (json_out) {
        json_t *arr = json_array();
        for (size_t i = 0; i < rep->n_workers; i++) {
            const Loom__V1__WorkerInfo *w = rep->workers[i];
            const Loom__V1__DeviceProfile *p = w->profile;
            json_t *ops = json_array();
            for (size_t k = 0; p && k < p->n_supported_ops; k++)
                json_array_append_new(ops, json_string(p->supported_ops[k]));
            json_array_append_new(
                arr, json_pack("{sssssssssssisIsfsfsisisIsIso}", "id", w->worker_id, "state",
                               wstate(w->state), "kind", p ? loom_cli_device(p->kind) : "",
                               "model", p ? p->model_name : "", "arch", p ? p->arch : "",
                               "cores", p ? (int)p->compute_units : 0, "memory_bytes",
                               (json_int_t)(p ? p->memory_bytes : 0), "gflops",
                               p ? p->measured_gflops : 0.0, "gbps", p ? p->measured_gbps : 0.0,
                               "slots", p ? (int)p->task_slots : 0, "running",
                               (int)w->running_tasks, "tasks_done", (json_int_t)w->tasks_done,
                               "tasks_failed", (json_int_t)w->tasks_failed, "ops", ops));
            json_t *o = json_array_get(arr, json_array_size(arr) - 1), *models = json_array();
            for (size_t k = 0; k < w->n_loaded_models; k++)
                json_array_append_new(models, json_string(w->loaded_models[k]));
            json_object_set_new(o, "free_memory_bytes", json_integer((json_int_t)w->free_memory_bytes));
            json_object_set_new(o, "models", models);
        }
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(arr);
    } else {
        printf("%-28s %-8s %-4s %5s %9s %8s %7s %8s %9s  %-24s %s\n", "worker", "state", "kind",
               "slots", "GFLOP/s", "GB/s", "running", "done", "free_GiB", "loaded_models", "model");
        for (size_t i = 0; i < rep->n_workers; i++) {
            const Loom__V1__WorkerInfo *w = rep->workers[i];
            const Loom__V1__DeviceProfile *p = w->profile;
            char models[256] = "-";
            for (size_t k = 0, used = 0; k < w->n_loaded_models && used < sizeof models; k++) {
                int n = snprintf(models + used, sizeof models - used, "%s%s", k ? "," : "",
                                 w->loaded_models[k]);
                if (n < 0)
                    break;
                used += (size_t)n;
            }
            printf("%-28s %-8s %-4s %5u %9.1f %8.1f %7u %8llu %9.1f  %-24s %s\n", w->worker_id,
                   wstate(w->state), p ? loom_cli_device(p->kind) : "", p ? p->task_slots : 0,
                   p ? p->measured_gflops : 0, p ? p->measured_gbps : 0, w->running_tasks,
                   (unsigned long long)w->tasks_done, (double)w->free_memory_bytes / (1 << 30), models,
                   p ? p->model_name : "");
        }
    }
    loom_pb_free(rep);
    return LOOM_EXIT_OK;
}
