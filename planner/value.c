/* value.c — see value.h. Builds the tree from libyaml's event stream
 * (not its document API) so nodes land in our arena with their positions,
 * and so duplicate keys and aliases can be refused as they are met. */
#include "planner/value.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/buf.h"
#include "common/map.h"
#include "common/grow.h"

#define MAX_DEPTH 64

/* ---- diagnostics ---------------------------------------------------------- */

void loom_diags_init(loom_diags_t *d) { memset(d, 0, sizeof *d); }

void loom_diags_free(loom_diags_t *d)
{
    if (!d)
        return;
    free(d->items);
    memset(d, 0, sizeof *d);
}

loom_err_t *loom_diags_add(loom_diags_t *d)
{
    if (!d)
        return NULL;
    if (d->len >= LOOM_DIAGS_MAX) {
        d->dropped++;
        return NULL;
    }
    if (LOOM_GROW(d->items, d->cap, d->len + 1) != 0) {
            d->dropped++;
            return NULL;
        }
    loom_err_t *e = &d->items[d->len++];
    loom_err_clear(e);
    return e;
}

void loom_diags_sort(loom_diags_t *d)
{
    /* insertion sort: stable, and lists are short (<= LOOM_DIAGS_MAX) */
    for (size_t i = 1; d && i < d->len; i++) {
        loom_err_t tmp = d->items[i];
        size_t j = i;
        while (j > 0 && (d->items[j - 1].line > tmp.line ||
                         (d->items[j - 1].line == tmp.line && d->items[j - 1].col > tmp.col))) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = tmp;
    }
}

/* ---- value helpers -------------------------------------------------------- */

const char *loom_value_kind_name(loom_value_kind_t k)
{
    switch (k) {
    case LOOM_VALUE_NULL: return "null";
    case LOOM_VALUE_BOOL: return "bool";
    case LOOM_VALUE_INT: return "int";
    case LOOM_VALUE_FLOAT: return "float";
    case LOOM_VALUE_STRING: return "string";
    case LOOM_VALUE_SEQ: return "list";
    case LOOM_VALUE_MAP: return "mapping";
    }
    return "?";
}

const loom_value_t *loom_value_get(const loom_value_t *v, const char *key)
{
    if (!v || v->kind != LOOM_VALUE_MAP)
        return NULL;
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(v->entries[i].key, key) == 0)
            return v->entries[i].value;
    return NULL;
}

json_t *loom_value_to_json(const loom_value_t *v)
{
    if (!v)
        return json_null();
    switch (v->kind) {
    case LOOM_VALUE_NULL: return json_null();
    case LOOM_VALUE_BOOL: return json_boolean(v->b);
    case LOOM_VALUE_INT: return json_integer(v->i);
    case LOOM_VALUE_FLOAT: return isfinite(v->f) ? json_real(v->f) : json_null();
    case LOOM_VALUE_STRING: {
        json_t *s = json_stringn(v->str, v->str_len);
        return s ? s : json_null(); /* cannot happen: libyaml checks UTF-8 */
    }
    case LOOM_VALUE_SEQ: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < v->len; i++)
            json_array_append_new(a, loom_value_to_json(v->items[i]));
        return a;
    }
    case LOOM_VALUE_MAP: {
        json_t *o = json_object();
        for (size_t i = 0; o && i < v->len; i++)
            json_object_set_new(o, v->entries[i].key, loom_value_to_json(v->entries[i].value));
        return o;
    }
    }
    return json_null();
}

