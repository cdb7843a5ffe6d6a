/* gpu_unit.c — text form of a compiled GPU unit:
 *   loom-gpu-unit 1 <arch> <nmodules> <nlaunches>
 *   launch <module> <kernel> <gx> <gy> <gz> <bx> <by> <bz> <nargs> <arg>...
 *        where <arg> is bN (buffer N), iV (i64 V) or fXXXXXXXX (f32 bits)
 *   ptx <bytes>\n<bytes of PTX>\n      (one per module)
 */
#include "mlir-lowering/gpu_unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int loom_gpu_unit_write(const loom_gpu_unit_t *u, loom_buf_t *out)
{
    int rc = loom_buf_printf(out, "loom-gpu-unit 1 %s %d %d\n", u->arch, u->nmodules, u->nlaunches);
    for (int i = 0; i < u->nlaunches && !rc; i++) {
        const loom_gpu_launch_t *l = &u->launches[i];
        rc = loom_buf_printf(out, "launch %d %s %u %u %u %u %u %u %d", l->module, l->kernel,
                             l->grid[0], l->grid[1], l->grid[2], l->block[0], l->block[1],
                             l->block[2], l->nargs);
        for (int a = 0; a < l->nargs && !rc; a++) {
            const loom_karg_t *k = &l->args[a];
            if (k->kind == LOOM_KARG_BUFFER)
                rc = loom_buf_printf(out, " b%lld", k->index);
            else if (k->kind == LOOM_KARG_I64)
                rc = loom_buf_printf(out, " i%lld", k->index);
            else
                rc = loom_buf_printf(out, " f%08x", k->f32bits);
        }
        if (!rc)
            rc = loom_buf_putc(out, '\n');
    }
    for (int i = 0; i < u->nmodules && !rc; i++) {
        size_t n = strlen(u->ptx[i]);
        rc = loom_buf_printf(out, "ptx %zu\n", n);
        if (!rc)
            rc = loom_buf_append(out, u->ptx[i], n);
        if (!rc)
            rc = loom_buf_putc(out, '\n');
    }
    return rc;
}

void loom_gpu_unit_free(loom_gpu_unit_t *u)
{
    for (int i = 0; i < u->nmodules; i++)
        free(u->ptx[i]);
    memset(u, 0, sizeof *u);
}

/* Reads one '\n'-terminated line starting at *pos into line[]. */
static int next_line(const char *t, size_t n, size_t *pos, char *line, size_t cap)
{
    if (*pos >= n)
        return -1;
    const char *nl = memchr(t + *pos, '\n', n - *pos);
    size_t len = nl ? (size_t)(nl - (t + *pos)) : n - *pos;
    if (len >= cap)
        return -1;
    memcpy(line, t + *pos, len);
    line[len] = '\0';
    *pos += len + (nl ? 1 : 0);
    return 0;
}

int loom_gpu_unit_read(const char *t, size_t n, loom_gpu_unit_t *u, loom_err_t *err)
{
    char line[2048];
    size_t pos = 0;
    int lineno = 1;
    memset(u, 0, sizeof *u);
    if (next_line(t, n, &pos, line, sizeof line) ||
        sscanf(line, "loom-gpu-unit 1 %15s %d %d", u->arch, &u->nmodules, &u->nlaunches) != 3 ||
        u->nmodules < 0 || u->nmodules > LOOM_GPU_MAX_LAUNCHES || u->nlaunches < 0 ||
        u->nlaunches > LOOM_GPU_MAX_LAUNCHES) {
        u->nmodules = 0;
        return loom_err_set(err, LOOM_EPARSE, "GPU unit line 1: bad header");
    }
    int want_modules = u->nmodules;
    u->nmodules = 0;
    for (int i = 0; i < u->nlaunches; i++) {
        loom_gpu_launch_t *l = &u->launches[i];
        int off = 0;
        lineno++;
        if (next_line(t, n, &pos, line, sizeof line) ||
            sscanf(line, "launch %d %63s %u %u %u %u %u %u %d%n", &l->module, l->kernel,
                   &l->grid[0], &l->grid[1], &l->grid[2], &l->block[0], &l->block[1],
                   &l->block[2], &l->nargs, &off) != 9 ||
            l->module < 0 || l->module >= want_modules || l->nargs < 0 ||
            l->nargs > LOOM_GPU_MAX_KARGS)
            goto bad;
        const char *p = line + off;
        for (int a = 0; a < l->nargs; a++) {
            char kind;
            int used = 0;
            while (*p == ' ')
                p++;
            kind = *p++;
            if (kind == 'b' || kind == 'i') {
                if (sscanf(p, "%lld%n", &l->args[a].index, &used) != 1)
                    goto bad;
                l->args[a].kind = kind == 'b' ? LOOM_KARG_BUFFER : LOOM_KARG_I64;
            } else if (kind == 'f') {
                if (sscanf(p, "%8x%n", &l->args[a].f32bits, &used) != 1)
                    goto bad;
                l->args[a].kind = LOOM_KARG_F32;
            } else {
                goto bad;
            }
            p += used;
        }
    }
    for (int i = 0; i < want_modules; i++) {
        size_t len;
        lineno++;
        if (next_line(t, n, &pos, line, sizeof line) || sscanf(line, "ptx %zu", &len) != 1 ||
            len > n - pos)
            goto bad;
        u->ptx[i] = malloc(len + 1);
        if (!u->ptx[i]) {
            loom_gpu_unit_free(u);
            return loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
        memcpy(u->ptx[i], t + pos, len);
        u->ptx[i][len] = '\0';
        u->nmodules++;
        pos += len;
        if (pos < n && t[pos] == '\n')
            pos++;
    }
    return 0;
bad:
    loom_gpu_unit_free(u);
    return loom_err_set(err, LOOM_EPARSE, "GPU unit line %d: malformed", lineno);
}
