/* The Vulkan plumbing: the loader (dlopen), the instance, devices and their pipelines, buffers,
 * and the recorder (one command buffer per submission, global barriers between dispatches). */
#include "gpu_vk.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static gpu_vk_fns g_fn;
static VkInstance g_inst;
static bool g_tried;
static char g_why[192];
static gpu_vk_device *g_dev[64]; /* opened devices by index */

const gpu_vk_fns *gpu_vk_loader(VkInstance *inst, shimmy_error *err) {
    pthread_mutex_lock(&g_lock);
    if (!g_tried) {
        g_tried = true;
        void *lib = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!lib) lib = dlopen("libvulkan.so", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            snprintf(g_why, sizeof g_why,
                     "no Vulkan loader (libvulkan.so.1; Debian: apt install libvulkan1 and a "
                     "driver such as mesa-vulkan-drivers or the NVIDIA driver)");
        } else {
            g_fn.vkGetInstanceProcAddr =
                (PFN_vkGetInstanceProcAddr)(uintptr_t)dlsym(lib, "vkGetInstanceProcAddr");
            g_fn.vkCreateInstance =
                g_fn.vkGetInstanceProcAddr
                    ? (PFN_vkCreateInstance)g_fn.vkGetInstanceProcAddr(NULL, "vkCreateInstance")
                    : NULL;
            VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                                     .pApplicationName = "shimmy",
                                     .apiVersion = VK_API_VERSION_1_2};
            VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                       .pApplicationInfo = &app};
            VkResult vr = g_fn.vkCreateInstance ? g_fn.vkCreateInstance(&ci, NULL, &g_inst)
                                                : VK_ERROR_INITIALIZATION_FAILED;
            if (vr != VK_SUCCESS) {
                snprintf(g_why, sizeof g_why,
                         "the Vulkan loader found no driver supporting Vulkan 1.2 (error %d)",
                         (int)vr);
                g_inst = VK_NULL_HANDLE;
            } else {
#define GPU_VK_LOAD(f) g_fn.f = (PFN_##f)g_fn.vkGetInstanceProcAddr(g_inst, #f);
                GPU_VK_INSTANCE_FNS(GPU_VK_LOAD)
#undef GPU_VK_LOAD
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (!g_inst) {
        core_error(err, SHIMMY_ERR_UNSUPPORTED, "device", "%s", g_why);
        return NULL;
    }
    *inst = g_inst;
    return &g_fn;
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

/* What a device lacks for this backend ("" when it has it all); its compute queue family. */
static void check_device(const gpu_vk_fns *fn, VkPhysicalDevice pd, gpu_device_info *in,
                         uint32_t *family) {
    VkPhysicalDeviceDriverProperties drv = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &drv};
    fn->vkGetPhysicalDeviceProperties2(pd, &p2);
    snprintf(in->name, sizeof in->name, "%s", p2.properties.deviceName);
    snprintf(in->type, sizeof in->type, "%s", type_name(p2.properties.deviceType));
    snprintf(in->driver, sizeof in->driver, "%.60s %.60s", drv.driverName, drv.driverInfo);
    in->vendor_id = p2.properties.vendorID;
    in->software = p2.properties.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    VkPhysicalDeviceMemoryProperties mp;
    fn->vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    in->vram_bytes = 0;
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
        if ((mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            mp.memoryHeaps[i].size > in->vram_bytes)
            in->vram_bytes = mp.memoryHeaps[i].size;
    in->usable = false;
    in->why[0] = '\0';
    uint32_t nq = 0;
    fn->vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties qf[32];
    if (nq > 32) nq = 32;
    fn->vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    *family = UINT32_MAX;
    for (uint32_t i = 0; i < nq && *family == UINT32_MAX; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) *family = i;
    if (*family == UINT32_MAX) {
        snprintf(in->why, sizeof in->why, "no compute queue");
        return;
    }
    if (p2.properties.apiVersion < VK_API_VERSION_1_2) {
        snprintf(in->why, sizeof in->why, "Vulkan 1.2 is needed (the driver has %u.%u)",
                 VK_API_VERSION_MAJOR(p2.properties.apiVersion),
                 VK_API_VERSION_MINOR(p2.properties.apiVersion));
        return;
    }
    uint32_t ne = 0;
    fn->vkEnumerateDeviceExtensionProperties(pd, NULL, &ne, NULL);
    VkExtensionProperties *ext = calloc(ne ? ne : 1, sizeof *ext);
    bool push = false;
    if (ext) {
        fn->vkEnumerateDeviceExtensionProperties(pd, NULL, &ne, ext);
        for (uint32_t i = 0; i < ne; i++)
            push |= strcmp(ext[i].extensionName, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) == 0;
        free(ext);
    }
    if (!push) {
        snprintf(in->why, sizeof in->why, "no %s", VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
        return;
    }
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = &f11};
    fn->vkGetPhysicalDeviceFeatures2(pd, &f2);
    if (!f11.storageBuffer16BitAccess) {
        snprintf(in->why, sizeof in->why, "no 16-bit storage buffers");
        return;
    }
    in->usable = true;
}

int32_t gpu_list(gpu_device_info *out, int32_t cap, shimmy_error *err) {
    VkInstance inst;
    const gpu_vk_fns *fn = gpu_vk_loader(&inst, err);
    if (!fn) return 0;
    uint32_t n = 0;
    fn->vkEnumeratePhysicalDevices(inst, &n, NULL);
    if (n == 0) {
        core_error(err, SHIMMY_ERR_UNSUPPORTED, "device", "the Vulkan loader lists no device");
        return 0;
    }
    if (n > 64) n = 64;
    VkPhysicalDevice pd[64];
    fn->vkEnumeratePhysicalDevices(inst, &n, pd);
    for (uint32_t i = 0; out && i < n && (int32_t)i < cap; i++) {
        uint32_t fam;
        memset(&out[i], 0, sizeof out[i]);
        out[i].index = (int32_t)i;
        check_device(fn, pd[i], &out[i], &fam);
    }
    return (int32_t)n;
}

bool gpu_vk_hardware_present(void) {
    if (access("/dev/nvidia0", F_OK) == 0 || access("/dev/dxg", F_OK) == 0) return true;
    DIR *dir = opendir("/dev/dri");
    bool found = false;
    for (struct dirent *e; dir && !found && (e = readdir(dir));)
        found = strncmp(e->d_name, "renderD", 7) == 0;
    if (dir) closedir(dir);
    return found;
}

bool gpu_built(void) {
    return true;
}

static int rank_of(const gpu_device_info *in) {
    if (!strcmp(in->type, "discrete")) return 0;
    if (!strcmp(in->type, "integrated")) return 1;
    if (!strcmp(in->type, "virtual")) return 2;
    return in->software ? 4 : 3;
}

static gpu_vk_device *open_device(const gpu_vk_fns *fn, VkInstance inst, VkPhysicalDevice pd,
                                  const gpu_device_info *in, uint32_t family, shimmy_error *err) {
    gpu_vk_device *d = calloc(1, sizeof *d);
    if (!d) {
        core_error(err, SHIMMY_ERR_NOMEM, "device", "out of memory");
        return NULL;
    }
    d->info = *in;
    d->phys = pd;
    d->queue_family = family;
    pthread_mutex_init(&d->lock, NULL);
    VkPhysicalDeviceProperties props;
    fn->vkGetPhysicalDeviceProperties(pd, &props);
    d->limits = props.limits;
    fn->vkGetPhysicalDeviceMemoryProperties(pd, &d->mem);
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &sg};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &m3};
    fn->vkGetPhysicalDeviceProperties2(pd, &p2);
    d->subgroup = sg.subgroupSize;
    d->max_alloc = m3.maxMemoryAllocationSize;
    d->max_range = props.limits.maxStorageBufferRange;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkPhysicalDeviceVulkan11Features f11 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
        .storageBuffer16BitAccess = VK_TRUE};
    const char *exts[] = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME};
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &f11,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi,
                             .enabledExtensionCount = 1,
                             .ppEnabledExtensionNames = exts};
    VkResult vr = fn->vkCreateDevice(pd, &ci, NULL, &d->dev);
    if (vr != VK_SUCCESS) {
        core_error(err, SHIMMY_ERR_UNSUPPORTED, "device",
                   "vulkan:%d (%s): device creation failed (%d)", in->index, in->name, (int)vr);
        free(d);
        return NULL;
    }
    d->fn = *fn;
