/* cmd_llm.c — `loom llm`: run a GGUF model locally on the CPU backend.
 * The same code paths the worker ops use, for users checking a model file
 * before pointing a workflow at it, for the tests (which compare its output
 * with tests/llm/reference.py) and for `make bench-llm`. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/sha.h"
#include "llm/kvcache.h"
#include "llm/cpu/llm_cpu.h"
#include "llm/llm_engine.h"
#include "llm/llm_grammar.h"

static const char *USAGE =
    "usage: loom llm COMMAND MODEL.gguf [options]\n"
    "\n"
    "Runs a GGUF model (llama or bert architecture) on this machine's CPU.\n"
    "\n"
    "commands:\n"
    "  info                      architecture, shape, tensor types, tokenizer\n"
    "  tokenize                  print the token ids of --prompt\n"
    "  detokenize                print the text of --ids\n"
    "  logits                    logits of every position of the prompt; -o FILE\n"
    "                            writes them as float32 (rows = positions)\n"
    "  generate                  generate text after the prompt\n"
    "  prefill                   run the prompt, write its KV cache to -o FILE\n"
    "  decode                    continue from --kv FILE\n"
    "  embed                     pooled, normalised embedding of --prompt (bert)\n"
    "\n"
    "options:\n"
    "  -p, --prompt TEXT         input text (special tokens are recognised)\n"
    "  -i, --ids LIST            input token ids instead, comma separated\n"
    "  -n, --max-tokens N        tokens to generate (default 32)\n"
    "      --temp T              temperature (default 0 = greedy)\n"
    "      --top-k K, --top-p P, --seed S\n"
    "      --stop TEXT           stop string (repeatable)\n"
    "      --kv FILE             KV cache for decode\n"
    "  -o, --out FILE            output file (logits, prefill)\n"
    "  -t, --threads N           CPU threads (default: all cores)\n"
    "  -c, --ctx N               context length (default: the model's)\n"
    "      --format json         constrain the output to one JSON value\n"
    "      --schema S            ... of this JSON Schema (a file, or inline JSON)\n"
    "      --json                machine-readable output\n"
    "  -h, --help\n";

typedef struct opts {
    const char *prompt, *ids, *out, *kv, *format, *schema;
    int max_tokens, threads, ctx, json;
    loom_llm_sampling_t s;
    const char *stop[16];
    size_t n_stop;
} opts_t;

static int die(const loom_err_t *e) {
    char buf[2048];
    loom_err_format_long(e, buf, sizeof buf);
    fprintf(stderr, "loom llm: %s\n", buf);
    return 1;
}

static int parse_ids(const char *s, int32_t **ids, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    while (*s) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < 0 || x > INT32_MAX) { free(v); return -1; }
        if (k == cap) { cap *= 2; int32_t *nv = realloc(v, cap * sizeof *v); if (!nv) { free(v); return -1; } v = nv; }
        v[k++] = (int32_t)x;
        s = end;
        while (*s == ',' || *s == ' ') s++;
    }
    *ids = v;
    *n = k;
    return 0;
}

static int input_ids(const loom_llm_model_t *m, const opts_t *o, int32_t **ids, size_t *n, loom_err_t *e) {
    if (o->ids) {
        if (parse_ids(o->ids, ids, n)) return loom_err_set(e, LOOM_EINVAL, "--ids: expected comma-separated token ids");
        return 0;
    }
    if (!o->prompt) return loom_err_set(e, LOOM_EINVAL, "give --prompt TEXT or --ids LIST");
    return loom_llm_tokenize(m, o->prompt, ids, n, e);
}

static int on_tok(void *ctx, const char *piece, size_t len, int32_t tok) {
    (void)ctx; (void)tok;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

static void print_result(const opts_t *o, loom_buf_t *text, const loom_llm_gen_result_t *r, const char *backend) {
    if (o->json) {
        loom_llm_utf8_sanitize(text);
        json_t *toks = json_array();
        for (int i = 0; i < r->n_generated; i++) json_array_append_new(toks, json_integer(r->tokens[i]));
        json_t *j = json_pack("{s:s%, s:o, s:i, s:i, s:s, s:f, s:f, s:s}", "text", text->data ? text->data : "",
                              text->len, "tokens", toks, "prompt_tokens", r->n_prompt, "generated_tokens",
                              r->n_generated, "finish_reason", r->finish_reason, "prefill_s", r->prefill_s,
                              "decode_s", r->decode_s, "backend", backend);
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(j);
    } else {
        putchar('\n');
    }
}

/* A `resources.models` entry for this file, ready to paste into a workflow
 * (the names the workflow parser reads: hidden, heads, kv_heads, ...). */
