/* fuzz.h — shared by the fuzz targets: FUZZ_REQUIRE(cond) aborts (a finding for libFuzzer and
 * the smoke driver) naming the broken invariant, so a report says what went wrong and where. */
#ifndef SHIMMY_FUZZ_H
#define SHIMMY_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_REQUIRE(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
