/* The recorder: dispatches, copies and staged transfers into one command buffer, a global
 * barrier between any two that may touch the same memory, submitted when the host needs a
 * result. Device errors are sticky: later calls do nothing and gpu_vk_submit returns the
 * first. */
#include "gpu_vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void dispatch(gpu_vk_rec *r, const char *name, const gpu_vk_bind *b, int nb, const void *pc,
                     uint32_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz);

void gpu_vk_fail(gpu_vk_rec *r, VkResult vr, const char *what) {
    if (r->failed) return;
    r->failed = vr == VK_ERROR_OUT_OF_DEVICE_MEMORY || vr == VK_ERROR_OUT_OF_HOST_MEMORY
                    ? SHIMMY_ERR_NOMEM
                    : SHIMMY_ERR_INTERNAL;
    snprintf(r->why, sizeof r->why, "%.80s: %.48s failed (Vulkan error %d%s)", r->d->info.name,
             what, (int)vr, vr == VK_ERROR_DEVICE_LOST ? ", device lost" : "");
    core_log(CORE_LOG_ERROR, "%s", r->why);
}

shimmy_status gpu_vk_rec_init(gpu_vk_rec *r, gpu_vk_device *d, uint64_t staging_bytes,
                              shimmy_error *err) {
    memset(r, 0, sizeof *r);
    r->d = d;
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = d->queue_family};
    if (d->fn.vkCreateCommandPool(d->dev, &pi, NULL, &r->pool) != VK_SUCCESS)
        return core_error(err, SHIMMY_ERR_NOMEM, "device", "%s: cannot make a command pool",
                          d->info.name);
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = r->pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 1};
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if (d->fn.vkAllocateCommandBuffers(d->dev, &ai, &r->cmd) != VK_SUCCESS ||
        d->fn.vkCreateFence(d->dev, &fi, NULL, &r->fence) != VK_SUCCESS) {
        gpu_vk_rec_deinit(r);
        return core_error(err, SHIMMY_ERR_NOMEM, "device", "%s: cannot make a command buffer",
                          d->info.name);
    }
    shimmy_status st = gpu_vk_buf_new(d, staging_bytes, true, &r->staging, err);
    if (st) gpu_vk_rec_deinit(r);
    return st;
}

void gpu_vk_rec_deinit(gpu_vk_rec *r) {
    if (!r->d) return;
    gpu_vk_device *d = r->d;
    if (r->open) gpu_vk_submit(r);
    gpu_vk_buf_free(d, &r->staging);
    if (r->fence) d->fn.vkDestroyFence(d->dev, r->fence, NULL);
    if (r->pool) d->fn.vkDestroyCommandPool(d->dev, r->pool, NULL);
    free(r->pend);
    memset(r, 0, sizeof *r);
}

static bool begin(gpu_vk_rec *r) {
    if (r->failed) return false;
    if (r->open) return true;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    r->d->fn.vkResetCommandBuffer(r->cmd, 0);
    VkResult vr = r->d->fn.vkBeginCommandBuffer(r->cmd, &bi);
    if (vr != VK_SUCCESS) {
        gpu_vk_fail(r, vr, "vkBeginCommandBuffer");
        return false;
    }
    r->open = true;
    r->dirty = false;
    return true;
}

/* Every earlier write (shader or transfer) visible to every later access. */
static void barrier(gpu_vk_rec *r) {
    if (!r->dirty) return;
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                         VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    r->d->fn.vkCmdPipelineBarrier(
        r->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
        VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL,
        0, NULL);
    r->dirty = false;
}

/* SHIMMY_GPU_PROFILE=1: every dispatch is submitted and waited for on its own, and the time
 * per pipeline is printed at exit (a developer's view of where a step goes; slow) */
static struct prof {
    const char *name;
    double ms;
    long n;
} g_prof[GPU_VK_MAX_PIPES];
static int g_prof_on = -1;

static void prof_print(void) {
    for (int i = 0; i < GPU_VK_MAX_PIPES && g_prof[i].name; i++)
        fprintf(stderr, "gpu profile: %-16s %8ld dispatches %10.1f ms\n", g_prof[i].name,
                g_prof[i].n, g_prof[i].ms);
}

