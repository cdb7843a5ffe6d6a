/* fuzz_gpu_unit.c — libFuzzer target for the GPU unit reader
 * (mlir-lowering/gpu_unit.c), which parses compiled units that travel
 * between processes and live on disk. Property: an accepted unit writes
 * out and reads back to the same text. */
#include "mlir-lowering/gpu_unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_gpu_unit_t u, v;
    if (loom_gpu_unit_read((const char *)data, size, &u, NULL) != 0)
        return 0;
    loom_buf_t a = LOOM_BUF_INIT, b = LOOM_BUF_INIT;
    if (loom_gpu_unit_write(&u, &a) != 0)
        abort();
    if (loom_gpu_unit_read(a.data, a.len, &v, NULL) != 0)
        abort(); /* what we write, we must read */
    if (loom_gpu_unit_write(&v, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        abort();
    loom_gpu_unit_free(&u);
    loom_gpu_unit_free(&v);
    loom_buf_free(&a);
    loom_buf_free(&b);
    return 0;
}