#define GPU_VK_LOAD(f) d->fn.f = (PFN_##f)fn->vkGetDeviceProcAddr(d->dev, #f);
    GPU_VK_DEVICE_FNS(GPU_VK_LOAD)
#undef GPU_VK_LOAD
    (void)inst;
    d->fn.vkGetDeviceQueue(d->dev, family, 0, &d->queue);
    VkDescriptorSetLayoutBinding b[GPU_VK_BINDINGS];
    for (int i = 0; i < GPU_VK_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dl = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR,
        .bindingCount = GPU_VK_BINDINGS,
        .pBindings = b};
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = 128};
    if (d->fn.vkCreateDescriptorSetLayout(d->dev, &dl, NULL, &d->dsl) != VK_SUCCESS ||
        d->fn.vkCreatePipelineLayout(
            d->dev,
            &(VkPipelineLayoutCreateInfo){.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                          .setLayoutCount = 1,
                                          .pSetLayouts = &d->dsl,
                                          .pushConstantRangeCount = 1,
                                          .pPushConstantRanges = &pcr},
            NULL, &d->layout) != VK_SUCCESS) {
        core_error(err, SHIMMY_ERR_UNSUPPORTED, "device", "vulkan:%d: pipeline layout failed",
                   in->index);
        return NULL; /* the device stays open: devices live until exit */
    }
    core_log(CORE_LOG_INFO, "vulkan:%d: %s (%s, %s, %.1f GiB)", in->index, in->name, in->type,
             in->driver, (double)in->vram_bytes / (1024.0 * 1024.0 * 1024.0));
    return d;
}

