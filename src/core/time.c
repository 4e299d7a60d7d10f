/* Monotonic clocks and resident-memory readings. */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t core_time_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double core_time_ms(void) {
    return (double)core_time_ns() / 1e6;
}

uint64_t core_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            unsigned long long v = 0;
            if (sscanf(line + 6, "%llu", &v) == 1) kb = v;
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}
