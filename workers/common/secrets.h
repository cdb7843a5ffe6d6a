/* secrets.h — values only this worker knows, for workflows that declare
 * `secrets: [NAME]` and write ${secrets.NAME} in a step's fields. loomd
 * never sees them: it sends the reference as written and the worker puts
 * the value in just before the op runs; whatever the op returns (output,
 * error, progress) has every known secret value replaced by "***" before
 * it leaves the worker.
 *
 * Sources, read once at start: --secret NAME=FILE (the file's content,
 * one trailing newline dropped) and every LOOM_SECRET_<NAME> variable of
 * the worker's environment (tool.exec does not pass those to tools unless
 * a step lists them in env_allow). Read-only afterwards: thread-safe. */
#ifndef LOOM_WORKERS_SECRETS_H
#define LOOM_WORKERS_SECRETS_H

#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

/* Adds NAME=FILE. Returns 0 or LOOM_EINVAL / LOOM_EIO naming the file. */
int loom_secrets_add_file(const char *spec, loom_err_t *err);
/* Adds every LOOM_SECRET_<NAME> of the environment. */
int loom_secrets_add_env(loom_err_t *err);
size_t loom_secrets_count(void);

/* Replaces each ${secrets.NAME#TAG} in every string of the task input
 * object *input, where TAG is the input's "$secret_tag" (a random tag
 * loomd draws for each task input of a workflow with `secrets:`, and puts
 * into every reference the workflow itself writes), and removes
 * "$secret_tag". Text without that tag stays as it is: a
 * `${secrets.NAME}` that arrives as data (a run input, an upstream step's
 * or a web page's text, `$${secrets.NAME}`) is never replaced. In place;
 * returns 0, or LOOM_ENOTFOUND naming the first secret this worker does not
 * have. */
int loom_secrets_substitute(json_t **input, loom_err_t *err);

/* text with every secret value replaced by "***" (common/redact.h): a
 * malloc'd copy, or NULL when none occurs. */
char *loom_secrets_redact(const char *text, size_t len, size_t *out_len);

#endif
