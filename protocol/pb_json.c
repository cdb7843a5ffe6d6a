/* pb_json.c — protobuf-c messages to and from JSON. See pb_json.h. */
#include "protocol/pb_json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Size of one element of a field in the C struct. */
static size_t elem_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    default: return 4; /* 32-bit integers, float, enum */
    }
}

/* ---- to JSON ----------------------------------------------------------------- */

static json_t *double_json(double v) {
    if (isnan(v)) return json_string("NaN");
    if (isinf(v)) return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p) {
    char tmp[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(tmp, sizeof tmp, "%" PRId64, *(const int64_t *)p);
        return json_string(tmp);
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        snprintf(tmp, sizeof tmp, "%" PRIu64, *(const uint64_t *)p);
        return json_string(tmp);
    case PROTOBUF_C_TYPE_FLOAT: return double_json(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return double_json(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v); /* unknown values stay numbers */
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s ? s : ""); /* NULL for invalid UTF-8: the caller sees OOM-like NULL */
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *out = malloc(4 * ((b->len + 2) / 3) + 1);
        if (!out) return NULL;
        EVP_EncodeBlock((unsigned char *)out, b->data, (int)b->len);
        json_t *j = json_string(out);
        free(out);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? loom_pb_to_json(m) : json_null();
    }
    }
    return json_null();
}

json_t *loom_pb_to_json(const ProtobufCMessage *m) {
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    if (!o) return NULL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *arr = *(char *const *)base;
            v = json_array();
            for (size_t k = 0; v && k < n; k++)
                if (json_array_append_new(v, value_json(f, arr + k * elem_size(f->type))) != 0) {
                    json_decref(v);
                    v = NULL;
                }
        } else {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(ProtobufCMessage *const *)base) continue;
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
                !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
                continue;
            v = value_json(f, base);
        }
        if (!v || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- from JSON --------------------------------------------------------------- */

typedef struct {
    loom_err_t *err;
    char path[256];
    int lenient;
} parse_t;

static int bad(parse_t *ps, const char *what) {
    loom_err_set(ps->err, LOOM_EINVAL, "%s: %s", ps->path[0] ? ps->path : "body", what);
    loom_err_field(ps->err, "%s", ps->path);
    return -1;
}

/* A number from a JSON number or a decimal string. */
static int get_int(parse_t *ps, const json_t *j, int is_signed, int64_t lo, uint64_t hi,
                   uint64_t *out) {
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if ((!is_signed && v < 0) || (is_signed && v < lo) || (v >= 0 && (uint64_t)v > hi))
            return bad(ps, "value out of range");
        *out = (uint64_t)v;
        return 0;
    }
    if (json_is_real(j)) {
        double v = json_real_value(j);
        if (v != floor(v)) return bad(ps, "not an integer");
        if ((!is_signed && v < 0) || (is_signed && v < (double)lo) || v > (double)hi)
            return bad(ps, "value out of range");
        *out = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
        return 0;
    }
    if (!json_is_string(j)) return bad(ps, "expected an integer");
    const char *s = json_string_value(j);
    char *end;
    errno = 0;
    if (is_signed) {
        long long v = strtoll(s, &end, 10);
        if (!*s || *end || errno || v < lo || (v >= 0 && (uint64_t)v > hi))
            return bad(ps, "expected an integer in range");
        *out = (uint64_t)v;
    } else {
        unsigned long long v = strtoull(s, &end, 10);
        if (!*s || *end || errno || s[0] == '-' || v > hi)
            return bad(ps, "expected a non-negative integer in range");
        *out = v;
    }
    return 0;
}

static int get_double(parse_t *ps, const json_t *j, double *out) {
    if (json_is_number(j)) {
        *out = json_number_value(j);
        return 0;
    }
    if (!json_is_string(j)) return bad(ps, "expected a number");
    const char *s = json_string_value(j);
    if (strcmp(s, "NaN") == 0) *out = NAN;
    else if (strcmp(s, "Infinity") == 0) *out = INFINITY;
    else if (strcmp(s, "-Infinity") == 0) *out = -INFINITY;
    else {
        char *end;
        errno = 0;
        *out = strtod(s, &end);
        if (!*s || *end || errno) return bad(ps, "expected a number");
    }
    return 0;
}

static int set_value(parse_t *ps, const ProtobufCFieldDescriptor *f, const json_t *j, void *p);

static ProtobufCMessage *parse_message(parse_t *ps, const ProtobufCMessageDescriptor *d,
                                       const json_t *j);

