/* cmd_index.c — `loom index`: build and inspect the vector index files that
 * vector.search steps read.
 *
 *   loom index build DOCS.jsonl --model M.gguf -o docs.index [--field text]
 *   loom index info docs.index [--json]
 *   loom index search docs.index --model M.gguf --query TEXT [-k N] [--json]
 *
 * Each line of DOCS.jsonl is a JSON object; its --field (default "text") is
 * embedded with the same code the worker's `embed` op runs, and the whole
 * line is stored as the payload that search results return. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/sha.h"
#include "workers/common/vindex.h"
#include "llm/llm_engine.h"

int loom_cmd_index(int argc, char **argv);

static const char *USAGE =
    "usage: loom index build DOCS.jsonl --model MODEL.gguf -o OUT.index [--field NAME]\n"
    "       loom index info INDEX [--json]\n"
    "       loom index search INDEX --model MODEL.gguf --query TEXT [-k N] [--json]\n"
    "\n"
    "Builds the vector index file a workflow's vector.search step names in\n"
    "resources.indexes: every JSON line of DOCS.jsonl is embedded with MODEL\n"
    "(a bert-architecture GGUF, the same the workflow's embed step uses),\n"
    "vectors are L2-normalised, and the line is kept as the result payload.\n"
    "\n"
    "options:\n"
    "  -m, --model FILE    embedding model (GGUF, bert architecture)\n"
    "  -o, --out FILE      index to write (build)\n"
    "  -f, --field NAME    JSON field holding the text (default: text)\n"
    "  -q, --query TEXT    text to search for (search)\n"
    "  -k N                results (default 4)\n"
    "  -t, --threads N     CPU threads (default: all cores)\n"
    "      --truncate      cut documents longer than the model's context\n"
    "      --json          machine-readable output\n"
    "  -h, --help\n";

static int fail_err(const loom_err_t *e) {
    char buf[2048];
    loom_err_format_long(e, buf, sizeof buf);
    fprintf(stderr, "loom index: %s\n", buf);
    return LOOM_EXIT_FAIL;
}

typedef struct docs {
    char **payload;
    size_t *len;
    float *vec;
    size_t n, cap;
} docs_t;

static int build(const char *in, const char *model, const char *out, const char *field, int threads, int truncate,
                 int json) {
    loom_err_t e = {0};
    FILE *f = fopen(in, "r");
    if (!f) { fprintf(stderr, "loom index: cannot open %s: %s\n", in, strerror(errno)); return LOOM_EXIT_FAIL; }
    loom_llm_model_t *m = NULL;
    loom_llm_pool_t *pool = NULL;
    loom_llm_cpu_t *c = NULL;
    docs_t d = {0};
    int rc = LOOM_EXIT_FAIL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    int lineno = 0;
    if (loom_llm_model_load_resident(model, &m, &e)) { rc = fail_err(&e); goto done; }
    if (m->arch != LOOM_LLM_ARCH_BERT) {
        fprintf(stderr, "loom index: %s is not an embedding (bert) model\n", model);
        goto done;
    }
    if (!(pool = loom_llm_pool_new(threads)) || loom_llm_cpu_new(m, pool, 0, &c, &e)) { rc = fail_err(&e); goto done; }
    int tty = isatty(2) && !json;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        lineno++;
        while (ll > 0 && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        if (ll == 0) continue;
        json_error_t je;
        json_t *doc = json_loadb(line, (size_t)ll, 0, &je);
        const char *text = doc ? json_string_value(json_object_get(doc, field)) : NULL;
        if (!doc || !text) {
            fprintf(stderr, "%s:%d:%d: %s\n", in, lineno, doc ? 1 : je.column,
                    doc ? "line has no string field (see --field)" : je.text);
            json_decref(doc);
            goto done;
        }
        if (d.n == d.cap) {
            d.cap = d.cap ? d.cap * 2 : 64;
            d.payload = realloc(d.payload, d.cap * sizeof *d.payload);
            d.len = realloc(d.len, d.cap * sizeof *d.len);
            d.vec = realloc(d.vec, d.cap * (size_t)m->dim * sizeof *d.vec);
            if (!d.payload || !d.len || !d.vec) { fprintf(stderr, "loom index: out of memory\n"); json_decref(doc); goto done; }
        }
        if (loom_llm_embed_text(m, c, text, truncate, d.vec + d.n * (size_t)m->dim, &e)) {
            loom_err_at(&e, in, lineno, 1);
            json_decref(doc);
            rc = fail_err(&e);
            goto done;
        }
        json_decref(doc);
        d.payload[d.n] = strndup(line, (size_t)ll);
        d.len[d.n] = (size_t)ll;
        d.n++;
        if (tty && d.n % 16 == 0) fprintf(stderr, "\rembedded %zu documents", d.n);
    }
    if (tty) fprintf(stderr, "\r");
    if (loom_vindex_write(out, m->dim, d.n, d.vec, (const char *const *)d.payload, d.len, m->hash, &e)) {
        rc = fail_err(&e);
        goto done;
    }
    if (json) printf("{\"index\":\"%s\",\"documents\":%zu,\"dim\":%d,\"model\":\"%s\"}\n", out, d.n, m->dim, m->name);
    else printf("wrote %s: %zu documents, dim %d, model %s\n", out, d.n, m->dim, m->name);
    rc = LOOM_EXIT_OK;
done:
    for (size_t i = 0; i < d.n; i++) free(d.payload[i]);
    free(d.payload); free(d.len); free(d.vec); free(line);
    fclose(f);
    loom_llm_cpu_destroy(&c);
    loom_llm_pool_destroy(&pool);
    loom_llm_model_destroy(&m);
    return rc;
}

static int info(const char *path, int json) {
    loom_err_t e = {0};
    loom_vindex_t *v;
    if (loom_vindex_open(path, &v, &e)) return fail_err(&e);
    char hex[65];
    loom_hex(loom_vindex_model_hash(v), 32, hex);
    if (json) printf("{\"index\":\"%s\",\"version\":%d,\"documents\":%llu,\"dim\":%d,\"dtype\":\"f32\",\"model_hash\":\"%s\"}\n",
                     path, LOOM_VINDEX_VERSION, (unsigned long long)loom_vindex_count(v), loom_vindex_dim(v), hex);
    else printf("%s: version %d, %llu documents, dim %d, f32, normalised, model %.16s...\n", path, LOOM_VINDEX_VERSION,
                (unsigned long long)loom_vindex_count(v), loom_vindex_dim(v), hex);
    loom_vindex_destroy(&v);
    return LOOM_EXIT_OK;
}

static int search(const char *path, const char *model, const char *query, int k, int threads, int json) {
    loom_err_t e = {0};
    loom_vindex_t *v = NULL;
    loom_llm_model_t *m = NULL;
    loom_llm_pool_t *pool = NULL;
    loom_llm_cpu_t *c = NULL;
    float *q = NULL;
    loom_vindex_hit_t *hits = NULL;
    int rc = LOOM_EXIT_FAIL;
    if (loom_vindex_open(path, &v, &e) || loom_llm_model_load_resident(model, &m, &e)) { rc = fail_err(&e); goto done; }
    if (!(pool = loom_llm_pool_new(threads)) || loom_llm_cpu_new(m, pool, 0, &c, &e)) { rc = fail_err(&e); goto done; }
    q = malloc((size_t)m->dim * sizeof *q);
    hits = malloc((size_t)k * sizeof *hits);
    if (!q || !hits) goto done;
    if (loom_llm_embed_text(m, c, query, 1, q, &e)) { rc = fail_err(&e); goto done; }
    int n = loom_vindex_search(v, q, m->dim, k, hits, &e);
    if (n < 0) { rc = fail_err(&e); goto done; }
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = loom_vindex_payload(v, hits[i].id, &len);
        if (json) printf("{\"id\":%llu,\"score\":%.6f,\"doc\":%.*s}\n", (unsigned long long)hits[i].id, hits[i].score, (int)len, p);
        else printf("%.4f  #%llu  %.*s\n", hits[i].score, (unsigned long long)hits[i].id, (int)(len > 100 ? 100 : len), p);
    }
    rc = LOOM_EXIT_OK;
done:
    free(q); free(hits);
    loom_llm_cpu_destroy(&c);
    loom_llm_pool_destroy(&pool);
    loom_llm_model_destroy(&m);
    loom_vindex_destroy(&v);
    return rc;
}

int loom_cmd_index(int argc, char **argv) {
    if (loom_cli_wants_help(argc, argv, USAGE)) return LOOM_EXIT_OK;
    static const struct option lo[] = {{"model", 1, 0, 'm'}, {"out", 1, 0, 'o'},     {"field", 1, 0, 'f'},
                                       {"query", 1, 0, 'q'}, {"threads", 1, 0, 't'}, {"json", 0, 0, 1},
                                       {"truncate", 0, 0, 2}, {0, 0, 0, 0}};
    const char *model = NULL, *out = NULL, *field = "text", *query = NULL;
    int k = 4, threads = 0, json = 0, truncate = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:f:q:k:t:", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'f': field = optarg; break;
        case 'q': query = optarg; break;
        case 'k': k = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 1: json = 1; break;
        case 2: truncate = 1; break;
        default: fputs(USAGE, stderr); return LOOM_EXIT_USAGE;
        }
    }
    const char *sub = optind < argc ? argv[optind] : NULL, *file = optind + 1 < argc ? argv[optind + 1] : NULL;
    if (!sub || !file || optind + 2 != argc) { fputs(USAGE, stderr); return LOOM_EXIT_USAGE; }
    if (!strcmp(sub, "build")) {
        if (!model || !out) { fprintf(stderr, "loom index build: --model and -o are required\n"); return LOOM_EXIT_USAGE; }
        return build(file, model, out, field, threads, truncate, json);
    }
    if (!strcmp(sub, "info")) return info(file, json);
    if (!strcmp(sub, "search")) {
        if (!model || !query || k <= 0) { fprintf(stderr, "loom index search: --model, --query and k > 0 are required\n"); return LOOM_EXIT_USAGE; }
        return search(file, model, query, k, threads, json);
    }
    fprintf(stderr, "loom index: unknown subcommand '%s'\n%s", sub, USAGE);
    return LOOM_EXIT_USAGE;
}
