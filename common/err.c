/* err.c — see err.h. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *loom_err_name(int code)
{
    switch (code) {
    case LOOM_OK: return "OK";
    case LOOM_EINVAL: return "EINVAL";
    case LOOM_ENOMEM: return "ENOMEM";
    case LOOM_EIO: return "EIO";
    case LOOM_EPARSE: return "EPARSE";
    case LOOM_ENOTFOUND: return "ENOTFOUND";
    case LOOM_EEXIST: return "EEXIST";
    case LOOM_ETIMEDOUT: return "ETIMEDOUT";
    case LOOM_EPROTO: return "EPROTO";
    case LOOM_ETOOBIG: return "ETOOBIG";
    case LOOM_EUNAVAIL: return "EUNAVAIL";
    case LOOM_ECANCELLED: return "ECANCELLED";
    case LOOM_EDEVICE: return "EDEVICE";
    case LOOM_EDB: return "EDB";
    case LOOM_EINFEASIBLE: return "EINFEASIBLE";
    case LOOM_EINTERNAL: return "EINTERNAL";
    default: return "EUNKNOWN";
    }
}

void loom_err_clear(loom_err_t *e)
{
    if (e)
        memset(e, 0, sizeof *e);
}

int loom_err_set(loom_err_t *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    loom_err_clear(e);
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void loom_err_detail(loom_err_t *e, const char *fmt, ...)
{
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
}

void loom_err_hint(loom_err_t *e, const char *fmt, ...)
{
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->hint, sizeof e->hint, fmt, ap);
    va_end(ap);
}

void loom_err_field(loom_err_t *e, const char *fmt, ...)
{
    if (!e)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->field, sizeof e->field, fmt, ap);
    va_end(ap);
}

void loom_err_at(loom_err_t *e, const char *file, int line, int col)
{
    if (!e)
        return;
    snprintf(e->file, sizeof e->file, "%s", file ? file : "");
    e->line = line;
    e->col = col;
}

size_t loom_err_format(const loom_err_t *e, char *buf, size_t n)
{
    char loc[320] = "";
    if (e->file[0] && e->line > 0)
        snprintf(loc, sizeof loc, "%s:%d:%d: ", e->file, e->line, e->col);
    else if (e->file[0])
        snprintf(loc, sizeof loc, "%s: ", e->file);
    int len = snprintf(buf, n, "%s%s%s%s", loc, e->field, e->field[0] ? ": " : "", e->msg);
    return len < 0 ? 0 : (size_t)len;
}

size_t loom_err_format_long(const loom_err_t *e, char *buf, size_t n)
{
    size_t len = loom_err_format(e, buf, n);
    if (e->detail[0]) {
        int k = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "\n  detail: %s", e->detail);
        len += k > 0 ? (size_t)k : 0;
    }
    if (e->hint[0]) {
        int k = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, "\n  hint: %s", e->hint);
        len += k > 0 ? (size_t)k : 0;
    }
    return len;
}
