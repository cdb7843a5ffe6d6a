/* ctx.c — MLIR context setup, the loom dialect from IRDL, diagnostics
 * captured into loom_err_t, parsing, pass pipelines and printing. */
#include "mlir-lowering/mlir_internal.h"

#include "mlir-lowering/loom_irdl.h" /* generated: loom_irdl_text[] */

#include <mlir-c/Diagnostics.h>
#include <mlir-c/Dialect/IRDL.h>
#include <mlir-c/Pass.h>
#include <mlir-c/RegisterEverything.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loom_mlir {
    MlirContext ctx;
    MlirDiagnosticHandlerID handler;
    /* Diagnostics captured since the last loom_mlir_diag_begin. */
    loom_buf_t diags;      /* "loc: message" lines, first error first */
    char first_msg[256];   /* the first error's message alone */
    char first_file[256];  /* its location, parsed from loc("file":L:C) */
    int first_line, first_col;
    int n_errors;
};

static pthread_once_t passes_once = PTHREAD_ONCE_INIT;
static void register_passes(void) { mlirRegisterAllPasses(); }

const char *loom_mlir_irdl_text(void) { return loom_irdl_text; }

MlirContext loom_mlir_context(loom_mlir_t *m) { return m->ctx; }

/* ---- printing --------------------------------------------------------- */

typedef struct {
    loom_buf_t *b;
    int rc;
} print_sink_t;

static void to_buf(MlirStringRef s, void *user)
{
    print_sink_t *p = user;
    if (p->rc == 0)
        p->rc = loom_buf_append(p->b, s.data, s.length);
}

static void to_fixed(MlirStringRef s, void *user)
{
    char *dst = user; /* 256 bytes */
    size_t have = strlen(dst), room = 255 - have;
    size_t n = s.length < room ? s.length : room;
    memcpy(dst + have, s.data, n);
    dst[have + n] = '\0';
}

int loom_mlir_print(MlirOperation op, loom_buf_t *out)
{
    print_sink_t p = {out, 0};
    mlirOperationPrint(op, to_buf, &p);
    return p.rc;
}

/* ---- diagnostics ------------------------------------------------------ */

/* Parses `loc("file":L:C)` (possibly nested in other location kinds). */
static void parse_loc(const char *text, char *file, size_t fn, int *line, int *col)
{
    const char *q = strstr(text, "loc(\"");
    file[0] = '\0';
    *line = *col = 0;
    if (!q)
        return;
    q += 5;
    const char *e = strchr(q, '"');
    if (!e)
        return;
    size_t n = (size_t)(e - q) < fn - 1 ? (size_t)(e - q) : fn - 1;
    memcpy(file, q, n);
    file[n] = '\0';
    if (sscanf(e + 1, ":%d:%d", line, col) != 2)
        *line = *col = 0;
}

/* One line per diagnostic, "file:line:col: message" ("-" is the buffer of
 * a parsed string; diag_fail names it). */
static void print_diag(MlirDiagnostic d, loom_mlir_t *m, const char *indent)
{
    char loc[256] = "", file[256];
    int line, col;
    mlirLocationPrint(mlirDiagnosticGetLocation(d), to_fixed, loc);
    parse_loc(loc, file, sizeof file, &line, &col);
    print_sink_t p = {&m->diags, 0};
    if (file[0])
        loom_buf_printf(&m->diags, "%s%s:%d:%d: ", indent, file, line, col);
    else
        loom_buf_printf(&m->diags, "%s%s: ", indent, loc);
    mlirDiagnosticPrint(d, to_buf, &p);
    loom_buf_putc(&m->diags, '\n');
    for (intptr_t i = 0; i < mlirDiagnosticGetNumNotes(d); i++)
        print_diag(mlirDiagnosticGetNote(d, i), m, "  note: ");
}

static MlirLogicalResult on_diag(MlirDiagnostic d, void *user)
{
    loom_mlir_t *m = user;
    if (mlirDiagnosticGetSeverity(d) != MlirDiagnosticError)
        return mlirLogicalResultSuccess(); /* warnings/remarks: ignored */
    if (m->n_errors++ == 0) {
        char loc[256] = "";
        m->first_msg[0] = '\0';
        mlirDiagnosticPrint(d, to_fixed, m->first_msg);
        mlirLocationPrint(mlirDiagnosticGetLocation(d), to_fixed, loc);
        parse_loc(loc, m->first_file, sizeof m->first_file, &m->first_line, &m->first_col);
    }
    if (m->diags.len < 16384)
        print_diag(d, m, "");
    return mlirLogicalResultSuccess(); /* handled: do not print to stderr */
}

void loom_mlir_diag_begin(loom_mlir_t *m)
{
    loom_buf_reset(&m->diags);
    m->n_errors = 0;
    m->first_msg[0] = m->first_file[0] = '\0';
    m->first_line = m->first_col = 0;
}

