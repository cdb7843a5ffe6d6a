/* sched.h — the ready queue: a binary min-heap of tasks ordered by
 * (priority, sequence). loomd uses priority = the task's latest start time
 * (run deadline minus the remaining critical path from its step), so the
 * task with the least slack goes first and equal ones stay FIFO. Each item
 * remembers its heap slot so a cancelled task can be removed in O(log n). */
#ifndef LOOM_ORCHESTRATOR_SCHED_H
#define LOOM_ORCHESTRATOR_SCHED_H

#include <stddef.h>
#include <stdint.h>

typedef struct loom_sched_item {
    int64_t prio;     /* smaller = more urgent */
    uint64_t seq;     /* tie-breaker, set by push */
    size_t slot;      /* position in the heap; SIZE_MAX when not queued */
} loom_sched_item_t;

typedef struct loom_sched {
    loom_sched_item_t **v;
    size_t n, cap;
    uint64_t next_seq;
} loom_sched_t;

void loom_sched_init(loom_sched_t *s);
void loom_sched_free(loom_sched_t *s);
/* Queues it (which must not be queued). Returns 0 or LOOM_ENOMEM. */
int loom_sched_push(loom_sched_t *s, loom_sched_item_t *it);
/* Removes and returns the most urgent item, NULL when empty. */
loom_sched_item_t *loom_sched_pop(loom_sched_t *s);
/* Removes it when queued (no-op otherwise). */
void loom_sched_remove(loom_sched_t *s, loom_sched_item_t *it);
static inline size_t loom_sched_len(const loom_sched_t *s) { return s->n; }
static inline int loom_sched_queued(const loom_sched_item_t *it) { return it->slot != SIZE_MAX; }

#endif
