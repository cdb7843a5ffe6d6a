/* endpoint.h — a client of OpenAI-compatible model servers (vLLM,
 * llama.cpp's server, TGI, Ollama, hosted APIs): POST {base}/chat/completions
 * (streamed as server-sent events) and {base}/embeddings, through libcurl.
 *
 * Failures that may pass (HTTP 429 and 5xx, a refused or broken connection)
 * are retried with exponential backoff (honouring Retry-After) within the
 * call's time limit; the final error names the HTTP status and the server's
 * message. A stream that fails after HTTP 200 (an SSE event
 * `data: {"error": ...}`) is an error too. Deltas whose content is null are
 * skipped. */
#ifndef LOOM_WORKERS_ENDPOINT_H
#define LOOM_WORKERS_ENDPOINT_H

#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

typedef struct loom_endpoint_cfg {
    const char *base_url;  /* "http://host:port/v1" (no trailing path) */
    const char *model;     /* the server's model name; NULL: none sent */
    const char *api_key;   /* sent as a Bearer token; NULL: none */
    int64_t timeout_ms;    /* whole call, retries included */
    int retries;           /* extra attempts on 429/5xx/connection errors */
    int64_t backoff_ms;    /* first wait; doubles each retry */
} loom_endpoint_cfg_t;

/* Called with each streamed piece of text; non-zero stops the call
 * (LOOM_ECANCELLED). */
typedef int (*loom_endpoint_piece_fn)(void *ud, const char *text, size_t n);
/* Polled during the call; non-zero abandons it (LOOM_ECANCELLED). */
typedef int (*loom_endpoint_cancel_fn)(void *ud);

/* What a call saw, for the step's error and the logs. */
typedef struct loom_endpoint_info {
    long http_status;      /* of the last attempt (0: none answered) */
    int attempts;
    int prompt_tokens, completion_tokens; /* from usage; -1 when absent */
    char finish_reason[32];
} loom_endpoint_info_t;

/* Chat completion. req is the request body (borrowed: messages,
 * max_tokens, ...; "model" and "stream" are set here). With on_piece the
 * answer is streamed. *text is the whole answer (caller frees). Errors:
 * LOOM_EUNAVAIL (connection, 5xx, 429 after the retries), LOOM_EINVAL
 * (other 4xx: the request is wrong), LOOM_ETIMEDOUT, LOOM_ECANCELLED,
 * LOOM_EPROTO (not an OpenAI-compatible answer). */
int loom_endpoint_chat(const loom_endpoint_cfg_t *cfg, const json_t *req, loom_endpoint_piece_fn on_piece,
                       void *pud, loom_endpoint_cancel_fn cancelled, void *cud, char **text,
                       loom_endpoint_info_t *info, loom_err_t *err);

/* Embeddings of input (a string or a list of strings): *vectors is a new
 * list of float lists, in input order. */
int loom_endpoint_embed(const loom_endpoint_cfg_t *cfg, const json_t *input, loom_endpoint_cancel_fn cancelled,
                        void *cud, json_t **vectors, loom_endpoint_info_t *info, loom_err_t *err);

#endif
