/* fuzz_envelope.c — libFuzzer target for the envelope decoder, payload
 * decoding with the bounded allocator, and auth token parsing: everything
 * loomd does with bytes a peer sent before any application code runs.
 *
 * Input layout (so the fuzzer can vary frame counts and sizes):
 *   byte 0        bit 0: frames[0] is a routing id; bit 1: small limits
 *   then frames   [u16 little-endian length][bytes], at most 8; a final
 *                 short or over-long record takes the rest of the input
 * Properties checked: no crash/leak/UB (sanitizers); a well-formed message
 * re-encodes and decodes to the same request id, method and flags. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loom/v1/rpc.pb-c.h"
#include "loom/v1/worker.pb-c.h"
#include "protocol/auth.h"
#include "protocol/envelope.h"

#define MAX_FRAMES 8

static const ProtobufCMessageDescriptor *const payload_types[] = {
    &loom__v1__submit_request__descriptor, &loom__v1__run_event__descriptor,
    &loom__v1__run__descriptor,            &loom__v1__register_request__descriptor,
    &loom__v1__assign_request__descriptor, &loom__v1__result_request__descriptor,
};

static void check_roundtrip(const loom_msg_t *m)
{
    const Loom__V1__Envelope *env = loom_msg_envelope(m);
    loom_send_t s = {0};
    s.request_id = env->request_id;
    s.method = env->method;
    s.deadline_ms = env->deadline_unix_ms;
    s.flags = env->flags;
    s.status = env->status;
    s.status_message = env->status_message;
    uint8_t *h, *p;
    size_t hl, pl;
    if (loom_msg_encode(&s, &h, &hl, &p, &pl) != 0)
        return;
    loom_frame_t f[1] = {{h, hl}};
    loom_msg_t *back = NULL;
    int st = loom_msg_decode(f, 1, 0, NULL, &back, NULL);
    if (st != LOOM_STATUS_OK || loom_msg_request_id(back) != env->request_id ||
        strcmp(loom_msg_method(back), env->method) != 0 || loom_msg_flags(back) != env->flags)
        abort(); /* a message we accepted must survive a re-encode */
    loom_msg_destroy(&back);
    free(h);
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int routed = data[0] & 1;
    loom_limits_t small = {.max_header = 512, .max_payload = 4096, .max_decoded = 64 * 1024};
    const loom_limits_t *lim = (data[0] & 2) ? &small : NULL;
    loom_frame_t frames[MAX_FRAMES];
    size_t n = 0, i = 1;
    while (i < size && n < MAX_FRAMES) {
        size_t len = size - i >= 2 ? (size_t)data[i] | ((size_t)data[i + 1] << 8) : 0;
        if (size - i < 2 || len > size - i - 2) { /* rest of the input */
            frames[n].data = data + i;
            frames[n++].len = size - i;
            break;
        }
        frames[n].data = data + i + 2;
        frames[n++].len = len;
        i += 2 + len;
    }
    loom_msg_t *m = NULL;
    loom_err_t err;
    int st = loom_msg_decode(frames, n, routed, lim, &m, &err);
    if (m && st == LOOM_STATUS_OK) {
        (void)loom_msg_meta(m, "authorization");
        (void)loom_msg_reply_message(m);
        check_roundtrip(m);
        for (size_t k = 0; k < sizeof payload_types / sizeof payload_types[0]; k++) {
            ProtobufCMessage *pm = NULL;
            if (loom_msg_unpack(m, payload_types[k], lim, &pm, &err) == LOOM_STATUS_OK)
                loom_pb_free(pm);
        }
        const char *tok = loom_msg_meta(m, "authorization");
        if (tok) {
            char subj[LOOM_AUTH_MAX_SUBJECT + 1];
            loom_auth_token_verify((const uint8_t *)"k", 1, tok, 0, subj, &err);
        }
    }
    loom_msg_destroy(&m);
    return 0;
}
