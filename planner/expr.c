/* expr.c — see expr.h. A hand-written lexer and recursive-descent parser;
 * every parsed object lives in the caller's arena. */
#include "planner/expr.h"

#include "common/buf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64      /* nesting bound for expressions (fuzz-safe recursion) */
#define MAX_PATH 64       /* segments in one reference */

/* ---- growable arrays in the arena -------------------------------------- */

typedef struct refvec {
    loom_ref_t *v;
    size_t n, cap;
} refvec_t;

static int refvec_push(loom_arena_t *a, refvec_t *rv, const loom_ref_t *r)
{
    if (rv->n == rv->cap) {
        size_t cap = rv->cap ? rv->cap * 2 : 4;
        loom_ref_t *nv = loom_arena_alloc(a, cap * sizeof *nv);
        if (!nv)
            return LOOM_ENOMEM;
        if (rv->n)
            memcpy(nv, rv->v, rv->n * sizeof *nv);
        rv->v = nv;
        rv->cap = cap;
    }
    rv->v[rv->n++] = *r;
    return 0;
}

static int fail(loom_expr_error_t *perr, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(loom_expr_error_t *perr, size_t off, const char *fmt, ...)
{
    if (perr) {
        perr->off = off;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(perr->msg, sizeof perr->msg, fmt, ap);
        va_end(ap);
    }
    return LOOM_EPARSE;
}

/* ---- references --------------------------------------------------------- */

static int is_ident_start(int c) { return isalpha(c) || c == '_'; }
static int is_ident_char(int c) { return isalnum(c) || c == '_' || c == '-'; }

typedef struct seg {
    const char *s; /* NULL for index */
    size_t len, index, off;
} seg_t;

/* Splits text[b..e) into path segments. Offsets are absolute. */
static int split_path(const char *text, size_t b, size_t e, seg_t *segs, size_t *nseg,
                      loom_expr_error_t *perr)
{
    size_t i = b, n = 0;
    if (i >= e)
        return fail(perr, b, "empty reference");
    for (;;) {
        if (n == MAX_PATH)
            return fail(perr, i, "reference has more than %d parts", MAX_PATH);
        if (i < e && text[i] == '[') {
            size_t j = i + 1;
            size_t v = 0;
            if (j >= e || !isdigit((unsigned char)text[j]))
                return fail(perr, j, "expected an index like [0]");
            while (j < e && isdigit((unsigned char)text[j])) {
                if (v > 100000000)
                    return fail(perr, i, "index too large");
                v = v * 10 + (size_t)(text[j] - '0');
                j++;
            }
            if (j >= e || text[j] != ']')
                return fail(perr, j, "expected ']'");
            segs[n++] = (seg_t){NULL, 0, v, i};
            i = j + 1;
        } else {
            size_t j = i;
            while (j < e && is_ident_char((unsigned char)text[j]))
                j++;
            if (j == i)
                return i < e ? fail(perr, i, "unexpected '%c' in reference", text[i])
                             : fail(perr, i, "expected a name");
            segs[n++] = (seg_t){text + i, j - i, 0, i};
            i = j;
        }
        if (i == e)
            break;
        if (text[i] == '.')
            i++;
        else if (text[i] != '[')
            return fail(perr, i, "unexpected '%c' in reference", text[i]);
        if (i == e)
            return fail(perr, i, "reference ends with '.'");
    }
    *nseg = n;
    return 0;
}

static int seg_is(const seg_t *s, const char *word)
{
    return s->s && s->len == strlen(word) && memcmp(s->s, word, s->len) == 0;
}

/* Parses the reference text[b..e) (without ${ }) into *r; off/len of the
 * whole written form are set by the caller. */
static int parse_ref(loom_arena_t *a, const char *text, size_t b, size_t e, loom_ref_t *r,
                     loom_expr_error_t *perr)
{
    seg_t segs[MAX_PATH];
    size_t n = 0, first_path;
    int rc = split_path(text, b, e, segs, &n, perr);
    if (rc)
        return rc;
    memset(r, 0, sizeof *r);
    r->name_off = segs[0].off;
    if (!segs[0].s)
        return fail(perr, segs[0].off, "a reference starts with inputs, steps, loop or item");
    if (seg_is(&segs[0], "inputs")) {
        if (n < 2 || !segs[1].s)
            return fail(perr, n < 2 ? e : segs[1].off, "expected an input name after 'inputs.'");
        r->kind = LOOM_REF_INPUT;
        r->name = loom_arena_strndup(a, segs[1].s, segs[1].len);
        r->name_off = segs[1].off;
        first_path = 2;
    } else if (seg_is(&segs[0], "steps") || (seg_is(&segs[0], "loop") && n > 1 && seg_is(&segs[1], "prev"))) {
        size_t k = seg_is(&segs[0], "steps") ? 1 : 2;
        r->kind = k == 1 ? LOOM_REF_STEP : LOOM_REF_LOOP_PREV;
        if (n <= k || !segs[k].s)
            return fail(perr, n <= k ? e : segs[k].off, "expected a step id after '%s.'",
                        k == 1 ? "steps" : "loop.prev");
        r->name = loom_arena_strndup(a, segs[k].s, segs[k].len);
        r->name_off = segs[k].off;
        if (n <= k + 1)
            return fail(perr, e, "expected '.output' after the step id");
        if (!seg_is(&segs[k + 1], "output"))
            return fail(perr, segs[k + 1].off, "expected 'output' after the step id, found '%.*s'%s",
                        (int)segs[k + 1].len, segs[k + 1].s ? segs[k + 1].s : "",
                        seg_is(&segs[k + 1], "outputs") ? " (did you mean 'output'?)" : "");
        first_path = k + 2;
    } else if (seg_is(&segs[0], "loop")) {
        if (n != 2 || !seg_is(&segs[1], "iteration"))
            return fail(perr, n > 1 ? segs[1].off : e,
                        "expected loop.iteration or loop.prev.<step>.output");
        r->kind = LOOM_REF_LOOP_ITERATION;
        first_path = 2;
    } else if (seg_is(&segs[0], "item")) {
        r->kind = LOOM_REF_ITEM;
        first_path = 1;
    } else if (seg_is(&segs[0], "secrets")) {
        if (n != 2 || !segs[1].s)
            return fail(perr, n < 2 ? e : segs[n > 2 ? 2 : 1].off,
                        "expected ${secrets.<name>} (a secret is a string: no path after it)");
        r->kind = LOOM_REF_SECRET;
        r->name = loom_arena_strndup(a, segs[1].s, segs[1].len);
        r->name_off = segs[1].off;
        first_path = 2;
    } else {
        return fail(perr, segs[0].off,
                    "unknown reference '%.*s' (expected inputs, steps, loop, item or secrets)",
                    (int)segs[0].len, segs[0].s);
    }
    if ((r->kind != LOOM_REF_LOOP_ITERATION && r->kind != LOOM_REF_ITEM) && !r->name)
        return LOOM_ENOMEM;
    if (n > first_path) {
        loom_path_seg_t *p = loom_arena_calloc(a, n - first_path, sizeof *p);
        if (!p)
            return LOOM_ENOMEM;
        for (size_t i = first_path; i < n; i++) {
            loom_path_seg_t *ps = &p[i - first_path];
            if (segs[i].s) {
                ps->key = loom_arena_strndup(a, segs[i].s, segs[i].len);
                if (!ps->key)
                    return LOOM_ENOMEM;
            } else {
                ps->index = segs[i].index;
            }
        }
        r->path = p;
        r->n_path = n - first_path;
    }
    return 0;
}

/* text[i] is '$' and text[i+1] is '{': parses "${...}" into r, sets *end. */
static int parse_braced_ref(loom_arena_t *a, const char *text, size_t len, size_t i, loom_ref_t *r,
                            size_t *end, loom_expr_error_t *perr)
{
    size_t j = i + 2;
    while (j < len && text[j] != '}' && text[j] != '\n')
        j++;
    if (j >= len || text[j] != '}')
        return fail(perr, i, "unterminated '${' (missing '}')");
    size_t b = i + 2, e = j;
    while (b < e && text[b] == ' ')
        b++;
    while (e > b && text[e - 1] == ' ')
        e--;
    int rc = parse_ref(a, text, b, e, r, perr);
    if (rc)
        return rc;
    r->off = i;
    r->len = j + 1 - i;
    *end = j + 1;
    return 0;
}

size_t loom_ref_format(const loom_ref_t *ref, char *buf, size_t n)
{
    size_t len = 0;
    int k = 0;
#define PUT(...)                                                                 \
    do {                                                                         \
        k = snprintf(len < n ? buf + len : NULL, len < n ? n - len : 0, __VA_ARGS__); \
        if (k > 0)                                                               \
            len += (size_t)k;                                                    \
    } while (0)
    switch (ref->kind) {
    case LOOM_REF_INPUT: PUT("inputs.%s", ref->name); break;
    case LOOM_REF_STEP: PUT("steps.%s.output", ref->name); break;
    case LOOM_REF_LOOP_ITERATION: PUT("loop.iteration"); break;
    case LOOM_REF_LOOP_PREV: PUT("loop.prev.%s.output", ref->name); break;
    case LOOM_REF_ITEM: PUT("item"); break;
    case LOOM_REF_SECRET: PUT("secrets.%s", ref->name); break;
    }
    for (size_t i = 0; i < ref->n_path; i++) {
        if (ref->path[i].key)
            PUT(".%s", ref->path[i].key);
        else
            PUT("[%zu]", ref->path[i].index);
    }
#undef PUT
    if (n && len >= n)
        buf[n - 1] = 0;
    return len;
}

json_t *loom_ref_apply_path(json_t *root, const loom_path_seg_t *path, size_t n_path)
{
    json_t *v = root;
    for (size_t i = 0; v && i < n_path; i++) {
        if (path[i].key) {
            if (json_is_object(v))
                v = json_object_get(v, path[i].key);
            else if (json_is_array(v) && isdigit((unsigned char)path[i].key[0])) {
                /* a.0 also indexes arrays, for people used to dotted paths */
                char *endp = NULL;
                unsigned long k = strtoul(path[i].key, &endp, 10);
                v = *endp ? NULL : json_array_get(v, k);
            } else
                v = NULL;
        } else {
            v = json_is_array(v) ? json_array_get(v, path[i].index) : NULL;
        }
    }
    return v;
}

bool loom_json_truthy(const json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL: case JSON_FALSE: return false;
    case JSON_TRUE: return true;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_STRING: return json_string_length(v) != 0;
    case JSON_ARRAY: return json_array_size(v) != 0;
    case JSON_OBJECT: return json_object_size(v) != 0;
    }
    return false;
}

