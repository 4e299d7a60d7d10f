/* A model's weights on a device: the tensors the device's ops read, packed into a few buffers
 * (quantized types stay quantized), found again by their host address. */
#include "gpu_vk_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENSOR_ALIGN 256

static int cmp_tensor(const void *a, const void *b) {
    const gpu_tensor *x = a, *y = b;
    return x->host < y->host ? -1 : x->host > y->host;
}

const gpu_tensor *gpu_model_find(const gpu_model *g, const void *p) {
    const unsigned char *q = p;
    int32_t lo = 0, hi = g->n_t - 1;
    while (lo <= hi) {
        const int32_t mid = (lo + hi) / 2;
        const gpu_tensor *t = &g->t[mid];
        if (q < t->host)
            hi = mid - 1;
        else if (q >= t->host + t->bytes)
            lo = mid + 1;
        else
            return t;
    }
    return NULL;
}

bool gpu_vk_holds(const void *impl, const void *p) {
    return p && gpu_model_find(impl, p) != NULL;
}

bool gpu_vk_layer(const void *impl, int32_t il) {
    const gpu_model *g = impl;
    return il >= 0 && il < g->n_gpu_layers;
}

/* Whether the binary has a matrix product shader for GGUF type `type`. */
static bool has_matmul(uint32_t type) {
    char name[48];
    gpu_vk_matmul_name(type, name, sizeof name);
    return gpu_vk_has_shader(name);
}

/* Which tensors the device gets: a layer's (when the layer is on it) and the output's (when
 * every layer is), but not those only the CPU's ops read (experts and their router, the token
 * embedding unless it is the tied output). */
static bool wanted(const gpu_model *g, const char *name, uint32_t type) {
    const model *m = g->m;
    if (strncmp(name, "blk.", 4) == 0) {
        const int il = atoi(name + 4);
        if (il >= g->n_gpu_layers) return false;
        if (strstr(name, "_exps") || strstr(name, "_shexp") || strstr(name, "gate_inp"))
            return false;
        return type == GGUF_T_F32 || has_matmul(type);
    }
    if (!g->output_on) return false;
    if (!strcmp(name, "output_norm.weight")) return true;
    if (!strcmp(name, "output.weight") || (m->tied_output && !strcmp(name, "token_embd.weight")))
        return has_matmul(type);
    return false;
}

/* Unless told how many layers, as many as fit: the weights the device would take, layer by
 * layer, within 85% of its memory less 1 GiB for the contexts' caches and activations, or within
 * SHIMMY_GPU_MEMORY bytes (a number with an optional K, M or G) when set (a model larger than
 * the device then runs split rather than not at all). */
static void fit_layers(gpu_model *g) {
    const model *m = g->m;
    const int32_t L = m->hp.n_layer;
    const double vram = (double)g->d->info.vram_bytes;
    double budget = vram * 0.85 - 1024.0 * 1024.0 * 1024.0;
    const char *cap = getenv("SHIMMY_GPU_MEMORY");
    if (cap && *cap) {
        char *end = NULL;
        budget = strtod(cap, &end);
        budget *= *end == 'K' || *end == 'k'   ? 1024.0
                  : *end == 'M' || *end == 'm' ? 1048576.0
                  : *end == 'G' || *end == 'g' ? 1073741824.0
                                               : 1.0;
    }
    double *layer = calloc((size_t)L + 1, sizeof *layer); /* [L]: the output's */
    if (!layer || vram <= 0) {
        free(layer);
        return;
    }
    const gguf_file *f = m->file;
    for (size_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128];
        gguf_str_copy(t->name, name, sizeof name);
        g->n_gpu_layers = L; /* what wanted() asks of every tensor */
        g->output_on = true;
        if (!wanted(g, name, t->type)) continue;
        const int il = strncmp(name, "blk.", 4) == 0 ? atoi(name + 4) : L;
        if (il >= 0 && il <= L) layer[il] += (double)t->nbytes;
    }
    double used = layer[L];
    int32_t n = 0;
    while (n < L && used + layer[n] <= budget) used += layer[n++];
    const bool with_output = n == L && used <= budget;
    if (!with_output) { /* the output stays with the CPU (and the layers that do not fit) */
        used = 0;
        for (n = 0; n < L && used + layer[n] <= budget; n++) used += layer[n];
    }
    g->n_gpu_layers = n;
    g->output_on = with_output;
    if (!with_output)
        core_log(CORE_LOG_WARN,
                 "%s: %.0f MiB for weights hold %d of the %d layers, not the output; the rest "
                 "runs on the CPU (--gpu-layers and SHIMMY_GPU_MEMORY set it)",
                 g->d->info.name, budget / 1048576.0, n, L);
    free(layer);
}

