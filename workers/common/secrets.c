/* secrets.c — worker-side secrets (see secrets.h). */
#include "workers/common/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/redact.h"

#define MAX_SECRETS 256
#define MAX_SECRET_BYTES (64 * 1024)

extern char **environ;

static char *names[MAX_SECRETS], *values[MAX_SECRETS];
static size_t count;

static int add(const char *name, size_t name_len, char *value, loom_err_t *err)
{
    if (count == MAX_SECRETS) {
        free(value);
        return loom_err_set(err, LOOM_EINVAL, "more than %d secrets", MAX_SECRETS);
    }
    for (size_t i = 0; i < name_len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            free(value);
            return loom_err_set(err, LOOM_EINVAL, "secret name '%.*s': letters, digits, '_', '-'",
                                (int)name_len, name);
        }
    }
    if (!name_len || !(names[count] = strndup(name, name_len))) {
        free(value);
        return loom_err_set(err, LOOM_EINVAL, "empty secret name");
    }
    values[count++] = value;
    return 0;
}

int loom_secrets_add_file(const char *spec, loom_err_t *err)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1])
        return loom_err_set(err, LOOM_EINVAL, "--secret wants NAME=FILE, got '%s'", spec);
    loom_buf_t b;
    loom_buf_init(&b, MAX_SECRET_BYTES);
    if (loom_buf_read_file(&b, eq + 1) != 0) {
        int e = errno;
        loom_buf_free(&b);
        if (e == EFBIG)
            return loom_err_set(err, LOOM_EINVAL, "--secret %s: larger than %d bytes", spec,
                                MAX_SECRET_BYTES);
        return loom_err_set(err, LOOM_EIO, "--secret %.*s: cannot read %s: %s", (int)(eq - spec),
                            spec, eq + 1, strerror(e));
    }
    size_t n = b.len;
    char *buf = loom_buf_detach(&b, NULL);
    if (n && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    return add(spec, (size_t)(eq - spec), buf, err);
}

int loom_secrets_add_env(loom_err_t *err)
{
    static const char prefix[] = "LOOM_SECRET_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *name = *e + sizeof prefix - 1, *eq = strchr(name, '=');
        char *value = eq ? strdup(eq + 1) : NULL;
        if (!value)
            continue;
        int rc = add(name, (size_t)(eq - name), value, err);
        if (rc)
            return rc;
    }
    return 0;
}

size_t loom_secrets_count(void) { return count; }

static const char *lookup(const char *name, size_t n)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == n && strncmp(names[i], name, n) == 0)
            return values[i];
    return NULL;
}

/* The reference ${secrets.NAME#TAG} at h, when it is one with this tag:
 * its name (*name, *name_len) and the text after it; NULL when not. */
static const char *tagged_ref(const char *h, const char *tag, const char **name, size_t *name_len)
{
    static const char open[] = "${secrets.";
    const char *n = h + sizeof open - 1, *hash = n + strcspn(n, "#}");
    size_t tl = strlen(tag);
    if (*hash != '#' || hash == n || strncmp(hash + 1, tag, tl) != 0 || hash[1 + tl] != '}')
        return NULL;
    *name = n;
    *name_len = (size_t)(hash - n);
    return hash + 1 + tl + 1;
}

/* s with each ${secrets.NAME#tag} replaced; NULL + err when one is
 * unknown. Any other text, ${secrets.NAME} without the tag included,
 * stays. */
static char *substitute_str(const char *s, const char *tag, loom_err_t *err, int *changed)
{
    loom_buf_t b = LOOM_BUF_INIT;
    const char *p = s, *h, *scan = s;
    while ((h = strstr(scan, "${secrets."))) {
        const char *name, *after;
        size_t nl;
        if (!(after = tagged_ref(h, tag, &name, &nl))) {
            scan = h + 1;
            continue;
        }
        const char *v = lookup(name, nl);
        if (!v) {
            loom_err_set(err, LOOM_ENOTFOUND, "secret '%.*s' is not configured on this worker",
                         (int)nl, name);
            loom_err_hint(err, "start the worker with --secret %.*s=FILE or LOOM_SECRET_%.*s=VALUE",
                          (int)nl, name, (int)nl, name);
            loom_buf_free(&b);
            return NULL;
        }
        loom_buf_append(&b, p, (size_t)(h - p));
        loom_buf_puts(&b, v);
        p = scan = after;
        *changed = 1;
    }
    loom_buf_puts(&b, p);
    return loom_buf_detach(&b, NULL);
}

static int walk(json_t **v, const char *tag, loom_err_t *err)
{
    if (json_is_string(*v)) {
        if (!strstr(json_string_value(*v), "${secrets."))
            return 0;
        int changed = 0;
        char *s = substitute_str(json_string_value(*v), tag, err, &changed);
        if (!s)
            return LOOM_ENOTFOUND;
        json_t *n = changed ? json_string(s) : NULL;
        free(s);
        if (n) {
            json_decref(*v);
            *v = n;
        }
        return 0;
    }
    if (json_is_array(*v)) {
        for (size_t i = 0; i < json_array_size(*v); i++) {
            json_t *it = json_incref(json_array_get(*v, i));
            int rc = walk(&it, tag, err);
            if (!rc)
                json_array_set(*v, i, it);
            json_decref(it);
            if (rc)
                return rc;
        }
    } else if (json_is_object(*v)) {
        const char *k;
        json_t *it;
        void *tmp;
        json_object_foreach_safe(*v, tmp, k, it) {
            json_t *c = json_incref(it);
            int rc = walk(&c, tag, err);
            if (!rc)
                json_object_set(*v, k, c);
            json_decref(c);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int loom_secrets_substitute(json_t **input, loom_err_t *err)
{
    const char *t = json_string_value(json_object_get(*input, "$secret_tag"));
    char tag[65];
    if (!t || !*t || strlen(t) >= sizeof tag || t[strspn(t, "0123456789abcdef")])
        return 0; /* loomd tagged nothing (or not as it does): nothing to replace */
    snprintf(tag, sizeof tag, "%s", t);
    json_object_del(*input, "$secret_tag");
    return walk(input, tag, err);
}

char *loom_secrets_redact(const char *text, size_t len, size_t *out_len)
{
    return count ? loom_redact_text(text, len, values, count, out_len) : NULL;
}
