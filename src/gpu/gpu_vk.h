/* gpu_vk.h — the Vulkan backend's own header (not part of gpu.h's interface): the loader's
 * function table, a device, buffers, the embedded shaders and the recorder a context uses.
 *
 * The loader (libvulkan.so.1) is opened with dlopen on first use, so a binary built with the
 * backend starts, and runs on the CPU, on a machine without it. Each device is opened once per
 * process and kept until exit; its queue is shared by every context (submissions serialized by
 * the device's lock). */
#ifndef SHIMMY_GPU_VK_H
#define SHIMMY_GPU_VK_H

#define VK_NO_PROTOTYPES
#include "gpu.h"

#include <pthread.h>
#include <vulkan/vulkan.h>

/* ---- the loader's functions ---- */
#define GPU_VK_INSTANCE_FNS(X)                                                                     \
    X(vkDestroyInstance)                                                                           \
    X(vkEnumeratePhysicalDevices)                                                                  \
    X(vkGetPhysicalDeviceProperties)                                                               \
    X(vkGetPhysicalDeviceProperties2)                                                              \
    X(vkGetPhysicalDeviceFeatures2)                                                                \
    X(vkGetPhysicalDeviceMemoryProperties)                                                         \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                    \
    X(vkEnumerateDeviceExtensionProperties)                                                        \
    X(vkCreateDevice)                                                                              \
    X(vkGetDeviceProcAddr)

#define GPU_VK_DEVICE_FNS(X)                                                                       \
    X(vkGetDeviceQueue)                                                                            \
    X(vkCreateBuffer)                                                                              \
    X(vkDestroyBuffer)                                                                             \
    X(vkGetBufferMemoryRequirements)                                                               \
    X(vkAllocateMemory)                                                                            \
    X(vkFreeMemory)                                                                                \
    X(vkBindBufferMemory)                                                                          \
    X(vkMapMemory)                                                                                 \
    X(vkUnmapMemory)                                                                               \
    X(vkCreateShaderModule)                                                                        \
    X(vkDestroyShaderModule)                                                                       \
    X(vkCreateDescriptorSetLayout)                                                                 \
    X(vkCreatePipelineLayout)                                                                      \
    X(vkCreateComputePipelines)                                                                    \
    X(vkDestroyPipeline)                                                                           \
    X(vkCreateCommandPool)                                                                         \
    X(vkDestroyCommandPool)                                                                        \
    X(vkAllocateCommandBuffers)                                                                    \
    X(vkResetCommandBuffer)                                                                        \
    X(vkBeginCommandBuffer)                                                                        \
    X(vkEndCommandBuffer)                                                                          \
    X(vkCmdBindPipeline)                                                                           \
    X(vkCmdPushConstants)                                                                          \
    X(vkCmdPushDescriptorSetKHR)                                                                   \
    X(vkCmdDispatch)                                                                               \
    X(vkCmdPipelineBarrier)                                                                        \
    X(vkCmdCopyBuffer)                                                                             \
    X(vkCmdFillBuffer)                                                                             \
    X(vkCreateFence)                                                                               \
    X(vkDestroyFence)                                                                              \
    X(vkResetFences)                                                                               \
    X(vkWaitForFences)                                                                             \
    X(vkQueueSubmit)

typedef struct gpu_vk_fns {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    PFN_vkCreateInstance vkCreateInstance;
#define GPU_VK_DECL(f) PFN_##f f;
    GPU_VK_INSTANCE_FNS(GPU_VK_DECL)
    GPU_VK_DEVICE_FNS(GPU_VK_DECL)
#undef GPU_VK_DECL
} gpu_vk_fns;

/* The process's loader and instance (NULL when there is none: err says why). Device-level
 * entries in the table are those of the last device opened; gpu_vk_device carries its own. */
const gpu_vk_fns *gpu_vk_loader(VkInstance *inst, shimmy_error *err);

/* ---- shaders (gpu_spv.c, generated at build time from src/gpu/shaders) ---- */
typedef struct gpu_spv {
    const char *name; /* "rms_norm", "matmul_q4_k", ... */
    const uint32_t *words;
    size_t bytes;
} gpu_spv;
extern const gpu_spv gpu_spv_table[];
extern const int gpu_spv_count;

/* The product shader of GGUF type `type` ("matmul_q4_k" for Q4_K) into out. */
void gpu_vk_matmul_name(uint32_t type, char *out, size_t cap);
/* Whether the binary has shader `name`. */
bool gpu_vk_has_shader(const char *name);

/* The pipelines, all with the same layout: GPU_VK_BINDINGS storage buffers (push
 * descriptors) and up to 128 bytes of push constants. */
#define GPU_VK_BINDINGS  6
#define GPU_VK_MAX_PIPES 64

/* ---- a device ---- */
typedef struct gpu_vk_device {
    gpu_device_info info;
    gpu_vk_fns fn; /* device-level entries for this device */
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceLimits limits;
    VkPhysicalDeviceMemoryProperties mem;
    uint32_t subgroup;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipes[GPU_VK_MAX_PIPES]; /* by gpu_spv_table index, created on first use */
    pthread_mutex_t lock;               /* the queue and pipeline creation */
    uint64_t max_range;                 /* largest range one binding may cover */
    uint64_t max_alloc;                 /* largest allocation */
} gpu_vk_device;

/* Whether the machine shows a GPU device node (/dev/dri/renderD*, /dev/nvidia0, /dev/dxg):
 * without one only software Vulkan devices can exist. */
bool gpu_vk_hardware_present(void);

