// Minimal test helpers: CHECK records a failure and continues; main returns test_result().
#ifndef LLAMALITE_TEST_UTIL_H
#define LLAMALITE_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int test_failures = 0;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            test_failures++;                                                   \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

#define TEST_SKIP 77

// Every weight type the kernels take (an initializer list for an enum gl_type array).
#define TEST_WEIGHT_TYPES                                                                        \
    GL_TYPE_F32, GL_TYPE_F16, GL_TYPE_BF16, GL_TYPE_Q4_0, GL_TYPE_Q4_1, GL_TYPE_Q5_0, GL_TYPE_Q5_1,       \
        GL_TYPE_Q8_0, GL_TYPE_Q2_K, GL_TYPE_Q3_K, GL_TYPE_Q4_K, GL_TYPE_Q5_K, GL_TYPE_Q6_K, GL_TYPE_IQ4_NL, \
        GL_TYPE_IQ4_XS

// Path of the shared test data directory, or NULL (then the test should exit TEST_SKIP).
static inline const char *test_shared_dir(void) {
    const char *d = getenv("LLAMALITE_SHARED");
    if (!d || !*d) d = "../shared";
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/README.md", d);
    FILE *f = fopen(probe, "rb");
    if (!f) return NULL;
    fclose(f);
    return d;
}

// Roughly normal floats (sum of four uniforms, sd ~1) from a xorshift state: reproducible data.
static inline float test_gauss(uint64_t *state) {
    float s = 0;
    for (int i = 0; i < 4; i++) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        s += (float)((*state >> 40) & 0xffffff) / 16777216.0f - 0.5f;
    }
    return s * 1.7f;
}

static inline int test_result(const char *name) {
    if (test_failures) fprintf(stderr, "%s: %d check(s) failed\n", name, test_failures);
    return test_failures ? 1 : 0;
}

#endif