int loom_mlir_diag_fail(loom_mlir_t *m, loom_err_t *err, int code, const char *what,
                        const char *filename)
{
    if (m->n_errors == 0)
        return loom_err_set(err, code, "%s failed (MLIR gave no diagnostic)", what);
    loom_err_set(err, code, "%s: %s", what, m->first_msg);
    const char *file = m->first_file;
    if (filename && (file[0] == '\0' || strcmp(file, "-") == 0))
        file = filename;
    if (file[0])
        loom_err_at(err, file, m->first_line, m->first_col);
    if (m->diags.len) {
        /* Name the parsed buffer: "-:L:C:" at a line start -> "file:L:C:". */
        loom_buf_t d = LOOM_BUF_INIT;
        const char *s = m->diags.data;
        for (const char *line = s; *line;) {
            const char *nl = strchr(line, '\n');
            size_t len = nl ? (size_t)(nl - line + 1) : strlen(line);
            const char *body = line;
            if (strncmp(body, "  note: ", 8) == 0) {
                loom_buf_append(&d, body, 8);
                body += 8;
            }
            if (filename && strncmp(body, "-:", 2) == 0) {
                loom_buf_puts(&d, filename);
                body += 1;
            }
            loom_buf_append(&d, body, len - (size_t)(body - line));
            line += len;
        }
        /* The first line repeats msg and location: keep the rest. */
        const char *rest = d.data ? strchr(d.data, '\n') : NULL;
        if (rest && rest[1]) {
            rest++;
            while (*rest == ' ')
                rest++;
            loom_err_detail(err, "%s", rest);
        }
        loom_buf_free(&d);
    }
    return code;
}

/* ---- context ------------------------------------------------------------ */

loom_mlir_t *loom_mlir_new(loom_err_t *err)
{
    loom_mlir_t *m = calloc(1, sizeof *m);
    if (!m) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_once(&passes_once, register_passes);
    MlirDialectRegistry reg = mlirDialectRegistryCreate();
    mlirRegisterAllDialects(reg);
    m->ctx = mlirContextCreateWithRegistry(reg, false);
    mlirDialectRegistryDestroy(reg);
    mlirRegisterAllLLVMTranslations(m->ctx);
    mlirContextSetAllowUnregisteredDialects(m->ctx, false);
    m->handler = mlirContextAttachDiagnosticHandler(m->ctx, on_diag, m, NULL);
    /* Dialects used by lowering pipelines are loaded eagerly so that passes
     * running later never need to load one (not allowed mid-pipeline). */
    mlirContextLoadAllAvailableDialects(m->ctx);

    loom_mlir_diag_begin(m);
    MlirModule irdl = mlirModuleCreateParse(m->ctx, loom_sr(loom_irdl_text));
    if (mlirModuleIsNull(irdl)) {
        loom_mlir_diag_fail(m, err, LOOM_EINTERNAL, "loading the loom dialect (IRDL)",
                            "mlir-lowering/loom.irdl.mlir");
        loom_mlir_destroy(&m);
        return NULL;
    }
    MlirLogicalResult lr = mlirLoadIRDLDialects(irdl);
    mlirModuleDestroy(irdl);
    if (mlirLogicalResultIsFailure(lr)) {
        loom_mlir_diag_fail(m, err, LOOM_EINTERNAL, "loading the loom dialect (IRDL)",
                            "mlir-lowering/loom.irdl.mlir");
        loom_mlir_destroy(&m);
        return NULL;
    }
    return m;
}

void loom_mlir_destroy(loom_mlir_t **pm)
{
    if (!pm || !*pm)
        return;
    loom_mlir_t *m = *pm;
    if (!mlirContextIsNull(m->ctx)) {
        mlirContextDetachDiagnosticHandler(m->ctx, m->handler);
        mlirContextDestroy(m->ctx);
    }
    loom_buf_free(&m->diags);
    free(m);
    *pm = NULL;
}

/* ---- parse / run ---------------------------------------------------------- */

int loom_mlir_parse(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                    MlirModule *out, loom_err_t *err)
{
    loom_mlir_diag_begin(m);
    MlirModule mod = mlirModuleCreateParse(m->ctx, mlirStringRefCreate(text, n));
    if (mlirModuleIsNull(mod))
        return loom_mlir_diag_fail(m, err, LOOM_EPARSE, "invalid MLIR", filename);
    if (!mlirOperationVerify(mlirModuleGetOperation(mod))) {
        mlirModuleDestroy(mod);
        return loom_mlir_diag_fail(m, err, LOOM_EPARSE, "MLIR does not verify", filename);
    }
    *out = mod;
    return 0;
}

static void to_err_buf(MlirStringRef s, void *user)
{
    loom_buf_append(user, s.data, s.length);
}

int loom_mlir_run_pipeline(loom_mlir_t *m, MlirModule mod, const char *pipeline,
                           const char *what, const char *filename, loom_err_t *err)
{
    loom_mlir_diag_begin(m);
    MlirPassManager pm = mlirPassManagerCreate(m->ctx);
    loom_buf_t perr = LOOM_BUF_INIT;
    int rc = 0;
    if (mlirLogicalResultIsFailure(mlirParsePassPipeline(
            mlirPassManagerGetAsOpPassManager(pm), loom_sr(pipeline), to_err_buf, &perr))) {
        rc = loom_err_set(err, LOOM_EINTERNAL, "%s: bad pass pipeline", what);
        loom_err_detail(err, "%s", perr.data ? perr.data : pipeline);
        goto out_pm;
    }
    if (mlirLogicalResultIsFailure(mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(mod))))
        rc = loom_mlir_diag_fail(m, err, LOOM_EINTERNAL, what, filename);
out_pm:
    loom_buf_free(&perr);
    mlirPassManagerDestroy(pm);
    return rc;
}

int loom_mlir_check_text(loom_mlir_t *m, const char *text, size_t n, const char *filename,
                         loom_buf_t *out, loom_err_t *err)
{
    MlirModule mod;
    int rc = loom_mlir_parse(m, text, n, filename, &mod, err);
    if (rc)
        return rc;
    if (out && loom_mlir_print(mlirModuleGetOperation(mod), out))
        rc = loom_err_set(err, LOOM_ENOMEM, "out of memory");
    mlirModuleDestroy(mod);
    return rc;
}
