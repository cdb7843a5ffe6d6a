/* config.c — `key: value` configuration files (see config.h). */
#include "common/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    s += strspn(s, " \t");
    for (char *e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
                                            e[-1] == '\n');)
        *--e = 0;
    return s;
}

int loom_config_load(const char *path, loom_config_apply_fn apply, void *ud)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot read config: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int ln = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "%s:%d: line longer than %zu bytes\n", path, ln, sizeof line - 2);
            bad = 1;
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        char *p = trim(line);
        if (!*p || *p == '#')
            continue;
        /* The first ':' or '=' separates: "client: tcp://host:7400". */
        char *sep = p + strcspn(p, ":=");
        if (!*sep) {
            fprintf(stderr, "%s:%d: expected 'key: value', got '%s'\n", path, ln, p);
            bad = 1;
            continue;
        }
        *sep = 0;
        char *k = trim(p), *v = trim(sep + 1);
        for (char *q = k; *q; q++)
            if (*q == '_')
                *q = '-';
        if (v[0] == '"' || v[0] == '\'') { /* quoted: taken as is, '#' included */
            char *close = strchr(v + 1, v[0]);
            char *after = close ? trim(close + 1) : NULL;
            if (!close || (*after && *after != '#')) {
                fprintf(stderr, "%s:%d: %s: unterminated quote or text after it\n", path, ln, k);
                bad = 1;
                continue;
            }
            *close = 0;
            v++;
        } else { /* "value   # comment" */
            for (char *h = strchr(v, '#'); h; h = strchr(h + 1, '#'))
                if (h > v && (h[-1] == ' ' || h[-1] == '\t')) {
                    *h = 0;
                    v = trim(v);
                    break;
                }
        }
        if (!*k) {
            fprintf(stderr, "%s:%d: missing key\n", path, ln);
            bad = 1;
            continue;
        }
        char why[512] = "";
        if (apply(ud, k, v, why, sizeof why) != 0) {
            fprintf(stderr, "%s:%d: %s: %s\n", path, ln, k, why[0] ? why : "rejected");
            bad = 1;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "%s: read error: %s\n", path, strerror(errno));
        bad = 1;
    }
    fclose(f);
    return bad ? -1 : 0;
}

int loom_config_positive(const char *value, long max, long *out, char *why, size_t why_n)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno || end == value || *end || n <= 0 || n > max) {
        snprintf(why, why_n, "expected a positive integer up to %ld, got '%s'", max, value);
        return -1;
    }
    *out = n;
    return 0;
}