static void print_models_block(const loom_llm_model_t *m, const char *path, const char *arch) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char name[64];
    size_t n = 0;
    for (const char *p = base; *p && n < sizeof name - 1; p++) {
        if (strcmp(p, ".gguf") == 0) break;
        char ch = (char)tolower((unsigned char)*p);
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (ok) name[n++] = ch;
        else if (n && name[n - 1] != '_') name[n++] = '_';
    }
    while (n && name[n - 1] == '_') n--;
    name[n] = 0;
    char dtype[16];
    snprintf(dtype, sizeof dtype, "%s", loom_ggml_type_name(m->wtype));
    for (char *p = dtype; *p; p++) *p = (char)tolower((unsigned char)*p);
    printf("\n# paste into the workflow (paths are relative to the workflow file):\n"
           "resources:\n  models:\n    %s: {path: %s, arch: %s, layers: %d, hidden: %d, heads: %d, ",
           n ? name : "model", path, arch, m->n_layers, m->dim, m->n_heads);
    if (m->arch == LOOM_LLM_ARCH_LLAMA) printf("kv_heads: %d, ", m->n_kv_heads);
    printf("vocab: %d, context: %d, dtype: %s}\n", m->n_vocab, m->n_ctx, dtype);
}

static int cmd_info(const loom_llm_model_t *m, const char *path, const opts_t *o) {
    char hex[65];
    loom_hex(m->hash, 32, hex);
    const char *arch = m->arch == LOOM_LLM_ARCH_LLAMA ? "llama" : "bert";
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:I, s:s, s:s}", "name", m->name,
                              "arch", arch, "weight_type", loom_ggml_type_name(m->wtype), "vocab", m->n_vocab,
                              "hidden", m->dim, "layers", m->n_layers, "heads", m->n_heads, "kv_heads", m->n_kv_heads,
                              "ffn", m->ffn, "context", m->n_ctx, "model_hash", hex,
                              "bytes_per_token", (json_int_t)loom_llm_model_bytes_per_token(m), "simd",
                              loom_llm_simd_name(), "tokenizer",
                              loom_tokenizer_kind(m->tok) == LOOM_TOK_LLAMA ? "llama" : "gpt2");
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(j);
        return 0;
    }
    printf("name        %s\narch        %s\nweights     %s\nvocab       %d\nhidden      %d\nlayers      %d\n"
           "heads       %d (kv %d, head dim %d)\nffn         %d\ncontext     %d\nhash        %s\n"
           "bytes/token %zu\nsimd        %s\ntokenizer   %s\nchat tmpl   %s\n",
           m->name, arch, loom_ggml_type_name(m->wtype), m->n_vocab, m->dim, m->n_layers, m->n_heads, m->n_kv_heads,
           m->head_dim, m->ffn, m->n_ctx, hex, loom_llm_model_bytes_per_token(m), loom_llm_simd_name(),
           loom_tokenizer_kind(m->tok) == LOOM_TOK_LLAMA ? "llama (SentencePiece BPE)" : "gpt2 (byte-level BPE)",
           loom_tokenizer_chat_template(m->tok) ? "yes" : "no");
    print_models_block(m, path, arch);
    return 0;
}

int loom_cmd_llm(int argc, char **argv);