/* Resolves a reference to a NEW json_t. missing_ok: a missing path gives
 * null instead of an error. */
static int resolve_ref(const loom_ref_t *r, loom_expr_resolver_fn resolve, void *ctx, bool missing_ok,
                       json_t **out, loom_err_t *err)
{
    loom_err_t tmp;
    loom_err_clear(&tmp);
    json_t *root = resolve ? resolve(ctx, r, err ? err : &tmp) : NULL;
    if (!root) {
        char name[256];
        loom_ref_format(r, name, sizeof name);
        if (!err || !err->code)
            loom_err_set(err, LOOM_ENOTFOUND, "%s: value not available", name);
        return err && err->code ? err->code : LOOM_ENOTFOUND;
    }
    json_t *v = loom_ref_apply_path(root, r->path, r->n_path);
    if (!v) {
        json_decref(root);
        if (missing_ok) {
            *out = json_null();
            return 0;
        }
        char name[256];
        loom_ref_format(r, name, sizeof name);
        return loom_err_set(err, LOOM_ENOTFOUND, "%s: no such field in the value", name);
    }
    json_incref(v);
    json_decref(root);
    *out = v;
    return 0;
}

/* ---- templates ---------------------------------------------------------- */

typedef struct tpart {
    const char *lit; /* literal text, or NULL for a reference */
    size_t lit_len;
    size_t ref;      /* index into refs */
} tpart_t;

