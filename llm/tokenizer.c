/* tokenizer.c — SentencePiece-style and byte-level BPE over a GGUF vocabulary.
 * Merging is the simple quadratic loop (find the best adjacent pair, merge,
 * repeat): it is what llama.cpp's priority queue computes, and prompts are
 * short enough that the quadratic cost does not matter. */
#include "llm/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/map.h"
#include "common/grow.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

struct loom_tokenizer {
    int kind;
    int32_t n;
    char **text;       /* owned, NUL-terminated */
    float *score;
    int32_t *type;
    loom_map_t *ids;   /* text -> id + 1 */
    loom_map_t *ranks; /* "a b" -> merge rank + 1 (gpt2) */
    int32_t *special;  /* ids of control/user tokens, longest text first */
    int32_t n_special;
    int32_t bos, eos, unk;
    int add_bos, add_eos, add_space;
    uint8_t *eog;      /* per id */
    char *chat_template;
    uint32_t b2u[256]; /* gpt2 byte -> code point */
    int16_t u2b[512];  /* code point -> byte, -1 when none */
};

#define ID2P(i) ((void *)(intptr_t)((i) + 1))
#define P2ID(p) ((int32_t)((intptr_t)(p) - 1))

static void free_tok(loom_tokenizer_t *t) {
    if (!t) return;
    if (t->text) for (int32_t i = 0; i < t->n; i++) free(t->text[i]);
    free(t->text); free(t->score); free(t->type); free(t->special); free(t->eog);
    free(t->chat_template);
    loom_map_destroy(&t->ids);
    loom_map_destroy(&t->ranks);
    free(t);
}

void loom_tokenizer_destroy(loom_tokenizer_t **pt) {
    if (!pt) return;
    free_tok(*pt);
    *pt = NULL;
}

static int cmp_len_desc(const void *a, const void *b, void *ctx) {
    const loom_tokenizer_t *t = ctx;
    size_t la = strlen(t->text[*(const int32_t *)a]), lb = strlen(t->text[*(const int32_t *)b]);
    return (la < lb) - (la > lb);
}

static int32_t lookup(const loom_tokenizer_t *t, const char *s) {
    void *p = loom_map_get(t->ids, s);
    return p ? P2ID(p) : -1;
}

static int meta_id(const loom_gguf_t *g, const char *key, int32_t n, int32_t *out, loom_err_t *e) {
    uint32_t v;
    int rc = loom_gguf_get_u32(g, key, &v, e);
    if (rc == LOOM_ENOTFOUND) return 0;
    if (rc) return rc;
    if (v >= (uint32_t)n) {
        loom_err_set(e, LOOM_EPARSE, "%s = %u is outside the vocabulary (%d tokens)", key, v, n);
        loom_err_at(e, loom_gguf_path(g), 0, 0);
        loom_err_field(e, "%s", key);
        return LOOM_EPARSE;
    }
    *out = (int32_t)v;
    return 0;
}

