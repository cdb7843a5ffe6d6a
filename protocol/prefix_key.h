/* prefix_key.h — names for prompt prefixes that loomd and workers agree on
 * without a tokenizer (issue 15, prefix-aware placement).
 *
 * A worker's engine keeps the KV of earlier prompts (llm/llm_prefix.h) and
 * reports which prompt prefixes it holds in its heartbeats (worker.proto
 * PrefixHeld); loomd computes the same names for a task's input and sends
 * an LLM step where its prefix lives when that is cheaper (placement).
 *
 * The name of a prefix is a chain hash over the input's canonical text, in
 * blocks of LOOM_PREFIX_BLOCK bytes: key[i] names the first (i+1) blocks,
 * seeded with the model (model_resource name and path, else "model"). The
 * canonical text: for "messages", each message as role 0x1f content 0x1e;
 * otherwise "system" 0x1f system 0x1e (when there is one), then "user" 0x1f
 * prompt. A worker names what it holds after a call with the answer
 * appended as the next turn ("assistant" 0x1f answer 0x1e for messages,
 * the answer right after the prompt otherwise), so a conversation's next
 * turn, whose input starts with the previous one and its answer, shares
 * every full block of it. Only full blocks are named. */
#ifndef LOOM_PROTOCOL_PREFIX_KEY_H
#define LOOM_PROTOCOL_PREFIX_KEY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define LOOM_PREFIX_BLOCK 256       /* bytes of canonical text per key */
#define LOOM_PREFIX_MAX_KEYS 512    /* keys of one prompt (128 KiB of text) */

/* Writes the keys of input's prefixes to out (at most max, shortest first)
 * and returns how many; *text_len (may be NULL) gets the canonical text's
 * length. answer: the call's answer to append (NULL: none). 0 when input
 * is no LLM input (no prompt, no messages) or on out of memory. */
size_t loom_prefix_keys(const json_t *input, const char *answer, uint64_t *out, size_t max, size_t *text_len);

#endif