struct loom_template {
    tpart_t *parts;
    size_t n_parts;
    loom_ref_t *refs;
    size_t n_refs;
};

int loom_template_parse(loom_arena_t *a, const char *text, size_t len, loom_template_t **out,
                        loom_expr_error_t *perr)
{
    *out = NULL;
    /* Quick exit for the common case: no "${" anywhere. */
    bool any = false;
    for (size_t i = 0; i + 1 < len; i++)
        if (text[i] == '$' && text[i + 1] == '{') {
            any = true;
            break;
        }
    if (!any)
        return 0;
    refvec_t refs = {0};
    size_t np = 0, cap = 8;
    tpart_t *parts = loom_arena_calloc(a, cap, sizeof *parts);
    char *lit = loom_arena_alloc(a, len + 1);
    if (!parts || !lit)
        return LOOM_ENOMEM;
    size_t litlen = 0, i = 0;
    while (i <= len) {
        bool at_end = i == len;
        bool ref_here = !at_end && text[i] == '$' && i + 1 < len && text[i + 1] == '{';
        bool esc_here = !at_end && text[i] == '$' && i + 2 < len && text[i + 1] == '$' && text[i + 2] == '{';
        if (esc_here) {
            lit[litlen++] = '$';
            lit[litlen++] = '{';
            i += 3;
            continue;
        }
        if (!at_end && !ref_here) {
            lit[litlen++] = text[i++];
            continue;
        }
        if (np + 2 > cap) {
            size_t ncap = cap * 2;
            tpart_t *nparts = loom_arena_calloc(a, ncap, sizeof *nparts);
            if (!nparts)
                return LOOM_ENOMEM;
            memcpy(nparts, parts, np * sizeof *parts);
            parts = nparts;
            cap = ncap;
        }
        if (litlen) {
            parts[np].lit = lit;
            parts[np].lit_len = litlen;
            np++;
            lit += litlen;
            litlen = 0;
        }
        if (at_end)
            break;
        loom_ref_t r;
        size_t end;
        int rc = parse_braced_ref(a, text, len, i, &r, &end, perr);
        if (rc)
            return rc;
        if (refvec_push(a, &refs, &r))
            return LOOM_ENOMEM;
        parts[np].lit = NULL;
        parts[np].ref = refs.n - 1;
        np++;
        i = end;
    }
    loom_template_t *t = loom_arena_calloc(a, 1, sizeof *t);
    if (!t)
        return LOOM_ENOMEM;
    t->parts = parts;
    t->n_parts = np;
    t->refs = refs.v;
    t->n_refs = refs.n;
    if (t->n_refs == 0) /* only "$${" escapes: still a template (it unescapes) */
        t->refs = NULL;
    *out = t;
    return 0;
}