static int put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    o[0] = (char)(0xe0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

static size_t utf8_len(const unsigned char *s, size_t left) {
    size_t n = 1;
    if (s[0] >= 0xf0) n = 4; else if (s[0] >= 0xe0) n = 3; else if (s[0] >= 0xc0) n = 2;
    return n > left ? left : n;
}

static int perr(const loom_gguf_t *g, const char *field, const char *msg, loom_err_t *e) {
    loom_err_set(e, LOOM_EPARSE, "%s", msg);
    loom_err_at(e, loom_gguf_path(g), 0, 0);
    loom_err_field(e, "%s", field);
    return LOOM_EPARSE;
}

int loom_tokenizer_new(const loom_gguf_t *g, loom_tokenizer_t **out, loom_err_t *e) {
    *out = NULL;
    const char *model; size_t mlen;
    int rc = loom_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen, e);
    if (rc == LOOM_ENOTFOUND) return perr(g, "tokenizer.ggml.model", "model file has no tokenizer", e);
    if (rc) return rc;
    loom_tokenizer_t *t = calloc(1, sizeof *t);
    if (!t) return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    if (mlen == 5 && !memcmp(model, "llama", 5)) t->kind = LOOM_TOK_LLAMA;
    else if (mlen == 4 && !memcmp(model, "gpt2", 4)) t->kind = LOOM_TOK_GPT2;
    else {
        free_tok(t);
        loom_err_set(e, LOOM_EPARSE, "unsupported tokenizer model \"%.*s\"", (int)(mlen > 64 ? 64 : mlen), model);
        loom_err_at(e, loom_gguf_path(g), 0, 0);
        loom_err_field(e, "tokenizer.ggml.model");
        loom_err_hint(e, "supported: llama (SentencePiece BPE), gpt2 (byte-level BPE)");
        return LOOM_EPARSE;
    }
    int et; uint64_t n; const void *raw;
    rc = loom_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &raw, e);
    if (rc || et != LOOM_GGUF_STRING || n == 0 || n > (1u << 24)) {
        free_tok(t);
        return rc && rc != LOOM_ENOTFOUND ? rc : perr(g, "tokenizer.ggml.tokens", "missing or invalid token list", e);
    }
    t->n = (int32_t)n;
    t->text = calloc(n, sizeof *t->text);
    t->score = calloc(n, sizeof *t->score);
    t->type = calloc(n, sizeof *t->type);
    t->eog = calloc(n, 1);
    t->ids = loom_map_new(NULL);
    if (!t->text || !t->score || !t->type || !t->eog || !t->ids) { free_tok(t); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    for (uint64_t i = 0; i < n; i++) {
        const char *s; size_t l;
        loom_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s, &l);
        if (!(t->text[i] = strndup(s, l))) { free_tok(t); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
        t->type[i] = TT_NORMAL;
        if (!loom_map_has(t->ids, t->text[i]) && loom_map_put(t->ids, t->text[i], ID2P((int32_t)i))) {
            free_tok(t); return loom_err_set(e, LOOM_ENOMEM, "out of memory");
        }
    }
    if (loom_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n, &raw, NULL) == 0) {
        if (et != LOOM_GGUF_F32 || n != (uint64_t)t->n) { free_tok(t); return perr(g, "tokenizer.ggml.scores", "token scores do not match the token list", e); }
        memcpy(t->score, raw, n * 4);
    }
    if (loom_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &raw, NULL) == 0) {
        if (et != LOOM_GGUF_I32 || n != (uint64_t)t->n) { free_tok(t); return perr(g, "tokenizer.ggml.token_type", "token types do not match the token list", e); }
        memcpy(t->type, raw, n * 4);
    }
    t->bos = t->eos = t->unk = -1;
    t->add_bos = t->kind == LOOM_TOK_LLAMA;
    t->add_space = t->kind == LOOM_TOK_LLAMA;
    if ((rc = meta_id(g, "tokenizer.ggml.bos_token_id", t->n, &t->bos, e)) ||
        (rc = meta_id(g, "tokenizer.ggml.eos_token_id", t->n, &t->eos, e)) ||
        (rc = meta_id(g, "tokenizer.ggml.unknown_token_id", t->n, &t->unk, e))) { free_tok(t); return rc; }
    loom_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos, NULL);
    loom_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos, NULL);
    loom_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space, NULL);
    const char *ct; size_t ctl;
    if (loom_gguf_get_str(g, "tokenizer.chat_template", &ct, &ctl, NULL) == 0 && !(t->chat_template = strndup(ct, ctl))) {
        free_tok(t); return loom_err_set(e, LOOM_ENOMEM, "out of memory");
    }
    /* specials: control and user-defined tokens, longest first */
    if (!(t->special = malloc(t->n * sizeof *t->special))) { free_tok(t); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
    for (int32_t i = 0; i < t->n; i++)
        if ((t->type[i] == TT_CONTROL || t->type[i] == TT_USER) && t->text[i][0]) t->special[t->n_special++] = i;
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_len_desc, t);
    if (t->eos >= 0) t->eog[t->eos] = 1;
    static const char *eogs[] = {"<|endoftext|>", "<|eot_id|>", "<|im_end|>", "<|end|>", "</s>", "<end_of_turn>"};
    for (size_t i = 0; i < sizeof eogs / sizeof *eogs; i++) {
        int32_t id = lookup(t, eogs[i]);
        if (id >= 0 && t->type[id] == TT_CONTROL) t->eog[id] = 1;
    }
    if (t->kind == LOOM_TOK_GPT2) {
        /* GPT-2's byte -> printable code point table */
        int nx = 0;
        for (int b = 0; b < 256; b++) {
            int direct = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
            t->b2u[b] = direct ? (uint32_t)b : (uint32_t)(256 + nx++);
        }
        for (int i = 0; i < 512; i++) t->u2b[i] = -1;
        for (int b = 0; b < 256; b++) t->u2b[t->b2u[b]] = (int16_t)b;
        if (!(t->ranks = loom_map_new(NULL))) { free_tok(t); return loom_err_set(e, LOOM_ENOMEM, "out of memory"); }
        rc = loom_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n, &raw, e);
        if (rc || et != LOOM_GGUF_STRING) {
            free_tok(t);
            return rc && rc != LOOM_ENOTFOUND ? rc : perr(g, "tokenizer.ggml.merges", "gpt2 tokenizer without a merges list", e);
        }
        for (uint64_t i = 0; i < n && i < (1u << 24); i++) {
            const char *s; size_t l;
            loom_gguf_arr_str(g, "tokenizer.ggml.merges", i, &s, &l);
            char *k = strndup(s, l);
            if (!k || (!loom_map_has(t->ranks, k) && loom_map_put(t->ranks, k, ID2P((int32_t)i)))) {
                free(k); free_tok(t); return loom_err_set(e, LOOM_ENOMEM, "out of memory");
            }
            free(k);
        }
    }
    *out = t;
    return 0;
}

