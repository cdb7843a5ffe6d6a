/* paths.c — data files relative to the running binary (see paths.h). */
#include "common/paths.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"

static int exists(const char *p)
{
    return access(p, R_OK) == 0;
}

int loom_data_path(const char *name, const char *src_rel, char *out, size_t n)
{
    const char *env = getenv("LOOM_DATA_DIR");
    if (env && *env) {
        snprintf(out, n, "%s/%s", env, name);
        return exists(out) ? 0 : LOOM_ENOTFOUND;
    }
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        snprintf(out, n, "%s", src_rel); /* no /proc: the old cwd-relative guess */
        return exists(out) ? 0 : LOOM_ENOTFOUND;
    }
    exe[len] = 0;
    /* exe = PREFIX/bin/loom: PREFIX, and its parent for the build tree */
    char *prefix = dirname(dirname(exe)); /* dirname works in place */
    char installed[4096];
    snprintf(installed, sizeof installed, "%s/share/loom/%s", prefix, name);
    snprintf(out, n, "%s/%s", dirname(prefix), src_rel);
    if (!exists(installed) && exists(out))
        return 0;
    snprintf(out, n, "%s", installed);
    return exists(out) ? 0 : LOOM_ENOTFOUND;
}