size_t loom_template_n_refs(const loom_template_t *t) { return t ? t->n_refs : 0; }

const loom_ref_t *loom_template_ref(const loom_template_t *t, size_t i)
{
    return t && i < t->n_refs ? &t->refs[i] : NULL;
}

const loom_ref_t *loom_template_single_ref(const loom_template_t *t)
{
    if (t && t->n_parts == 1 && !t->parts[0].lit)
        return &t->refs[t->parts[0].ref];
    return NULL;
}

static int append_json_text(loom_buf_t *b, json_t *v)
{
    if (json_is_string(v))
        return loom_buf_append(b, json_string_value(v), json_string_length(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return LOOM_ENOMEM;
    int rc = loom_buf_puts(b, s);
    free(s);
    return rc;
}

int loom_template_render(const loom_template_t *t, loom_expr_resolver_fn resolve, void *ctx,
                         json_t **out, loom_err_t *err)
{
    *out = NULL;
    const loom_ref_t *single = loom_template_single_ref(t);
    if (single)
        return resolve_ref(single, resolve, ctx, false, out, err);
    loom_buf_t b = LOOM_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; t && i < t->n_parts && !rc; i++) {
        if (t->parts[i].lit) {
            rc = loom_buf_append(&b, t->parts[i].lit, t->parts[i].lit_len);
            continue;
        }
        json_t *v = NULL;
        rc = resolve_ref(&t->refs[t->parts[i].ref], resolve, ctx, false, &v, err);
        if (!rc)
            rc = append_json_text(&b, v);
        json_decref(v);
    }
    if (!rc) {
        *out = json_stringn(b.data ? b.data : "", b.len);
        if (!*out)
            rc = loom_err_set(err, LOOM_EINVAL, "rendered text is not valid UTF-8");
    } else if (rc == LOOM_ENOMEM && (!err || !err->code)) {
        loom_err_set(err, rc, "out of memory rendering a template");
    }
    loom_buf_free(&b);
    return rc;
}

/* ---- expressions: lexer ------------------------------------------------- */

typedef enum {
    T_END, T_REF, T_STR, T_NUM, T_TRUE, T_FALSE, T_NULL,
    T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_AND, T_OR, T_NOT, T_LP, T_RP, T_CONTAINS,
} tok_kind_t;

typedef struct tok {
    tok_kind_t kind;
    size_t off;
    loom_ref_t ref;  /* T_REF */
    const char *str; /* T_STR (arena, decoded) */
    size_t str_len;
    double num;
} tok_t;

typedef struct lexer {
    loom_arena_t *a;
    const char *text;
    size_t len, pos;
    tok_t tok;          /* current token */
    refvec_t refs;
    loom_expr_error_t *perr;
    int depth;
} lexer_t;

static int lex_string(lexer_t *L, char q)
{
    size_t i = L->pos + 1;
    char *s = loom_arena_alloc(L->a, L->len - L->pos + 1);
    size_t n = 0;
    if (!s)
        return LOOM_ENOMEM;
    while (i < L->len && L->text[i] != q) {
        char c = L->text[i];
        if (c == '\\' && i + 1 < L->len) {
            char d = L->text[++i];
            c = d == 'n' ? '\n' : d == 't' ? '\t' : d;
        }
        s[n++] = c;
        i++;
    }
    if (i >= L->len)
        return fail(L->perr, L->pos, "unterminated string literal");
    s[n] = 0;
    L->tok.kind = T_STR;
    L->tok.str = s;
    L->tok.str_len = n;
    L->pos = i + 1;
    return 0;
}

static int lex_next(lexer_t *L)
{
    const char *t = L->text;
    while (L->pos < L->len && isspace((unsigned char)t[L->pos]))
        L->pos++;
    size_t p = L->pos;
    memset(&L->tok, 0, sizeof L->tok);
    L->tok.off = p;
    if (p >= L->len) {
        L->tok.kind = T_END;
        return 0;
    }
    char c = t[p], d = p + 1 < L->len ? t[p + 1] : 0;
#define TWO(a, b, k) if (c == (a) && d == (b)) { L->tok.kind = (k); L->pos += 2; return 0; }
    TWO('=', '=', T_EQ) TWO('!', '=', T_NE) TWO('<', '=', T_LE) TWO('>', '=', T_GE)
    TWO('&', '&', T_AND) TWO('|', '|', T_OR)
#undef TWO
    switch (c) {
    case '<': L->tok.kind = T_LT; L->pos++; return 0;
    case '>': L->tok.kind = T_GT; L->pos++; return 0;
    case '!': L->tok.kind = T_NOT; L->pos++; return 0;
    case '(': L->tok.kind = T_LP; L->pos++; return 0;
    case ')': L->tok.kind = T_RP; L->pos++; return 0;
    case '\'': case '"': return lex_string(L, c);
    case '=': return fail(L->perr, p, "use '==' to compare");
    case '&': return fail(L->perr, p, "use '&&' for 'and'");
    case '|': return fail(L->perr, p, "use '||' for 'or'");
    default: break;
    }
    if (c == '$' && d == '{') {
        size_t end;
        int rc = parse_braced_ref(L->a, t, L->len, p, &L->tok.ref, &end, L->perr);
        if (rc)
            return rc;
        L->tok.kind = T_REF;
        L->pos = end;
        return 0;
    }
    if (isdigit((unsigned char)c) || ((c == '-' || c == '.') && isdigit((unsigned char)d))) {
        char buf[64];
        size_t i = p, n = 0;
        if (t[i] == '-')
            buf[n++] = t[i++];
        while (i < L->len && n < sizeof buf - 1 &&
               (isdigit((unsigned char)t[i]) || t[i] == '.' || t[i] == 'e' || t[i] == 'E' ||
                ((t[i] == '+' || t[i] == '-') && (t[i - 1] == 'e' || t[i - 1] == 'E'))))
            buf[n++] = t[i++];
        buf[n] = 0;
        char *endp;
        errno = 0;
        double v = strtod(buf, &endp);
        if (*endp || errno || !isfinite(v))
            return fail(L->perr, p, "bad number '%s'", buf);
        L->tok.kind = T_NUM;
        L->tok.num = v;
        L->pos = i;
        return 0;
    }
    if (is_ident_start((unsigned char)c)) {
        size_t i = p;
        while (i < L->len && (is_ident_char((unsigned char)t[i]) || t[i] == '.' || t[i] == '[' || t[i] == ']'))
            i++;
        size_t n = i - p;
#define KW(w, k) if (n == sizeof(w) - 1 && memcmp(t + p, w, n) == 0) { L->tok.kind = (k); L->pos = i; return 0; }
        KW("true", T_TRUE) KW("false", T_FALSE) KW("null", T_NULL) KW("contains", T_CONTAINS)
        KW("and", T_AND) KW("or", T_OR) KW("not", T_NOT)
#undef KW
        int rc = parse_ref(L->a, t, p, i, &L->tok.ref, L->perr);
        if (rc)
            return rc;
        L->tok.ref.off = p;
        L->tok.ref.len = n;
        L->tok.kind = T_REF;
        L->pos = i;
        return 0;
    }
    return fail(L->perr, p, "unexpected character '%c'", c);
}

/* ---- expressions: parser ------------------------------------------------ */

typedef enum { N_NULL, N_BOOL, N_NUM, N_STR, N_REF, N_NOT, N_AND, N_OR, N_CMP } node_kind_t;

typedef struct node {
    node_kind_t kind;
    tok_kind_t op;         /* N_CMP: T_EQ .. T_GE, T_CONTAINS */
    bool b;
    double num;
    const char *str;
    size_t str_len;
    size_t ref;            /* N_REF: index into refs */
    size_t off;
    struct node *l, *r;
} node_t;

struct loom_expr {
    node_t *root;
    loom_ref_t *refs;
    size_t n_refs;
};

static node_t *new_node(lexer_t *L, node_kind_t k, size_t off)
{
    node_t *n = loom_arena_calloc(L->a, 1, sizeof *n);
    if (n) {
        n->kind = k;
        n->off = off;
    }
    return n;
}

static int parse_or(lexer_t *L, node_t **out);

static int parse_primary(lexer_t *L, node_t **out)
{
    tok_t t = L->tok;
    node_t *n = NULL;
    int rc;
    switch (t.kind) {
    case T_LP:
        if (++L->depth > MAX_DEPTH)
            return fail(L->perr, t.off, "expression nested too deeply");
        if ((rc = lex_next(L)) || (rc = parse_or(L, &n)))
            return rc;
        if (L->tok.kind != T_RP)
            return fail(L->perr, L->tok.off, "expected ')'");
        L->depth--;
        *out = n;
        return lex_next(L);
    case T_TRUE: case T_FALSE:
        n = new_node(L, N_BOOL, t.off);
        if (n)
            n->b = t.kind == T_TRUE;
        break;
    case T_NULL: n = new_node(L, N_NULL, t.off); break;
    case T_NUM:
        n = new_node(L, N_NUM, t.off);
        if (n)
            n->num = t.num;
        break;
    case T_STR:
        n = new_node(L, N_STR, t.off);
        if (n) {
            n->str = t.str;
            n->str_len = t.str_len;
        }
        break;
    case T_REF:
        n = new_node(L, N_REF, t.off);
        if (!n || refvec_push(L->a, &L->refs, &t.ref))
            return LOOM_ENOMEM;
        n->ref = L->refs.n - 1;
        break;
    case T_END: return fail(L->perr, t.off, "expression ends too early");
    default: return fail(L->perr, t.off, "expected a value, a reference or '('");
    }
    if (!n)
        return LOOM_ENOMEM;
    *out = n;
    return lex_next(L);
}

static int parse_cmp(lexer_t *L, node_t **out)
{
    int rc = parse_primary(L, out);
    if (rc)
        return rc;
    tok_kind_t k = L->tok.kind;
    if (k == T_EQ || k == T_NE || k == T_LT || k == T_LE || k == T_GT || k == T_GE || k == T_CONTAINS) {
        node_t *n = new_node(L, N_CMP, L->tok.off);
        if (!n)
            return LOOM_ENOMEM;
        n->op = k;
        n->l = *out;
        if ((rc = lex_next(L)) || (rc = parse_primary(L, &n->r)))
            return rc;
        *out = n;
        k = L->tok.kind;
        if (k == T_EQ || k == T_NE || k == T_LT || k == T_LE || k == T_GT || k == T_GE || k == T_CONTAINS)
            return fail(L->perr, L->tok.off, "comparisons do not chain; use parentheses and &&");
    }
    return 0;
}

static int parse_not(lexer_t *L, node_t **out)
{
    if (L->tok.kind != T_NOT)
        return parse_cmp(L, out);
    if (++L->depth > MAX_DEPTH)
        return fail(L->perr, L->tok.off, "expression nested too deeply");
    node_t *n = new_node(L, N_NOT, L->tok.off);
    int rc;
    if (!n)
        return LOOM_ENOMEM;
    if ((rc = lex_next(L)) || (rc = parse_not(L, &n->l)))
        return rc;
    L->depth--;
    *out = n;
    return 0;
}

static int parse_and(lexer_t *L, node_t **out)
{
    int rc = parse_not(L, out);
    while (!rc && L->tok.kind == T_AND) {
        node_t *n = new_node(L, N_AND, L->tok.off);
        if (!n)
            return LOOM_ENOMEM;
        n->l = *out;
        if ((rc = lex_next(L)) || (rc = parse_not(L, &n->r)))
            return rc;
        *out = n;
    }
    return rc;
}

static int parse_or(lexer_t *L, node_t **out)
{
    int rc = parse_and(L, out);
    while (!rc && L->tok.kind == T_OR) {
        node_t *n = new_node(L, N_OR, L->tok.off);
        if (!n)
            return LOOM_ENOMEM;
        n->l = *out;
        if ((rc = lex_next(L)) || (rc = parse_and(L, &n->r)))
            return rc;
        *out = n;
    }
    return rc;
}

int loom_expr_parse(loom_arena_t *a, const char *text, size_t len, loom_expr_t **out,
                    loom_expr_error_t *perr)
{
    *out = NULL;
    lexer_t L = {.a = a, .text = text, .len = len, .perr = perr};
    node_t *root = NULL;
    int rc = lex_next(&L);
    if (!rc && L.tok.kind == T_END)
        return fail(perr, 0, "empty expression");
    if (!rc)
        rc = parse_or(&L, &root);
    if (!rc && L.tok.kind != T_END)
        rc = fail(perr, L.tok.off, "unexpected text after the expression");
    if (rc)
        return rc;
    loom_expr_t *e = loom_arena_calloc(a, 1, sizeof *e);
    if (!e)
        return LOOM_ENOMEM;
    e->root = root;
    e->refs = L.refs.v;
    e->n_refs = L.refs.n;
    *out = e;
    return 0;
}

size_t loom_expr_n_refs(const loom_expr_t *e) { return e ? e->n_refs : 0; }

const loom_ref_t *loom_expr_ref(const loom_expr_t *e, size_t i)
{
    return e && i < e->n_refs ? &e->refs[i] : NULL;
}

/* ---- expressions: evaluation -------------------------------------------- */

typedef struct evalctx {
    const loom_expr_t *e;
    loom_expr_resolver_fn resolve;
    void *ctx;
    loom_err_t *err;
} evalctx_t;

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "list";
    case JSON_STRING: return "string";
    case JSON_INTEGER: case JSON_REAL: return "number";
    case JSON_TRUE: case JSON_FALSE: return "bool";
    case JSON_NULL: return "null";
    }
    return "?";
}

