/* llm_grammar.c — see llm_grammar.h. */
#include "llm/llm_grammar.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "llm/tokenizer.h"
#include "common/grow.h"

#define MAX_DEPTH 24
#define MAX_PROPS 64
#define MAX_LITS 64
#define DEF_MAX_LEN 48
#define DEF_MAX_ITEMS 8
#define ANY_DEPTH 6
#define MAX_DIGITS 15
#define TRIES 8 /* rejections before checking every token */

enum { T_OBJ = 1, T_ARR = 2, T_STR = 4, T_NUM = 8, T_INT = 16, T_BOOL = 32, T_NULL = 64, T_ALL = 127 };

/* A compiled schema node. */
typedef struct gs gs_t;
struct gs {
    unsigned types;
    int n_lits;              /* enum/const (and true/false/null): JSON texts */
    char **lits;
    int n_props;             /* object */
    char **names;
    gs_t **props;
    uint64_t required;
    gs_t *extra;             /* schema of keys not in properties (NULL: none allowed) */
    gs_t *items;             /* array */
    int min_items, max_items;
    int min_len, max_len;    /* string, characters */
    int nonneg;              /* number: minimum >= 0 */
    int has_max;             /* number: maximum (with minimum >= 0): no exponent, */
    double maximum;          /* integer part <= maximum, fraction only zeros at it */
    int close;               /* fewest characters of a complete value */
};

enum { F_VALUE, F_OBJ, F_ARR, F_STR, F_NUM, F_LIT };
enum { O_OPEN, O_KEY, O_COLON, O_VALUE, O_COMMA };     /* object states */
enum { A_OPEN, A_ITEM, A_COMMA };                      /* array states */
enum { N_START, N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP }; /* number */

typedef struct {
    const gs_t *s;
    uint8_t kind, st, gap, key; /* gap: whitespace since the last token; key: F_STR is an object key */
    uint8_t esc;                /* F_STR: 1 after '\\', 2..5 in \uXXXX */
    uint8_t u8, u8lead;         /* F_STR: continuation bytes still due, and the lead byte */
    int16_t depth_any;          /* nesting of free-form values */
    int32_t n;                  /* chars, items, digits or literal position */
    int32_t cur;                /* F_OBJ: property of the current key (-1: extra) */
    double ival;                /* F_NUM: the integer part so far */
    uint64_t mask;              /* F_OBJ: properties seen; key F_STR: candidates; F_LIT: candidates */
} frame_t;

typedef struct {
    int depth, done;
    frame_t f[MAX_DEPTH];
} state_t;

/* Token texts, once per tokenizer; token ids grouped by their first byte
 * (group 256: tokens without text, e.g. end-of-generation), so a full
 * check visits only the tokens whose first byte the automaton accepts. */
typedef struct {
    const loom_tokenizer_t *tok;
    int n;
    uint32_t *off; /* n + 1 */
    char *bytes;
    int32_t *by_first;      /* n ids, grouped */
    uint32_t group[258];    /* by_first[group[b] .. group[b + 1]) start with byte b */
} vocab_t;

struct loom_llm_grammar {
    const loom_llm_model_t *m;
    const vocab_t *v;
    gs_t *root;
    gs_t **nodes; /* every node, for destroy */
    size_t n_nodes, cap_nodes;
    state_t st;
    int32_t eos;
    char *ok; /* per token: allowed this step (full check) */
    int failed; /* no valid continuation: ended early, why says why */
    char why[160];
};

/* ---- token texts ---------------------------------------------------------- */

/* Kept for the worker's life (one per tokenizer ever constrained; a worker
 * loads few models): grammars on other threads may be reading them. */
#define MAX_VOCABS 32
static pthread_mutex_t vocab_mu = PTHREAD_MUTEX_INITIALIZER;
static vocab_t *vocabs[MAX_VOCABS];

