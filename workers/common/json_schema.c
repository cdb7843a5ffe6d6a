/* json_schema.c — see json_schema.h. */
#include "workers/common/json_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

static const char *kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

static int type_is(const json_t *v, const char *t)
{
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v));
    return !strcmp(t, kind(v));
}

static int fail(loom_err_t *err, const char *path, const char *fmt, const char *a, const char *b)
{
    char m[200];
    snprintf(m, sizeof m, fmt, a, b);
    loom_err_set(err, LOOM_EINVAL, "%s: %s", path, m);
    loom_err_field(err, "%s", path);
    return LOOM_EINVAL;
}

static int check(const json_t *s, const json_t *v, char *path, size_t plen, int depth, loom_err_t *err);

static int check_at(const json_t *s, const json_t *v, char *path, size_t plen, const char *fmt, const char *key,
                    size_t idx, int depth, loom_err_t *err)
{
    size_t n = strlen(path);
    if (key)
        snprintf(path + n, plen - n, fmt, key);
    else
        snprintf(path + n, plen - n, fmt, idx);
    int rc = check(s, v, path, plen, depth + 1, err);
    path[n] = 0;
    return rc;
}

static int check(const json_t *s, const json_t *v, char *path, size_t plen, int depth, loom_err_t *err)
{
    if (json_is_true(s) || !s)
        return 0;
    if (json_is_false(s))
        return fail(err, path, "no value is allowed here%s%s", "", "");
    if (!json_is_object(s) || depth > MAX_DEPTH)
        return 0;
    json_t *t = json_object_get(s, "type");
    if (json_is_string(t) && !type_is(v, json_string_value(t)))
        return fail(err, path, "expected %s, got %s", json_string_value(t), kind(v));
    if (json_is_array(t)) {
        size_t i;
        json_t *x;
        int ok = 0;
        json_array_foreach(t, i, x) ok |= json_is_string(x) && type_is(v, json_string_value(x));
        if (!ok) {
            char *want = json_dumps(t, JSON_COMPACT);
            int rc = fail(err, path, "expected one of %s, got %s", want ? want : "?", kind(v));
            free(want);
            return rc;
        }
    }
    json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    if (json_is_array(en)) {
        size_t i;
        json_t *x;
        int ok = 0;
        json_array_foreach(en, i, x) ok |= json_equal(x, (json_t *)v);
        if (!ok) {
            char *want = json_dumps(en, JSON_COMPACT), *got = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            int rc = fail(err, path, "%.80s is not one of %.100s", got ? got : "?", want ? want : "?");
            free(want);
            free(got);
            return rc;
        }
    }
    if (cn && !json_equal(cn, (json_t *)v))
        return fail(err, path, "does not equal the schema's const%s%s", "", "");
    json_t *any = json_object_get(s, "anyOf");
    if (json_is_array(any) && json_array_size(any)) {
        size_t i;
        json_t *x;
        int ok = 0;
        json_array_foreach(any, i, x) {
            loom_err_t e2 = {0};
            ok |= check(x, v, path, plen, depth + 1, &e2) == 0;
        }
        if (!ok)
            return fail(err, path, "matches none of anyOf's schemas%s%s", "", "");
    }
    char num[64];
    if (json_is_number(v)) {
        json_t *mn = json_object_get(s, "minimum"), *mx = json_object_get(s, "maximum");
        double d = json_number_value(v);
        if (json_is_number(mn) && d < json_number_value(mn)) {
            snprintf(num, sizeof num, "%g", json_number_value(mn));
            return fail(err, path, "below the minimum %s%s", num, "");
        }
        if (json_is_number(mx) && d > json_number_value(mx)) {
            snprintf(num, sizeof num, "%g", json_number_value(mx));
            return fail(err, path, "above the maximum %s%s", num, "");
        }
    }
    if (json_is_string(v)) {
        json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength");
        size_t n = 0; /* characters, not bytes */
        for (const unsigned char *p = (const unsigned char *)json_string_value(v); *p; p++)
            n += (*p & 0xC0) != 0x80;
        if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
            return fail(err, path, "shorter than minLength%s%s", "", "");
        if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
            return fail(err, path, "longer than maxLength%s%s", "", "");
    }
    if (json_is_array(v)) {
        json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
        json_int_t n = (json_int_t)json_array_size(v);
        if (json_is_integer(mn) && n < json_integer_value(mn))
            return fail(err, path, "fewer items than minItems%s%s", "", "");
        if (json_is_integer(mx) && n > json_integer_value(mx))
            return fail(err, path, "more items than maxItems%s%s", "", "");
        json_t *items = json_object_get(s, "items");
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            int rc = check_at(items, x, path, plen, "[%zu]", NULL, i, depth, err);
            if (rc)
                return rc;
        }
    }
    if (json_is_object(v)) {
        json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
        json_t *addl = json_object_get(s, "additionalProperties");
        size_t i;
        json_t *x;
        json_array_foreach(req, i, x) {
            if (json_is_string(x) && !json_object_get(v, json_string_value(x)))
                return fail(err, path, "missing required property '%s'%s", json_string_value(x), "");
        }
        const char *k;
        json_object_foreach((json_t *)v, k, x) {
            json_t *ps = json_object_get(props, k);
            if (!ps && json_is_false(addl))
                return fail(err, path, "unknown property '%s'%s", k, "");
            int rc = check_at(ps ? ps : json_is_object(addl) ? addl : NULL, x, path, plen, ".%s", k, 0, depth,
                              err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int loom_json_schema_check(const json_t *schema, const json_t *value, loom_err_t *err)
{
    char path[512] = "$";
    return check(schema, value, path, sizeof path, 0, err);
}
