/* gguf.h — GGUF v3 model file reader (the llama.cpp ecosystem's format).
 *
 * The file is mapped read-only; tensor data and metadata strings point into
 * the mapping (no copies), so CPU backends use the weights in place. Every
 * offset, length and shape is validated on open: a truncated file, a bad
 * magic, an unknown value or tensor type, a shape that overflows or a tensor
 * outside the data section is a LOOM_EPARSE error naming the file and the
 * field, never a crash. Also decodes ggml's block formats (F32, F16, BF16,
 * Q8_0, Q4_0) for the backends. Not thread-safe to open; read-only use of
 * an opened file from many threads is safe. */
#ifndef LOOM_LLM_GGUF_H
#define LOOM_LLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct loom_gguf loom_gguf_t;

/* Metadata value types (GGUF numbering). */
enum {
    LOOM_GGUF_U8 = 0, LOOM_GGUF_I8 = 1, LOOM_GGUF_U16 = 2, LOOM_GGUF_I16 = 3,
    LOOM_GGUF_U32 = 4, LOOM_GGUF_I32 = 5, LOOM_GGUF_F32 = 6, LOOM_GGUF_BOOL = 7,
    LOOM_GGUF_STRING = 8, LOOM_GGUF_ARRAY = 9, LOOM_GGUF_U64 = 10,
    LOOM_GGUF_I64 = 11, LOOM_GGUF_F64 = 12,
};

/* Tensor types Loom computes with (ggml numbering). */
enum {
    LOOM_GGML_F32 = 0, LOOM_GGML_F16 = 1, LOOM_GGML_Q4_0 = 2,
    LOOM_GGML_Q8_0 = 8, LOOM_GGML_BF16 = 30,
};

#define LOOM_GGUF_MAX_DIMS 4
#define LOOM_QK 32 /* elements per Q8_0 / Q4_0 block */

/* One tensor; every pointer is borrowed until loom_gguf_destroy. */
typedef struct loom_gguf_tensor {
    const char *name;
    uint32_t n_dims;
    uint64_t ne[LOOM_GGUF_MAX_DIMS]; /* ne[0] = row length (innermost); unused = 1 */
    int type;                        /* LOOM_GGML_* */
    uint64_t n_elements;
    size_t nbytes;
    const void *data;                /* into the mapping */
} loom_gguf_tensor_t;

/* Maps and validates path. *out is the caller's (loom_gguf_destroy). */
int loom_gguf_open(const char *path, loom_gguf_t **out, loom_err_t *e);
/* Same for a model about to run: the whole file is read into memory in
 * huge pages (llm_mem.h), so evaluation neither faults pages in nor walks
 * a page-table entry per 4 KiB of weights; LOOM_LLM_MMAP=1 maps it
 * instead, every page populated at open. */
int loom_gguf_open_resident(const char *path, loom_gguf_t **out, loom_err_t *e);
/* Same over a caller-owned buffer that must outlive the object (fuzzing,
 * tests). name is used in error messages. */
int loom_gguf_open_mem(const void *data, size_t n, const char *name,
                       loom_gguf_t **out, loom_err_t *e);
void loom_gguf_destroy(loom_gguf_t **pg);

const char *loom_gguf_path(const loom_gguf_t *g);
size_t loom_gguf_file_size(const loom_gguf_t *g);
/* SHA-256 over the header, metadata and tensor table plus the file size:
 * identifies the model cheaply (hashing gigabytes of weights would not be). */
void loom_gguf_model_hash(const loom_gguf_t *g, uint8_t out[32]);

/* ---- metadata ---- */
size_t loom_gguf_n_kv(const loom_gguf_t *g);
const char *loom_gguf_kv_key(const loom_gguf_t *g, size_t i);
int loom_gguf_kv_type(const loom_gguf_t *g, size_t i);
/* Index of key or -1. */
long loom_gguf_find(const loom_gguf_t *g, const char *key);

/* Typed getters: 0, LOOM_ENOTFOUND (absent) or LOOM_EINVAL (wrong type or
 * out of range; e says which). Integers convert between widths when the value
 * fits; floats accept F32/F64. */
int loom_gguf_get_u32(const loom_gguf_t *g, const char *key, uint32_t *out, loom_err_t *e);
int loom_gguf_get_f32(const loom_gguf_t *g, const char *key, float *out, loom_err_t *e);
int loom_gguf_get_bool(const loom_gguf_t *g, const char *key, int *out, loom_err_t *e);
/* String value, borrowed, NOT NUL-terminated in general: use *len. */
int loom_gguf_get_str(const loom_gguf_t *g, const char *key, const char **s, size_t *len,
                      loom_err_t *e);
/* Array: element type and count; *raw points at packed scalar elements
 * (unaligned: read with memcpy). String arrays use loom_gguf_arr_str. */
int loom_gguf_get_arr(const loom_gguf_t *g, const char *key, int *etype, uint64_t *n,
                      const void **raw, loom_err_t *e);
/* i-th string of a string array (borrowed, length in *len). */
int loom_gguf_arr_str(const loom_gguf_t *g, const char *key, uint64_t i, const char **s,
                      size_t *len);

/* ---- tensors ---- */
size_t loom_gguf_n_tensors(const loom_gguf_t *g);
const loom_gguf_tensor_t *loom_gguf_tensor(const loom_gguf_t *g, size_t i);
/* NULL when absent. */
const loom_gguf_tensor_t *loom_gguf_find_tensor(const loom_gguf_t *g, const char *name);

/* ---- ggml types ---- */
const char *loom_ggml_type_name(int type); /* "F32", ..., NULL when unknown */
int loom_ggml_type_known(int type);
/* Bytes of n elements (n a multiple of the block size); 0 when unknown. */
size_t loom_ggml_row_size(int type, uint64_t n);
/* Decodes n elements (a multiple of the block size) of src to float. */
void loom_ggml_dequant_row(int type, const void *src, float *dst, size_t n);
float loom_fp16_to_fp32(uint16_t h);
uint16_t loom_fp32_to_fp16(float f);
float loom_bf16_to_fp32(uint16_t h);

#endif