gpu_vk_device *gpu_vk_device_get(int32_t index, bool allow_software, bool nvidia,
                                 shimmy_error *err) {
    VkInstance inst;
    const gpu_vk_fns *fn = gpu_vk_loader(&inst, err);
    if (!fn) return NULL;
    gpu_device_info infos[64];
    int32_t n = gpu_list(infos, 64, err);
    if (n <= 0) return NULL;
    int32_t pick = -1;
    if (index >= 0) {
        if (index >= n) {
            core_error(err, SHIMMY_ERR_NOT_FOUND, "device",
                       "no device vulkan:%d: the Vulkan loader lists %d (vulkan:0 .. vulkan:%d; "
                       "shimmy probe --devices shows them)",
                       index, n, n - 1);
            return NULL;
        }
        if (!infos[index].usable) {
            core_error(err, SHIMMY_ERR_UNSUPPORTED, "device",
                       "vulkan:%d (%s) cannot run shimmy: %s", index, infos[index].name,
                       infos[index].why);
            return NULL;
        }
        pick = index;
    } else {
        for (int32_t i = 0; i < n; i++) {
            if (!infos[i].usable || (infos[i].software && !allow_software)) continue;
            if (nvidia && infos[i].vendor_id != 0x10de) continue;
            if (pick < 0 || rank_of(&infos[i]) < rank_of(&infos[pick])) pick = i;
        }
        if (pick < 0) {
            core_error(err, SHIMMY_ERR_NOT_FOUND, "device", "no usable %sVulkan device%s",
                       nvidia ? "NVIDIA " : "", allow_software ? "" : " (software ones skipped)");
            return NULL;
        }
    }
    pthread_mutex_lock(&g_lock);
    gpu_vk_device *d = g_dev[pick];
    if (!d) {
        uint32_t cnt = 64, fam = 0;
        VkPhysicalDevice pd[64];
        fn->vkEnumeratePhysicalDevices(inst, &cnt, pd);
        gpu_device_info in = infos[pick];
        check_device(fn, pd[pick], &in, &fam);
        d = g_dev[pick] = open_device(fn, inst, pd[pick], &in, fam, err);
    }
    pthread_mutex_unlock(&g_lock);
    return d;
}

void gpu_vk_matmul_name(uint32_t type, char *out, size_t cap) {
    snprintf(out, cap, "matmul_%s", gguf_type_name(type));
    for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
}

bool gpu_vk_has_shader(const char *name) {
    for (int k = 0; k < gpu_spv_count; k++)
        if (strcmp(gpu_spv_table[k].name, name) == 0) return true;
    return false;
}