static const vocab_t *vocab_for(const loom_tokenizer_t *t)
{
    pthread_mutex_lock(&vocab_mu);
    vocab_t *v = NULL;
    int slot = -1;
    for (int i = 0; i < MAX_VOCABS; i++) {
        if (vocabs[i] && vocabs[i]->tok == t) {
            v = vocabs[i];
            break;
        }
        if (!vocabs[i] && slot < 0)
            slot = i;
    }
    if (!v && slot >= 0 && (v = calloc(1, sizeof *v))) {
        loom_buf_t b = LOOM_BUF_INIT;
        v->tok = t;
        v->n = loom_tokenizer_n_vocab(t);
        v->off = malloc(((size_t)v->n + 1) * sizeof *v->off);
        for (int32_t i = 0; v->off && i < v->n; i++) {
            v->off[i] = (uint32_t)b.len;
            if (loom_tokenizer_is_eog(t, i) || i == loom_tokenizer_bos(t))
                continue; /* no text: handled apart */
            loom_tokenizer_decode(t, &i, 1, 0, &b);
        }
        if (v->off)
            v->off[v->n] = (uint32_t)b.len;
        v->bytes = loom_buf_detach(&b, NULL);
        v->by_first = malloc(((size_t)v->n + 1) * sizeof *v->by_first);
        if (v->off && v->bytes && v->by_first) { /* counting sort by first byte */
            for (int32_t i = 0; i < v->n; i++) {
                int f = v->off[i] == v->off[i + 1] ? 256 : (unsigned char)v->bytes[v->off[i]];
                v->group[f + 1]++;
            }
            for (int f = 0; f < 257; f++)
                v->group[f + 1] += v->group[f];
            uint32_t at[257];
            memcpy(at, v->group, sizeof at);
            for (int32_t i = 0; i < v->n; i++) {
                int f = v->off[i] == v->off[i + 1] ? 256 : (unsigned char)v->bytes[v->off[i]];
                v->by_first[at[f]++] = i;
            }
        }
        if (!v->off || !v->bytes || !v->by_first) {
            free(v->off);
            free(v->bytes);
            free(v->by_first);
            free(v);
            v = NULL;
        } else {
            vocabs[slot] = v;
        }
    }
    pthread_mutex_unlock(&vocab_mu);
    return v;
}

/* ---- schema compilation ------------------------------------------------------- */

static gs_t *node_new(loom_llm_grammar_t *g)
{
    if (LOOM_GROW(g->nodes, g->cap_nodes, g->n_nodes + 1) != 0)
            return NULL;
    gs_t *s = calloc(1, sizeof *s);
    if (s)
        g->nodes[g->n_nodes++] = s;
    return s;
}

static int add_lit(gs_t *s, const char *text)
{
    if (s->n_lits >= MAX_LITS)
        return -1;
    char **l = realloc(s->lits, ((size_t)s->n_lits + 1) * sizeof *l);
    if (!l)
        return -1;
    s->lits = l;
    s->lits[s->n_lits] = strdup(text);
    return s->lits[s->n_lits++] ? 0 : -1;
}

static unsigned type_bits(const char *t)
{
    static const char *const names[] = {"object", "array", "string", "number", "integer", "boolean", "null"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(t, names[i]))
            return 1u << i;
    return 0;
}

static int imin(int a, int b) { return a < b ? a : b; }

static gs_t *compile(loom_llm_grammar_t *g, const json_t *js, int depth, loom_err_t *e);

/* The free-form value: any JSON, nested up to ANY_DEPTH. */
static gs_t *any_node(loom_llm_grammar_t *g)
{
    gs_t *s = node_new(g);
    if (!s)
        return NULL;
    s->types = T_ALL;
    s->extra = s;
    s->items = s;
    s->max_items = DEF_MAX_ITEMS;
    s->max_len = DEF_MAX_LEN;
    s->close = 1; /* "0" */
    return s;
}