static int set_value(parse_t *ps, const ProtobufCFieldDescriptor *f, const json_t *j, void *p) {
    uint64_t u;
    double dv;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        if (get_int(ps, j, 1, INT32_MIN, INT32_MAX, &u)) return -1;
        *(int32_t *)p = (int32_t)(int64_t)u;
        return 0;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        if (get_int(ps, j, 0, 0, UINT32_MAX, &u)) return -1;
        *(uint32_t *)p = (uint32_t)u;
        return 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        if (get_int(ps, j, 1, INT64_MIN, INT64_MAX, &u)) return -1;
        *(int64_t *)p = (int64_t)u;
        return 0;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        if (get_int(ps, j, 0, 0, UINT64_MAX, &u)) return -1;
        *(uint64_t *)p = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (get_double(ps, j, &dv)) return -1;
        *(float *)p = (float)dv;
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return get_double(ps, j, (double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        if (json_is_boolean(j)) *(protobuf_c_boolean *)p = json_is_true(j);
        else if (ps->lenient && json_is_string(j) &&
                 (!strcmp(json_string_value(j), "true") || !strcmp(json_string_value(j), "false")))
            *(protobuf_c_boolean *)p = !strcmp(json_string_value(j), "true");
        else return bad(ps, "expected true or false");
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        const ProtobufCEnumValue *ev = NULL;
        if (json_is_string(j)) {
            ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(j));
            if (!ev) {
                char why[160];
                snprintf(why, sizeof why, "unknown %s '%.60s'", ed->short_name, json_string_value(j));
                return bad(ps, why);
            }
        } else if (json_is_integer(j)) {
            ev = protobuf_c_enum_descriptor_get_value(ed, (int)json_integer_value(j));
            if (!ev) return bad(ps, "unknown enum number");
        } else {
            return bad(ps, "expected an enum name");
        }
        *(int *)p = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(j)) return bad(ps, "expected a string");
        char *s = strdup(json_string_value(j));
        if (!s) return loom_err_set(ps->err, LOOM_ENOMEM, "out of memory");
        *(char **)p = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!json_is_string(j)) return bad(ps, "expected base64 text");
        const char *s = json_string_value(j);
        size_t n = strlen(s);
        ProtobufCBinaryData *b = p;
        b->data = malloc(n / 4 * 3 + 3);
        if (!b->data) return loom_err_set(ps->err, LOOM_ENOMEM, "out of memory");
        int got = n % 4 ? -1 : EVP_DecodeBlock(b->data, (const unsigned char *)s, (int)n);
        if (got < 0) {
            free(b->data);
            b->data = NULL;
            return bad(ps, "expected base64 text");
        }
        /* EVP_DecodeBlock counts padding as data: drop one byte per '='. */
        for (size_t k = n; k > 0 && s[k - 1] == '='; k--) got--;
        b->len = (size_t)got;
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        if (json_is_null(j)) return 0;
        ProtobufCMessage *m = parse_message(ps, f->descriptor, j);
        if (!m) return -1;
        *(ProtobufCMessage **)p = m;
        return 0;
    }
    }
    return bad(ps, "unsupported field type");
}

/* The field named key (proto name or its lowerCamelCase form). */
static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key) {
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f) return f;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const char *n = d->fields[i].name, *k = key;
        while (*n && *k) {
            if (*n == '_' && n[1] && *k == (n[1] >= 'a' && n[1] <= 'z' ? n[1] - 32 : n[1])) {
                n += 2;
                k++;
            } else if (*n == *k) {
                n++;
                k++;
            } else {
                break;
            }
        }
        if (!*n && !*k) return &d->fields[i];
    }
    return NULL;
}

static ProtobufCMessage *parse_message(parse_t *ps, const ProtobufCMessageDescriptor *d,
                                       const json_t *j) {
    if (!json_is_object(j)) {
        bad(ps, "expected an object");
        return NULL;
    }
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (!m) {
        loom_err_set(ps->err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    d->message_init(m);
    unsigned char *seen = calloc(d->n_fields ? d->n_fields : 1, 1); /* both spellings given? */
    if (!seen) {
        free(m);
        loom_err_set(ps->err, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    size_t mark = strlen(ps->path);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        snprintf(ps->path + mark, sizeof ps->path - mark, "%s%s", mark ? "." : "", key);
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        if (!f) {
            char why[96];
            snprintf(why, sizeof why, "unknown field of %s", d->short_name);
            bad(ps, why);
            goto fail;
        }
        if (seen[f - d->fields]++) {
            bad(ps, "given twice");
            goto fail;
        }
        char *base = (char *)m + f->offset;
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (set_value(ps, f, v, base) != 0) goto fail;
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
                *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
            continue;
        }
        if (json_is_null(v)) continue;
        if (!json_is_array(v)) {
            bad(ps, "expected an array");
            goto fail;
        }
        size_t *count = (size_t *)((char *)m + f->quantifier_offset);
        size_t n = json_array_size(v), es = elem_size(f->type);
        char *arr = n ? calloc(n, es) : NULL;
        if (n && !arr) {
            loom_err_set(ps->err, LOOM_ENOMEM, "out of memory");
            goto fail;
        }
        *(char **)base = arr;
        size_t inner = strlen(ps->path);
        for (size_t k = 0; k < n; k++) {
            snprintf(ps->path + inner, sizeof ps->path - inner, "[%zu]", k);
            if (f->type == PROTOBUF_C_TYPE_STRING) *(char **)(arr + k * es) = NULL;
            if (set_value(ps, f, json_array_get(v, k), arr + k * es) != 0) {
                *count = k; /* free what was filled */
                goto fail;
            }
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(ProtobufCMessage **)(arr + k * es)) {
                *count = k;
                bad(ps, "null element");
                goto fail;
            }
        }
        *count = n;
    }
    ps->path[mark] = 0;
    free(seen);
    return m;
fail:
    free(seen);
    protobuf_c_message_free_unpacked(m, NULL);
    return NULL;
}

ProtobufCMessage *loom_pb_from_json(const ProtobufCMessageDescriptor *desc, const json_t *j,
                                    int lenient, loom_err_t *err) {
    parse_t ps = {.err = err, .lenient = lenient};
    return parse_message(&ps, desc, j);
}

void loom_pb_json_free(ProtobufCMessage *m) {
    if (m) protobuf_c_message_free_unpacked(m, NULL);
}