int loom_tokenizer_kind(const loom_tokenizer_t *t) { return t->kind; }
int32_t loom_tokenizer_n_vocab(const loom_tokenizer_t *t) { return t->n; }
int32_t loom_tokenizer_bos(const loom_tokenizer_t *t) { return t->bos; }
int32_t loom_tokenizer_eos(const loom_tokenizer_t *t) { return t->eos; }
int loom_tokenizer_is_eog(const loom_tokenizer_t *t, int32_t id) { return id >= 0 && id < t->n && t->eog[id]; }
const char *loom_tokenizer_chat_template(const loom_tokenizer_t *t) { return t->chat_template; }
const char *loom_tokenizer_token_text(const loom_tokenizer_t *t, int32_t id) {
    return id >= 0 && id < t->n ? t->text[id] : NULL;
}

/* ---- growable id vector ---- */
typedef struct ivec { int32_t *v; size_t n, cap; } ivec_t;
static int ipush(ivec_t *a, int32_t x) {
    if (LOOM_GROW(a->v, a->cap, a->n + 1) != 0) return LOOM_ENOMEM;
    a->v[a->n++] = x;
    return 0;
}

/* symbol = [off, off+len) of the working string */
typedef struct sym { size_t off, len; } sym_t;

/* Merges adjacent symbols of s: best pair by score (spm) or rank (gpt2). */
static int bpe_merge(const loom_tokenizer_t *t, const char *s, sym_t *sy, size_t *nsy, char *scratch) {
    size_t n = *nsy;
    while (n > 1) {
        long best = -1;
        float bscore = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (t->kind == LOOM_TOK_LLAMA) {
                memcpy(scratch, s + sy[i].off, sy[i].len + sy[i + 1].len);
                scratch[sy[i].len + sy[i + 1].len] = 0;
                int32_t id = lookup(t, scratch);
                if (id >= 0 && (best < 0 || t->score[id] > bscore)) { best = (long)i; bscore = t->score[id]; }
            } else {
                memcpy(scratch, s + sy[i].off, sy[i].len);
                scratch[sy[i].len] = ' ';
                memcpy(scratch + sy[i].len + 1, s + sy[i + 1].off, sy[i + 1].len);
                scratch[sy[i].len + 1 + sy[i + 1].len] = 0;
                void *p = loom_map_get(t->ranks, scratch);
                if (p && (best < 0 || (float)P2ID(p) < bscore)) { best = (long)i; bscore = (float)P2ID(p); }
            }
        }
        if (best < 0) break;
        sy[best].len += sy[best + 1].len;
        memmove(&sy[best + 1], &sy[best + 2], (n - best - 2) * sizeof *sy);
        n--;
    }
    *nsy = n;
    return 0;
}