static gs_t *compile(loom_llm_grammar_t *g, const json_t *js, int depth, loom_err_t *e)
{
    if (!js || json_is_true(js) || (json_is_object(js) && json_object_size(js) == 0) || depth > 16)
        return any_node(g);
    if (!json_is_object(js)) {
        loom_err_set(e, LOOM_EINVAL, "schema: expected an object");
        return NULL;
    }
    gs_t *s = node_new(g);
    if (!s) {
        loom_err_set(e, LOOM_ENOMEM, "out of memory");
        return NULL;
    }
    json_t *t = json_object_get(js, "type"), *en = json_object_get(js, "enum"), *cn = json_object_get(js, "const");
    if (json_is_string(t))
        s->types = type_bits(json_string_value(t));
    else if (json_is_array(t)) {
        size_t i;
        json_t *x;
        json_array_foreach(t, i, x) if (json_is_string(x)) s->types |= type_bits(json_string_value(x));
    } else
        s->types = T_ALL;
    if (en || cn) {
        json_t *list = en ? json_incref(en) : json_pack("[O]", cn);
        size_t i;
        json_t *x;
        json_array_foreach(list, i, x) {
            char *txt = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            int rc = txt ? add_lit(s, txt) : -1;
            free(txt);
            if (rc) {
                json_decref(list);
                loom_err_set(e, LOOM_EINVAL, "schema: enum has more than %d values", MAX_LITS);
                return NULL;
            }
        }
        json_decref(list);
        if (!s->n_lits) {
            loom_err_set(e, LOOM_EINVAL, "schema: an empty enum admits no value");
            return NULL;
        }
        s->close = (int)strlen(s->lits[0]);
        for (int i = 1; i < s->n_lits; i++)
            s->close = imin(s->close, (int)strlen(s->lits[i]));
        return s;
    }
    if (!s->types) {
        loom_err_set(e, LOOM_EINVAL, "schema: unknown type");
        return NULL;
    }
    /* strings */
    json_t *mn = json_object_get(js, "minLength"), *mx = json_object_get(js, "maxLength");
    s->min_len = json_is_integer(mn) ? (int)json_integer_value(mn) : 0;
    s->max_len = json_is_integer(mx) ? (int)json_integer_value(mx) : DEF_MAX_LEN;
    if (s->max_len < s->min_len)
        s->max_len = s->min_len;
    json_t *mi = json_object_get(js, "minimum");
    s->nonneg = json_is_number(mi) && json_number_value(mi) >= 0;
    json_t *ma = json_object_get(js, "maximum");
    s->has_max = s->nonneg && json_is_number(ma) && json_number_value(ma) >= 0;
    s->maximum = s->has_max ? floor(json_number_value(ma)) : 0;
    /* arrays */
    if (s->types & T_ARR) {
        json_t *a = json_object_get(js, "minItems"), *b = json_object_get(js, "maxItems");
        s->min_items = json_is_integer(a) ? (int)json_integer_value(a) : 0;
        s->max_items = json_is_integer(b) ? (int)json_integer_value(b) : DEF_MAX_ITEMS;
        if (s->max_items < s->min_items)
            s->max_items = s->min_items;
        if (!(s->items = compile(g, json_object_get(js, "items"), depth + 1, e)))
            return NULL;
    }
    /* objects */
    if (s->types & T_OBJ) {
        json_t *props = json_object_get(js, "properties"), *req = json_object_get(js, "required");
        json_t *addl = json_object_get(js, "additionalProperties");
        size_t np = json_object_size(props);
        if (np > MAX_PROPS) {
            loom_err_set(e, LOOM_EINVAL, "schema: more than %d properties", MAX_PROPS);
            return NULL;
        }
        s->names = calloc(np + 1, sizeof *s->names);
        s->props = calloc(np + 1, sizeof *s->props);
        if (!s->names || !s->props) {
            loom_err_set(e, LOOM_ENOMEM, "out of memory");
            return NULL;
        }
        const char *k;
        json_t *v;
        json_object_foreach(props, k, v) {
            if (strpbrk(k, "\"\\") || !*k) {
                loom_err_set(e, LOOM_EINVAL, "schema: property names with quotes or backslashes are not supported");
                return NULL;
            }
            s->names[s->n_props] = strdup(k);
            if (!s->names[s->n_props] || !(s->props[s->n_props] = compile(g, v, depth + 1, e)))
                return NULL;
            s->n_props++;
        }
        size_t i;
        json_array_foreach(req, i, v) {
            for (int p = 0; p < s->n_props; p++)
                if (json_is_string(v) && !strcmp(s->names[p], json_string_value(v)))
                    s->required |= 1ull << p;
        }
        /* Keys beyond properties: only for schemas without properties (a
         * model asked for an object of given fields writes those). */
        if (np == 0 && !json_is_false(addl))
            s->extra = compile(g, json_is_object(addl) ? addl : NULL, depth + 1, e);
    }
    /* fewest characters of a complete value */
    int c = 1 << 20;
    if (s->types & T_NULL)
        c = imin(c, 4);
    if (s->types & T_BOOL)
        c = imin(c, 4);
    if (s->types & (T_NUM | T_INT))
        c = imin(c, 1);
    if (s->types & T_STR)
        c = imin(c, 2 + s->min_len);
    if (s->types & T_ARR) /* "[a,b]": a comma between items */
        c = imin(c, 2 + (s->min_items > 0 ? s->min_items * (s->items->close + 1) - 1 : 0));
    if (s->types & T_OBJ) { /* {"k":v,"l":w}: a pair is its name, 2 quotes, ':', the value, a comma between */
        int oc = 2;
        for (int p = 0; p < s->n_props; p++)
            if (s->required >> p & 1)
                oc += (int)strlen(s->names[p]) + 4 + s->props[p]->close;
        c = imin(c, s->required ? oc - 1 : oc);
    }
    s->close = c;
    return s;
}

/* ---- the automaton -------------------------------------------------------------- */

static const char *const true_false[] = {"true", "false"};

