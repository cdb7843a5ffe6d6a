/* config.h — `--config FILE` for the daemons: the same keys as their long
 * options, one per line.
 *
 *   # comment
 *   client: tcp://0.0.0.0:7400        (or client = ...; "quoted" values too)
 *   heartbeat_ms: 1000   # interval   ('_' and '-' are the same in keys; a '#'
 *                                      after a blank starts a comment, except
 *                                      in a quoted value)
 *
 * Every line is checked; each error names FILE:LINE and the key, e.g.
 * "/etc/loom/loomd.conf:7: depth: expected a positive integer, got 'x'". */
#ifndef LOOM_COMMON_CONFIG_H
#define LOOM_COMMON_CONFIG_H

#include <stddef.h>

/* Applies one key. Returns 0, or nonzero with why[] saying what is wrong
 * with the value ("unknown option" for an unknown key). The value is only
 * valid during the call: copy what you keep. */
typedef int (*loom_config_apply_fn)(void *ud, const char *key, const char *value, char *why,
                                    size_t why_n);

/* Reads path and applies each key in order. Prints every error to stderr
 * as "PATH:LINE: KEY: WHY" and returns 0 when the whole file applied, -1
 * otherwise (unreadable file, a malformed line, or a rejected key). */
int loom_config_load(const char *path, loom_config_apply_fn apply, void *ud);

/* Parses a positive decimal integer no greater than max into *out.
 * Returns 0, or -1 with why[] filled. Shared by the option parsers. */
int loom_config_positive(const char *value, long max, long *out, char *why, size_t why_n);

#endif
