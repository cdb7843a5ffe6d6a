/* utf8.h — UTF-8 validation and repair for text that leaves Loom in
 * protobuf `string` fields (proto3 requires valid UTF-8; stock protobuf in
 * Python, Go and Java rejects a message that is not). */
#ifndef LOOM_COMMON_UTF8_H
#define LOOM_COMMON_UTF8_H

#include <stddef.h>

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int loom_utf8_valid(const char *s, size_t n);

/* A NUL-terminated copy of s[0..n) that is valid UTF-8: every byte that is
 * not part of a valid sequence becomes U+FFFD. When tail is not NULL, an
 * incomplete sequence at the very end (a multi-byte character cut by a
 * chunk boundary) is left out and its length stored in *tail, so the caller
 * can prepend it to the next chunk. Returns NULL on OOM. Free with free(). */
char *loom_utf8_repair(const char *s, size_t n, size_t *tail);

#endif
