/* Tests' entries to the shaders on their own: the matrix product of any weight type, and
 * any pipeline run once over buffers the test fills. */
#include "gpu_vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shimmy_status gpu_debug_matmul(uint32_t type, const void *w, int64_t n_in, int64_t n_out,
                               const float *x, int32_t n_tok, float *y, shimmy_error *err) {
    gpu_vk_device *d = gpu_vk_device_get(-1, true, false, err);
    if (!d) return SHIMMY_ERR_UNSUPPORTED;
    char name[48];
    gpu_vk_matmul_name(type, name, sizeof name);
    if (!gpu_vk_pipeline(d, name))
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, "type", "no shader %s", name);
    uint64_t row_bytes = 0;
    if (!gguf_row_bytes(type, n_in, &row_bytes))
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "n_in", "rows of %lld do not fit %s",
                          (long long)n_in, gguf_type_name(type));
    const uint64_t wb = row_bytes * (uint64_t)n_out, xb = (uint64_t)n_in * (uint64_t)n_tok * 4;
    const uint64_t yb = (uint64_t)n_out * (uint64_t)n_tok * 4;
    gpu_vk_buf bw = {0}, bx = {0}, by = {0};
    gpu_vk_rec r = {0};
    shimmy_status st;
    if ((st = gpu_vk_buf_new(d, (wb + 3) & ~3ull, false, &bw, err)) ||
        (st = gpu_vk_buf_new(d, xb, false, &bx, err)) ||
        (st = gpu_vk_buf_new(d, yb, false, &by, err)) ||
        (st = gpu_vk_rec_init(&r, d, 4 * (wb + xb + yb) + (1 << 20), err)))
        goto done;
    gpu_vk_fill(&r, bw.buf, 0, bw.size);
    gpu_vk_upload(&r, bw.buf, 0, w, wb);
    gpu_vk_upload(&r, bx.buf, 0, x, xb);
    gpu_vk_mm_pc pc = {.n_in = (uint32_t)n_in,
                       .n_out = (uint32_t)n_out,
                       .n_tok = (uint32_t)n_tok,
                       .row_bytes = (uint32_t)row_bytes,
                       .x_stride = (uint32_t)n_in,
                       .y_stride = (uint32_t)n_out};
    const gpu_vk_bind b[3] = {{bw.buf, 0, bw.size}, {bx.buf, 0, bx.size}, {by.buf, 0, by.size}};
    /* tests force the threads per row (a power of two up to 64) to reach every split */
    const char *tpr = getenv("SHIMMY_GPU_TPR");
    if (tpr) pc.tpr = (uint32_t)atoi(tpr);
    gpu_vk_matmul(&r, name, b, &pc);
    gpu_vk_download(&r, by.buf, 0, y, yb);
    st = gpu_vk_submit(&r);
    if (st) core_error(err, st, "device", "%s", r.why);
done:
    gpu_vk_rec_deinit(&r);
    gpu_vk_buf_free(d, &bw);
    gpu_vk_buf_free(d, &bx);
    gpu_vk_buf_free(d, &by);
    return st;
}

shimmy_status gpu_debug_run(const char *pipe, const gpu_debug_buf *bufs, int n_bufs, const void *pc,
                            uint32_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz,
                            shimmy_error *err) {
    if (n_bufs < 0 || n_bufs > GPU_VK_BINDINGS || pc_bytes > 128)
        return core_error(err, SHIMMY_ERR_INVALID_ARG, "bufs", "%d buffers, %u push bytes", n_bufs,
                          (unsigned)pc_bytes);
    gpu_vk_device *d = gpu_vk_device_get(-1, true, false, err);
    if (!d) return SHIMMY_ERR_UNSUPPORTED;
    if (!gpu_vk_pipeline(d, pipe))
        return core_error(err, SHIMMY_ERR_UNSUPPORTED, "pipe", "no shader %s", pipe);
    gpu_vk_buf b[GPU_VK_BINDINGS] = {{0}};
    gpu_vk_bind bind[GPU_VK_BINDINGS];
    gpu_vk_rec r = {0};
    uint64_t total = 0;
    for (int i = 0; i < n_bufs; i++) total += ((uint64_t)bufs[i].bytes + 15) & ~15ull;
    shimmy_status st = SHIMMY_OK;
    for (int i = 0; i < n_bufs && !st; i++) {
        const uint64_t size = bufs[i].bytes < 4 ? 4 : ((uint64_t)bufs[i].bytes + 3) & ~3ull;
        st = gpu_vk_buf_new(d, size, false, &b[i], err);
        bind[i] = (gpu_vk_bind){.buf = b[i].buf, .off = 0, .range = size};
    }
    if (!st) st = gpu_vk_rec_init(&r, d, 2 * total + (1 << 20), err);
    if (st) goto done;
    for (int i = 0; i < n_bufs; i++) {
        gpu_vk_fill(&r, b[i].buf, 0, b[i].size);
        if (bufs[i].bytes) gpu_vk_upload(&r, b[i].buf, 0, bufs[i].host, bufs[i].bytes);
    }
    gpu_vk_dispatch(&r, pipe, bind, n_bufs, pc, pc_bytes, gx, gy, gz);
    for (int i = 0; i < n_bufs; i++)
        if (bufs[i].out && bufs[i].bytes)
            gpu_vk_download(&r, b[i].buf, 0, bufs[i].host, bufs[i].bytes);
    st = gpu_vk_submit(&r);
    if (st) core_error(err, st, "device", "%s", r.why);
done:
    gpu_vk_rec_deinit(&r);
    for (int i = 0; i < n_bufs; i++) gpu_vk_buf_free(d, &b[i]);
    return st;
}