static int is_ws(int c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* Opens a value of schema s in frame f (already on the stack) at char c. */
static int open_value(frame_t *f, int c)
{
    const gs_t *s = f->s;
    f->gap = 0;
    f->n = 0;
    f->mask = 0;
    if (s->n_lits) {
        for (int i = 0; i < s->n_lits; i++)
            if ((unsigned char)s->lits[i][0] == c)
                f->mask |= 1ull << i;
        if (!f->mask)
            return -1;
        f->kind = F_LIT;
        f->n = 1;
        return 0;
    }
    int nest_ok = s->extra != s || f->depth_any < ANY_DEPTH; /* free-form JSON nests up to ANY_DEPTH */
    if (c == '{' && (s->types & T_OBJ) && nest_ok) {
        f->kind = F_OBJ, f->st = O_OPEN;
        return 0;
    }
    if (c == '[' && (s->types & T_ARR) && nest_ok) {
        f->kind = F_ARR, f->st = A_OPEN;
        return 0;
    }
    if (c == '"' && (s->types & T_STR)) {
        f->kind = F_STR, f->key = 0, f->esc = 0;
        return 0;
    }
    if ((c == '-' && !s->nonneg) || (c >= '0' && c <= '9')) {
        if (!(s->types & (T_NUM | T_INT)))
            return -1;
        f->kind = F_NUM;
        f->st = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
        f->n = c == '-' ? 0 : 1;
        f->ival = c == '-' ? 0 : c - '0';
        return s->has_max && f->ival > s->maximum ? -1 : 0;
    }
    if ((c == 't' || c == 'f') && (s->types & T_BOOL)) {
        f->kind = F_LIT, f->mask = c == 't' ? 1 : 2, f->n = 1, f->cur = -2; /* -2: true/false */
        return 0;
    }
    if (c == 'n' && (s->types & T_NULL)) {
        f->kind = F_LIT, f->mask = 1, f->n = 1, f->cur = -3; /* -3: null */
        return 0;
    }
    return -1;
}

static const char *lit_text(const frame_t *f, int i)
{
    if (f->cur == -2)
        return true_false[i];
    if (f->cur == -3)
        return "null";
    return f->s->lits[i];
}

static int lit_count(const frame_t *f)
{
    return f->cur == -2 ? 2 : f->cur == -3 ? 1 : f->s->n_lits;
}

static int lit_complete(const frame_t *f)
{
    for (int i = 0; i < lit_count(f); i++)
        if ((f->mask >> i & 1) && (int)strlen(lit_text(f, i)) == f->n)
            return 1;
    return 0;
}

static int num_complete(const frame_t *f)
{
    return f->st == N_ZERO || f->st == N_INT || f->st == N_FRAC || f->st == N_EXP;
}

static int push(state_t *st, const gs_t *s, int depth_any)
{
    if (st->depth >= MAX_DEPTH)
        return -1;
    frame_t *f = &st->f[st->depth++];
    memset(f, 0, sizeof *f);
    f->kind = F_VALUE;
    f->s = s;
    f->depth_any = (int16_t)depth_any;
    f->cur = -1;
    return 0;
}

/* A value frame finished: pop it and tell its parent. */
static void pop_value(state_t *st)
{
    st->depth--;
    if (st->depth == 0)
        st->done = 1;
}

static uint64_t all_props(const gs_t *s)
{
    return s->n_props >= 64 ? ~0ull : (1ull << s->n_props) - 1;
}

static int keys_left(const frame_t *f)
{
    return (f->mask != all_props(f->s)) || f->s->extra;
}

static int feed(state_t *st, int c)
{
    for (;;) {
        if (st->depth == 0)
            return -1; /* the value is complete: nothing may follow */
        frame_t *f = &st->f[st->depth - 1];
        /* Between tokens of a value, object or array: at most one whitespace. */
        if (f->kind <= F_ARR && is_ws(c)) {
            if (f->gap)
                return -1;
            f->gap = 1;
            return 0;
        }
        switch (f->kind) {
        case F_VALUE:
            return open_value(f, c);
        case F_OBJ: {
            const gs_t *s = f->s;
            f->gap = 0;
            switch (f->st) {
            case O_OPEN:
            case O_COMMA:
                if (c == '}' && f->st == O_OPEN && (s->required & ~f->mask) == 0) {
                    pop_value(st);
                    return 0;
                }
                if (c != '"' || !keys_left(f))
                    return -1;
                f->st = O_KEY;
                if (push(st, s, f->depth_any))
                    return -1;
                frame_t *k = &st->f[st->depth - 1];
                k->kind = F_STR;
                k->key = 1;
                k->mask = all_props(s) & ~f->mask; /* candidate names */
                return 0;
            case O_KEY: /* the key string closed */
                if (c != ':')
                    return -1;
                f->st = O_COLON;
                return 0;
            case O_COLON:
                f->st = O_VALUE;
                if (push(st, f->cur >= 0 ? s->props[f->cur] : s->extra, f->depth_any + 1))
                    return -1;
                continue; /* the value starts with c */
            case O_VALUE:
                if (c == ',' && keys_left(f) && f->n < MAX_PROPS) {
                    f->st = O_COMMA;
                    return 0;
                }
                if (c == '}' && (s->required & ~f->mask) == 0) {
                    pop_value(st);
                    return 0;
                }
                return -1;
            }
            return -1;
        }
        case F_ARR: {
            const gs_t *s = f->s;
            f->gap = 0;
            if (f->st == A_OPEN && c == ']' && s->min_items == 0) {
                pop_value(st);
                return 0;
            }
            if (f->st == A_ITEM) {
                if (c == ',' && f->n < s->max_items) {
                    f->st = A_COMMA;
                    return 0;
                }
                if (c == ']' && f->n >= s->min_items) {
                    pop_value(st);
                    return 0;
                }
                return -1;
            }
            if (f->st == A_OPEN && s->max_items == 0)
                return -1;
            f->st = A_ITEM;
            f->n++;
            if (push(st, s->items, f->depth_any + 1))
                return -1;
            continue;
        }
        case F_STR: {
            if (f->esc == 1) {
                if (c == 'u')
                    f->esc = 2;
                else if (strchr("\"\\/bfnrt", c) && c)
                    f->esc = 0;
                else
                    return -1;
                return 0; /* counted at the backslash */
            }
            if (f->esc >= 2) {
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                    return -1;
                f->esc = f->esc == 5 ? 0 : f->esc + 1;
                return 0;
            }
            if (f->u8) { /* inside a UTF-8 sequence: only a valid continuation byte */
                int lo = 0x80, hi = 0xBF;
                if (f->u8lead) { /* the second byte: no overlong forms, surrogates or > U+10FFFF */
                    if (f->u8lead == 0xE0) lo = 0xA0;
                    if (f->u8lead == 0xED) hi = 0x9F;
                    if (f->u8lead == 0xF0) lo = 0x90;
                    if (f->u8lead == 0xF4) hi = 0x8F;
                }
                if (c < lo || c > hi)
                    return -1;
                f->u8--;
                f->u8lead = 0;
                return 0;
            }
            if (c >= 0x80) { /* a lead byte starts a character */
                if (f->key || c < 0xC2 || c > 0xF4)
                    return -1;
                f->u8 = c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
                f->u8lead = (uint8_t)c;
                f->n++;
                return f->n <= f->s->max_len ? 0 : -1;
            }
            if (c == '"') {
                if (f->key) {
                    frame_t *o = &st->f[st->depth - 2];
                    int hit = -1;
                    for (int p = 0; p < o->s->n_props; p++)
                        if ((f->mask >> p & 1) && (int)strlen(o->s->names[p]) == f->n)
                            hit = p;
                    if (hit < 0 && !(o->s->extra && f->n > 0))
                        return -1;
                    o->cur = hit;
                    if (hit >= 0)
                        o->mask |= 1ull << hit;
                    o->n++;
                    st->depth--; /* back in the object, expecting ':' */
                    return 0;
                }
                if (f->n < f->s->min_len)
                    return -1;
                pop_value(st);
                return 0;
            }
            if (c < 0x20)
                return -1;
            if (f->key) {
                frame_t *o = &st->f[st->depth - 2];
                uint64_t m = 0;
                for (int p = 0; p < o->s->n_props; p++)
                    if ((f->mask >> p & 1) && (unsigned char)o->s->names[p][f->n] == c)
                        m |= 1ull << p;
                if (!m && !(o->s->extra && c != '\\' && f->n < DEF_MAX_LEN))
                    return -1;
                f->mask = m;
                f->n++;
                return 0;
            }
            if (c == '\\') { /* an escape is one character: room for it now */
                if (f->n >= f->s->max_len)
                    return -1;
                f->esc = 1;
                f->n++;
                return 0;
            }
            f->n++;
            return f->n <= f->s->max_len ? 0 : -1;
        }
        case F_NUM: {
            int digit = c >= '0' && c <= '9', integer = !(f->s->types & T_NUM);
            /* '.', 'e' and signs promise more digits: only with room for them */
            if (!digit && f->n >= MAX_DIGITS - 2 && c != ',' && strchr(".eE+-", c) && c)
                return -1;
            if (f->s->has_max) { /* bounded: no exponent, integer part <= max, zeros after it at max */
                if (c == 'e' || c == 'E')
                    return -1;
                if (digit && (f->st == N_INT || f->st == N_MINUS) && f->ival * 10 + (c - '0') > f->s->maximum)
                    return -1;
                if (digit && (f->st == N_DOT || f->st == N_FRAC) && f->ival >= f->s->maximum && c != '0')
                    return -1;
                if (digit && (f->st == N_INT || f->st == N_MINUS))
                    f->ival = f->ival * 10 + (c - '0');
            }
            int ok = 1;
            switch (f->st) {
            case N_MINUS: ok = digit, f->st = c == '0' ? N_ZERO : N_INT; break;
            case N_ZERO:
                if (c == '.' && !integer)
                    f->st = N_DOT;
                else if ((c == 'e' || c == 'E') && !integer)
                    f->st = N_E;
                else
                    ok = -1;
                break;
            case N_INT:
                if (digit)
                    break;
                if (c == '.' && !integer)
                    f->st = N_DOT;
                else if ((c == 'e' || c == 'E') && !integer)
                    f->st = N_E;
                else
                    ok = -1;
                break;
            case N_DOT: ok = digit, f->st = N_FRAC; break;
            case N_FRAC:
                if (digit)
                    break;
                if (c == 'e' || c == 'E')
                    f->st = N_E;
                else
                    ok = -1;
                break;
            case N_E:
                if (c == '+' || c == '-')
                    f->st = N_ESIGN;
                else
                    ok = digit, f->st = N_EXP;
                break;
            case N_ESIGN: ok = digit, f->st = N_EXP; break;
            case N_EXP: ok = digit ? 1 : -1; break;
            }
            if (ok == 1) {
                if (digit && ++f->n > MAX_DIGITS)
                    return -1;
                return 0;
            }
            if (ok == 0)
                return -1;
            /* c ends the number when it is complete */
            if (!num_complete(f))
                return -1;
            pop_value(st);
            continue;
        }
        case F_LIT: {
            uint64_t m = 0;
            for (int i = 0; i < lit_count(f); i++)
                if ((f->mask >> i & 1) && (int)strlen(lit_text(f, i)) > f->n &&
                    (unsigned char)lit_text(f, i)[f->n] == c)
                    m |= 1ull << i;
            if (m) {
                f->mask = m;
                f->n++;
                return 0;
            }
            if (!lit_complete(f))
                return -1;
            pop_value(st);
            continue;
        }
        }
        return -1;
    }
}

/* The value could end here (EOS allowed). */
static int can_end(const state_t *st)
{
    if (st->done)
        return 1;
    if (st->depth != 1)
        return 0;
    const frame_t *f = &st->f[0];
    return (f->kind == F_NUM && num_complete(f)) || (f->kind == F_LIT && lit_complete(f));
}

/* Fewest characters still needed to complete the value. Exact: the
 * budget check in allowed() needs each character of the shortest
 * completion to lower it by one. */
static int to_close(const state_t *st)
{
    int c = 0;
    for (int d = st->depth - 1; d >= 0; d--) {
        const frame_t *f = &st->f[d];
        const gs_t *s = f->s;
        switch (f->kind) {
        case F_VALUE: c += s->close; break;
        case F_STR:
            if (f->key) {
                /* counted by the object below (the key decides which pair is written) */
            } else {
                c += 1 + f->u8 + (f->esc ? (f->esc == 1 ? 1 : 6 - f->esc) : 0) +
                     (s->min_len > f->n ? s->min_len - f->n : 0);
            }
            break;
        case F_NUM: c += num_complete(f) ? 0 : 1; break;
        case F_LIT: {
            int best = 1 << 20;
            for (int i = 0; i < lit_count(f); i++)
                if (f->mask >> i & 1)
                    best = imin(best, (int)strlen(lit_text(f, i)) - f->n);
            c += best;
            break;
        }
        case F_ARR: {
            /* ']' and the items still due, each with its comma; after '[' the
             * first has none, after ',' one item is promised and its comma written */
            int need = s->min_items - f->n;
            if (f->st == A_COMMA && need < 1)
                need = 1;
            c += 1 + (need > 0 ? need * (s->items->close + 1) : 0);
            if (need > 0 && f->st != A_ITEM)
                c -= 1;
            break;
        }
        case F_OBJ: {
            c += 1; /* '}' */
            int missing = 0; /* the required pairs still to write, each with its comma */
            for (int p = 0; p < s->n_props; p++)
                if ((s->required >> p & 1) && !(f->mask >> p & 1))
                    missing += (int)strlen(s->names[p]) + 4 + s->props[p]->close;
            if (f->st == O_KEY && d < st->depth - 1) {
                /* A key is being written: finish it (quote, ':', value), then
                 * the other missing pairs; the cheapest candidate. */
                const frame_t *k = &st->f[d + 1];
                int best = 1 << 20;
                for (int p = 0; p < s->n_props; p++)
                    if (k->mask >> p & 1) {
                        int own = (int)strlen(s->names[p]) + 4 + s->props[p]->close;
                        best = imin(best, (int)strlen(s->names[p]) - k->n + 2 + s->props[p]->close +
                                              missing - ((s->required >> p & 1) ? own : 0));
                    }
                if (s->extra) /* a free key: at least one character, '"', ':' and its value */
                    best = imin(best, (k->n > 0 ? 2 : 3) + s->extra->close + missing);
                c += best;
                break;
            }
            c += missing;
            if (f->st == O_OPEN && missing)
                c -= 1; /* the first pair has no comma */
            const gs_t *cv = f->cur >= 0 ? s->props[f->cur] : s->extra;
            if (f->st == O_KEY && d == st->depth - 1) /* the key closed: ':' and its value */
                c += 1 + (cv ? cv->close : 1);
            else if (f->st == O_COLON)
                c += cv ? cv->close : 1;
            else if (f->st == O_COMMA && (s->required & ~f->mask) != 0)
                c -= 1; /* the comma of the next required pair is written */
            else if (f->st == O_COMMA) {
                int best = 1 << 20; /* a comma promises one more pair */
                for (int p = 0; p < s->n_props; p++)
                    if (!(f->mask >> p & 1))
                        best = imin(best, (int)strlen(s->names[p]) + 3 + s->props[p]->close);
                if (s->extra)
                    best = imin(best, 4 + s->extra->close);
                c += best;
            }
            break;
        }
        }
    }
    return c;
}

static void copy_state(state_t *dst, const state_t *src)
{
    dst->depth = src->depth;
    dst->done = src->done;
    memcpy(dst->f, src->f, (size_t)src->depth * sizeof dst->f[0]);
}

static int feed_bytes(state_t *st, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (feed(st, (unsigned char)p[i]))
            return -1;
    return 0;
}

/* Would token t keep the output valid and still completable in the
 * tokens left after it (room)? *next gets the state after it.
 *
 * The budget invariant: to_close() never exceeds the tokens left. It is
 * kept at every step (a token that would leave more characters to close
 * than tokens remain is refused, however valid, e.g. the lead byte of a
 * 4-byte character or a `\u` escape near the end), so every state has a
 * token that brings the end nearer (one character of the shortest
 * completion; byte-fallback and single-character tokens exist in every
 * vocabulary the engine loads) and the value is complete by max_tokens. */
static int allowed(const loom_llm_grammar_t *g, int32_t t, int room, state_t *next)
{
    if (t < 0 || t >= g->v->n)
        return 0;
    uint32_t a = g->v->off[t], b = g->v->off[t + 1];
    if (a == b)
        return 0; /* control tokens and end-of-generation are decided apart */
    copy_state(next, &g->st);
    if (feed_bytes(next, g->v->bytes + a, b - a))
        return 0;
    return to_close(next) <= room;
}

/* No valid continuation: end the output now, keeping why. */
__attribute__((format(printf, 2, 3))) static int32_t fail(loom_llm_grammar_t *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->why, sizeof g->why, fmt, ap);
    va_end(ap);
    g->failed = 1;
    return g->eos;
}