static int emit_syms(const loom_tokenizer_t *t, const char *s, const sym_t *sy, size_t n, char *scratch, ivec_t *out) {
    for (size_t i = 0; i < n; i++) {
        memcpy(scratch, s + sy[i].off, sy[i].len);
        scratch[sy[i].len] = 0;
        int32_t id = lookup(t, scratch);
        if (id >= 0) { if (ipush(out, id)) return LOOM_ENOMEM; continue; }
        for (size_t j = 0; j < sy[i].len; j++) { /* byte fallback */
            char bt[8];
            snprintf(bt, sizeof bt, "<0x%02X>", (unsigned char)s[sy[i].off + j]);
            int32_t b = lookup(t, bt);
            if (b < 0) b = t->unk;
            if (b >= 0 && ipush(out, b)) return LOOM_ENOMEM;
        }
    }
    return 0;
}

static int enc_spm(const loom_tokenizer_t *t, const char *text, size_t len, int prefix, ivec_t *out) {
    size_t cap = (len + 1) * 3 + 4;
    char *s = malloc(cap), *scratch = malloc(cap * 2 + 2);
    sym_t *sy = malloc((len + 2) * sizeof *sy);
    int rc = LOOM_ENOMEM;
    if (!s || !scratch || !sy) goto done;
    size_t m = 0, n = 0;
    if (prefix) { memcpy(s, "\xe2\x96\x81", 3); m = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(s + m, "\xe2\x96\x81", 3); m += 3; }
        else s[m++] = text[i];
    }
    for (size_t i = 0; i < m;) {
        size_t l = utf8_len((const unsigned char *)s + i, m - i);
        sy[n].off = i; sy[n].len = l; n++;
        i += l;
    }
    bpe_merge(t, s, sy, &n, scratch);
    rc = emit_syms(t, s, sy, n, scratch, out);
done:
    free(s); free(scratch); free(sy);
    return rc;
}

static int is_l(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c >= 128; }
static int is_n(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_s(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13); }
static int is_o(unsigned char c) { return !is_s(c) && !is_l(c) && !is_n(c); }

/* GPT-2 pre-tokenizer: length of the piece starting at b[i]. */
static size_t gpt2_piece(const unsigned char *b, size_t i, size_t n) {
    if (b[i] == '\'') {
        static const char *suf[] = {"s", "t", "re", "ve", "m", "ll", "d"};
        for (int k = 0; k < 7; k++) {
            size_t l = strlen(suf[k]);
            if (i + 1 + l <= n && !memcmp(b + i + 1, suf[k], l)) return 1 + l;
        }
    }
    size_t j = (b[i] == ' ' && i + 1 < n) ? i + 1 : i;
    int (*cls)(unsigned char) = NULL;
    if (is_l(b[j])) cls = is_l; else if (is_n(b[j])) cls = is_n; else if (!is_s(b[j])) cls = is_o;
    if (cls) {
        size_t k = j;
        while (k < n && cls(b[k])) k++;
        return k - i;
    }
    size_t k = i;
    while (k < n && is_s(b[k])) k++;
    if (k == n) return k - i;
    return k - i > 1 ? k - i - 1 : 1;
}

