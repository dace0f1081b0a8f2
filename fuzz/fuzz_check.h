/* fuzz_check — what the harnesses in fuzz/ share: the libFuzzer entry point, and CHECK, which
 * turns a broken promise of an API (not a sanitizer report) into an abort, so that libFuzzer
 * saves the input and replay_main fails the fuzz-regress test. */
#ifndef COMFYGATE_FUZZ_CHECK_H
#define COMFYGATE_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#endif