int32_t loom_llm_grammar_sample(void *ud, loom_llm_sampler_t *s, float *logits, int tokens_left)
{
    loom_llm_grammar_t *g = ud;
    if (g->st.done || g->failed)
        return g->eos;
    int room = tokens_left - 1, end_ok = can_end(&g->st), need = to_close(&g->st);
    if (need > tokens_left) /* only at the start: the budget is kept after */
        return fail(g, "%d tokens left, but the shortest JSON value of the schema needs %d", tokens_left,
                    need);
    state_t next;
    const vocab_t *v = g->v;
    /* Mask, in one pass, the tokens whose first byte the automaton refuses
     * here (and text-less ones other than an allowed end), so the sampler
     * seldom draws a token that is then refused: each redraw costs a pass
     * over the vocabulary. */
    unsigned char first_ok[256];
    uint32_t left = 0; /* tokens not masked */
    for (int f = 0; f < 257; f++) {
        if (f < 256) {
            copy_state(&next, &g->st);
            first_ok[f] = v->group[f] < v->group[f + 1] && !feed(&next, f);
            if (first_ok[f]) {
                left += v->group[f + 1] - v->group[f];
                continue;
            }
        }
        for (uint32_t i = v->group[f]; i < v->group[f + 1]; i++)
            if (f < 256 || !(end_ok && loom_tokenizer_is_eog(g->m->tok, v->by_first[i])))
                logits[v->by_first[i]] = -INFINITY;
    }
    /* Few tokens left (a key, a literal, punctuation): checking them all is
     * cheaper than redrawing. */
    int tries_max = left * 16 < (uint32_t)v->n ? 1 : TRIES;
    for (int tries = 0; tries < tries_max; tries++) {
        int32_t t = loom_llm_sample(s, logits);
        if (loom_tokenizer_is_eog(g->m->tok, t) && end_ok) {
            g->st.done = 1;
            return t;
        }
        if (allowed(g, t, room, &next)) {
            g->st = next;
            return t;
        }
        logits[t] = -INFINITY; /* refused for a reason that holds for this whole step */
    }
    /* Check every token left once; sample among the allowed. */
    int any = 0;
    int32_t first = -1;
    memset(g->ok, 0, (size_t)v->n);
    for (int f = 0; f < 257; f++) {
        if (f < 256 && !first_ok[f])
            continue;
        for (uint32_t i = v->group[f]; i < v->group[f + 1]; i++) {
            int32_t t = v->by_first[i];
            g->ok[t] = (char)(f == 256 ? loom_tokenizer_is_eog(g->m->tok, t) && end_ok : allowed(g, t, room, &next));
            if (g->ok[t] && (first < 0 || t < first))
                first = t;
            any |= g->ok[t];
        }
    }
    if (!any)
        return fail(g, "no token of the model's vocabulary continues the JSON value (%d characters still needed, %d tokens left)",
                    need, tokens_left);
    for (int32_t t = 0; t < g->v->n; t++)
        if (!g->ok[t])
            logits[t] = -INFINITY;
    int32_t t = loom_llm_sample(s, logits);
    if (t < 0 || t >= g->v->n || !g->ok[t]) /* every allowed logit was -inf or NaN: take the first allowed */
        t = first;
    if (loom_tokenizer_is_eog(g->m->tok, t)) {
        g->st.done = 1;
        return t;
    }
    allowed(g, t, room, &next);
    g->st = next;
    return t;
}