static int enc_gpt2(const loom_tokenizer_t *t, const char *text, size_t len, ivec_t *out) {
    const unsigned char *b = (const unsigned char *)text;
    int rc = 0;
    for (size_t i = 0; i < len && !rc;) {
        size_t pl = gpt2_piece(b, i, len);
        char *s = malloc(pl * 3 + 1), *scratch = malloc(pl * 6 + 8);
        sym_t *sy = malloc(pl * sizeof *sy);
        if (!s || !scratch || !sy) rc = LOOM_ENOMEM;
        else {
            size_t m = 0;
            for (size_t k = 0; k < pl; k++) {
                sy[k].off = m;
                sy[k].len = (size_t)put_utf8(s + m, t->b2u[b[i + k]]);
                m += sy[k].len;
            }
            size_t ns = pl;
            bpe_merge(t, s, sy, &ns, scratch);
            rc = emit_syms(t, s, sy, ns, scratch, out);
        }
        free(s); free(scratch); free(sy);
        i += pl;
    }
    return rc;
}

int loom_tokenizer_encode(const loom_tokenizer_t *t, const char *text, size_t len, int flags, int32_t **ids,
                          size_t *n, loom_err_t *e) {
    ivec_t out = {0};
    int rc = 0;
    *ids = NULL; *n = 0;
    if ((flags & LOOM_TOK_ADD_SPECIAL) && t->add_bos && t->bos >= 0) rc = ipush(&out, t->bos);
    size_t start = 0, i = 0;
    while (!rc && i <= len) {
        int32_t sp = -1;
        size_t sl = 0;
        if ((flags & LOOM_TOK_PARSE_SPECIAL) && i < len) {
            for (int32_t k = 0; k < t->n_special; k++) {
                const char *st = t->text[t->special[k]];
                size_t l = strlen(st);
                if (l <= len - i && !memcmp(text + i, st, l)) { sp = t->special[k]; sl = l; break; }
            }
        }
        if (sp < 0 && i < len) { i++; continue; }
        if (i > start) { /* text fragment [start, i) */
            if (t->kind == LOOM_TOK_LLAMA) rc = enc_spm(t, text + start, i - start, start == 0 && t->add_space, &out);
            else rc = enc_gpt2(t, text + start, i - start, &out);
        }
        if (!rc && sp >= 0) rc = ipush(&out, sp);
        if (sp < 0) break;
        i += sl;
        start = i;
    }
    if (!rc && (flags & LOOM_TOK_ADD_SPECIAL) && t->add_eos && t->eos >= 0) rc = ipush(&out, t->eos);
    if (rc) { free(out.v); return loom_err_set(e, LOOM_ENOMEM, "out of memory while tokenizing"); }
    *ids = out.v;
    *n = out.n;
    return 0;
}

int loom_tokenizer_decode(const loom_tokenizer_t *t, const int32_t *ids, size_t n, int strip_lead, loom_buf_t *out) {
    size_t begin = out->len;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n) continue;
        const char *s = t->text[id];
        if (t->type[id] == TT_CONTROL || t->type[id] == TT_UNUSED) continue;
        int rc = 0;
        if (t->kind == LOOM_TOK_LLAMA) {
            unsigned v;
            if (t->type[id] == TT_BYTE && sscanf(s, "<0x%02X>", &v) == 1) { rc = loom_buf_putc(out, (char)v); }
            else {
                for (const char *p = s; *p && !rc;) {
                    if (!strncmp(p, "\xe2\x96\x81", 3)) { rc = loom_buf_putc(out, ' '); p += 3; }
                    else rc = loom_buf_putc(out, *p++);
                }
            }
        } else if (t->type[id] == TT_USER) {
            rc = loom_buf_puts(out, s);
        } else {
            const unsigned char *p = (const unsigned char *)s;
            while (*p && !rc) { /* code point -> byte */
                size_t l = utf8_len(p, strlen((const char *)p));
                uint32_t cp = p[0];
                if (l == 2) cp = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
                else if (l == 3) cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
                if (l <= 3 && cp < 512 && t->u2b[cp] >= 0) rc = loom_buf_putc(out, (char)t->u2b[cp]);
                else rc = loom_buf_append(out, p, l);
                p += l;
            }
        }
        if (rc) return rc;
    }
    if (strip_lead && t->kind == LOOM_TOK_LLAMA && t->add_space && out->len > begin && out->data[begin] == ' ') {
        memmove(out->data + begin, out->data + begin + 1, out->len - begin - 1);
        out->len--;
        out->data[out->len] = 0;
    }
    return 0;
}
