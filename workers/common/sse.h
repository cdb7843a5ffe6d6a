/* sse.h — an incremental parser of server-sent events (text/event-stream),
 * as MCP's Streamable HTTP and OpenAI-compatible streaming send them: bytes
 * go in as they arrive; each complete event's data (its `data:` lines
 * joined by newlines) comes out through a callback. Other fields (event,
 * id, retry) and comments are ignored. */
#ifndef LOOM_WORKERS_SSE_H
#define LOOM_WORKERS_SSE_H

#include <stddef.h>

#include "common/buf.h"

/* Called once per event that has data; non-zero stops loom_sse_feed. */
typedef int (*loom_sse_event_fn)(void *ud, const char *data, size_t len);

typedef struct loom_sse {
    loom_buf_t pending; /* bytes of an event not yet complete */
} loom_sse_t;

void loom_sse_init(loom_sse_t *s, size_t limit); /* limit: largest event kept (0: none) */
void loom_sse_free(loom_sse_t *s);
/* Feeds n bytes. Returns 0, the callback's non-zero value, or LOOM_ETOOBIG
 * when an event outgrows the limit (LOOM_ENOMEM on allocation failure). */
int loom_sse_feed(loom_sse_t *s, const char *p, size_t n, loom_sse_event_fn fn, void *ud);

#endif
