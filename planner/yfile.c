/* yfile.c — see yfile.h. */
#include "planner/yfile.h"

#include "common/buf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct loom_yfile {
    yaml_document_t doc;
    int loaded;
    char *path;
};

static loom_yfile_t *parse(const char *name, const unsigned char *text, size_t len, loom_err_t *err)
{
    loom_yfile_t *y = calloc(1, sizeof *y);
    if (!y) {
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    y->path = strdup(name ? name : "<input>");
    yaml_parser_t p;
    if (!y->path || !yaml_parser_initialize(&p)) {
        free(y->path);
        free(y);
        loom_err_set(err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p, text, len);
    if (!yaml_parser_load(&p, &y->doc)) {
        loom_err_set(err, LOOM_EPARSE, "YAML syntax error: %s", p.problem ? p.problem : "unknown");
        if (p.context)
            loom_err_detail(err, "%s", p.context);
        loom_err_at(err, y->path, (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1);
        yaml_parser_delete(&p);
        free(y->path);
        free(y);
        return NULL;
    }
    yaml_parser_delete(&p);
    y->loaded = 1;
    if (!yaml_document_get_root_node(&y->doc)) {
        loom_err_set(err, LOOM_EPARSE, "empty document");
        loom_err_at(err, y->path, 1, 1);
        loom_yfile_destroy(&y);
        return NULL;
    }
    return y;
}

loom_yfile_t *loom_yfile_parse(const char *name, const char *text, size_t len, loom_err_t *err)
{
    return parse(name, (const unsigned char *)text, len, err);
}

loom_yfile_t *loom_yfile_load(const char *path, loom_err_t *err)
{
    loom_buf_t b;
    loom_buf_init(&b, 64u << 20); /* planner files are small; refuse huge ones */
    if (loom_buf_read_file(&b, path) != 0) {
        int e = errno;
        loom_buf_free(&b);
        if (e == EFBIG)
            loom_err_set(err, LOOM_ETOOBIG, "%s is larger than 64 MiB", path);
        else if (e == ENOMEM)
            loom_err_set(err, LOOM_ENOMEM, "out of memory reading %s", path);
        else
            loom_err_set(err, LOOM_EIO, "cannot open %s: %s", path, strerror(e));
        loom_err_at(err, path, 0, 0);
        return NULL;
    }
    loom_yfile_t *y = parse(path, (const unsigned char *)b.data, b.len, err);
    loom_buf_free(&b);
    return y;
}

void loom_yfile_destroy(loom_yfile_t **py)
{
    if (!py || !*py)
        return;
    if ((*py)->loaded)
        yaml_document_delete(&(*py)->doc);
    free((*py)->path);
    free(*py);
    *py = NULL;
}

const char *loom_yfile_path(const loom_yfile_t *y) { return y->path; }

static yaml_node_t *node_at(const loom_yfile_t *y, int node)
{
    if (node <= 0)
        return NULL;
    return yaml_document_get_node((yaml_document_t *)&y->doc, node);
}

int loom_yfile_root(const loom_yfile_t *y) { return node_at(y, 1) ? 1 : 0; }

int loom_yfile_is_map(const loom_yfile_t *y, int node)
{
    yaml_node_t *n = node_at(y, node);
    return n && n->type == YAML_MAPPING_NODE;
}

int loom_yfile_is_seq(const loom_yfile_t *y, int node)
{
    yaml_node_t *n = node_at(y, node);
    return n && n->type == YAML_SEQUENCE_NODE;
}

int loom_yfile_is_scalar(const loom_yfile_t *y, int node)
{
    yaml_node_t *n = node_at(y, node);
    return n && n->type == YAML_SCALAR_NODE;
}

const char *loom_yfile_str(const loom_yfile_t *y, int node)
{
    yaml_node_t *n = node_at(y, node);
    if (!n || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

int loom_yfile_line(const loom_yfile_t *y, int node)
{
    yaml_node_t *n = node_at(y, node);
    return n ? (int)n->start_mark.line + 1 : 0;
}

static int col_of(const loom_yfile_t *y, int node)
{
    yaml_node_t *n = node_at(y, node);
    return n ? (int)n->start_mark.column + 1 : 0;
}

int loom_yfile_col(const loom_yfile_t *y, int node) { return col_of(y, node); }

size_t loom_yfile_len(const loom_yfile_t *y, int node)
{
    yaml_node_t *n = node_at(y, node);
    if (!n)
        return 0;
    if (n->type == YAML_SEQUENCE_NODE)
        return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (n->type == YAML_MAPPING_NODE)
        return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    return 0;
}

int loom_yfile_item(const loom_yfile_t *y, int seq, size_t i)
{
    yaml_node_t *n = node_at(y, seq);
    if (!n || n->type != YAML_SEQUENCE_NODE || i >= loom_yfile_len(y, seq))
        return 0;
    return n->data.sequence.items.start[i];
}

int loom_yfile_key(const loom_yfile_t *y, int map, size_t i)
{
    yaml_node_t *n = node_at(y, map);
    if (!n || n->type != YAML_MAPPING_NODE || i >= loom_yfile_len(y, map))
        return 0;
    return n->data.mapping.pairs.start[i].key;
}

int loom_yfile_val(const loom_yfile_t *y, int map, size_t i)
{
    yaml_node_t *n = node_at(y, map);
    if (!n || n->type != YAML_MAPPING_NODE || i >= loom_yfile_len(y, map))
        return 0;
    return n->data.mapping.pairs.start[i].value;
}

int loom_yfile_get(const loom_yfile_t *y, int map, const char *key)
{
    size_t n = loom_yfile_len(y, map);
    if (!loom_yfile_is_map(y, map))
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = loom_yfile_str(y, loom_yfile_key(y, map, i));
        if (k && strcmp(k, key) == 0)
            return loom_yfile_val(y, map, i);
    }
    return 0;
}

int loom_yfile_error(const loom_yfile_t *y, loom_err_t *err, int node, const char *field,
                     const char *fmt, ...)
{
    if (!err)
        return LOOM_EPARSE;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    loom_err_set(err, LOOM_EPARSE, "%s", msg);
    loom_err_at(err, y->path, loom_yfile_line(y, node), col_of(y, node));
    if (field)
        loom_err_field(err, "%s", field);
    return LOOM_EPARSE;
}

int loom_yfile_num(const loom_yfile_t *y, int map, const char *key, const char *field,
                   int required, double *out, loom_err_t *err)
{
    int v = loom_yfile_get(y, map, key);
    if (!v) {
        if (required)
            return loom_yfile_error(y, err, map, field, "missing required field '%s'", key);
        return 0;
    }
    const char *s = loom_yfile_str(y, v);
    if (!s)
        return loom_yfile_error(y, err, v, field, "expected a number");
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (end == s || *end || errno || !isfinite(d))
        return loom_yfile_error(y, err, v, field, "expected a number, got '%.40s'", s);
    *out = d;
    return 0;
}

int loom_yfile_text(const loom_yfile_t *y, int map, const char *key, const char *field,
                    int required, const char **out, loom_err_t *err)
{
    int v = loom_yfile_get(y, map, key);
    if (!v) {
        if (required)
            return loom_yfile_error(y, err, map, field, "missing required field '%s'", key);
        return 0;
    }
    const char *s = loom_yfile_str(y, v);
    if (!s)
        return loom_yfile_error(y, err, v, field, "expected a string");
    *out = s;
    return 0;
}
