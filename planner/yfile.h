/* yfile.h — small helpers over libyaml's document API for the planner's
 * own files (catalog, fleet, profile, workload): load a file, look up
 * mapping keys, read scalars as numbers/strings, and report errors as
 * file:line:col with the field path. Internal to planner/.
 *
 * Nodes are libyaml node indices (int, 0 = absent); strings returned are
 * borrowed from the document until loom_yfile_destroy. */
#ifndef LOOM_PLANNER_YFILE_H
#define LOOM_PLANNER_YFILE_H

#include <stddef.h>

#include "common/err.h"

typedef struct loom_yfile loom_yfile_t;

/* Parses path. Returns NULL and fills err (with file:line:col for syntax
 * errors) on failure. The root is loom_yfile_root(). */
loom_yfile_t *loom_yfile_load(const char *path, loom_err_t *err);
/* Same from memory; name is used in error messages. */
loom_yfile_t *loom_yfile_parse(const char *name, const char *text, size_t len, loom_err_t *err);
void loom_yfile_destroy(loom_yfile_t **py);

const char *loom_yfile_path(const loom_yfile_t *y);
int loom_yfile_root(const loom_yfile_t *y);

int loom_yfile_is_map(const loom_yfile_t *y, int node);
int loom_yfile_is_seq(const loom_yfile_t *y, int node);
int loom_yfile_is_scalar(const loom_yfile_t *y, int node);
/* Value of key in a mapping node, or 0. */
int loom_yfile_get(const loom_yfile_t *y, int map, const char *key);
/* Number of items / pairs; the i-th item of a sequence; i-th key/value of a mapping. */
size_t loom_yfile_len(const loom_yfile_t *y, int node);
int loom_yfile_item(const loom_yfile_t *y, int seq, size_t i);
int loom_yfile_key(const loom_yfile_t *y, int map, size_t i);
int loom_yfile_val(const loom_yfile_t *y, int map, size_t i);
/* Scalar text or NULL when not a scalar. */
const char *loom_yfile_str(const loom_yfile_t *y, int node);
int loom_yfile_line(const loom_yfile_t *y, int node);
int loom_yfile_col(const loom_yfile_t *y, int node);

/* Typed reads of key `key` in mapping `map`; `field` is the path used in
 * messages (e.g. "devices[3].mem_gb"). When the key is absent: required ->
 * LOOM_EPARSE error, else *out keeps its value and 0 is returned. */
int loom_yfile_num(const loom_yfile_t *y, int map, const char *key, const char *field,
                   int required, double *out, loom_err_t *err);
int loom_yfile_text(const loom_yfile_t *y, int map, const char *key, const char *field,
                    int required, const char **out, loom_err_t *err);
/* Fills err with msg located at node (file:line:col, field). Returns LOOM_EPARSE. */
int loom_yfile_error(const loom_yfile_t *y, loom_err_t *err, int node, const char *field,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
