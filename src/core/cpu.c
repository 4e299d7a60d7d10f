/* CPU feature detection (CPUID + XGETBV on x86-64, hwcaps on ARM64), read once. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t detect(void) {
    uint32_t a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    bool osxsave = (c >> 27) & 1;
    if (!osxsave) return 0;
    uint64_t xcr0 = xgetbv0();
    bool ymm = (xcr0 & 0x6) == 0x6;
    bool zmm = (xcr0 & 0xE6) == 0xE6;
    if (ymm && ((c >> 12) & 1)) f |= CORE_CPU_FMA;
    if (ymm && ((c >> 29) & 1)) f |= CORE_CPU_F16C;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    if (ymm && ((b >> 5) & 1)) f |= CORE_CPU_AVX2;
    if (zmm && ((b >> 16) & 1)) f |= CORE_CPU_AVX512F;
    if (zmm && ((b >> 30) & 1)) f |= CORE_CPU_AVX512BW;
    if (zmm && ((b >> 31) & 1)) f |= CORE_CPU_AVX512VL;
    if (zmm && ((c >> 11) & 1)) f |= CORE_CPU_AVX512VNNI;
    __cpuid_count(7, 1, a, b, c, d);
    if (ymm && ((a >> 4) & 1)) f |= CORE_CPU_AVXVNNI;
    if (zmm && ((a >> 5) & 1)) f |= CORE_CPU_AVX512BF16;
    return f;
}
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
static uint32_t detect(void) {
    uint32_t f = CORE_CPU_NEON;
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) f |= CORE_CPU_DOTPROD;
    return f;
}
#else
static uint32_t detect(void) {
    return 0;
}
#endif

uint32_t core_cpu_features(void) {
    static int done;
    static uint32_t feats;
    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        feats = detect();
        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    }
    return feats;
}

uint32_t core_cpu_usable(void) {
    uint32_t f = core_cpu_features();
    const char *isa = getenv("SHIMMY_ISA");
    if (!isa || !*isa) return f;
    if (strcmp(isa, "scalar") == 0) return 0;
    if (strcmp(isa, "avx2") == 0)
        return f & (CORE_CPU_AVX2 | CORE_CPU_FMA | CORE_CPU_F16C | CORE_CPU_AVXVNNI);
    if (strcmp(isa, "neon") == 0) return f & CORE_CPU_NEON;
    return f; /* "avx512", "native" or unknown: everything the CPU has */
}

const char *core_cpu_isa_name(void) {
    uint32_t f = core_cpu_usable();
    uint32_t avx512 = CORE_CPU_AVX512F | CORE_CPU_AVX512BW | CORE_CPU_AVX512VL;
    if ((f & avx512) == avx512 && (f & CORE_CPU_AVX512VNNI)) return "avx512-vnni";
    if ((f & avx512) == avx512) return "avx512";
    if ((f & CORE_CPU_AVX2) && (f & CORE_CPU_FMA) && (f & CORE_CPU_AVXVNNI)) return "avx2-vnni";
    if ((f & CORE_CPU_AVX2) && (f & CORE_CPU_FMA)) return "avx2";
    if (f & CORE_CPU_DOTPROD) return "neon-dotprod";
    if (f & CORE_CPU_NEON) return "neon";
    return "scalar";
}