int loom_value_render(const loom_value_t *v, loom_expr_resolver_fn resolve, void *ctx, json_t **out,
                      loom_err_t *err)
{
    *out = NULL;
    int rc = 0;
    if (v && v->kind == LOOM_VALUE_STRING && v->tpl)
        return loom_template_render(v->tpl, resolve, ctx, out, err);
    if (v && v->kind == LOOM_VALUE_SEQ) {
        json_t *a = json_array();
        for (size_t i = 0; a && !rc && i < v->len; i++) {
            json_t *x = NULL;
            rc = loom_value_render(v->items[i], resolve, ctx, &x, err);
            if (!rc)
                json_array_append_new(a, x);
        }
        if (rc || !a) {
            json_decref(a);
            return rc ? rc : loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
        *out = a;
        return 0;
    }
    if (v && v->kind == LOOM_VALUE_MAP) {
        json_t *o = json_object();
        for (size_t i = 0; o && !rc && i < v->len; i++) {
            json_t *x = NULL;
            rc = loom_value_render(v->entries[i].value, resolve, ctx, &x, err);
            if (!rc)
                json_object_set_new(o, v->entries[i].key, x);
        }
        if (rc || !o) {
            json_decref(o);
            return rc ? rc : loom_err_set(err, LOOM_ENOMEM, "out of memory");
        }
        *out = o;
        return 0;
    }
    *out = loom_value_to_json(v);
    return *out ? 0 : loom_err_set(err, LOOM_ENOMEM, "out of memory");
}

/* ---- YAML -> tree --------------------------------------------------------- */

typedef struct builder {
    yaml_parser_t p;
    loom_arena_t *a;
    const char *file;
    loom_diags_t *d;
    int errors;
} builder_t;

static void report(builder_t *B, int line, int col, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void report(builder_t *B, int line, int col, const char *field, const char *fmt, ...)
{
    B->errors++;
    loom_err_t *e = loom_diags_add(B->d);
    if (!e)
        return;
    e->code = LOOM_EPARSE;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    loom_err_at(e, B->file, line, col);
    if (field && *field)
        loom_err_field(e, "%s", field);
}

static void report_yaml_error(builder_t *B)
{
    const yaml_parser_t *p = &B->p;
    const yaml_mark_t *m = &p->problem_mark;
    const char *problem = p->problem ? p->problem : "malformed document";
    if (p->error == YAML_MEMORY_ERROR) {
        report(B, 0, 0, NULL, "out of memory while reading YAML");
        return;
    }
    if (p->context && p->context_mark.line != m->line)
        report(B, (int)m->line + 1, (int)m->column + 1, NULL, "invalid YAML: %s (%s at line %d)",
               problem, p->context, (int)p->context_mark.line + 1);
    else if (p->context)
        report(B, (int)m->line + 1, (int)m->column + 1, NULL, "invalid YAML: %s (%s)", problem,
               p->context);
    else
        report(B, (int)m->line + 1, (int)m->column + 1, NULL, "invalid YAML: %s", problem);
}

/* Fetches the next event; on a syntax error reports it and returns -1. */
static int next_event(builder_t *B, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&B->p, ev)) {
        report_yaml_error(B);
        return -1;
    }
    return 0;
}

/* YAML 1.2 core schema resolution of a plain scalar. */
static void resolve_plain(loom_value_t *v)
{
    const char *s = v->str;
    size_t n = v->str_len;
    if (n == 0 || (n == 1 && s[0] == '~') || !strcmp(s, "null") || !strcmp(s, "Null") ||
        !strcmp(s, "NULL")) {
        v->kind = LOOM_VALUE_NULL;
        return;
    }
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        v->kind = LOOM_VALUE_BOOL;
        v->b = true;
        return;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        v->kind = LOOM_VALUE_BOOL;
        v->b = false;
        return;
    }
    if (strlen(s) != n) /* embedded NUL: a string */
        return;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool digits = i < n;
    for (size_t j = i; j < n; j++)
        if (s[j] < '0' || s[j] > '9')
            digits = false;
    if (digits) {
        errno = 0;
        char *end;
        long long x = strtoll(s, &end, 10);
        if (!errno && !*end) {
            v->kind = LOOM_VALUE_INT;
            v->i = x;
            v->f = (double)x;
            return;
        }
    }
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        errno = 0;
        char *end;
        long long x = strtoll(s + 2, &end, s[1] == 'x' ? 16 : 8);
        if (!errno && !*end && s[2] != '-' && s[2] != '+' && s[2] != ' ') {
            v->kind = LOOM_VALUE_INT;
            v->i = x;
            v->f = (double)x;
            return;
        }
    }
    const char *t = s + i;
    if (!strcmp(t, ".inf") || !strcmp(t, ".Inf") || !strcmp(t, ".INF")) {
        v->kind = LOOM_VALUE_FLOAT;
        v->f = s[0] == '-' ? -INFINITY : INFINITY;
        return;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
        v->kind = LOOM_VALUE_FLOAT;
        v->f = NAN;
        return;
    }
    /* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    size_t j = i, before = 0, after = 0;
    while (j < n && s[j] >= '0' && s[j] <= '9')
        j++, before++;
    if (j < n && s[j] == '.') {
        j++;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++, after++;
    }
    if (before + after == 0)
        return;
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '-' || s[j] == '+'))
            j++;
        size_t e0 = j;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == e0)
            return;
    }
    if (j != n)
        return;
    v->kind = LOOM_VALUE_FLOAT;
    v->f = strtod(s, NULL);
}

/* The field path of the node being built, as a chain on the C stack; it
 * is only formatted ("steps.a.argv[1]") when an error is reported. */
typedef struct pathlink {
    const struct pathlink *parent;
    const char *key; /* NULL: a list index */
    size_t index;
} pathlink_t;

static size_t format_path(const pathlink_t *p, char *buf, size_t n)
{
    if (!p)
        return 0;
    size_t len = format_path(p->parent, buf, n);
    int k = p->key ? snprintf(buf + len, n - len, "%s%s", len ? "." : "", p->key)
                   : snprintf(buf + len, n - len, "[%zu]", p->index);
    len += k > 0 ? (size_t)k : 0;
    return len < n ? len : n - 1;
}

