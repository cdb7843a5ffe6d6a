/* err.h — error codes and the caller-given error record (PostgreSQL style:
 * a short factual message, optional detail and hint, and the location in the
 * user's input when the error is about a file).
 *
 * Commands return 0 or a negative LOOM_E* code and fill a loom_err_t the
 * caller passes in (which may be NULL when the caller does not care).
 * loom_err_t is a plain value type so callers can keep it on the stack. */
#ifndef LOOM_COMMON_ERR_H
#define LOOM_COMMON_ERR_H

#include <stddef.h>

enum {
    LOOM_OK = 0,
    LOOM_EINVAL = -1,     /* invalid argument or input */
    LOOM_ENOMEM = -2,     /* out of memory */
    LOOM_EIO = -3,        /* OS / file / socket failure */
    LOOM_EPARSE = -4,     /* malformed input (YAML, frame, file format) */
    LOOM_ENOTFOUND = -5,  /* named thing does not exist */
    LOOM_EEXIST = -6,     /* already exists */
    LOOM_ETIMEDOUT = -7,  /* deadline passed */
    LOOM_EPROTO = -8,     /* protocol violation (version, framing) */
    LOOM_ETOOBIG = -9,    /* exceeds a configured bound */
    LOOM_EUNAVAIL = -10,  /* service, device or peer unavailable */
    LOOM_ECANCELLED = -11,
    LOOM_EDEVICE = -12,   /* accelerator / driver failure */
    LOOM_EDB = -13,       /* database failure */
    LOOM_EINFEASIBLE = -14, /* no solution satisfies the constraints */
    LOOM_EINTERNAL = -15, /* bug: should not happen */
};

typedef struct loom_err {
    int code;             /* a LOOM_E* value, 0 when no error */
    char msg[256];        /* short, factual, no trailing period */
    char detail[512];     /* optional: more facts */
    char hint[256];       /* optional: what the user can do */
    char file[256];       /* optional: input file the error is about */
    int line, col;        /* 1-based; 0 when unknown */
    char field[256];      /* optional: field path, e.g. steps.answer.needs[1] */
} loom_err_t;

/* Short symbolic name of a code ("EINVAL", ...). Static storage. */
const char *loom_err_name(int code);

/* Clears e (no-op when e is NULL). */
void loom_err_clear(loom_err_t *e);

/* Sets code and message; returns code so callers can `return loom_err_set(...)`.
 * e may be NULL. Clears detail, hint, location and field. */
int loom_err_set(loom_err_t *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void loom_err_detail(loom_err_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void loom_err_hint(loom_err_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Records where in the user's input the error is (file may be NULL). */
void loom_err_at(loom_err_t *e, const char *file, int line, int col);
void loom_err_field(loom_err_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One-line form: "file:line:col: field: msg" (parts omitted when unset).
 * Returns the length that the full text needs (like snprintf). */
size_t loom_err_format(const loom_err_t *e, char *buf, size_t n);

/* Multi-line form for terminals: the one-line form, then "  detail: ..."
 * and "  hint: ..." lines when present. */
size_t loom_err_format_long(const loom_err_t *e, char *buf, size_t n);

#endif