int loom_llm_grammar_complete(const loom_llm_grammar_t *g)
{
    return !g->failed && can_end(&g->st);
}

const char *loom_llm_grammar_failure(const loom_llm_grammar_t *g)
{
    if (loom_llm_grammar_complete(g))
        return NULL;
    if (g->failed)
        return g->why;
    return "the output stopped before its JSON value was complete";
}

int loom_llm_grammar_feed(loom_llm_grammar_t *g, const char *text, size_t n)
{
    state_t next = g->st;
    if (feed_bytes(&next, text, n))
        return -1;
    g->st = next;
    return 0;
}

int loom_llm_grammar_new(const loom_llm_model_t *m, const json_t *schema, loom_llm_grammar_t **out,
                         loom_err_t *e)
{
    *out = NULL;
    loom_llm_grammar_t *g = calloc(1, sizeof *g);
    if (!g)
        return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    g->m = m;
    g->eos = loom_tokenizer_eos(m->tok);
    g->root = compile(g, schema, 0, e);
    g->v = g->root ? vocab_for(m->tok) : NULL;
    g->ok = g->v ? malloc((size_t)g->v->n) : NULL;
    if (!g->root || !g->ok || g->eos < 0) {
        if (g->root && !g->ok)
            loom_err_set(e, LOOM_ENOMEM, "out of memory");
        else if (g->root)
            loom_err_set(e, LOOM_EINVAL, "model %s has no end-of-sequence token to end constrained output",
                         m->name);
        loom_llm_grammar_destroy(&g);
        return e->code ? e->code : LOOM_EINVAL;
    }
    push(&g->st, g->root, 0);
    *out = g;
    return 0;
}

void loom_llm_grammar_destroy(loom_llm_grammar_t **pg)
{
    loom_llm_grammar_t *g = pg ? *pg : NULL;
    if (!g)
        return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        gs_t *s = g->nodes[i];
        for (int k = 0; k < s->n_lits; k++)
            free(s->lits[k]);
        free(s->lits);
        for (int k = 0; k < s->n_props; k++)
            free(s->names[k]);
        free(s->names);
        free(s->props);
        free(s);
    }
    free(g->nodes);
    free(g->ok);
    free(g);
    *pg = NULL;
}