VkPipeline gpu_vk_pipeline(gpu_vk_device *d, const char *name) {
    int idx = -1;
    for (int i = 0; i < gpu_spv_count && i < GPU_VK_MAX_PIPES; i++)
        if (strcmp(gpu_spv_table[i].name, name) == 0) idx = i;
    if (idx < 0) return VK_NULL_HANDLE;
    VkPipeline p = __atomic_load_n(&d->pipes[idx], __ATOMIC_ACQUIRE);
    if (p) return p;
    pthread_mutex_lock(&d->lock);
    if (!d->pipes[idx]) {
        VkShaderModule mod;
        VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = gpu_spv_table[idx].bytes,
                                       .pCode = gpu_spv_table[idx].words};
        if (d->fn.vkCreateShaderModule(d->dev, &mi, NULL, &mod) == VK_SUCCESS) {
            VkComputePipelineCreateInfo pi = {
                .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                          .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                          .module = mod,
                          .pName = "main"},
                .layout = d->layout};
            VkPipeline np = VK_NULL_HANDLE;
            if (d->fn.vkCreateComputePipelines(d->dev, VK_NULL_HANDLE, 1, &pi, NULL, &np) !=
                VK_SUCCESS)
                np = VK_NULL_HANDLE;
            d->fn.vkDestroyShaderModule(d->dev, mod, NULL);
            __atomic_store_n(&d->pipes[idx], np, __ATOMIC_RELEASE);
        }
    }
    p = d->pipes[idx];
    pthread_mutex_unlock(&d->lock);
    return p;
}

static int32_t mem_type(const gpu_vk_device *d, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < d->mem.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (d->mem.memoryTypes[i].propertyFlags & want) == want)
            return (int32_t)i;
    return -1;
}

shimmy_status gpu_vk_buf_new(gpu_vk_device *d, uint64_t size, bool host, gpu_vk_buf *out,
                             shimmy_error *err) {
    memset(out, 0, sizeof *out);
    if (size == 0) size = 16;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    if (size > d->max_alloc || d->fn.vkCreateBuffer(d->dev, &bi, NULL, &out->buf) != VK_SUCCESS)
        return core_error(err, SHIMMY_ERR_NOMEM, "device",
                          "%s: cannot make a buffer of %.1f MiB (the device allows %.1f MiB)",
                          d->info.name, (double)size / 1048576.0, (double)d->max_alloc / 1048576.0);
    VkMemoryRequirements mr;
    d->fn.vkGetBufferMemoryRequirements(d->dev, out->buf, &mr);
    int32_t t =
        host ? mem_type(d, mr.memoryTypeBits,
                        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                            VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
             : mem_type(d, mr.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (t < 0 && host)
        t = mem_type(d, mr.memoryTypeBits,
                     VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (t < 0) t = mem_type(d, mr.memoryTypeBits, 0);
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = mr.size,
                               .memoryTypeIndex = (uint32_t)(t < 0 ? 0 : t)};
    VkResult vr = t < 0 ? VK_ERROR_OUT_OF_DEVICE_MEMORY
                        : d->fn.vkAllocateMemory(d->dev, &ai, NULL, &out->mem);
    if (vr != VK_SUCCESS) {
        d->fn.vkDestroyBuffer(d->dev, out->buf, NULL);
        memset(out, 0, sizeof *out);
        return core_error(err, SHIMMY_ERR_NOMEM, "device",
                          "%s: out of device memory for %.1f MiB (use --gpu-layers to put fewer "
                          "layers on it, or a smaller --ctx-size)",
                          d->info.name, (double)size / 1048576.0);
    }
    d->fn.vkBindBufferMemory(d->dev, out->buf, out->mem, 0);
    out->size = size;
    if (host && d->fn.vkMapMemory(d->dev, out->mem, 0, VK_WHOLE_SIZE, 0, &out->map) != VK_SUCCESS) {
        gpu_vk_buf_free(d, out);
        return core_error(err, SHIMMY_ERR_NOMEM, "device", "%s: cannot map staging memory",
                          d->info.name);
    }
    return SHIMMY_OK;
}

void gpu_vk_buf_free(gpu_vk_device *d, gpu_vk_buf *b) {
    if (!d || !b || !b->buf) return;
    if (b->map) d->fn.vkUnmapMemory(d->dev, b->mem);
    d->fn.vkDestroyBuffer(d->dev, b->buf, NULL);
    d->fn.vkFreeMemory(d->dev, b->mem, NULL);
    memset(b, 0, sizeof *b);
}

gpu_vk_bind gpu_vk_range(const gpu_vk_device *d, VkBuffer buf, uint64_t off, uint64_t bytes,
                         uint32_t elt, uint32_t *elem) {
    uint64_t align = d->limits.minStorageBufferOffsetAlignment;
    if (align < 16) align = 16;
    if (align % elt) align *= elt; /* keep the element grid */
    const uint64_t base = off / align * align;
    if (elem) *elem = (uint32_t)((off - base) / elt);
    uint64_t range = off - base + bytes;
    range = (range + 3) & ~(uint64_t)3;
    return (gpu_vk_bind){.buf = buf, .off = base, .range = range ? range : 16};
}
