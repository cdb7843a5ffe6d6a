/* tokenizer.h — text <-> token ids from a GGUF file's tokenizer metadata.
 *
 * Two models, as llama.cpp names them in tokenizer.ggml.model:
 *  - "llama": SentencePiece-style BPE. Spaces become U+2581, a space is
 *    prefixed to the text, adjacent pieces are merged highest score first
 *    (leftmost on ties), leftover characters fall back to <0xXX> byte tokens.
 *  - "gpt2": byte-level BPE. GPT-2's pre-tokenizer splits the text (letters
 *    are ASCII letters and every non-ASCII character: an approximation of
 *    \p{L} that keeps multi-byte characters whole), bytes map to printable
 *    characters, pieces merge by tokenizer.ggml.merges rank.
 * Control (type 3) and user-defined (type 4) tokens that appear verbatim in
 * the text are matched as single tokens when LOOM_TOK_PARSE_SPECIAL is set.
 * The chat template (tokenizer.chat_template) is exposed as text; rendering
 * Jinja is left to the caller. Immutable after creation: thread-safe. */
#ifndef LOOM_LLM_TOKENIZER_H
#define LOOM_LLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "llm/gguf.h"

typedef struct loom_tokenizer loom_tokenizer_t;

enum {
    LOOM_TOK_ADD_SPECIAL = 1,   /* add BOS/EOS as the model's metadata asks */
    LOOM_TOK_PARSE_SPECIAL = 2, /* match control/user-defined token texts */
};

enum { LOOM_TOK_LLAMA = 1, LOOM_TOK_GPT2 = 2 };

/* Builds from g's metadata (copies what it needs: g may be closed after). */
int loom_tokenizer_new(const loom_gguf_t *g, loom_tokenizer_t **out, loom_err_t *e);
void loom_tokenizer_destroy(loom_tokenizer_t **pt);

int loom_tokenizer_kind(const loom_tokenizer_t *t);
int32_t loom_tokenizer_n_vocab(const loom_tokenizer_t *t);
int32_t loom_tokenizer_bos(const loom_tokenizer_t *t); /* -1 when none */
int32_t loom_tokenizer_eos(const loom_tokenizer_t *t);
/* 1 for tokens that end a generation (EOS, <|endoftext|>, <|eot_id|>, ...). */
int loom_tokenizer_is_eog(const loom_tokenizer_t *t, int32_t id);
/* Borrowed; NULL when the model has none. */
const char *loom_tokenizer_chat_template(const loom_tokenizer_t *t);
/* Raw vocabulary text of id (borrowed), NULL when out of range. */
const char *loom_tokenizer_token_text(const loom_tokenizer_t *t, int32_t id);

/* Encodes len bytes of text. *ids is malloc'd, caller frees. */
int loom_tokenizer_encode(const loom_tokenizer_t *t, const char *text, size_t len, int flags,
                          int32_t **ids, size_t *n, loom_err_t *e);
/* Appends the text of ids to out. Control tokens decode to nothing. The
 * leading space that "llama" encoding adds is removed when strip_lead is 1
 * (use 1 for a whole sequence, 0 when streaming after the first piece). */
int loom_tokenizer_decode(const loom_tokenizer_t *t, const int32_t *ids, size_t n, int strip_lead,
                          loom_buf_t *out);

#endif
