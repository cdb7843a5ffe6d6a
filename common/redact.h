/* redact.h — replacing secret values in text by "***" before it is
 * stored, logged or sent where secrets must not go (secret inputs in
 * loomd, worker-side secrets in the workers; docs/SECURITY.md). */
#ifndef LOOM_COMMON_REDACT_H
#define LOOM_COMMON_REDACT_H

#include <stddef.h>

#define LOOM_REDACTED "***"
/* Shorter values are not searched for (a 1-character "secret" would blank
 * out every occurrence of that character). */
#define LOOM_REDACT_MIN_LEN 3

/* text (len bytes) with every occurrence of one of the n secrets replaced
 * by "***": a malloc'd NUL-terminated copy (*out_len its length; may be
 * NULL), or NULL when text holds none of them (use text as it is). */
char *loom_redact_text(const char *text, size_t len, char *const *secrets, size_t n,
                       size_t *out_len);

#endif