static bool values_equal(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    return json_equal(a, b);
}

static const char *op_text(tok_kind_t k)
{
    switch (k) {
    case T_LT: return "<";
    case T_LE: return "<=";
    case T_GT: return ">";
    case T_GE: return ">=";
    case T_CONTAINS: return "contains";
    default: return "==";
    }
}

static int eval_node(evalctx_t *E, const node_t *n, json_t **out);

static int eval_cmp(evalctx_t *E, const node_t *n, json_t *l, json_t *r, bool *res)
{
    switch (n->op) {
    case T_EQ: *res = values_equal(l, r); return 0;
    case T_NE: *res = !values_equal(l, r); return 0;
    case T_CONTAINS:
        if (json_is_null(l)) {
            *res = false;
            return 0;
        }
        if (json_is_string(l) && json_is_string(r)) {
            *res = memmem(json_string_value(l), json_string_length(l), json_string_value(r),
                          json_string_length(r)) != NULL;
            return 0;
        }
        if (json_is_array(l)) {
            size_t i;
            json_t *x;
            *res = false;
            json_array_foreach(l, i, x) if (values_equal(x, r)) *res = true;
            return 0;
        }
        if (json_is_object(l) && json_is_string(r)) {
            *res = json_object_get(l, json_string_value(r)) != NULL;
            return 0;
        }
        break;
    default:
        if (json_is_number(l) && json_is_number(r)) {
            double a = json_number_value(l), b = json_number_value(r);
            *res = n->op == T_LT ? a < b : n->op == T_LE ? a <= b : n->op == T_GT ? a > b : a >= b;
            return 0;
        }
        if (json_is_string(l) && json_is_string(r)) {
            int c = strcmp(json_string_value(l), json_string_value(r));
            *res = n->op == T_LT ? c < 0 : n->op == T_LE ? c <= 0 : n->op == T_GT ? c > 0 : c >= 0;
            return 0;
        }
        break;
    }
    return loom_err_set(E->err, LOOM_EINVAL, "cannot apply '%s' to %s and %s (at offset %zu)",
                        op_text(n->op), type_name(l), type_name(r), n->off);
}

