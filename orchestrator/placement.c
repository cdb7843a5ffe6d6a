/* placement.c — the default least-loaded placement (see placement.h). */
#include "orchestrator/placement.h"

#include <string.h>

static int class_ok(const loom_worker_rec_t *w, const char *cls)
{
    if (!cls || !*cls)
        return 1;
    return strcmp(w->kind, cls) == 0 || strncmp(w->model, cls, strlen(cls)) == 0;
}

static loom_worker_rec_t *pick_least_loaded(void *self, const loom_placement_req_t *req,
                                            loom_registry_t *reg, int *never)
{
    (void)self;
    loom_worker_rec_t *best = NULL, *avoided = NULL;
    double best_load = 0;
    int capable = 0;
    for (size_t i = 0, n = loom_registry_count(reg); i < n; i++) {
        loom_worker_rec_t *w = loom_registry_at(reg, i);
        if (!loom_worker_runs(w, req->op) || !class_ok(w, req->device_class))
            continue;
        capable = 1;
        if (loom_worker_room(w) <= 0)
            continue;
        if (req->avoid_worker && strcmp(w->id, req->avoid_worker) == 0) {
            avoided = w;
            continue;
        }
        double load = (double)w->inflight / w->slots;
        if (!best || load < best_load) {
            best = w;
            best_load = load;
        }
    }
    *never = !capable;
    return best ? best : avoided;
}

loom_placement_t loom_placement_least_loaded(void)
{
    return (loom_placement_t){.name = "least-loaded", .pick = pick_least_loaded};
}