int loom_cmd_llm(int argc, char **argv) {
    static const struct option lo[] = {
        {"prompt", 1, 0, 'p'}, {"ids", 1, 0, 'i'}, {"max-tokens", 1, 0, 'n'}, {"temp", 1, 0, 1},
        {"top-k", 1, 0, 2},    {"top-p", 1, 0, 3}, {"seed", 1, 0, 4},       {"stop", 1, 0, 5},
        {"kv", 1, 0, 6},       {"out", 1, 0, 'o'}, {"threads", 1, 0, 't'},  {"ctx", 1, 0, 'c'},
        {"json", 0, 0, 7},     {"help", 0, 0, 'h'}, {"format", 1, 0, 8},    {"schema", 1, 0, 9},
        {0, 0, 0, 0}};
    opts_t o = {.max_tokens = 32};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:i:n:o:t:c:h", lo, NULL)) != -1) {
        switch (c) {
        case 'p': o.prompt = optarg; break;
        case 'i': o.ids = optarg; break;
        case 'n': o.max_tokens = atoi(optarg); break;
        case 1: o.s.temperature = strtof(optarg, NULL); break;
        case 2: o.s.top_k = atoi(optarg); break;
        case 3: o.s.top_p = strtof(optarg, NULL); break;
        case 4: o.s.seed = strtoull(optarg, NULL, 10); break;
        case 5: if (o.n_stop < 16) o.stop[o.n_stop++] = optarg; break;
        case 6: o.kv = optarg; break;
        case 'o': o.out = optarg; break;
        case 't': o.threads = atoi(optarg); break;
        case 'c': o.ctx = atoi(optarg); break;
        case 7: o.json = 1; break;
        case 8: o.format = optarg; break;
        case 9: o.schema = optarg; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: fputs(USAGE, stderr); return 2;
        }
    }
    if (argc - optind != 2) { fputs(USAGE, stderr); return 2; }
    const char *cmd = argv[optind], *path = argv[optind + 1];
    static const char *cmds[] = {"info", "tokenize", "detokenize", "logits", "generate", "prefill", "decode", "embed"};
    int known = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) known |= !strcmp(cmd, cmds[i]);
    if (!known) { fprintf(stderr, "loom llm: unknown command \"%s\"\n%s", cmd, USAGE); return 2; }
    loom_err_t e = {0};
    loom_llm_model_t *m = NULL;
    /* info and the tokenizer read metadata only: the weights stay unread */
    int meta = !strcmp(cmd, "info") || !strcmp(cmd, "tokenize") || !strcmp(cmd, "detokenize");
    if ((meta ? loom_llm_model_load(path, &m, &e) : loom_llm_model_load_resident(path, &m, &e))) return die(&e);
    int rc = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    loom_llm_pool_t *pool = NULL;
    loom_llm_cpu_t *cpu = NULL;
    loom_buf_t text = LOOM_BUF_INIT;
    if (!strcmp(cmd, "info")) { rc = cmd_info(m, path, &o); goto done; }
    if (!strcmp(cmd, "detokenize")) {
        if (!o.ids || parse_ids(o.ids, &ids, &n)) { fprintf(stderr, "loom llm: detokenize needs --ids LIST\n"); rc = 2; goto done; }
        loom_tokenizer_decode(m->tok, ids, n, 1, &text);
        printf("%s\n", text.data ? text.data : "");
        goto done;
    }
    if (strcmp(cmd, "decode") && input_ids(m, &o, &ids, &n, &e)) { rc = die(&e); goto done; }
    if (!strcmp(cmd, "tokenize")) {
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        putchar('\n');
        goto done;
    }
    if (!(pool = loom_llm_pool_new(o.threads))) { fprintf(stderr, "loom llm: cannot start threads\n"); rc = 1; goto done; }
    if (loom_llm_cpu_new(m, pool, o.ctx, &cpu, &e)) { rc = die(&e); goto done; }
    loom_llm_backend_t b;
    loom_llm_backend_cpu(cpu, &b);
    loom_llm_gen_params_t gp = {.max_tokens = o.max_tokens, .sampling = o.s, .stop = o.stop, .n_stop = o.n_stop,
                                .on_token = o.json ? NULL : on_tok};
    loom_llm_gen_result_t r = {0};
    loom_llm_grammar_t *grammar = NULL;
    if (o.format || o.schema) {
        json_error_t je;
        json_t *schema = !o.schema ? NULL : o.schema[0] == '{' ? json_loads(o.schema, 0, &je) : json_load_file(o.schema, 0, &je);
        if ((o.format && strcmp(o.format, "json")) || (o.schema && !schema) || strcmp(cmd, "generate")) {
            fprintf(stderr, "loom llm: %s\n", o.schema && !schema ? je.text
                                               : strcmp(cmd, "generate") ? "--format and --schema are for generate"
                                                                         : "--format takes json");
            json_decref(schema);
            rc = 2;
            goto done;
        }
        int grc = loom_llm_grammar_new(m, schema, &grammar, &e);
        json_decref(schema);
        if (grc) { rc = die(&e); goto done; }
        gp.constrain = loom_llm_grammar_sample;
        gp.constrain_ud = grammar;
    }
    if (!strcmp(cmd, "embed")) {
        float *v = malloc((size_t)m->dim * sizeof *v);
        if (!v || loom_llm_cpu_embed(cpu, ids, (int)n, v, &e)) { free(v); rc = v ? die(&e) : 1; goto done; }
        for (int i = 0; i < m->dim; i++) printf("%.8g\n", v[i]);
        free(v);
    } else if (!strcmp(cmd, "logits")) {
        float *all = malloc(n * (size_t)m->n_vocab * sizeof *all);
        if (!all || loom_llm_cpu_eval(cpu, ids, (int)n, 0, NULL, all, &e)) { free(all); rc = all ? die(&e) : 1; goto done; }
        if (o.out) {
            FILE *f = fopen(o.out, "wb");
            if (!f || fwrite(all, sizeof *all, n * (size_t)m->n_vocab, f) != n * (size_t)m->n_vocab) {
                fprintf(stderr, "loom llm: cannot write %s: %s\n", o.out, strerror(errno));
                rc = 1;
            }
            if (f) fclose(f);
        } else {
            for (int i = 0; i < m->n_vocab; i++) printf("%.8g\n", all[(n - 1) * (size_t)m->n_vocab + i]);
        }
        free(all);
    } else if (!strcmp(cmd, "generate")) {
        int grc = loom_llm_generate(m, &b, ids, n, &gp, &text, &r, &e);
        const char *why = !grc && grammar ? loom_llm_grammar_failure(grammar) : NULL;
        if (why) { /* constrained output that is not a complete value: an error, not text */
            if (!o.json) putchar('\n');
            fprintf(stderr, "loom llm: --format json: %s (max tokens %d)\n", why, o.max_tokens);
            rc = 1;
        }
        loom_llm_grammar_destroy(&grammar);
        if (grc) { rc = die(&e); goto done; }
        if (!why) print_result(&o, &text, &r, "cpu");
        free(r.tokens);
    } else if (!strcmp(cmd, "prefill")) {
        loom_kvcache_t *kv;
        double secs;
        if (!o.out) { fprintf(stderr, "loom llm: prefill needs -o FILE\n"); rc = 2; goto done; }
        if (loom_llm_prefill(m, &b, ids, n, &kv, &secs, &e) || loom_kvcache_save(kv, o.out, &e)) { rc = die(&e); goto done; }
        if (o.json) printf("{\"prompt_tokens\":%zu,\"prefill_s\":%.6f,\"kv\":\"%s\"}\n", n, secs, o.out);
        loom_kvcache_destroy(&kv);
    } else if (!strcmp(cmd, "decode")) {
        loom_kvcache_t *kv;
        if (!o.kv) { fprintf(stderr, "loom llm: decode needs --kv FILE\n"); rc = 2; goto done; }
        if (loom_kvcache_load(o.kv, &kv, &e)) { rc = die(&e); goto done; }
        rc = loom_llm_decode(m, &b, kv, &gp, &text, &r, &e);
        loom_kvcache_destroy(&kv);
        if (rc) { rc = die(&e); goto done; }
        print_result(&o, &text, &r, "cpu");
        free(r.tokens);
    }
done:
    loom_buf_free(&text);
    free(ids);
    loom_llm_cpu_destroy(&cpu);
    loom_llm_pool_destroy(&pool);
    loom_llm_model_destroy(&m);
    return rc;
}