/* Device `index` (or, index < 0, the first usable one by preference: discrete, integrated,
 * virtual, then software when allow_software; NVIDIA only when nvidia). NULL when none: err
 * says why. */
gpu_vk_device *gpu_vk_device_get(int32_t index, bool allow_software, bool nvidia,
                                 shimmy_error *err);
/* The pipeline of shader `name` (created on first use), or VK_NULL_HANDLE when the binary has
 * no such shader or the driver refused it. */
VkPipeline gpu_vk_pipeline(gpu_vk_device *d, const char *name);

/* A buffer with its own memory: device-local (copied to and from through staging) or
 * host-visible and mapped (staging). */
typedef struct gpu_vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    uint64_t size;
    void *map; /* host-visible buffers only */
} gpu_vk_buf;
shimmy_status gpu_vk_buf_new(gpu_vk_device *d, uint64_t size, bool host, gpu_vk_buf *out,
                             shimmy_error *err);
void gpu_vk_buf_free(gpu_vk_device *d, gpu_vk_buf *b);

/* ---- recording: one command buffer, submitted when the host needs results ---- */
typedef struct gpu_vk_bind {
    VkBuffer buf;
    uint64_t off, range; /* off a multiple of the device's storage offset alignment */
} gpu_vk_bind;

typedef struct gpu_vk_rec {
    gpu_vk_device *d;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    bool open;          /* cmd is recording */
    bool dirty;         /* a dispatch since the last barrier */
    gpu_vk_buf staging; /* uploads and downloads of a submission, bump-allocated */
    uint64_t staged;
    /* downloads to finish after the submission: host destination, staging offset, bytes */
    struct gpu_vk_pending {
        void *dst;
        uint64_t off, bytes;
    } * pend;
    int32_t n_pend, cap_pend;
    shimmy_status failed; /* sticky: the first device error */
    char why[192];
} gpu_vk_rec;

shimmy_status gpu_vk_rec_init(gpu_vk_rec *r, gpu_vk_device *d, uint64_t staging_bytes,
                              shimmy_error *err);
void gpu_vk_rec_deinit(gpu_vk_rec *r);
/* Records a dispatch of pipeline `name` with bindings b[0..nb) and push constants pc. */
void gpu_vk_dispatch(gpu_vk_rec *r, const char *name, const gpu_vk_bind *b, int nb, const void *pc,
                     uint32_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz);
/* Records host bytes -> buffer (through staging; submits first when staging is full). */
void gpu_vk_upload(gpu_vk_rec *r, VkBuffer dst, uint64_t off, const void *src, uint64_t bytes);
/* Records buffer -> host bytes; the host copy is written by gpu_vk_submit. */
void gpu_vk_download(gpu_vk_rec *r, VkBuffer src, uint64_t off, void *dst, uint64_t bytes);
void gpu_vk_copy(gpu_vk_rec *r, VkBuffer dst, uint64_t dst_off, VkBuffer src, uint64_t src_off,
                 uint64_t bytes);
void gpu_vk_fill(gpu_vk_rec *r, VkBuffer dst, uint64_t off, uint64_t bytes);
/* Submits what was recorded and waits; finishes the downloads. Returns r->failed. */
shimmy_status gpu_vk_submit(gpu_vk_rec *r);
/* Records the failure (first one wins) and logs it. */
void gpu_vk_fail(gpu_vk_rec *r, VkResult vr, const char *what);

/* A binding of [off, off + bytes) of buffer buf: the offset aligned down to the device's
 * storage alignment; *elem gets the element index (of elt bytes) of `off` within it. */
gpu_vk_bind gpu_vk_range(const gpu_vk_device *d, VkBuffer buf, uint64_t off, uint64_t bytes,
                         uint32_t elt, uint32_t *elem);

/* matmul.comp's push constants and dispatch for n_out rows of n_in times n_tok tokens: threads
 * per row (a power of two up to 64, about four runs of 32 elements each) and the groups. */
typedef struct gpu_vk_mm_pc {
    uint32_t n_in, n_out, n_tok, w_off, row_bytes, x_off, x_stride, y_off, y_stride, tpr;
} gpu_vk_mm_pc;
void gpu_vk_matmul(gpu_vk_rec *r, const char *pipe, const gpu_vk_bind b[3], gpu_vk_mm_pc *pc);

/* Tests' entry: y (n_tok, n_out) = x (n_tok, n_in) · wᵀ for n_out rows of `type` on the first
 * usable device (software ones too). SHIMMY_ERR_UNSUPPORTED when there is none. */
shimmy_status gpu_debug_matmul(uint32_t type, const void *w, int64_t n_in, int64_t n_out,
                               const float *x, int32_t n_tok, float *y, shimmy_error *err);

/* Tests' entry to any shader: buffer i (host bytes, at least 4 on the device, rounded up to 4)
 * is uploaded to binding i, pipeline `pipe` runs once over (gx, gy, gz) workgroups with push
 * constants pc (pc_bytes, at most 128), and the `out` buffers are downloaded back over their
 * host bytes. SHIMMY_ERR_UNSUPPORTED when there is no device or no such shader. */
typedef struct gpu_debug_buf {
    void *host;
    size_t bytes;
    bool out;
} gpu_debug_buf;
shimmy_status gpu_debug_run(const char *pipe, const gpu_debug_buf *bufs, int n_bufs, const void *pc,
                            uint32_t pc_bytes, uint32_t gx, uint32_t gy, uint32_t gz,
                            shimmy_error *err);

#endif