static void report_at(builder_t *B, int line, int col, const pathlink_t *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void report_at(builder_t *B, int line, int col, const pathlink_t *path, const char *fmt, ...)
{
    char field[256] = "", msg[512];
    format_path(path, field, sizeof field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    report(B, line, col, field, "%s", msg);
}

static int build(builder_t *B, yaml_event_t *ev, const pathlink_t *path, int depth, loom_value_t **out);

static int build_scalar(builder_t *B, yaml_event_t *ev, loom_value_t *v)
{
    size_t n = ev->data.scalar.length;
    v->str = loom_arena_strndup(B->a, (const char *)ev->data.scalar.value, n);
    if (!v->str)
        return LOOM_ENOMEM;
    v->str_len = n;
    v->kind = LOOM_VALUE_STRING;
    yaml_scalar_style_t st = ev->data.scalar.style;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (st == YAML_PLAIN_SCALAR_STYLE && !tag)
        resolve_plain(v);
    if (ev->start_mark.line == ev->end_mark.line) {
        size_t w = ev->end_mark.column - ev->start_mark.column;
        if (st == YAML_PLAIN_SCALAR_STYLE && w == n)
            v->text_col = v->col;
        else if ((st == YAML_SINGLE_QUOTED_SCALAR_STYLE || st == YAML_DOUBLE_QUOTED_SCALAR_STYLE) &&
                 w == n + 2)
            v->text_col = v->col + 1;
    }
    return 0;
}

typedef struct entvec {
    loom_value_entry_t *v;
    size_t n, cap;
} entvec_t;

static int build_map(builder_t *B, const pathlink_t *path, int depth, loom_value_t *v)
{
    entvec_t ev_ = {0};
    yaml_event_t ev;
    loom_map_t *index = NULL;
    int rc = 0;
    for (;;) {
        if (next_event(B, &ev))
            {
                rc = LOOM_EPARSE;
                goto out_index;
            }
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        int kline = (int)ev.start_mark.line + 1, kcol = (int)ev.start_mark.column + 1;
        const char *key = NULL;
        if (ev.type == YAML_SCALAR_EVENT) {
            key = loom_arena_strndup(B->a, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            if (!key) {
                yaml_event_delete(&ev);
                {
                rc = LOOM_ENOMEM;
                goto out_index;
            }
            }
            yaml_event_delete(&ev);
        } else {
            /* Build and drop the complex key so the stream stays in step. */
            report_at(B, kline, kcol, path, "mapping keys must be plain strings");
            loom_value_t *junk = NULL;
            rc = build(B, &ev, path, depth + 1, &junk);
            if (rc)
                goto out_index;
            key = NULL;
        }
        if (next_event(B, &ev))
            {
                rc = LOOM_EPARSE;
                goto out_index;
            }
        loom_value_t *val = NULL;
        pathlink_t child = {path, key, 0};
        rc = build(B, &ev, key ? &child : path, depth + 1, &val);
        if (rc)
            goto out_index;
        if (!key)
            continue;
        const loom_value_entry_t *dup = NULL;
        if (index) { /* large mapping: hashed lookup (index maps key -> entry number + 1) */
            uintptr_t k = (uintptr_t)loom_map_get(index, key);
            dup = k ? &ev_.v[k - 1] : NULL;
        } else {
            for (size_t i = 0; i < ev_.n && !dup; i++)
                if (strcmp(ev_.v[i].key, key) == 0)
                    dup = &ev_.v[i];
        }
        if (dup) {
            report_at(B, kline, kcol, path, "duplicate key '%s' (first defined at line %d)", key, dup->line);
            continue;
        }
        if (ev_.n == ev_.cap) {
            size_t cap = ev_.cap ? ev_.cap * 2 : 8;
            loom_value_entry_t *nv = loom_arena_alloc(B->a, cap * sizeof *nv);
            if (!nv)
                {
                rc = LOOM_ENOMEM;
                goto out_index;
            }
            if (ev_.n)
                memcpy(nv, ev_.v, ev_.n * sizeof *nv);
            ev_.v = nv;
            ev_.cap = cap;
        }
        ev_.v[ev_.n++] = (loom_value_entry_t){key, kline, kcol, val};
        if (!index && ev_.n == 32) { /* switch to hashing: duplicate checks stay linear overall */
            index = loom_map_new(NULL);
            for (size_t i = 0; index && i < ev_.n; i++)
                if (loom_map_put(index, ev_.v[i].key, (void *)(uintptr_t)(i + 1)))
                    loom_map_destroy(&index);
        } else if (index && loom_map_put(index, key, (void *)(uintptr_t)ev_.n)) {
            rc = LOOM_ENOMEM;
            break;
        }
    }
out_index:
    loom_map_destroy(&index);
    if (rc)
        return rc;
    v->kind = LOOM_VALUE_MAP;
    v->entries = ev_.v;
    v->len = ev_.n;
    return 0;
}

static int build_seq(builder_t *B, const pathlink_t *path, int depth, loom_value_t *v)
{
    const loom_value_t **items = NULL;
    size_t n = 0, cap = 0;
    yaml_event_t ev;
    for (;;) {
        if (next_event(B, &ev))
            return LOOM_EPARSE;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        loom_value_t *item = NULL;
        pathlink_t child = {path, NULL, n};
        int rc = build(B, &ev, &child, depth + 1, &item);
        if (rc)
            return rc;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            const loom_value_t **ni = loom_arena_alloc(B->a, cap * sizeof *ni);
            if (!ni)
                return LOOM_ENOMEM;
            if (n)
                memcpy(ni, items, n * sizeof *ni);
            items = ni;
        }
        items[n++] = item;
    }
    v->kind = LOOM_VALUE_SEQ;
    v->items = items;
    v->len = n;
    return 0;
}

/* Builds the node that starts with *ev (consumed and deleted here). */
static int build(builder_t *B, yaml_event_t *ev, const pathlink_t *path, int depth, loom_value_t **out)
{
    int rc = 0;
    loom_value_t *v = loom_arena_calloc(B->a, 1, sizeof *v);
    if (!v) {
        yaml_event_delete(ev);
        return LOOM_ENOMEM;
    }
    v->line = (int)ev->start_mark.line + 1;
    v->col = (int)ev->start_mark.column + 1;
    *out = v;
    if (depth > MAX_DEPTH && (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT)) {
        report_at(B, v->line, v->col, path, "nesting deeper than %d levels", MAX_DEPTH);
        yaml_event_delete(ev);
        return LOOM_EPARSE;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: rc = build_scalar(B, ev, v); break;
    case YAML_MAPPING_START_EVENT: rc = build_map(B, path, depth, v); break;
    case YAML_SEQUENCE_START_EVENT: rc = build_seq(B, path, depth, v); break;
    case YAML_ALIAS_EVENT:
        report_at(B, v->line, v->col, path, "YAML aliases (*%s) are not supported; write the value out",
               (const char *)ev->data.alias.anchor);
        v->kind = LOOM_VALUE_NULL; /* keep going: the rest may hold more errors */
        break;
    default:
        report_at(B, v->line, v->col, path, "unexpected YAML event");
        rc = LOOM_EPARSE;
        break;
    }
    yaml_event_delete(ev);
    return rc;
}

int loom_value_parse_yaml(loom_arena_t *arena, const char *file, const char *text, size_t len,
                          const loom_value_t **root, loom_diags_t *diags)
{
    builder_t B = {.a = arena, .file = file, .d = diags};
    yaml_event_t ev;
    loom_value_t *doc = NULL;
    int rc = 0;
    *root = NULL;
    if (!yaml_parser_initialize(&B.p))
        return LOOM_ENOMEM;
    yaml_parser_set_input_string(&B.p, (const unsigned char *)text, len);
    /* stream start, then a document or the stream end */
    if (next_event(&B, &ev)) {
        rc = LOOM_EPARSE;
        goto out_parser;
    }
    yaml_event_delete(&ev);
    if (next_event(&B, &ev)) {
        rc = LOOM_EPARSE;
        goto out_parser;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        goto out_parser; /* empty: *root stays NULL */
    }
    yaml_event_delete(&ev); /* document start */
    if (next_event(&B, &ev)) {
        rc = LOOM_EPARSE;
        goto out_parser;
    }
    rc = build(&B, &ev, NULL, 0, &doc);
    if (rc)
        goto out_parser;
    if (next_event(&B, &ev)) { /* document end */
        rc = LOOM_EPARSE;
        goto out_parser;
    }
    yaml_event_delete(&ev);
    if (next_event(&B, &ev)) {
        rc = LOOM_EPARSE;
        goto out_parser;
    }
    if (ev.type == YAML_DOCUMENT_START_EVENT)
        report(&B, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1, NULL,
               "more than one YAML document in the file (remove the second '---')");
    yaml_event_delete(&ev);
    *root = doc;
out_parser:
    yaml_parser_delete(&B.p);
    if (!rc && B.errors)
        rc = LOOM_EPARSE;
    if (rc == LOOM_ENOMEM && diags) {
        loom_err_t *e = loom_diags_add(diags);
        if (e) {
            loom_err_set(e, LOOM_ENOMEM, "out of memory while reading YAML");
            loom_err_at(e, file, 0, 0);
        }
    }
    if (rc && rc != LOOM_EPARSE)
        *root = NULL;
    return rc;
}
