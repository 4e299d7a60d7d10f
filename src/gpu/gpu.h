/*
 * gpu — the Vulkan compute backend: a device the model module's forward pass runs on.
 *
 * Purpose: pick a Vulkan device ("gpu", "vulkan", "vulkan:N", "cuda", "auto", "cpu"), upload a
 * model's weights to it once (quantized formats stay quantized), mirror each context's buffers
 * (KV cache and activations) on it, and run the shared ops of model_ops.h there with compute
 * shaders compiled to SPIR-V at build time and embedded in the binary. It implements the
 * model_device contract of model.h: the architecture files are unchanged; an op the device does
 * not run (or a weight that is not on it: partial offload, an unsupported type) runs on the CPU
 * with the activations copied across (model/device.c decides where each op runs).
 *
 * Built only when the Vulkan headers and glslc are present (gpu_vk*.c); otherwise gpu_none.c
 * answers every open with SHIMMY_ERR_UNSUPPORTED and a message saying how to build it in.
 *
 * Ownership: gpu_model_open borrows the model (it must outlive the gpu_model); gpu_model_close
 * frees the device copy of the weights (every context made with its device must be freed
 * first). The Vulkan instance and devices are opened once per process, on first use, and live
 * until exit. Strings in gpu_device_info are copied.
 *
 * Thread-safety: gpu_model_open/close and gpu_list may be called from any thread. A gpu_model is
 * immutable after open and shared by any number of contexts; each context is used by one thread
 * at a time (submissions to the device's queue are serialized inside).
 */
#ifndef SHIMMY_GPU_H
#define SHIMMY_GPU_H

#include "core/core.h"
#include "model/model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One Vulkan device as the loader reports it. */
typedef struct gpu_device_info {
    int32_t index;       /* N of "vulkan:N" (the loader's order) */
    char name[256];      /* "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char type[16];       /* "discrete", "integrated", "virtual", "cpu", "other" */
    uint32_t vendor_id;  /* PCI vendor: 0x10de NVIDIA, 0x1002 AMD, 0x8086 Intel, 0x10005 Mesa */
    char driver[128];    /* driver name and version as the driver gives them */
    uint64_t vram_bytes; /* the largest device-local heap */
    bool software;       /* a CPU implementation (lavapipe): never chosen by "auto" */
    bool usable;         /* has what the backend needs (compute queue, push descriptors,
                            16-bit storage); else `why` says what it lacks */
    char why[160];
} gpu_device_info;

/* Whether this binary was built with the Vulkan backend. */
bool gpu_built(void);

/* Fills up to cap devices into out (may be NULL to count) and returns how many there are (0
 * when there is no loader or no device; `err`, when not NULL, then says why). */
int32_t gpu_list(gpu_device_info *out, int32_t cap, shimmy_error *err);

/* Whether a device string names a GPU: "cpu" (and NULL, "") do not; "auto", "gpu", "vulkan",
 * "vulkan:N" and "cuda" do. Any other string is SHIMMY_ERR_INVALID_ARG with a message listing
 * the accepted forms. */
shimmy_status gpu_parse_device(const char *device, bool *wants_gpu, shimmy_error *err);

typedef struct gpu_model_params {
    /* "auto" (a hardware GPU if there is one, else NULL is returned with SHIMMY_OK: use the
     * CPU), "gpu"/"vulkan" (the first usable device, discrete before integrated before
     * software), "vulkan:N" (that one), "cuda" (the first NVIDIA device; logged as such). */
    const char *device;
    /* Layers whose weights go to the device: the first n_gpu_layers (-1 or more than the
     * model has: all, with the output layer); the others and their attention run on the CPU. */
    int32_t n_gpu_layers;
} gpu_model_params;

typedef struct gpu_model gpu_model;

/* Opens the device and uploads the weights. *out = NULL with SHIMMY_OK when "auto" finds no
 * hardware GPU or "gpu"/"vulkan"/"cuda" find no usable device: the caller runs on the CPU (a
 * log line says why). A device named by index that is missing or unusable, or an upload that
 * fails (out of device memory), is an error whose message says what to do. */
shimmy_status gpu_model_open(const model *m, const gpu_model_params *p, gpu_model **out,
                             shimmy_error *err);
void gpu_model_close(gpu_model *g);

/* The device to give model_ctx_params.device (borrowed until gpu_model_close). */
const model_device *gpu_model_device(const gpu_model *g);

typedef struct gpu_model_info {
    gpu_device_info device;
    int32_t n_gpu_layers;     /* layers on the device */
    int32_t n_layer;          /* layers in the model */
    bool output_on_device;    /* the output projection (and its norm) */
    uint64_t weight_bytes;    /* bytes of weights uploaded */
    uint64_t host_only_types; /* bit t set: tensors of GGUF type t stayed on the CPU (no shader) */
} gpu_model_info;
void gpu_model_get_info(const gpu_model *g, gpu_model_info *out);

/* Bytes of device memory all contexts of g hold now (KV caches and activations). */
uint64_t gpu_model_ctx_bytes(const gpu_model *g);

#endif
