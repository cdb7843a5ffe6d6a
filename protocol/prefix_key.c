/* prefix_key.c — chain hashes of an LLM input's canonical text (see
 * prefix_key.h). */
#include "protocol/prefix_key.h"

#include <string.h>

#include "common/buf.h"
#include "common/sha.h"

static void piece(loom_buf_t *b, const char *role, const char *text, int end) {
    loom_buf_puts(b, role);
    loom_buf_append(b, "\x1f", 1);
    loom_buf_puts(b, text ? text : "");
    if (end) loom_buf_append(b, "\x1e", 1);
}

size_t loom_prefix_keys(const json_t *input, const char *answer, uint64_t *out, size_t max, size_t *text_len) {
    if (text_len) *text_len = 0;
    const char *prompt = json_string_value(json_object_get(input, "prompt"));
    const json_t *msgs = json_object_get(input, "messages");
    if (!prompt && !json_is_array(msgs)) return 0;
    const json_t *mr = json_object_get(input, "model_resource");
    loom_buf_t b = LOOM_BUF_INIT;
    /* the seed: which model's KV this is */
    loom_buf_puts(&b, json_string_value(json_object_get(mr, "name")) ? json_string_value(json_object_get(mr, "name"))
                  : json_string_value(json_object_get(input, "model")) ? json_string_value(json_object_get(input, "model"))
                                                                        : "");
    loom_buf_append(&b, "\x1d", 1);
    loom_buf_puts(&b, json_string_value(json_object_get(mr, "path")) ? json_string_value(json_object_get(mr, "path")) : "");
    uint8_t h[LOOM_SHA256_LEN];
    if (loom_sha256(b.data ? b.data : "", b.len, h)) { loom_buf_free(&b); return 0; }
    b.len = 0;
    if (!prompt) {
        size_t i;
        const json_t *m;
        json_array_foreach(msgs, i, m)
            piece(&b, json_string_value(json_object_get(m, "role")) ? json_string_value(json_object_get(m, "role")) : "",
                  json_string_value(json_object_get(m, "content")), 1);
        if (answer) piece(&b, "assistant", answer, 1);
    } else {
        const char *sys = json_string_value(json_object_get(input, "system"));
        if (sys && *sys) piece(&b, "system", sys, 1);
        piece(&b, "user", prompt, 0);
        if (answer) loom_buf_puts(&b, answer);
    }
    if (text_len) *text_len = b.len;
    size_t n = 0;
    for (size_t off = 0; off + LOOM_PREFIX_BLOCK <= b.len && n < max; off += LOOM_PREFIX_BLOCK) {
        uint8_t in[LOOM_SHA256_LEN + LOOM_PREFIX_BLOCK];
        memcpy(in, h, LOOM_SHA256_LEN);
        memcpy(in + LOOM_SHA256_LEN, b.data + off, LOOM_PREFIX_BLOCK);
        if (loom_sha256(in, sizeof in, h)) break;
        uint64_t k = 0;
        for (int j = 0; j < 8; j++) k = k << 8 | h[j];
        out[n++] = k;
    }
    loom_buf_free(&b);
    return n;
}
