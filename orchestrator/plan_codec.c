/* plan_codec.c — see plan_codec.h. */
#include "orchestrator/plan_codec.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/sha.h"
#include "loom/v1/rpc.pb-c.h"

#define MAX_PLAN_BYTES (64u << 20) /* a stored plan never inflates beyond this */

char *loom_plan_codec_hex(const struct Loom__V1__Plan *p)
{
    size_t n = loom__v1__plan__get_packed_size(p);
    uLongf zn = compressBound((uLong)n);
    uint8_t *bin = malloc(n + 1), *z = malloc(zn + 8);
    char *hex = NULL;
    if (bin && z) {
        loom__v1__plan__pack(p, bin);
        /* the encoding's length first (4 bytes, little-endian): inflate's buffer */
        for (int i = 0; i < 4; i++)
            z[i] = (uint8_t)(n >> (8 * i));
        if (compress2(z + 4, &zn, bin, (uLong)n, Z_BEST_SPEED) == Z_OK && (hex = malloc(2 * (zn + 4) + 1)))
            loom_hex(z, zn + 4, hex);
    }
    free(bin);
    free(z);
    return hex;
}

uint8_t *loom_plan_codec_bytes(const char *hex, size_t hexlen, int z, size_t room, size_t *n)
{
    size_t bn = hexlen / 2;
    if (hexlen % 2 || (z && bn < 4))
        return NULL;
    uint8_t *bin = malloc(bn + room + 1);
    if (!bin || loom_unhex(hex, bin + room, bn) != 0) {
        free(bin);
        return NULL;
    }
    if (!z) {
        *n = bn;
        return bin;
    }
    const uint8_t *zb = bin + room;
    size_t len = (size_t)zb[0] | (size_t)zb[1] << 8 | (size_t)zb[2] << 16 | (size_t)zb[3] << 24;
    uLongf out = (uLongf)len;
    uint8_t *plain = len <= MAX_PLAN_BYTES ? malloc(room + len + 1) : NULL;
    if (!plain || uncompress(plain + room, &out, zb + 4, (uLong)(bn - 4)) != Z_OK || out != len) {
        free(plain);
        free(bin);
        return NULL;
    }
    free(bin);
    *n = len;
    return plain;
}
