/* model_files.c — see model_files.h. */
#include "cli/model_files.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "llm/gguf.h"

static int64_t u32(const loom_gguf_t *g, const char *arch, const char *key)
{
    char k[160];
    uint32_t v = 0;
    loom_err_t e = {0};
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return loom_gguf_get_u32(g, k, &v, &e) == 0 ? (int64_t)v : 0;
}

static void report(loom_diags_t *d, const loom_workflow_t *wf, const loom_wf_model_t *m, const char *field,
                   const char *fmt, const char *a, const char *b, const char *file)
{
    loom_err_t *e = loom_diags_add(d);
    if (!e)
        return;
    char msg[400];
    snprintf(msg, sizeof msg, fmt, a, b);
    loom_err_set(e, LOOM_EINVAL, "%s (file %s)", msg, file);
    loom_err_at(e, wf->file, m->line, m->col);
    loom_err_field(e, "resources.models.%s.%s", m->name, field);
}

/* Declared n vs the file's f: fill when not declared, report when they differ. */
static int check_int(loom_diags_t *d, const loom_workflow_t *wf, loom_wf_model_t *m, const char *field,
                     int64_t *declared, int64_t file_value, const char *path)
{
    if (file_value <= 0)
        return 0;
    if (*declared <= 0) {
        *declared = file_value;
        return 0;
    }
    if (*declared == file_value)
        return 0;
    char a[32], b[32];
    snprintf(a, sizeof a, "%lld", (long long)*declared);
    snprintf(b, sizeof b, "%lld", (long long)file_value);
    report(d, wf, m, field, "declared %s but the file has %s", a, b, path);
    return 1;
}

static int check_model(loom_workflow_t *wf, loom_wf_model_t *m, int quiet, loom_diags_t *d)
{
    char path[4096];
    if (m->path[0] == '/' || !wf->dir)
        snprintf(path, sizeof path, "%s", m->path);
    else
        snprintf(path, sizeof path, "%s/%s", wf->dir, m->path);
    loom_gguf_t *g = NULL;
    loom_err_t e = {0};
    if (loom_gguf_open(path, &g, &e) != 0) {
        if (!quiet)
            fprintf(stderr, "%s:%d:%d: warning: resources.models.%s.path: cannot read %s here (%s); its shape is %s\n",
                    wf->file, m->line, m->col, m->name, path, e.msg,
                    m->layers > 0 ? "as declared" : "unknown to the planner");
        return 0;
    }
    const char *arch = NULL;
    size_t alen = 0;
    int bad = 0;
    char archbuf[64] = "";
    if (loom_gguf_get_str(g, "general.architecture", &arch, &alen, &e) == 0)
        snprintf(archbuf, sizeof archbuf, "%.*s", (int)alen, arch);
    if (archbuf[0]) {
        if (!m->arch)
            m->arch = loom_arena_strdup(wf->arena, archbuf);
        else if (strcmp(m->arch, archbuf) != 0) {
            report(d, wf, m, "arch", "declared %s but the file has %s", m->arch, archbuf, path);
            bad++;
        }
    }
    bad += check_int(d, wf, m, "layers", &m->layers, u32(g, archbuf, "block_count"), path);
    bad += check_int(d, wf, m, "hidden", &m->hidden, u32(g, archbuf, "embedding_length"), path);
    bad += check_int(d, wf, m, "heads", &m->heads, u32(g, archbuf, "attention.head_count"), path);
    int64_t kvh = u32(g, archbuf, "attention.head_count_kv");
    bad += check_int(d, wf, m, "kv_heads", &m->kv_heads, kvh ? kvh : u32(g, archbuf, "attention.head_count"), path);
    bad += check_int(d, wf, m, "context", &m->context, u32(g, archbuf, "context_length"), path);
    int et = 0;
    uint64_t nv = 0;
    const void *raw = NULL;
    if (loom_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &nv, &raw, &e) == 0)
        bad += check_int(d, wf, m, "vocab", &m->vocab, (int64_t)nv, path);
    /* dtype: the type of the attention weights (1-D tensors stay f32) */
    const loom_gguf_tensor_t *t = loom_gguf_find_tensor(g, "blk.0.attn_q.weight");
    if (!t)
        t = loom_gguf_find_tensor(g, "token_embd.weight");
    const char *tn = t ? loom_ggml_type_name((int)t->type) : NULL;
    char dt[16] = "";
    for (size_t i = 0; tn && tn[i] && i + 1 < sizeof dt; i++)
        dt[i] = (char)tolower((unsigned char)tn[i]), dt[i + 1] = 0;
    if (dt[0]) {
        if (!m->dtype)
            m->dtype = loom_arena_strdup(wf->arena, dt);
        else if (strcmp(m->dtype, dt) != 0) {
            report(d, wf, m, "dtype", "declared %s but the file has %s", m->dtype, dt, path);
            bad++;
        }
    }
    if (m->heads > 0 && !m->head_dim)
        m->head_dim = m->hidden / m->heads;
    if (!m->params && m->layers > 0 && m->hidden > 0 && m->vocab > 0)
        m->params = 12 * m->layers * m->hidden * m->hidden + m->vocab * m->hidden;
    loom_gguf_destroy(&g);
    return bad;
}

int loom_cli_models_from_files(loom_workflow_t *wf, int quiet, loom_diags_t *diags)
{
    int bad = 0;
    for (size_t i = 0; i < wf->n_models; i++)
        if (wf->models[i].path)
            bad += check_model(wf, &wf->models[i], quiet, diags);
    return bad;
}