shimmy_status gpu_model_open(const model *m, const gpu_model_params *p, gpu_model **out,
                             shimmy_error *err) {
    *out = NULL;
    const char *dev = p && p->device ? p->device : "auto";
    bool gpu = false;
    shimmy_status st = gpu_parse_device(dev, &gpu, err);
    if (st || !gpu) return st;
    const bool named = strncmp(dev, "vulkan:", 7) == 0, cuda = strcmp(dev, "cuda") == 0;
    if (strcmp(dev, "auto") == 0 && !gpu_vk_hardware_present()) {
        /* no GPU device node: a Vulkan instance would load only software drivers (lavapipe
         * brings LLVM: some 40 MB resident and a slower start) to find none that auto takes */
        core_log(CORE_LOG_DEBUG, "device auto: no GPU device node; running on the CPU");
        return SHIMMY_OK;
    }
    const bool any = strcmp(dev, "auto") != 0; /* gpu, vulkan, cuda: software devices too */
    shimmy_error e2 = {0};
    gpu_vk_device *d = gpu_vk_device_get(named ? atoi(dev + 7) : -1, any && !cuda, cuda, &e2);
    if (!d) {
        if (named) {
            if (err) *err = e2;
            return e2.status ? e2.status : SHIMMY_ERR_UNSUPPORTED;
        }
        core_log(CORE_LOG_INFO, "device %s: %s; running on the CPU", dev, e2.message);
        return SHIMMY_OK;
    }
    if (cuda)
        core_log(CORE_LOG_INFO, "device cuda: using %s through Vulkan (vulkan:%d)", d->info.name,
                 d->info.index);
    if (!m->arch->device) {
        core_log(CORE_LOG_WARN,
                 "%s: architecture %s does not run on the Vulkan backend yet; running on the CPU",
                 d->info.name, m->arch->name);
        if (named)
            return core_error(err, SHIMMY_ERR_UNSUPPORTED, "device",
                              "architecture %s does not run on the Vulkan backend yet "
                              "(use --device cpu)",
                              m->arch->name);
        return SHIMMY_OK;
    }
    gpu_model *g = calloc(1, sizeof *g);
    if (!g) return core_error(err, SHIMMY_ERR_NOMEM, "device", "out of memory");
    g->m = m;
    g->d = d;
    const int32_t L = m->hp.n_layer;
    g->n_gpu_layers = !p || p->n_gpu_layers < 0 || p->n_gpu_layers > L ? L : p->n_gpu_layers;
    g->output_on = g->n_gpu_layers == L;
    if (!p || p->n_gpu_layers < 0) fit_layers(g);
    g->mdev.ops = &gpu_vk_dev_ops;
    g->mdev.impl = g;
    const gguf_file *f = m->file;
    const size_t nt = gguf_n_tensors(f);
    g->t = calloc(nt ? nt : 1, sizeof *g->t);
    if (!g->t) {
        free(g);
        return core_error(err, SHIMMY_ERR_NOMEM, "device", "out of memory");
    }
    /* pack into chunks no larger than one allocation, or one binding range, may be */
    uint64_t chunk_cap = d->max_alloc < (1ull << 30) ? d->max_alloc : (1ull << 30);
    if (chunk_cap < d->max_range)
        chunk_cap = d->max_range < d->max_alloc ? d->max_range : chunk_cap;
    uint64_t chunk_size[GPU_MAX_CHUNKS] = {0};
    for (size_t i = 0; i < nt; i++) {
        const gguf_tensor *gt = gguf_tensor_at(f, i);
        char name[128];
        gguf_str_copy(gt->name, name, sizeof name);
        if (!wanted(g, name, gt->type)) {
            if (strncmp(name, "blk.", 4) == 0 && atoi(name + 4) < g->n_gpu_layers &&
                gt->type != GGUF_T_F32 && !has_matmul(gt->type) && gt->type < 64 &&
                !strstr(name, "_exps") && !strstr(name, "_shexp") && !strstr(name, "gate_inp"))
                g->host_only_types |= 1ull << gt->type;
            continue;
        }
        if (gt->nbytes > chunk_cap) continue; /* too large for one binding: stays on the CPU */
        int32_t c = g->n_chunks ? g->n_chunks - 1 : 0;
        uint64_t off = (chunk_size[c] + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
        if (!g->n_chunks || off + gt->nbytes > chunk_cap) {
            if (g->n_chunks == GPU_MAX_CHUNKS) break;
            c = g->n_chunks++;
            off = 0;
        }
        chunk_size[c] = off + gt->nbytes;
        g->t[g->n_t++] =
            (gpu_tensor){.host = gt->data, .bytes = gt->nbytes, .chunk = c, .off = off};
    }
    for (int32_t c = 0; c < g->n_chunks && !st; c++)
        st = gpu_vk_buf_new(d, chunk_size[c], false, &g->chunks[c], err);
    gpu_vk_rec rec;
    if (!st) st = gpu_vk_rec_init(&rec, d, 64ull << 20, err);
    if (!st) {
        for (int32_t i = 0; i < g->n_t; i++) {
            const gpu_tensor *t = &g->t[i];
            gpu_vk_upload(&rec, g->chunks[t->chunk].buf, t->off, t->host, t->bytes);
            g->weight_bytes += t->bytes;
        }
        st = gpu_vk_submit(&rec);
        if (st) core_error(err, st, "device", "%s", rec.why);
        gpu_vk_rec_deinit(&rec);
    }
    if (st) {
        gpu_model_close(g);
        return st;
    }
    qsort(g->t, (size_t)g->n_t, sizeof *g->t, cmp_tensor);
    for (uint32_t t = 0; t < 64; t++)
        if (g->host_only_types & (1ull << t))
            core_log(CORE_LOG_WARN, "%s: no shader for %s tensors: their products run on the CPU",
                     d->info.name, gguf_type_name(t));
    core_log(CORE_LOG_INFO, "%s: %d of %d layers on the device%s, %.1f MiB of weights",
             d->info.name, g->n_gpu_layers, L, g->output_on ? " with the output" : "",
             (double)g->weight_bytes / 1048576.0);
    *out = g;
    return SHIMMY_OK;
}

void gpu_model_close(gpu_model *g) {
    if (!g) return;
    for (int32_t c = 0; c < g->n_chunks; c++) gpu_vk_buf_free(g->d, &g->chunks[c]);
    free(g->t);
    free(g);
}

const model_device *gpu_model_device(const gpu_model *g) {
    return g ? &g->mdev : NULL;
}

void gpu_model_get_info(const gpu_model *g, gpu_model_info *out) {
    memset(out, 0, sizeof *out);
    if (!g) return;
    out->device = g->d->info;
    out->n_gpu_layers = g->n_gpu_layers;
    out->n_layer = g->m->hp.n_layer;
    out->output_on_device = g->output_on;
    out->weight_bytes = g->weight_bytes;
    out->host_only_types = g->host_only_types;
}

uint64_t gpu_model_ctx_bytes(const gpu_model *g) {
    return g ? __atomic_load_n(&g->ctx_bytes, __ATOMIC_RELAXED) : 0;
}