static void prof_add(const char *name, double ms) {
    for (int k = 0; k < gpu_spv_count; k++) /* the table's name outlives the caller's */
        if (strcmp(gpu_spv_table[k].name, name) == 0) name = gpu_spv_table[k].name;
    for (int i = 0; i < GPU_VK_MAX_PIPES; i++) {
        if (!g_prof[i].name) g_prof[i].name = name;
        if (g_prof[i].name == name || strcmp(g_prof[i].name, name) == 0) {
            g_prof[i].ms += ms;
            g_prof[i].n++;
            return;
        }
    }
}

void gpu_vk_dispatch(gpu_vk_rec *r, const char *name, const gpu_vk_bind *b, int nb, const void *pc,
                     uint32_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (g_prof_on < 0) {
        g_prof_on = getenv("SHIMMY_GPU_PROFILE") != NULL;
        if (g_prof_on) atexit(prof_print);
    }
    if (g_prof_on && r->open) gpu_vk_submit(r); /* what came before is not this one's time */
    const double t0 = g_prof_on ? core_time_ms() : 0.0;
    dispatch(r, name, b, nb, pc, pc_bytes, gx, gy, gz);
    if (g_prof_on) {
        gpu_vk_submit(r);
        prof_add(name, core_time_ms() - t0);
    }
}

static void dispatch(gpu_vk_rec *r, const char *name, const gpu_vk_bind *b, int nb, const void *pc,
                     uint32_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (gx == 0 || gy == 0 || gz == 0 || !begin(r)) return;
    VkPipeline p = gpu_vk_pipeline(r->d, name);
    if (!p) {
        gpu_vk_fail(r, VK_ERROR_INITIALIZATION_FAILED, name);
        return;
    }
    barrier(r);
    const gpu_vk_fns *fn = &r->d->fn;
    VkDescriptorBufferInfo bi[GPU_VK_BINDINGS];
    VkWriteDescriptorSet w[GPU_VK_BINDINGS];
    for (int i = 0; i < nb; i++) {
        bi[i] =
            (VkDescriptorBufferInfo){.buffer = b[i].buf, .offset = b[i].off, .range = b[i].range};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    fn->vkCmdBindPipeline(r->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p);
    fn->vkCmdPushDescriptorSetKHR(r->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, r->d->layout, 0,
                                  (uint32_t)nb, w);
    if (pc_bytes)
        fn->vkCmdPushConstants(r->cmd, r->d->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, pc_bytes, pc);
    fn->vkCmdDispatch(r->cmd, gx, gy, gz);
    r->dirty = true;
}

void gpu_vk_matmul(gpu_vk_rec *r, const char *pipe, const gpu_vk_bind b[3], gpu_vk_mm_pc *pc) {
    /* threads per row: about eight runs of 32 each at least (0: pick; tests force others) */
    const uint32_t runs = (pc->n_in + 31) / 32;
    uint32_t tpr = pc->tpr;
    if (tpr == 0 || tpr > 64 || (tpr & (tpr - 1)))
        for (tpr = 1; tpr < 64 && tpr * 16 <= runs;) tpr *= 2;
    pc->tpr = tpr;
    const uint32_t rows = 64 / tpr, groups = (pc->n_out + rows - 1) / rows;
    const uint32_t gx = groups < 32768 ? groups : 32768;
    gpu_vk_dispatch(r, pipe, b, 3, pc, sizeof *pc, gx, (pc->n_tok + 7) / 8,
                    (groups + 32767) / 32768);
}

/* Room for `bytes` in staging (16-aligned), submitting first when it is full. */
static bool stage(gpu_vk_rec *r, uint64_t bytes, uint64_t *off) {
    uint64_t need = (bytes + 15) & ~(uint64_t)15;
    if (need > r->staging.size) return false;
    if (r->staged + need > r->staging.size && gpu_vk_submit(r)) return false;
    *off = r->staged;
    r->staged += need;
    return begin(r);
}

void gpu_vk_upload(gpu_vk_rec *r, VkBuffer dst, uint64_t off, const void *src, uint64_t bytes) {
    while (bytes > 0 && !r->failed) {
        uint64_t piece = bytes < r->staging.size / 2 ? bytes : r->staging.size / 2, so;
        if (!stage(r, piece, &so)) return;
        memcpy((unsigned char *)r->staging.map + so, src, piece);
        barrier(r);
        VkBufferCopy c = {.srcOffset = so, .dstOffset = off, .size = piece};
        r->d->fn.vkCmdCopyBuffer(r->cmd, r->staging.buf, dst, 1, &c);
        r->dirty = true;
        src = (const unsigned char *)src + piece;
        off += piece;
        bytes -= piece;
    }
}

void gpu_vk_download(gpu_vk_rec *r, VkBuffer src, uint64_t off, void *dst, uint64_t bytes) {
    while (bytes > 0 && !r->failed) {
        uint64_t piece = bytes < r->staging.size / 2 ? bytes : r->staging.size / 2, so;
        if (!stage(r, piece, &so)) return;
        if (r->n_pend == r->cap_pend) {
            int32_t cap = r->cap_pend ? 2 * r->cap_pend : 16;
            struct gpu_vk_pending *p = realloc(r->pend, (size_t)cap * sizeof *p);
            if (!p) {
                gpu_vk_fail(r, VK_ERROR_OUT_OF_HOST_MEMORY, "download");
                return;
            }
            r->pend = p;
            r->cap_pend = cap;
        }
        r->pend[r->n_pend++] = (struct gpu_vk_pending){.dst = dst, .off = so, .bytes = piece};
        barrier(r);
        VkBufferCopy c = {.srcOffset = off, .dstOffset = so, .size = piece};
        r->d->fn.vkCmdCopyBuffer(r->cmd, src, r->staging.buf, 1, &c);
        r->dirty = true;
        dst = (unsigned char *)dst + piece;
        off += piece;
        bytes -= piece;
    }
}

void gpu_vk_copy(gpu_vk_rec *r, VkBuffer dst, uint64_t dst_off, VkBuffer src, uint64_t src_off,
                 uint64_t bytes) {
    if (!bytes || !begin(r)) return;
    barrier(r);
    VkBufferCopy c = {.srcOffset = src_off, .dstOffset = dst_off, .size = bytes};
    r->d->fn.vkCmdCopyBuffer(r->cmd, src, dst, 1, &c);
    r->dirty = true;
}

void gpu_vk_fill(gpu_vk_rec *r, VkBuffer dst, uint64_t off, uint64_t bytes) {
    if (!bytes || !begin(r)) return;
    barrier(r);
    r->d->fn.vkCmdFillBuffer(r->cmd, dst, off, (bytes + 3) & ~(uint64_t)3, 0);
    r->dirty = true;
}

/* SHIMMY_GPU_FAIL_AFTER=N: the submissions after the first N report a lost device (tests of
 * what a device error does to a request and to the server) */
static bool inject_failure(void) {
    static long after = -2, count;
    if (after == -2) {
        const char *e = getenv("SHIMMY_GPU_FAIL_AFTER");
        after = e ? atol(e) : -1;
    }
    return after >= 0 && __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED) > after;
}

