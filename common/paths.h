/* paths.h — where an installed Loom finds its data files.
 *
 * `make install` puts binaries in PREFIX/bin and data (catalog, SQL
 * migrations, examples) in PREFIX/share/loom; the build tree keeps them in
 * the source folders next to build/bin. Commands find a data file relative
 * to the running binary (/proc/self/exe), never the current directory, so
 * `loom plan x.yaml` works from anywhere. */
#ifndef LOOM_COMMON_PATHS_H
#define LOOM_COMMON_PATHS_H

#include <stddef.h>

/* Resolves a data file, first existing of:
 *   1. $LOOM_DATA_DIR/NAME                  (operator's override)
 *   2. <binary dir>/../share/loom/NAME      (installed tree)
 *   3. <binary dir>/../../SRC_REL           (build tree: build/bin/..)
 * Writes the path to out (n bytes) and returns 0. When none exists, out
 * holds candidate 2 (or 1 when LOOM_DATA_DIR is set), for the caller's
 * error message, and the result is LOOM_ENOTFOUND. */
int loom_data_path(const char *name, const char *src_rel, char *out, size_t n);

#endif
