/* sched.c — see sched.h. */
#include "orchestrator/sched.h"

#include <stdlib.h>

#include "common/err.h"
#include "common/grow.h"

void loom_sched_init(loom_sched_t *s)
{
    s->v = NULL;
    s->n = s->cap = 0;
    s->next_seq = 0;
}

void loom_sched_free(loom_sched_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->v[i]->slot = SIZE_MAX;
    free(s->v);
    loom_sched_init(s);
}

static int less(const loom_sched_item_t *a, const loom_sched_item_t *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->seq < b->seq);
}

static void place(loom_sched_t *s, size_t i, loom_sched_item_t *it)
{
    s->v[i] = it;
    it->slot = i;
}

static void up(loom_sched_t *s, size_t i)
{
    loom_sched_item_t *it = s->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(it, s->v[p]))
            break;
        place(s, i, s->v[p]);
        i = p;
    }
    place(s, i, it);
}

static void down(loom_sched_t *s, size_t i)
{
    loom_sched_item_t *it = s->v[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const loom_sched_item_t *best = it;
        if (l < s->n && less(s->v[l], best))
            m = l, best = s->v[l];
        if (r < s->n && less(s->v[r], best))
            m = r;
        if (m == i)
            break;
        place(s, i, s->v[m]);
        i = m;
    }
    place(s, i, it);
}

int loom_sched_push(loom_sched_t *s, loom_sched_item_t *it)
{
    if (LOOM_GROW(s->v, s->cap, s->n + 1) != 0)
            return LOOM_ENOMEM;
    it->seq = s->next_seq++;
    place(s, s->n++, it);
    up(s, it->slot);
    return 0;
}

loom_sched_item_t *loom_sched_pop(loom_sched_t *s)
{
    if (!s->n)
        return NULL;
    loom_sched_item_t *top = s->v[0];
    top->slot = SIZE_MAX;
    if (--s->n) {
        place(s, 0, s->v[s->n]);
        down(s, 0);
    }
    return top;
}

void loom_sched_remove(loom_sched_t *s, loom_sched_item_t *it)
{
    if (it->slot == SIZE_MAX || it->slot >= s->n || s->v[it->slot] != it)
        return;
    size_t i = it->slot;
    it->slot = SIZE_MAX;
    if (i == --s->n)
        return;
    loom_sched_item_t *moved = s->v[s->n];
    place(s, i, moved);
    down(s, i);
    up(s, moved->slot);
}