shimmy_status gpu_vk_submit(gpu_vk_rec *r) {
    if (!r->open) {
        r->staged = 0;
        r->n_pend = 0;
        return r->failed;
    }
    r->open = false;
    const gpu_vk_fns *fn = &r->d->fn;
    VkResult vr = fn->vkEndCommandBuffer(r->cmd);
    if (vr == VK_SUCCESS) {
        VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                           .commandBufferCount = 1,
                           .pCommandBuffers = &r->cmd};
        fn->vkResetFences(r->d->dev, 1, &r->fence);
        pthread_mutex_lock(&r->d->lock);
        vr = fn->vkQueueSubmit(r->d->queue, 1, &si, r->fence);
        pthread_mutex_unlock(&r->d->lock);
        if (vr == VK_SUCCESS) {
            /* drivers report a hung device as lost on their own; ten minutes (a software
             * device's long prompt batch takes a while) bounds a driver that does not */
            vr = fn->vkWaitForFences(r->d->dev, 1, &r->fence, VK_TRUE, 600ull * 1000000000ull);
        }
    }
    if (vr == VK_SUCCESS && inject_failure()) vr = VK_ERROR_DEVICE_LOST;
    if (vr != VK_SUCCESS) {
        gpu_vk_fail(r, vr, "a submission");
    } else if (!r->failed) {
        for (int32_t i = 0; i < r->n_pend; i++)
            memcpy(r->pend[i].dst, (unsigned char *)r->staging.map + r->pend[i].off,
                   r->pend[i].bytes);
    }
    r->staged = 0;
    r->n_pend = 0;
    return r->failed;
}