static int eval_node(evalctx_t *E, const node_t *n, json_t **out)
{
    json_t *l = NULL, *r = NULL;
    int rc = 0;
    bool res;
    switch (n->kind) {
    case N_NULL: *out = json_null(); return 0;
    case N_BOOL: *out = json_boolean(n->b); return 0;
    case N_NUM:
        *out = n->num == floor(n->num) && fabs(n->num) < 9e15 ? json_integer((json_int_t)n->num)
                                                              : json_real(n->num);
        return *out ? 0 : LOOM_ENOMEM;
    case N_STR:
        *out = json_stringn(n->str, n->str_len);
        return *out ? 0 : loom_err_set(E->err, LOOM_EINVAL, "string literal is not valid UTF-8");
    case N_REF: return resolve_ref(&E->e->refs[n->ref], E->resolve, E->ctx, true, out, E->err);
    case N_NOT:
        if ((rc = eval_node(E, n->l, &l)))
            return rc;
        *out = json_boolean(!loom_json_truthy(l));
        json_decref(l);
        return 0;
    case N_AND: case N_OR:
        if ((rc = eval_node(E, n->l, &l)))
            return rc;
        res = loom_json_truthy(l);
        json_decref(l);
        if (res == (n->kind == N_AND)) {
            if ((rc = eval_node(E, n->r, &r)))
                return rc;
            res = loom_json_truthy(r);
            json_decref(r);
        }
        *out = json_boolean(res);
        return 0;
    case N_CMP:
        if ((rc = eval_node(E, n->l, &l)))
            return rc;
        if ((rc = eval_node(E, n->r, &r))) {
            json_decref(l);
            return rc;
        }
        rc = eval_cmp(E, n, l, r, &res);
        json_decref(l);
        json_decref(r);
        if (!rc)
            *out = json_boolean(res);
        return rc;
    }
    return loom_err_set(E->err, LOOM_EINTERNAL, "bad expression node");
}

int loom_expr_eval(const loom_expr_t *e, loom_expr_resolver_fn resolve, void *ctx, json_t **out,
                   loom_err_t *err)
{
    *out = NULL;
    if (!e || !e->root)
        return loom_err_set(err, LOOM_EINVAL, "no expression");
    evalctx_t E = {e, resolve, ctx, err};
    return eval_node(&E, e->root, out);
}

int loom_expr_eval_bool(const loom_expr_t *e, loom_expr_resolver_fn resolve, void *ctx, bool *truth,
                        loom_err_t *err)
{
    json_t *v = NULL;
    int rc = loom_expr_eval(e, resolve, ctx, &v, err);
    if (rc)
        return rc;
    *truth = loom_json_truthy(v);
    json_decref(v);
    return 0;
}
